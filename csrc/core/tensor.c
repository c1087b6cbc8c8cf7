#include "tensor.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic size_t allocated_bytes;

size_t lt_take_allocated_bytes(void) { return atomic_exchange(&allocated_bytes, 0); }

/* Largest element count we agree to allocate: keeps byte counts far from overflow. */
#define LT_MAX_NUMEL ((int64_t)1 << 40)

int lt_check_sizes(int ndim, const int64_t *size, int64_t *numel, lt_error *err) {
    if (ndim < 1 || ndim > LT_MAX_DIMS)
        return lt_fail(err, "expected 1 to %d dimensions, got %d", LT_MAX_DIMS, ndim);
    int64_t n = 1;
    bool overflow = false;
    for (int d = 0; d < ndim; d++) {
        if (size[d] < 0) return lt_fail(err, "size of dimension %d must be non-negative, got %lld", d + 1, (long long)size[d]);
        if (size[d] > 0 && n > LT_MAX_NUMEL / size[d]) overflow = true;
        else n *= size[d];
    }
    if (overflow) {
        char buf[256];
        for (int d = 0; d < ndim; d++) if (size[d] == 0) { overflow = false; n = 0; }
        if (overflow)
            return lt_fail(err, "sizes %s are too large: their product overflows (at most 2^40 elements)",
                           lt_sizes_str(ndim, size, buf, sizeof buf));
    }
    *numel = n;
    return 0;
}

static lt_storage *storage_new(int64_t numel, lt_error *err) {
    lt_storage *s = malloc(sizeof *s);
    if (!s) { lt_fail(err, "out of memory"); return NULL; }
    s->data = NULL;
    s->numel = numel;
    atomic_init(&s->refcount, 1);
    if (numel > 0) {
        size_t bytes = (size_t)numel * sizeof(float);
        void *p = NULL;
        if (posix_memalign(&p, 64, (bytes + 63) & ~(size_t)63) != 0) {
            free(s);
            lt_fail(err, "out of memory allocating %zu bytes", bytes);
            return NULL;
        }
        s->data = p;
        atomic_fetch_add(&allocated_bytes, bytes);
    }
    return s;
}

static void storage_retain(lt_storage *s) { atomic_fetch_add(&s->refcount, 1); }

static void storage_release(lt_storage *s) {
    if (s && atomic_fetch_sub(&s->refcount, 1) == 1) {
        free(s->data);
        free(s);
    }
}

static void set_contiguous_strides(lt_tensor *t) {
    int64_t st = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        t->stride[d] = st;
        st *= t->size[d];
    }
}

int lt_tensor_new(lt_tensor *t, int ndim, const int64_t *size, lt_error *err) {
    int64_t numel;
    if (lt_check_sizes(ndim, size, &numel, err)) return -1;
    lt_storage *s = storage_new(numel, err);
    if (!s) return -1;
    lt_tensor_release(t);
    t->storage = s;
    t->offset = 0;
    t->ndim = ndim;
    memcpy(t->size, size, sizeof(int64_t) * (size_t)ndim);
    set_contiguous_strides(t);
    return 0;
}

int lt_tensor_zeros(lt_tensor *t, int ndim, const int64_t *size, lt_error *err) {
    if (lt_tensor_new(t, ndim, size, err)) return -1;
    if (t->storage->data) memset(t->storage->data, 0, sizeof(float) * (size_t)t->storage->numel);
    return 0;
}

int lt_tensor_resize(lt_tensor *t, int ndim, const int64_t *size, lt_error *err) {
    int64_t numel;
    if (lt_check_sizes(ndim, size, &numel, err)) return -1;
    /* Reused even when views of it exist: a layer's output is overwritten by the next forward pass,
     * as in Torch7; callers that keep results clone them. */
    lt_storage *s = t->storage;
    if (!s || s->numel < numel) return lt_tensor_new(t, ndim, size, err);
    t->offset = 0;
    t->ndim = ndim;
    memcpy(t->size, size, sizeof(int64_t) * (size_t)ndim);
    set_contiguous_strides(t);
    return 0;
}

void lt_tensor_share(lt_tensor *dst, const lt_tensor *src) {
    if (dst == src) return;
    storage_retain(src->storage);
    lt_storage *old = dst->storage;
    *dst = *src;
    storage_release(old);
}

void lt_tensor_release(lt_tensor *t) {
    storage_release(t->storage);
    t->storage = NULL;
}

