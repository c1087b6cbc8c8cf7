#include "tensor_math_device.h"

#include "../device/backend.h"

/* The layout the backend walks: out's sizes, each operand's strides (an absent one all 0). */
static lt_elementwise_shape layout_of(const lt_tensor *out, const lt_tensor *a, const lt_tensor *b) {
    lt_elementwise_shape s = {0};
    s.ndim = out->ndim;
    for (int d = 0; d < out->ndim; d++) {
        s.size[d] = out->size[d];
        s.out_stride[d] = out->stride[d];
        s.a_stride[d] = a ? a->stride[d] : 0;
        s.b_stride[d] = b ? b->stride[d] : 0;
    }
    return s;
}

static const float *data_or_null(const lt_tensor *t) { return t ? lt_data(t) : NULL; }

int lt_device_elementwise(lt_device_kind kind, lt_tensor *out, const lt_tensor *a, const lt_tensor *b, int op,
                          float alpha, float p1, float p2, lt_error *err) {
    if (lt_numel(out) == 0) return 0;
    const lt_backend_api *api = lt_backend(lt_device_of(out), err);
    if (!api) return -1;
    lt_elementwise_shape s = layout_of(out, a, b);
    switch (kind) {
    case LT_DEVICE_BINARY: return api->binary(lt_data(out), lt_data(a), lt_data(b), op, alpha, &s, err);
    case LT_DEVICE_UNARY: return api->unary(lt_data(out), lt_data(a), op, p1, p2, &s, err);
    case LT_DEVICE_ADDCMUL: return api->addcmul(lt_data(out), lt_data(a), data_or_null(b), alpha, &s, err);
    }
    return lt_fail(err, "unknown elementwise kind %d", (int)kind);
}

int lt_device_scalar(lt_tensor *out, const lt_tensor *a, float value, int op, bool reversed, lt_error *err) {
    if (lt_numel(out) == 0) return 0;
    const lt_backend_api *api = lt_backend(lt_device_of(out), err);
    if (!api) return -1;
    lt_elementwise_shape s = layout_of(out, a, NULL);
    return api->scalar(lt_data(out), lt_data(a), value, op, reversed, &s, err);
}

int lt_device_reduce(lt_tensor *values, lt_tensor *indices, const lt_tensor *in, int dim, int op, bool unbiased,
                     double p, lt_error *err) {
    const lt_backend_api *api = lt_backend(lt_device_of(in), err);
    if (!api) return -1;
    lt_tensor dense = {0};
    if (lt_contiguous(&dense, in, err)) return -1;  /* a strided copy on the device when in is a view */
    lt_reduce_shape s = {1, lt_numel(in), 1, op, unbiased, p};
    if (dim >= 0) {
        s.n = in->size[dim];
        for (int d = 0; d < dim; d++) s.outer *= in->size[d];
        for (int d = dim + 1; d < in->ndim; d++) s.inner *= in->size[d];
    }
    int rc = api->reduce(lt_data(values), indices ? lt_data(indices) : NULL, lt_data(&dense), &s, err);
    lt_tensor_release(&dense);
    return rc;
}
