#include <string.h>

#include "../tensor/tensor_math.h"
#include "nn.h"

/* Dimensions ordered from the largest stride to the smallest (size-1 dimensions keep their place
 * relative to the others, ties keep the original order). */
static void stride_order(const lt_tensor *t, int *order) {
    for (int d = 0; d < t->ndim; d++) order[d] = d;
    for (int i = 1; i < t->ndim; i++) {
        int d = order[i], j = i;
        while (j > 0 && t->stride[order[j - 1]] < t->stride[d] && t->size[d] > 1) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = d;
    }
}

bool lt_is_dense(const lt_tensor *t) {
    int order[LT_MAX_DIMS];
    stride_order(t, order);
    int64_t expected = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        int d = order[i];
        if (t->size[d] == 1) continue;
        if (t->stride[d] != expected) return false;
        expected *= t->size[d];
    }
    return true;
}

/* Resizes out to `size` laid out in the dimension order `order` (outermost first). */
static int resize_ordered(lt_tensor *out, int ndim, const int64_t *size, const int *order, lt_dtype dtype,
                          lt_error *err) {
    if (lt_tensor_resize_typed(out, ndim, size, dtype, err)) return -1;
    int64_t st = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        out->stride[order[i]] = st;
        st *= size[order[i]];
    }
    return 0;
}

int lt_resize_like(lt_tensor *out, const lt_tensor *in, lt_error *err) {
    return lt_resize_like_typed(out, in, LT_FLOAT32, err);
}

/* A tensor that holds nothing yet (a front's temporary) takes in's device. */
static int on_device_of(lt_tensor *out, const lt_tensor *in, lt_dtype dtype, lt_error *err) {
    static const int64_t empty[1] = {0};
    return out->storage ? 0 : lt_tensor_new_on(out, 1, empty, dtype, lt_device_of(in), err);
}

int lt_resize_like_typed(lt_tensor *out, const lt_tensor *in, lt_dtype dtype, lt_error *err) {
    if (on_device_of(out, in, dtype, err)) return -1;
    if (!lt_is_dense(in)) return lt_tensor_resize_typed(out, in->ndim, in->size, dtype, err);
    int order[LT_MAX_DIMS];
    stride_order(in, order);
    return resize_ordered(out, in->ndim, in->size, order, dtype, err);
}

int lt_resize_cnhw(lt_tensor *out, int64_t n, int64_t c, int64_t h, int64_t w, lt_error *err) {
    int64_t size[4] = {n, c, h, w};
    static const int order[4] = {1, 0, 2, 3};
    return resize_ordered(out, 4, size, order, LT_FLOAT32, err);
}

int lt_resize_channels_last(lt_tensor *out, int64_t n, int64_t c, int64_t h, int64_t w, lt_dtype dtype, lt_error *err) {
    int64_t size[4] = {n, c, h, w};
    static const int order[4] = {0, 2, 3, 1};
    return resize_ordered(out, 4, size, order, dtype, err);
}

int lt_convert_channels_last(lt_tensor *out, const lt_tensor *in, lt_dtype dtype, lt_error *err) {
    if (on_device_of(out, in, dtype, err)) return -1;
    const int64_t *sz = in->size;
    return lt_resize_channels_last(out, sz[0], sz[1], sz[2], sz[3], dtype, err) || lt_convert(out, in, err) ? -1 : 0;
}

bool lt_is_channels_last(const lt_tensor *t) {
    if (t->ndim != 4) return false;
    const int64_t *sz = t->size, *st = t->stride;
    return (sz[1] <= 1 || st[1] == 1) && (sz[3] <= 1 || st[3] == sz[1]) && (sz[2] <= 1 || st[2] == sz[3] * sz[1]) &&
           (sz[0] <= 1 || st[0] == sz[2] * sz[3] * sz[1]);
}

int lt_as_float32(lt_tensor *out, const lt_tensor *in, lt_error *err) {
    if (lt_dtype_of(in) == LT_FLOAT32) {
        lt_tensor_share(out, in);
        return 0;
    }
    return lt_resize_like(out, in, err) || lt_convert(out, in, err);
}

bool lt_planes_contiguous(const lt_tensor *t) {
    return t->ndim == 4 && (t->size[3] <= 1 || t->stride[3] == 1) && (t->size[2] <= 1 || t->stride[2] == t->size[3]);
}

bool lt_is_cnhw(const lt_tensor *t) {
    if (!lt_planes_contiguous(t)) return false;
    int64_t plane = t->size[2] * t->size[3];
    return (t->size[0] <= 1 || t->stride[0] == plane) && (t->size[1] <= 1 || t->stride[1] == t->size[0] * plane);
}

int lt_planar(lt_tensor *view, const lt_tensor *t, lt_error *err) {
    if (lt_dtype_of(t) != LT_FLOAT32) {  /* the float32 kernels' view of a bf16 activation: a float32 copy */
        lt_tensor f = {0};
        int rc = lt_as_float32(&f, t, err) || lt_planar(view, &f, err);
        lt_tensor_release(&f);
        return rc;
    }
    if (lt_planes_contiguous(t)) {
        lt_tensor_share(view, t);
        return 0;
    }
    return lt_contiguous(view, t, err);
}

bool lt_same_strides(const lt_tensor *a, const lt_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->size[d] != b->size[d] || (a->size[d] > 1 && a->stride[d] != b->stride[d])) return false;
    return true;
}

int lt_laid_out_like(lt_tensor *tmp, const lt_tensor *t, const lt_tensor *like, const lt_tensor **use, lt_error *err) {
    *use = t;
    if (lt_same_strides(t, like)) return 0;
    if (lt_resize_like(tmp, like, err) || lt_copy(tmp, t, err)) return -1;
    *use = tmp;
    return 0;
}