int64_t lt_numel(const lt_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->size[d];
    return n;
}

bool lt_is_contiguous(const lt_tensor *t) {
    int64_t st = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->size[d] != 1 && t->stride[d] != st) return false;
        st *= t->size[d];
    }
    return true;
}

bool lt_same_shape(const lt_tensor *a, const lt_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->size[d] != b->size[d]) return false;
    return true;
}

const char *lt_sizes_str(int ndim, const int64_t *size, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = '\0';
    for (int d = 0; d < ndim && used < len; d++)
        used += (size_t)snprintf(buf + used, len - used, d ? "x%lld" : "%lld", (long long)size[d]);
    return buf;
}

const char *lt_shape_str(const lt_tensor *t, char *buf, size_t len) {
    return lt_sizes_str(t->ndim, t->size, buf, len);
}

/* ---- views ---- */

/* Starts out as a view of in (sharing its storage), to be reshaped by the caller. Handles out == in. */
static void begin_view(lt_tensor *out, const lt_tensor *in) { lt_tensor_share(out, in); }

/* Strides for viewing in as the new sizes without copying, or false when the memory layout does not
 * allow it (PyTorch's computeStride: each run of merged input dimensions must be contiguous). */
static bool view_strides(const lt_tensor *in, int ndim, const int64_t *size, int64_t *stride) {
    int64_t numel = lt_numel(in);
    if (numel == 0) {
        int64_t st = 1;
        for (int d = ndim - 1; d >= 0; d--) { stride[d] = st; st *= size[d] > 0 ? size[d] : 1; }
        return true;
    }
    int view_d = ndim - 1;
    int64_t chunk_base_stride = in->stride[in->ndim - 1];
    int64_t tensor_numel = 1, view_numel = 1;
    for (int d = in->ndim - 1; d >= 0; d--) {
        tensor_numel *= in->size[d];
        bool chunk_ends = d == 0 || (in->size[d - 1] != 1 && in->stride[d - 1] != tensor_numel * chunk_base_stride);
        if (chunk_ends) {
            while (view_d >= 0 && (view_numel < tensor_numel || size[view_d] == 1)) {
                stride[view_d] = view_numel * chunk_base_stride;
                view_numel *= size[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel) return false;
            if (d > 0) {
                chunk_base_stride = in->stride[d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

/* Replaces one -1 in size by the inferred extent; checks the element count. */
static int infer_sizes(const char *what, const lt_tensor *in, int ndim, const int64_t *size, int64_t *out, lt_error *err) {
    char a[160], b[160];
    if (ndim < 1 || ndim > LT_MAX_DIMS) return lt_fail(err, "expected 1 to %d sizes, got %d", LT_MAX_DIMS, ndim);
    int infer = -1;
    int64_t known = 1;
    for (int d = 0; d < ndim; d++) {
        out[d] = size[d];
        if (size[d] == -1) {
            if (infer >= 0) return lt_fail(err, "only one size may be -1, got %s", lt_sizes_str(ndim, size, a, sizeof a));
            infer = d;
        } else if (size[d] < 0) {
            return lt_fail(err, "sizes must be non-negative or -1, got %lld", (long long)size[d]);
        } else {
            known *= size[d];
        }
    }
    int64_t numel = lt_numel(in);
    if (infer >= 0) {
        if (known == 0 || numel % known != 0)
            return lt_fail(err, "cannot %s a tensor of %lld elements (%s) as %s", what, (long long)numel,
                           lt_shape_str(in, a, sizeof a), lt_sizes_str(ndim, size, b, sizeof b));
        out[infer] = numel / known;
    } else if (known != numel) {
        return lt_fail(err, "cannot %s a tensor of %lld elements (%s) as %s (%lld elements)", what, (long long)numel,
                       lt_shape_str(in, a, sizeof a), lt_sizes_str(ndim, size, b, sizeof b), (long long)known);
    }
    return 0;
}

int lt_view(lt_tensor *out, const lt_tensor *in, int ndim, const int64_t *size, lt_error *err) {
    int64_t sizes[LT_MAX_DIMS], strides[LT_MAX_DIMS];
    if (infer_sizes("view", in, ndim, size, sizes, err)) return -1;
    if (!view_strides(in, ndim, sizes, strides)) {
        char a[160], b[160];
        return lt_fail(err, "cannot view a non-contiguous tensor (%s) as %s; call contiguous() first or use reshape()",
                       lt_shape_str(in, a, sizeof a), lt_sizes_str(ndim, sizes, b, sizeof b));
    }
    begin_view(out, in);
    out->ndim = ndim;
    memcpy(out->size, sizes, sizeof(int64_t) * (size_t)ndim);
    memcpy(out->stride, strides, sizeof(int64_t) * (size_t)ndim);
    return 0;
}

int lt_reshape(lt_tensor *out, const lt_tensor *in, int ndim, const int64_t *size, lt_error *err) {
    int64_t sizes[LT_MAX_DIMS], strides[LT_MAX_DIMS];
    if (infer_sizes("reshape", in, ndim, size, sizes, err)) return -1;
    if (view_strides(in, ndim, sizes, strides)) return lt_view(out, in, ndim, sizes, err);
    lt_tensor tmp = {0};
    if (lt_contiguous(&tmp, in, err)) return -1;
    int rc = lt_view(out, &tmp, ndim, sizes, err);
    lt_tensor_release(&tmp);
    return rc;
}

static int check_dim(const lt_tensor *in, int dim, lt_error *err) {
    if (dim < 0 || dim >= in->ndim)
        return lt_fail(err, "dimension %d out of range for a %d-D tensor", dim + 1, in->ndim);
    return 0;
}

int lt_narrow(lt_tensor *out, const lt_tensor *in, int dim, int64_t start, int64_t length, lt_error *err) {
    if (check_dim(in, dim, err)) return -1;
    if (start < 0 || length < 0 || start + length > in->size[dim])
        return lt_fail(err, "range %lld..%lld out of bounds for dimension %d of size %lld", (long long)start + 1,
                       (long long)(start + length), dim + 1, (long long)in->size[dim]);
    begin_view(out, in);
    out->offset += start * out->stride[dim];
    out->size[dim] = length;
    return 0;
}

int lt_select(lt_tensor *out, const lt_tensor *in, int dim, int64_t index, lt_error *err) {
    if (check_dim(in, dim, err)) return -1;
    if (index < 0 || index >= in->size[dim])
        return lt_fail(err, "index %lld out of range for dimension %d of size %lld", (long long)index + 1, dim + 1,
                       (long long)in->size[dim]);
    if (in->ndim == 1) return lt_fail(err, "cannot select from a 1-D tensor (it would have no dimensions); use get()");
    begin_view(out, in);
    out->offset += index * out->stride[dim];
    for (int d = dim; d < out->ndim - 1; d++) {
        out->size[d] = out->size[d + 1];
        out->stride[d] = out->stride[d + 1];
    }
    out->ndim--;
    return 0;
}

int lt_transpose(lt_tensor *out, const lt_tensor *in, int dim0, int dim1, lt_error *err) {
    if (check_dim(in, dim0, err) || check_dim(in, dim1, err)) return -1;
    begin_view(out, in);
    int64_t s = out->size[dim0], st = out->stride[dim0];
    out->size[dim0] = out->size[dim1];
    out->stride[dim0] = out->stride[dim1];
    out->size[dim1] = s;
    out->stride[dim1] = st;
    return 0;
}

int lt_permute(lt_tensor *out, const lt_tensor *in, int ndim, const int *order, lt_error *err) {
    if (ndim != in->ndim) return lt_fail(err, "expected %d dimensions in the order, got %d", in->ndim, ndim);
    bool seen[LT_MAX_DIMS] = {false};
    for (int d = 0; d < ndim; d++) {
        if (check_dim(in, order[d], err)) return -1;
        if (seen[order[d]]) return lt_fail(err, "dimension %d appears twice in the order", order[d] + 1);
        seen[order[d]] = true;
    }
    lt_tensor src = *in;
    begin_view(out, in);
    for (int d = 0; d < ndim; d++) {
        out->size[d] = src.size[order[d]];
        out->stride[d] = src.stride[order[d]];
    }
    return 0;
}

int lt_squeeze(lt_tensor *out, const lt_tensor *in, int dim, lt_error *err) {
    if (dim >= 0 && check_dim(in, dim, err)) return -1;
    lt_tensor src = *in;
    int n = 0;
    int64_t size[LT_MAX_DIMS], stride[LT_MAX_DIMS];
    for (int d = 0; d < src.ndim; d++) {
        bool drop = src.size[d] == 1 && (dim < 0 || dim == d);
        if (!drop) { size[n] = src.size[d]; stride[n] = src.stride[d]; n++; }
    }
    if (n == 0) { size[0] = 1; stride[0] = 1; n = 1; }  /* no 0-D tensors: keep one dimension */
    begin_view(out, in);
    out->ndim = n;
    memcpy(out->size, size, sizeof(int64_t) * (size_t)n);
    memcpy(out->stride, stride, sizeof(int64_t) * (size_t)n);
    return 0;
}

int lt_unsqueeze(lt_tensor *out, const lt_tensor *in, int dim, lt_error *err) {
    if (dim < 0 || dim > in->ndim) return lt_fail(err, "dimension %d out of range 1..%d", dim + 1, in->ndim + 1);
    if (in->ndim == LT_MAX_DIMS) return lt_fail(err, "a tensor has at most %d dimensions", LT_MAX_DIMS);
    begin_view(out, in);
    for (int d = out->ndim; d > dim; d--) {
        out->size[d] = out->size[d - 1];
        out->stride[d] = out->stride[d - 1];
    }
    out->size[dim] = 1;
    out->stride[dim] = dim < out->ndim ? out->stride[dim + 1] * out->size[dim + 1] : 1;
    out->ndim++;
    return 0;
}

int lt_expand(lt_tensor *out, const lt_tensor *in, int ndim, const int64_t *size, lt_error *err) {
    char a[160], b[160];
    if (ndim < in->ndim || ndim > LT_MAX_DIMS)
        return lt_fail(err, "cannot expand a %d-D tensor to %d dimensions", in->ndim, ndim);
    int64_t nsize[LT_MAX_DIMS], nstride[LT_MAX_DIMS];
    int lead = ndim - in->ndim;
    for (int d = ndim - 1; d >= 0; d--) {
        int id = d - lead;
        int64_t want = size[d];
        if (id < 0) {
            if (want < 0) return lt_fail(err, "size -1 is not allowed for a new leading dimension");
            nsize[d] = want;
            nstride[d] = 0;
        } else if (want == -1 || want == in->size[id]) {
            nsize[d] = in->size[id];
            nstride[d] = in->stride[id];
        } else if (in->size[id] == 1 && want >= 0) {
            nsize[d] = want;
            nstride[d] = 0;
        } else {
            return lt_fail(err, "cannot expand %s to %s: dimension %d has size %lld, expected 1 or %lld",
                           lt_shape_str(in, a, sizeof a), lt_sizes_str(ndim, size, b, sizeof b), id + 1,
                           (long long)in->size[id], (long long)want);
        }
    }
    begin_view(out, in);
    out->ndim = ndim;
    memcpy(out->size, nsize, sizeof(int64_t) * (size_t)ndim);
    memcpy(out->stride, nstride, sizeof(int64_t) * (size_t)ndim);
    return 0;
}

int lt_broadcast_shape(const lt_tensor *a, const lt_tensor *b, int *ndim, int64_t *size, lt_error *err) {
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < n; i++) {
        int da = a->ndim - n + i, db = b->ndim - n + i;
        int64_t sa = da >= 0 ? a->size[da] : 1, sb = db >= 0 ? b->size[db] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            char x[160], y[160];
            return lt_fail(err, "shapes %s and %s do not match and cannot be broadcast", lt_shape_str(a, x, sizeof x),
                           lt_shape_str(b, y, sizeof y));
        }
        size[i] = sa == 1 ? sb : sa;
    }
    *ndim = n;
    return 0;
}

int lt_broadcast_to(lt_tensor *out, const lt_tensor *in, int ndim, const int64_t *size, lt_error *err) {
    return lt_expand(out, in, ndim, size, err);
}

int lt_offset_of(const lt_tensor *t, int n, const int64_t *index, int64_t *offset, lt_error *err) {
    if (n != t->ndim) return lt_fail(err, "expected %d indices for a %d-D tensor, got %d", t->ndim, t->ndim, n);
    int64_t off = t->offset;
    for (int d = 0; d < n; d++) {
        if (index[d] < 0 || index[d] >= t->size[d])
            return lt_fail(err, "index %lld out of range for dimension %d of size %lld", (long long)index[d] + 1, d + 1,
                           (long long)t->size[d]);
        off += index[d] * t->stride[d];
    }
    *offset = off;
    return 0;
}
