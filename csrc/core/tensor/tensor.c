#include "tensor.h"

#include <stdio.h>
#include <string.h>

#include "../device/backend.h"
#include "../base/half.h"
#include "../base/checked.h"
#include "iter.h"
#include "../base/parallel.h"

/* "2^40" when the limit is a power of two (as it is unless a build lowers it), the number otherwise. */
static const char *limit_str(int64_t limit, char *buf, size_t len) {
    if (limit > 0 && (limit & (limit - 1)) == 0) snprintf(buf, len, "2^%d", __builtin_ctzll((unsigned long long)limit));
    else snprintf(buf, len, "%lld", (long long)limit);
    return buf;
}

/* A 0-based index as the 1-based one the message shows (the largest int64 shown as it is). */
static long long one_based(int64_t i) { return i < INT64_MAX ? (long long)i + 1 : (long long)i; }

int lt_check_sizes(int ndim, const int64_t *size, int64_t *numel, lt_error *err) {
    if (ndim < 1 || ndim > LT_MAX_DIMS)
        return lt_fail(err, "expected 1 to %d dimensions, got %d", LT_MAX_DIMS, ndim);
    /* The non-zero sizes alone must fit as well: the strides of an empty tensor are their products. */
    int64_t extent[LT_MAX_DIMS];
    bool empty = false;
    for (int d = 0; d < ndim; d++) {
        if (size[d] < 0) return lt_fail(err, "size of dimension %d must be non-negative, got %lld", d + 1, (long long)size[d]);
        extent[d] = size[d] ? size[d] : 1;
        empty = empty || size[d] == 0;
    }
    int64_t n;
    if (!lt_product_ok(ndim, extent, LT_MAX_NUMEL, &n)) {
        char buf[256], lim[32];
        return lt_fail(err, "sizes %s are too large: their product overflows the limit of %s elements", lt_sizes_str(ndim, size, buf, sizeof buf),
                       limit_str(LT_MAX_NUMEL, lim, sizeof lim));
    }
    *numel = empty ? 0 : n;
    return 0;
}

/* Row-major strides; a 0-sized dimension counts as 1, as in PyTorch, so that strides stay meaningful
 * (and writable: no stride 0) for empty tensors. */
static void set_contiguous_strides(lt_tensor *t) {
    int64_t st = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        t->stride[d] = st;
        st *= t->size[d] ? t->size[d] : 1;  /* at most LT_MAX_NUMEL: lt_check_sizes passed */
    }
}

int lt_tensor_new(lt_tensor *t, int ndim, const int64_t *size, lt_error *err) {
    return lt_tensor_new_typed(t, ndim, size, LT_FLOAT32, err);
}

int lt_tensor_new_typed(lt_tensor *t, int ndim, const int64_t *size, lt_dtype dtype, lt_error *err) {
    return lt_tensor_new_on(t, ndim, size, dtype, LT_DEVICE_CPU, err);
}

int lt_tensor_new_on(lt_tensor *t, int ndim, const int64_t *size, lt_dtype dtype, lt_device device, lt_error *err) {
    int64_t numel;
    if (lt_check_sizes(ndim, size, &numel, err)) return -1;
    const lt_allocator *allocator = lt_device_allocator(device, err);
    if (!allocator) return -1;
    lt_storage *s = lt_storage_new(allocator, numel, dtype, err);
    if (!s) return -1;
    lt_tensor_release(t);
    t->storage = s;
    t->offset = 0;
    t->ndim = ndim;
    memcpy(t->size, size, sizeof(int64_t) * (size_t)ndim);
    set_contiguous_strides(t);
    return 0;
}

int lt_tensor_resize(lt_tensor *t, int ndim, const int64_t *size, lt_error *err) {
    return lt_tensor_resize_typed(t, ndim, size, LT_FLOAT32, err);
}

int lt_tensor_resize_typed(lt_tensor *t, int ndim, const int64_t *size, lt_dtype dtype, lt_error *err) {
    int64_t numel, end;
    if (lt_check_sizes(ndim, size, &numel, err)) return -1;
    /* Reused even when views of it exist: a layer's output is overwritten by the next forward pass,
     * as in Torch7; callers that keep results clone them. The view keeps its offset (PyTorch's
     * resize_), so a resized narrow() still sees the elements it saw. A storage of another element
     * type is replaced, by one on the same device. */
    lt_storage *s = t->storage;
    if (!s || s->dtype != dtype || !lt_add_ok(t->offset, numel, &end) || end > s->numel)
        return lt_tensor_new_on(t, ndim, size, dtype, lt_device_of(t), err);
    t->ndim = ndim;
    memcpy(t->size, size, sizeof(int64_t) * (size_t)ndim);
    set_contiguous_strides(t);
    return 0;
}

