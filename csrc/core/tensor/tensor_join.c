#include "tensor_join.h"

#include <string.h>

#include "../base/checked.h"
#include "../device/backend.h"
#include "tensor_math.h"

/* PyTorch's legacy rule: a 1-D tensor of size 0 joins anything (it is what an empty accumulator starts as). */
static bool is_empty_1d(const lt_tensor *t) { return t->ndim == 1 && t->size[0] == 0; }

/* The result goes where the parts are, all on one device (nothing is copied across devices silently). */
static int parts_device(int n, const lt_tensor *const *parts, lt_device *d, lt_error *err) {
    *d = lt_device_of(parts[0]);
    for (int i = 1; i < n; i++)
        if (lt_device_of(parts[i]) != *d)
            return lt_fail(err, "expected %s, got %s for tensor %d (the device of tensor 1; move tensors with :to())",
                           lt_device_name(*d), lt_device_name(lt_device_of(parts[i])), i + 1);
    return 0;
}

/* Copies src into out's elements from `start` along dim. */
static int copy_into(lt_tensor *out, int dim, int64_t start, const lt_tensor *src, lt_error *err) {
    lt_tensor view = {0};
    int rc = lt_narrow(&view, out, dim, start, src->size[dim], err) || lt_copy(&view, src, err) ? -1 : 0;
    lt_tensor_release(&view);
    return rc;
}

int lt_cat(lt_tensor *out, int n, const lt_tensor *const *parts, int dim, lt_error *err) {
    if (n < 1) return lt_fail(err, "expected at least one tensor");
    int ref = 0;  /* the part whose shape the others must have */
    while (ref < n - 1 && is_empty_1d(parts[ref])) ref++;
    const lt_tensor *r = parts[ref];
    if (dim < 0 || dim >= r->ndim)
        return lt_fail(err, "dimension %d out of range for %d-D tensors (1..%d)", dim + 1, r->ndim, r->ndim);
    bool skip_empty_1d = r->ndim != 1;
    int64_t size[LT_MAX_DIMS];
    memcpy(size, r->size, sizeof size);
    size[dim] = 0;
    for (int i = 0; i < n; i++) {
        const lt_tensor *t = parts[i];
        if (skip_empty_1d && is_empty_1d(t)) continue;
        char a[160], b[160];
        if (t->ndim != r->ndim)
            return lt_fail(err, "tensor %d has shape %s, expected %d dimensions as tensor %d (%s)", i + 1,
                           lt_shape_str(t, a, sizeof a), r->ndim, ref + 1, lt_shape_str(r, b, sizeof b));
        for (int d = 0; d < r->ndim; d++)
            if (d != dim && t->size[d] != r->size[d])
                return lt_fail(err, "tensor %d has shape %s and tensor %d %s: sizes must match except in dimension %d", i + 1,
                               lt_shape_str(t, a, sizeof a), ref + 1, lt_shape_str(r, b, sizeof b), dim + 1);
        if (!lt_add_ok(size[dim], t->size[dim], &size[dim]))
            return lt_fail(err, "the joined size of dimension %d overflows", dim + 1);
    }
    lt_device d;
    if (parts_device(n, parts, &d, err) || lt_tensor_new_on(out, r->ndim, size, LT_FLOAT32, d, err)) return -1;
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        const lt_tensor *t = parts[i];
        if (skip_empty_1d && is_empty_1d(t)) continue;
        if (copy_into(out, dim, at, t, err)) return -1;
        at += t->size[dim];
    }
    return 0;
}

int lt_stack(lt_tensor *out, int n, const lt_tensor *const *parts, int dim, lt_error *err) {
    if (n < 1) return lt_fail(err, "expected at least one tensor");
    const lt_tensor *r = parts[0];
    if (dim < 0 || dim > r->ndim)
        return lt_fail(err, "dimension %d out of range for stacking %d-D tensors (1..%d)", dim + 1, r->ndim, r->ndim + 1);
    if (r->ndim + 1 > LT_MAX_DIMS)
        return lt_fail(err, "cannot stack %d-D tensors: at most %d dimensions", r->ndim, LT_MAX_DIMS);
    for (int i = 1; i < n; i++)
        if (!lt_same_shape(parts[i], r)) {
            char a[160], b[160];
            return lt_fail(err, "tensor %d has shape %s, expected %s (the shape of tensor 1)", i + 1,
                           lt_shape_str(parts[i], a, sizeof a), lt_shape_str(r, b, sizeof b));
        }
    /* Each part is a view of size 1 along the new dimension: cat's copy then fills it. */
    int64_t size[LT_MAX_DIMS];
    for (int d = 0, k = 0; d <= r->ndim; d++) size[d] = d == dim ? n : r->size[k++];
    lt_device d;
    if (parts_device(n, parts, &d, err) || lt_tensor_new_on(out, r->ndim + 1, size, LT_FLOAT32, d, err)) return -1;
    for (int i = 0; i < n; i++) {
        lt_tensor part = {0};
        int rc = lt_unsqueeze(&part, parts[i], dim, err) || copy_into(out, dim, i, &part, err) ? -1 : 0;
        lt_tensor_release(&part);
        if (rc) return -1;
    }
    return 0;
}
