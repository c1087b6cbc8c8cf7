#include "tensor_index.h"

#include <math.h>
#include <string.h>

#include "iter.h"
#include "tensor_math.h"

/* ---- the row kernels: p[1] holds the indices, `stride` is the indexed tensor's along dim ---- */

typedef struct pick_args {
    int64_t stride;
} pick_args;

/* p = {out, index, in}: out[i] = in[i + (index[i] - 1) * stride] */
static void gather_row(int64_t n, float *const *p, const int64_t *st, const void *arg) {
    int64_t stride = ((const pick_args *)arg)->stride;
    float *o = p[0];
    const float *ix = p[1], *in = p[2];
    for (int64_t i = 0; i < n; i++) o[i * st[0]] = in[i * st[2] + ((int64_t)ix[i * st[1]] - 1) * stride];
}

/* p = {self, index, src}: self[i + (index[i] - 1) * stride] += src[i] */
static void scatter_add_row(int64_t n, float *const *p, const int64_t *st, const void *arg) {
    int64_t stride = ((const pick_args *)arg)->stride;
    float *o = p[0];
    const float *ix = p[1], *src = p[2];
    for (int64_t i = 0; i < n; i++) o[i * st[0] + ((int64_t)ix[i * st[1]] - 1) * stride] += src[i * st[2]];
}

/* Rows in order on this thread: two indices may name one element, so the additions must not race,
 * and their order is the index's row-major order. */
static void run_in_order(const lt_iter *it, lt_row_fn fn, const void *args) {
    int64_t st[LT_ITER_MAX];
    for (int k = 0; k < it->ntensors; k++) st[k] = it->stride[k][it->ndim - 1];
    for (int64_t r = 0; r < it->rows; r++) {
        float *p[LT_ITER_MAX];
        lt_iter_row(it, r, p);
        fn(it->row_len, p, st, args);
    }
}

static void run3(const lt_tensor *a, const lt_tensor *b, const lt_tensor *c, lt_row_fn fn, int64_t stride, bool in_order) {
    const lt_tensor *ts[3] = {a, b, c};
    lt_iter it;
    lt_iter_init(&it, 3, ts);
    pick_args args = {stride};
    if (in_order) run_in_order(&it, fn, &args);
    else lt_iter_run(&it, fn, &args);
}

/* ---- views that let the iterator walk indexed tensors ---- */

/* t with the given sizes (at most t's, except along dim) and stride 0 along dim: position i of the walk
 * is then the element with coordinate 0 along dim, and the kernels add (index - 1) * t's stride. A view
 * for the iterator only: it takes no reference. */
static lt_tensor along(const lt_tensor *t, const int64_t *size, int dim) {
    lt_tensor v = *t;
    memcpy(v.size, size, sizeof v.size);
    v.stride[dim] = 0;
    return v;
}

/* The 1-D index spread over ndim dimensions of the given sizes, varying along dim only. */
static lt_tensor spread(const lt_tensor *index, int ndim, const int64_t *size, int dim) {
    lt_tensor v = *index;
    v.ndim = ndim;
    memcpy(v.size, size, sizeof v.size);
    for (int d = 0; d < ndim; d++) v.stride[d] = d == dim ? index->stride[0] : 0;
    return v;
}

/* ---- checks ---- */

static int check_dim(const lt_tensor *t, int dim, lt_error *err) {
    if (dim < 0 || dim >= t->ndim) return lt_fail(err, "dimension %d out of range for a %d-D tensor", dim + 1, t->ndim);
    return 0;
}

/* Every index must be an integer in 1..size: the kernels read and write through them unchecked. The first
 * bad one in row-major order is named. */
static int check_indices(const lt_tensor *index, int64_t size, int dim, lt_error *err) {
    lt_iter it;
    const lt_tensor *ts[1] = {index};
    lt_iter_init(&it, 1, ts);
    int64_t s = it.stride[0][it.ndim - 1];
    for (int64_t r = 0; r < it.rows; r++) {
        float *p[1];
        lt_iter_row(&it, r, p);
        for (int64_t i = 0; i < it.row_len; i++) {
            double v = p[0][i * s];
            if (v != floor(v)) return lt_fail(err, "index %.9g is not an integer (indices are 1-based integers)", v);
            if (!(v >= 1 && v <= (double)size))
                return lt_fail(err, "index %.9g out of range for dimension %d of size %lld", v, dim + 1, (long long)size);
        }
    }
    return 0;
}