void lt_tensor_share(lt_tensor *dst, const lt_tensor *src) {
    if (dst == src) return;
    lt_storage_retain(src->storage);
    lt_storage *old = dst->storage;
    *dst = *src;
    lt_storage_release(old);
}

void lt_tensor_release(lt_tensor *t) {
    lt_storage_release(t->storage);
    t->storage = NULL;
}

/* A plain product: every tensor's sizes passed lt_check_sizes or check_view, so it cannot overflow. */
int64_t lt_numel(const lt_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->size[d];
    return n;
}

bool lt_is_contiguous(const lt_tensor *t) {
    int64_t st = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->size[d] == 0) return true;  /* no elements: any layout is contiguous, as in PyTorch */
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

/* Makes out the view (offset, size, stride) of in's storage, after checking the invariants stated in
 * tensor_storage.h. Every view function ends here, so that no slip in their arithmetic can make a
 * view that reaches outside its storage. Handles out == in, and size or stride pointing into in. */
static int set_view(lt_tensor *out, const lt_tensor *in, int64_t offset, int ndim, const int64_t *size,
                    const int64_t *stride, lt_error *err) {
    int64_t sz[LT_MAX_DIMS], st[LT_MAX_DIMS], numel = 0, last;
    if (lt_check_sizes(ndim, size, &numel, err)) return -1;
    memcpy(sz, size, sizeof(int64_t) * (size_t)ndim);
    memcpy(st, stride, sizeof(int64_t) * (size_t)ndim);
    bool inside = offset >= 0;
    for (int d = 0; d < ndim; d++)
        if (st[d] < 0) inside = false;
    if (inside && numel > 0) inside = lt_span_ok(offset, ndim, sz, st, &last) && last < in->storage->numel;
    if (!inside) {
        char a[160], b[160];
        return lt_fail(err, "the view (offset %lld, sizes %s, strides %s) would reach outside its storage of %lld elements",
                       (long long)offset, lt_sizes_str(ndim, sz, a, sizeof a), lt_sizes_str(ndim, st, b, sizeof b),
                       (long long)in->storage->numel);
    }
    lt_tensor_share(out, in);
    out->offset = offset;
    out->ndim = ndim;
    memcpy(out->size, sz, sizeof(int64_t) * (size_t)ndim);
    memcpy(out->stride, st, sizeof(int64_t) * (size_t)ndim);
    return 0;
}

/* Strides for viewing in as the new sizes without copying, or false when the memory layout does not
 * allow it (PyTorch's computeStride: each run of merged input dimensions must be contiguous). The
 * sizes passed lt_check_sizes and hold in's element count. */
