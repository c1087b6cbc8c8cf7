/* The channels-last branch of the max pooling front (channels_last.h). */
#include "channels_last.h"

/* The implementations, tried in order (kernel.h). */
static const lt_impl *const maxpool2d_channels_last_impls[] = {&lt_maxpool2d_channels_last_cpu.base, NULL};

bool lt_maxpool2d_goes_channels_last(const lt_pool2d_args *a) {
    const lt_tensor *x = a->input;
    return x->ndim == 4 && lt_is_channels_last(x) && a->p.kernel_h * a->p.kernel_w < 255 &&
           lt_kernel_computes(lt_device_of(x), "maxpool2d.channels_last", maxpool2d_channels_last_impls, NULL, LT_FP32);
}

static lt_maxpool_channels_last_shape shape_of(const lt_pool2d_args *a, int64_t ho, int64_t wo) {
    const int64_t *sz = a->input->size;
    return (lt_maxpool_channels_last_shape){.n = sz[0], .c = sz[1], .h = sz[2], .w = sz[3], .ho = ho, .wo = wo, .p = a->p,
                                 .x = lt_dtype_of(a->input)};
}

int lt_maxpool2d_channels_last_forward(const lt_pool2d_args *a, int64_t ho, int64_t wo, lt_error *err) {
    const int64_t *sz = a->input->size;
    if (lt_resize_channels_last(a->output, sz[0], sz[1], ho, wo, lt_channels_last_dtype(a->handle), err) ||
        lt_resize_channels_last(a->indices, sz[0], sz[1], ho, wo, LT_UINT8, err))
        return -1;
    lt_maxpool_channels_last_shape s = shape_of(a, ho, wo);
    s.y = lt_dtype_of(a->output);
    lt_kernel_ctx ctx;
    lt_named operands[] = {{"input", a->input}, {"output", a->output}, {"indices", a->indices}};
    const lt_maxpool2d_channels_last_impl *impl =
        (const lt_maxpool2d_channels_last_impl *)lt_kernel_pick(a->handle, "maxpool2d.channels_last", maxpool2d_channels_last_impls, &s, operands, 3, &ctx, err);
    if (!impl) return -1;
    if (lt_numel(a->output) &&
        impl->forward(&ctx, lt_data_ptr(a->output), lt_data_ptr(a->indices), lt_data_ptr(a->input), s))
        return -1;
    lt_kernel_forward_done(a->handle, a->input, NULL, a->output, false);
    return 0;
}

int lt_maxpool2d_channels_last_backward(const lt_pool2d_args *a, int64_t ho, int64_t wo, lt_error *err) {
    if (lt_dtype_of(a->indices) != LT_UINT8 || !lt_is_channels_last(a->indices))
        return lt_fail(err, "indices must be as the channels-last forward pass left them");
    lt_tensor tmp = {0};
    const lt_tensor *g = a->grad_output;
    int rc = -1;
    if (!lt_is_channels_last(g)) {
        if (lt_convert_channels_last(&tmp, g, LT_FLOAT32, err)) goto done;
        g = &tmp;
    }
    const int64_t *sz = a->input->size;
    if (lt_resize_channels_last(a->grad_input, sz[0], sz[1], sz[2], sz[3], lt_dtype_of(a->input), err)) goto done;
    lt_maxpool_channels_last_shape s = shape_of(a, ho, wo);
    s.dy = lt_dtype_of(g);
    s.dx = lt_dtype_of(a->grad_input);
    lt_kernel_ctx ctx;
    lt_named operands[] = {{"indices", a->indices}, {"grad_output", g}, {"grad_input", a->grad_input}};
    const lt_maxpool2d_channels_last_impl *impl =
        (const lt_maxpool2d_channels_last_impl *)lt_kernel_pick(a->handle, "maxpool2d.channels_last", maxpool2d_channels_last_impls, &s, operands, 3, &ctx, err);
    if (!impl) goto done;
    rc = lt_numel(a->grad_input) ? impl->backward(&ctx, lt_data_ptr(a->grad_input), lt_data_ptr(g),
                                                  lt_data_ptr(a->indices), s)
                                 : 0;
done:
    lt_tensor_release(&tmp);
    return rc;
}