static int check_1d_index(const lt_tensor *index, lt_error *err) {
    char a[160];
    if (index->ndim != 1) return lt_fail(err, "index must be 1-D, got shape %s", lt_shape_str(index, a, sizeof a));
    return 0;
}

/* t itself (another reference), or a copy when it shares self's storage: self's writes must not change
 * the indices or values still to be read. */
static int detached(lt_tensor *out, const lt_tensor *t, const lt_tensor *self, lt_error *err) {
    if (t->storage != self->storage) {
        lt_tensor_share(out, t);
        return 0;
    }
    return lt_tensor_new(out, t->ndim, t->size, err) || lt_copy(out, t, err) ? -1 : 0;
}

/* ---- gather and scatter_add ---- */

int lt_gather(lt_tensor *out, const lt_tensor *in, int dim, const lt_tensor *index, lt_error *err) {
    char a[160], b[160];
    if (check_dim(in, dim, err)) return -1;
    if (index->ndim != in->ndim)
        return lt_fail(err, "index has %d dimensions (%s), expected %d as the input (%s)", index->ndim,
                       lt_shape_str(index, a, sizeof a), in->ndim, lt_shape_str(in, b, sizeof b));
    for (int d = 0; d < in->ndim; d++)
        if (d != dim && index->size[d] > in->size[d])
            return lt_fail(err, "index of shape %s is larger than the input (%s) in dimension %d", lt_shape_str(index, a, sizeof a),
                           lt_shape_str(in, b, sizeof b), d + 1);
    if (check_indices(index, in->size[dim], dim, err) || lt_tensor_new(out, index->ndim, index->size, err)) return -1;
    lt_tensor src = along(in, index->size, dim);
    run3(out, index, &src, gather_row, in->stride[dim], false);
    return 0;
}

int lt_scatter_add(lt_tensor *self, int dim, const lt_tensor *index, const lt_tensor *src, lt_error *err) {
    char a[160], b[160];
    if (check_dim(self, dim, err)) return -1;
    if (index->ndim != self->ndim || src->ndim != self->ndim)
        return lt_fail(err, "self (%s), index (%s) and src must have the same number of dimensions, got %d, %d and %d",
                       lt_shape_str(self, a, sizeof a), lt_shape_str(index, b, sizeof b), self->ndim, index->ndim, src->ndim);
    for (int d = 0; d < self->ndim; d++) {
        if (index->size[d] > src->size[d])
            return lt_fail(err, "index of shape %s is larger than src (%s) in dimension %d", lt_shape_str(index, a, sizeof a),
                           lt_shape_str(src, b, sizeof b), d + 1);
        if (d != dim && index->size[d] > self->size[d])
            return lt_fail(err, "index of shape %s is larger than self (%s) in dimension %d", lt_shape_str(index, a, sizeof a),
                           lt_shape_str(self, b, sizeof b), d + 1);
    }
    if (lt_check_writable(self, err) || check_indices(index, self->size[dim], dim, err)) return -1;
    lt_tensor ix = {0}, from = {0};
    int rc = -1;
    if (detached(&ix, index, self, err) || detached(&from, src, self, err)) goto done;
    lt_tensor dst = along(self, index->size, dim), part = from;
    memcpy(part.size, index->size, sizeof part.size);  /* the leading corner of src that index covers */
    run3(&dst, &ix, &part, scatter_add_row, self->stride[dim], true);
    rc = 0;
done:
    lt_tensor_release(&ix);
    lt_tensor_release(&from);
    return rc;
}

/* ---- index_select and index_add ---- */

int lt_index_select(lt_tensor *out, const lt_tensor *in, int dim, const lt_tensor *index, lt_error *err) {
    if (check_dim(in, dim, err) || check_1d_index(index, err) || check_indices(index, in->size[dim], dim, err)) return -1;
    int64_t size[LT_MAX_DIMS];
    memcpy(size, in->size, sizeof size);
    size[dim] = index->size[0];
    if (lt_tensor_new(out, in->ndim, size, err)) return -1;
    lt_tensor ix = spread(index, in->ndim, size, dim), src = along(in, size, dim);
    run3(out, &ix, &src, gather_row, in->stride[dim], false);
    return 0;
}