static bool view_strides(const lt_tensor *in, int ndim, const int64_t *size, int64_t *stride) {
    int64_t numel = lt_numel(in);
    if (numel == 0) {
        int64_t st = 1;
        for (int d = ndim - 1; d >= 0; d--) { stride[d] = st; st *= size[d] > 0 ? size[d] : 1; }
        return true;
    }
    int view_d = ndim - 1;
    int64_t chunk_base_stride = in->stride[in->ndim - 1];
    int64_t tensor_numel = 1, view_numel = 1, chunk_stride;
    for (int d = in->ndim - 1; d >= 0; d--) {
        tensor_numel *= in->size[d];
        bool chunk_ends = d == 0 || (in->size[d - 1] != 1 &&
                                     (!lt_mul_ok(tensor_numel, chunk_base_stride, &chunk_stride) || in->stride[d - 1] != chunk_stride));
        if (chunk_ends) {
            while (view_d >= 0 && (view_numel < tensor_numel || size[view_d] == 1)) {
                if (!lt_mul_ok(view_numel, chunk_base_stride, &stride[view_d])) return false;
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

/* Replaces one -1 in size by the inferred extent; checks the element count and the limits. */
static int infer_sizes(const char *what, const lt_tensor *in, int ndim, const int64_t *size, int64_t *out, lt_error *err) {
    char a[160], b[160];
    if (ndim < 1 || ndim > LT_MAX_DIMS) return lt_fail(err, "expected 1 to %d sizes, got %d", LT_MAX_DIMS, ndim);
    int infer = -1;
    int64_t known[LT_MAX_DIMS];
    int nknown = 0;
    for (int d = 0; d < ndim; d++) {
        out[d] = size[d];
        if (size[d] == -1) {
            if (infer >= 0) return lt_fail(err, "only one size may be -1, got %s", lt_sizes_str(ndim, size, a, sizeof a));
            infer = d;
        } else if (size[d] < 0) {
            return lt_fail(err, "sizes must be non-negative or -1, got %lld", (long long)size[d]);
        } else {
            known[nknown++] = size[d];
        }
    }
    int64_t numel = lt_numel(in), product;
    if (!lt_product_ok(nknown, known, LT_MAX_NUMEL, &product)) {
        char lim[32];
        return lt_fail(err, "cannot %s a tensor of %lld elements (%s) as %s: more than %s elements", what, (long long)numel,
                       lt_shape_str(in, a, sizeof a), lt_sizes_str(ndim, size, b, sizeof b), limit_str(LT_MAX_NUMEL, lim, sizeof lim));
    }
    if (infer >= 0) {
        if (product == 0 || numel % product != 0)
            return lt_fail(err, "cannot %s a tensor of %lld elements (%s) as %s", what, (long long)numel,
                           lt_shape_str(in, a, sizeof a), lt_sizes_str(ndim, size, b, sizeof b));
        out[infer] = numel / product;
    } else if (product != numel) {
        return lt_fail(err, "cannot %s a tensor of %lld elements (%s) as %s (%lld elements)", what, (long long)numel,
                       lt_shape_str(in, a, sizeof a), lt_sizes_str(ndim, size, b, sizeof b), (long long)product);
    }
    int64_t ignored;
    return lt_check_sizes(ndim, out, &ignored, err);
}

int lt_view(lt_tensor *out, const lt_tensor *in, int ndim, const int64_t *size, lt_error *err) {
    int64_t sizes[LT_MAX_DIMS], strides[LT_MAX_DIMS];
    if (infer_sizes("view", in, ndim, size, sizes, err)) return -1;
    if (!view_strides(in, ndim, sizes, strides)) {
        char a[160], b[160];
        return lt_fail(err, "cannot view a non-contiguous tensor (%s) as %s; call contiguous() first or use reshape()",
                       lt_shape_str(in, a, sizeof a), lt_sizes_str(ndim, sizes, b, sizeof b));
    }
    return set_view(out, in, in->offset, ndim, sizes, strides, err);
}

int lt_reshape(lt_tensor *out, const lt_tensor *in, int ndim, const int64_t *size, lt_error *err) {
    int64_t sizes[LT_MAX_DIMS], strides[LT_MAX_DIMS];
    if (infer_sizes("reshape", in, ndim, size, sizes, err)) return -1;
    if (view_strides(in, ndim, sizes, strides)) return set_view(out, in, in->offset, ndim, sizes, strides, err);
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
    int64_t n = in->size[dim], offset, end;
    if (start < 0 || length < 0 || start > n || length > n - start) {
        if (length >= 0 && lt_add_ok(start, length, &end))
            return lt_fail(err, "range %lld..%lld out of bounds for dimension %d of size %lld", one_based(start),
                           (long long)end, dim + 1, (long long)n);
        return lt_fail(err, "range from %lld of length %lld out of bounds for dimension %d of size %lld", one_based(start),
                       (long long)length, dim + 1, (long long)n);
    }
    if (!lt_mul_add_ok(in->offset, start, in->stride[dim], &offset))
        return lt_fail(err, "start %lld: the offset overflows", one_based(start));
    int64_t size[LT_MAX_DIMS];
    memcpy(size, in->size, sizeof size);
    size[dim] = length;
    return set_view(out, in, offset, in->ndim, size, in->stride, err);
}

int lt_select(lt_tensor *out, const lt_tensor *in, int dim, int64_t index, lt_error *err) {
    if (check_dim(in, dim, err)) return -1;
    if (index < 0 || index >= in->size[dim])
        return lt_fail(err, "index %lld out of range for dimension %d of size %lld", one_based(index), dim + 1,
                       (long long)in->size[dim]);
    if (in->ndim == 1) return lt_fail(err, "cannot select from a 1-D tensor (it would have no dimensions); use get()");
    int64_t offset, size[LT_MAX_DIMS], stride[LT_MAX_DIMS];
    if (!lt_mul_add_ok(in->offset, index, in->stride[dim], &offset))
        return lt_fail(err, "index %lld: the offset overflows", one_based(index));
    int n = 0;
    for (int d = 0; d < in->ndim; d++)
        if (d != dim) size[n] = in->size[d], stride[n] = in->stride[d], n++;
    return set_view(out, in, offset, n, size, stride, err);
}

int lt_transpose(lt_tensor *out, const lt_tensor *in, int dim0, int dim1, lt_error *err) {
    if (check_dim(in, dim0, err) || check_dim(in, dim1, err)) return -1;
    int64_t size[LT_MAX_DIMS], stride[LT_MAX_DIMS];
    memcpy(size, in->size, sizeof size);
    memcpy(stride, in->stride, sizeof stride);
    size[dim0] = in->size[dim1], stride[dim0] = in->stride[dim1];
    size[dim1] = in->size[dim0], stride[dim1] = in->stride[dim0];
    return set_view(out, in, in->offset, in->ndim, size, stride, err);
}

int lt_permute(lt_tensor *out, const lt_tensor *in, int ndim, const int *order, lt_error *err) {
    if (ndim != in->ndim) return lt_fail(err, "expected %d dimensions in the order, got %d", in->ndim, ndim);
    bool seen[LT_MAX_DIMS] = {false};
    int64_t size[LT_MAX_DIMS], stride[LT_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        if (check_dim(in, order[d], err)) return -1;
        if (seen[order[d]]) return lt_fail(err, "dimension %d appears twice in the order", order[d] + 1);
        seen[order[d]] = true;
        size[d] = in->size[order[d]];
        stride[d] = in->stride[order[d]];
    }
    return set_view(out, in, in->offset, ndim, size, stride, err);
}

int lt_squeeze(lt_tensor *out, const lt_tensor *in, int dim, lt_error *err) {
    if (dim >= 0 && check_dim(in, dim, err)) return -1;
    int n = 0;
    int64_t size[LT_MAX_DIMS], stride[LT_MAX_DIMS];
    for (int d = 0; d < in->ndim; d++) {
        bool drop = in->size[d] == 1 && (dim < 0 || dim == d);
        if (!drop) { size[n] = in->size[d]; stride[n] = in->stride[d]; n++; }
    }
    if (n == 0) { size[0] = 1; stride[0] = 1; n = 1; }  /* no 0-D tensors: keep one dimension */
    return set_view(out, in, in->offset, n, size, stride, err);
}

int lt_unsqueeze(lt_tensor *out, const lt_tensor *in, int dim, lt_error *err) {
    if (dim < 0 || dim > in->ndim) return lt_fail(err, "dimension %d out of range 1..%d", dim + 1, in->ndim + 1);
    if (in->ndim == LT_MAX_DIMS) return lt_fail(err, "a tensor has at most %d dimensions", LT_MAX_DIMS);
    int64_t size[LT_MAX_DIMS], stride[LT_MAX_DIMS];
    for (int d = 0, k = 0; d <= in->ndim; d++) {
        if (d == dim) continue;
        size[d] = in->size[k], stride[d] = in->stride[k], k++;
    }
    size[dim] = 1;
    /* PyTorch's choice: the stride a contiguous tensor would have there */
    stride[dim] = 1;
    if (dim < in->ndim && !lt_mul_ok(in->stride[dim], in->size[dim], &stride[dim]))
        return lt_fail(err, "dimension %d: the stride overflows", dim + 1);
    return set_view(out, in, in->offset, in->ndim + 1, size, stride, err);
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
            if (want < 0) return lt_fail(err, "size %lld is not allowed for a new leading dimension", (long long)want);
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
    return set_view(out, in, in->offset, ndim, nsize, nstride, err);
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
    int64_t numel;
    return lt_check_sizes(n, size, &numel, err);
}

int lt_broadcast_to(lt_tensor *out, const lt_tensor *in, int ndim, const int64_t *size, lt_error *err) {
    return lt_expand(out, in, ndim, size, err);
}

int lt_offset_of(const lt_tensor *t, int n, const int64_t *index, int64_t *offset, lt_error *err) {
    if (n != t->ndim) return lt_fail(err, "expected %d indices for a %d-D tensor, got %d", t->ndim, t->ndim, n);
    int64_t off = t->offset;
    for (int d = 0; d < n; d++) {
        if (index[d] < 0 || index[d] >= t->size[d])
            return lt_fail(err, "index %lld out of range for dimension %d of size %lld", one_based(index[d]), d + 1,
                           (long long)t->size[d]);
        if (!lt_mul_add_ok(off, index[d], t->stride[d], &off))
            return lt_fail(err, "index %lld: the offset overflows", one_based(index[d]));
    }
    *offset = off;
    return 0;
}

/* ---- copying into contiguous memory ---- */

/* On a GPU: the backend's strided copy and conversions (backend_api.h). */

/* The strided copy a backend runs for a view of the given element size. */
static lt_strided_copy strided_of(const lt_tensor *dst, const lt_tensor *src) {
    lt_strided_copy c = {.ndim = src->ndim, .elem_size = (int)lt_dtype_size(lt_dtype_of(src))};
    for (int d = 0; d < src->ndim; d++) {
        c.size[d] = src->size[d];
        c.dst_stride[d] = dst->stride[d];
        c.src_stride[d] = src->stride[d];
    }
    return c;
}

static int device_contiguous(lt_tensor *out, const lt_tensor *in, lt_error *err) {
    if (lt_is_contiguous(in)) {
        lt_tensor_share(out, in);
        return 0;
    }
    const lt_backend_api *api = lt_backend(lt_device_of(in), err);
    lt_tensor tmp = {0};
    if (!api || lt_tensor_new_on(&tmp, in->ndim, in->size, lt_dtype_of(in), lt_device_of(in), err)) return -1;
    lt_strided_copy c = strided_of(&tmp, in);
    if (lt_numel(in) && api->strided_copy(lt_data_ptr(&tmp), lt_data_ptr(in), &c, err)) {
        lt_tensor_release(&tmp);
        return -1;
    }
    lt_tensor_release(out);
    *out = tmp;
    return 0;
}

/* Whether a and b lay their elements out alike and without gaps (so that they are flat arrays). */
static bool dense_alike(const lt_tensor *a, const lt_tensor *b) {
    if (!lt_is_contiguous(a) || !lt_is_contiguous(b)) return false;
    return lt_same_shape(a, b);
}

static int convert_through_contiguous(lt_tensor *dst, const lt_tensor *src, lt_error *err);

static int device_convert(lt_tensor *dst, const lt_tensor *src, lt_error *err) {
    lt_device d = lt_device_of(dst);
    if (lt_device_of(src) != d)  /* across devices by name only: lt_copy_across */
        return lt_fail(err, "expected %s, got %s (copy across devices with :to())", lt_device_name(d),
                       lt_device_name(lt_device_of(src)));
    const lt_backend_api *api = lt_backend(d, err);
    if (!api) return -1;
    int64_t n = lt_numel(src);
    lt_dtype dt = lt_dtype_of(dst), st = lt_dtype_of(src);
    if (n == 0) return 0;
    if (dt == st) {
        lt_strided_copy c = strided_of(dst, src);
        return api->strided_copy(lt_data_ptr(dst), lt_data_ptr(src), &c, err);
    }
    if (!dense_alike(dst, src)) return convert_through_contiguous(dst, src, err);
    return api->convert(lt_data_ptr(dst), dt, lt_data_ptr(src), st, n, err);
}

/* A change of type and of layout at once on a device (a float32 gradient reaching a bf16 channels-last
 * layer): the backend converts contiguous arrays only, so the strided copies go on either side of a
 * contiguous conversion. */
static int convert_through_contiguous(lt_tensor *dst, const lt_tensor *src, lt_error *err) {
    lt_tensor in = {0}, out = {0};
    int rc = -1;
    const lt_tensor *from = src;
    if (!lt_is_contiguous(src)) {
        if (lt_contiguous(&in, src, err)) goto done;
        from = &in;
    }
    if (lt_is_contiguous(dst)) {
        rc = device_convert(dst, from, err);
        goto done;
    }
    rc = lt_tensor_new_on(&out, dst->ndim, dst->size, lt_dtype_of(dst), lt_device_of(dst), err) ||
         device_convert(&out, from, err) || device_convert(dst, &out, err);
done:
    lt_tensor_release(&in);
    lt_tensor_release(&out);
    return rc ? -1 : 0;
}


static void copy_row(int64_t n, float *const *p, const int64_t *st, const void *args) {
    float *o = p[0];
    const float *a = p[1];
    if (st[0] == 1 && st[1] == 1) memcpy(o, a, sizeof(float) * (size_t)n);
    else for (int64_t i = 0; i < n; i++) o[i * st[0]] = a[i * st[1]];
}

int lt_contiguous(lt_tensor *out, const lt_tensor *in, lt_error *err) {
    if (lt_device_of(in) != LT_DEVICE_CPU) return device_contiguous(out, in, err);
    if (lt_is_contiguous(in)) {
        lt_tensor_share(out, in);
        return 0;
    }
    lt_tensor tmp = {0};
    if (lt_dtype_of(in) != LT_FLOAT32) {
        if (lt_tensor_new_typed(&tmp, in->ndim, in->size, lt_dtype_of(in), err) || lt_convert(&tmp, in, err)) {
            lt_tensor_release(&tmp);
            return -1;
        }
        lt_tensor_release(out);
        *out = tmp;
        return 0;
    }
    if (lt_tensor_new(&tmp, in->ndim, in->size, err)) return -1;
    lt_iter it;
    const lt_tensor *ts[2] = {&tmp, in};
    lt_iter_init(&it, 2, ts);
    lt_iter_run(&it, copy_row, NULL);
    lt_tensor_release(out);
    *out = tmp;
    return 0;
}

/* ---- converting between element types (float32, bfloat16, float16) ----
 * Not a hot path (mixed-precision layers convert inside their kernels): it serves the boundaries, such
 * as Tensor:float(), a bf16 activation reaching a float32 layer, a gradient arriving in another layout. */

/* One row along the last dimension: n elements, strides in elements. */
static void convert_row(void *dst, lt_dtype dt, int64_t ds, const void *src, lt_dtype st, int64_t ss, int64_t n) {
    if (dt == st && lt_dtype_size(dt) == 4) {  /* strided copies of elements of one size */
        float *d = dst;
        const float *s = src;
        for (int64_t i = 0; i < n; i++) d[i * ds] = s[i * ss];
    } else if (dt == st && lt_dtype_size(dt) == 2) {
        uint16_t *d = dst;
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++) d[i * ds] = s[i * ss];
    } else if (dt == st) {
        uint8_t *d = dst;
        const uint8_t *s = src;
        for (int64_t i = 0; i < n; i++) d[i * ds] = s[i * ss];
    } else if (dt == LT_FLOAT32 && st == LT_BFLOAT16 && ds == 1 && ss == 1) {
        lt_bf16_to_f32_n(dst, src, n);
    } else if (dt == LT_BFLOAT16 && st == LT_FLOAT32 && ds == 1 && ss == 1) {
        lt_bf16_from_f32_n(dst, src, n);
    } else {  /* any other pair of float types, through float32 values */
        for (int64_t i = 0; i < n; i++) lt_store_float(dst, dt, i * ds, lt_load_float(src, st, i * ss));
    }
}

int lt_convert(lt_tensor *dst, const lt_tensor *src, lt_error *err) {
    char a[160], b[160];
    if (!lt_same_shape(dst, src))
        return lt_fail(err, "cannot convert a %s tensor into a %s one", lt_shape_str(src, a, sizeof a),
                       lt_shape_str(dst, b, sizeof b));
    if ((lt_dtype_of(dst) == LT_UINT8) != (lt_dtype_of(src) == LT_UINT8))  /* bytes copy as bytes, never convert */
        return lt_fail(err, "cannot convert %s to %s", lt_dtype_name(lt_dtype_of(src)), lt_dtype_name(lt_dtype_of(dst)));
    if (lt_device_of(dst) != LT_DEVICE_CPU || lt_device_of(src) != LT_DEVICE_CPU) return device_convert(dst, src, err);
    int64_t n = lt_numel(src);
    if (n == 0) return 0;
    int nd = src->ndim, last = nd - 1;
    int64_t row = src->size[last], rows = n / row;
    lt_dtype dt = lt_dtype_of(dst), st = lt_dtype_of(src);
    size_t dsz = lt_dtype_size(dt), ssz = lt_dtype_size(st);
    char *dbase = lt_data_ptr(dst);
    const char *sbase = lt_data_ptr(src);
    int threads = lt_threads_for(n, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t r = 0; r < rows; r++) {
        int64_t doff = 0, soff = 0, rest = r;
        for (int d = last - 1; d >= 0; d--) {  /* row r's index in the leading dimensions */
            int64_t i = rest % src->size[d];
            rest /= src->size[d];
            doff += i * dst->stride[d];
            soff += i * src->stride[d];
        }
        convert_row(dbase + (size_t)doff * dsz, dt, dst->stride[last], sbase + (size_t)soff * ssz, st,
                    src->stride[last], row);
    }
    return 0;
}