int lt_index_add(lt_tensor *self, int dim, const lt_tensor *index, const lt_tensor *src, lt_error *err) {
    if (check_dim(self, dim, err) || check_1d_index(index, err)) return -1;
    int64_t size[LT_MAX_DIMS];
    memcpy(size, self->size, sizeof size);
    size[dim] = index->size[0];
    if (src->ndim != self->ndim || memcmp(size, src->size, sizeof(int64_t) * (size_t)self->ndim) != 0) {
        char a[160], b[160], c[160];
        return lt_fail(err, "src has shape %s, expected %s (self's %s with the index's length in dimension %d)",
                       lt_shape_str(src, a, sizeof a), lt_sizes_str(self->ndim, size, b, sizeof b),
                       lt_shape_str(self, c, sizeof c), dim + 1);
    }
    if (lt_check_writable(self, err) || check_indices(index, self->size[dim], dim, err)) return -1;
    lt_tensor ix = {0}, from = {0};
    int rc = -1;
    if (detached(&ix, index, self, err) || detached(&from, src, self, err)) goto done;
    lt_tensor dst = along(self, size, dim), spread_ix = spread(&ix, self->ndim, size, dim);
    run3(&dst, &spread_ix, &from, scatter_add_row, self->stride[dim], true);
    rc = 0;
done:
    lt_tensor_release(&ix);
    lt_tensor_release(&from);
    return rc;
}

/* ---- where and masked_fill ---- */

/* p = {out, cond, a}: out = a where cond != 0 (out already holds b) */
static void where_row(int64_t n, float *const *p, const int64_t *st, const void *arg) {
    float *o = p[0];
    const float *c = p[1], *a = p[2];
    for (int64_t i = 0; i < n; i++)
        if (c[i * st[1]] != 0) o[i * st[0]] = a[i * st[2]];
}

/* p = {out, cond}: out = *value where cond != 0 */
static void where_value_row(int64_t n, float *const *p, const int64_t *st, const void *arg) {
    float v = *(const float *)arg, *o = p[0];
    const float *c = p[1];
    for (int64_t i = 0; i < n; i++)
        if (c[i * st[1]] != 0) o[i * st[0]] = v;
}

/* shape (an lt_tensor used for its ndim and sizes only) broadcast with t */
static int broadcast_with(lt_tensor *shape, const lt_tensor *t, lt_error *err) {
    int ndim;
    int64_t size[LT_MAX_DIMS];
    if (lt_broadcast_shape(shape, t, &ndim, size, err)) return -1;
    shape->ndim = ndim;
    memcpy(shape->size, size, sizeof size);
    return 0;
}

int lt_where(lt_tensor *out, const lt_tensor *cond, const lt_tensor *a, float a_value, const lt_tensor *b,
             float b_value, lt_error *err) {
    lt_tensor shape = *cond;
    if ((a && broadcast_with(&shape, a, err)) || (b && broadcast_with(&shape, b, err))) return -1;
    if (lt_tensor_new(out, shape.ndim, shape.size, err)) return -1;
    if (b ? lt_copy(out, b, err) : lt_fill(out, b_value, err)) return -1;
    lt_tensor c = {0}, va = {0};
    int rc = -1;
    if (lt_broadcast_to(&c, cond, out->ndim, out->size, err) || (a && lt_broadcast_to(&va, a, out->ndim, out->size, err)))
        goto done;
    const lt_tensor *ts[3] = {out, &c, &va};
    lt_iter it;
    lt_iter_init(&it, a ? 3 : 2, ts);
    if (a) lt_iter_run(&it, where_row, NULL);
    else lt_iter_run(&it, where_value_row, &a_value);
    rc = 0;
done:
    lt_tensor_release(&c);
    lt_tensor_release(&va);
    return rc;
}

int lt_masked_fill(lt_tensor *out, const lt_tensor *in, const lt_tensor *mask, float value, lt_error *err) {
    lt_tensor m = {0};
    int rc = lt_broadcast_to(&m, mask, in->ndim, in->size, err);
    lt_tensor_release(&m);
    if (rc) {
        char a[160], b[160];
        return lt_fail(err, "mask of shape %s cannot be broadcast to the tensor's shape %s", lt_shape_str(mask, a, sizeof a),
                       lt_shape_str(in, b, sizeof b));
    }
    return lt_where(out, mask, NULL, value, in, 0, err);
}
