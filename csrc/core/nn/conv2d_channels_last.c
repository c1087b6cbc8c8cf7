/* The channels-last branch of the convolution's front (channels_last.h): oneDNN's convolution on the
 * host, the backend's (cuDNN's) on a GPU. */
#include "channels_last.h"
#include "conv2d_layout.h"

/* The implementations, tried in order (kernel.h). */
static const lt_impl *const conv2d_channels_last_impls[] = {
#ifdef LT_HAVE_DNNL
    &lt_conv2d_dnnl.base,
#endif
    NULL};

lt_act_desc lt_act_desc_of(const lt_tensor *t) {
    lt_act_desc d = {lt_dtype_of(t), {0}};
    for (int i = 0; i < 4 && i < t->ndim; i++) d.stride[i] = t->stride[i];
    return d;
}

/* On the host at float32 too: oneDNN's float32 convolution (see dnnl/conv2d_impl.c) is faster than
 * im2col + OpenBLAS. A GPU's entry takes bf16 only (float32 stays in the planar layouts). */
bool lt_conv2d_goes_channels_last(const lt_kernel_handle *h, const lt_conv2d_shape *s, lt_device d) {
    return h && lt_kernel_computes(d, "conv2d.channels_last", conv2d_channels_last_impls, s, h->precision);
}

/* The input as the implementation takes it: itself when dense (any order, either type), else a
 * contiguous copy. */
static int dense_input(lt_tensor *in, const lt_tensor *input, lt_error *err) {
    if (lt_is_dense(input)) {
        lt_tensor_share(in, input);
        return 0;
    }
    return lt_contiguous(in, input, err);
}

/* What both passes start with: the input and weight as the implementation reads them (released by the
 * caller) and the implementation the handle picks, or NULL with err set. */
static const lt_conv2d_channels_last_impl *open_pass(const lt_conv2d_args *a, lt_conv2d_shape *s, lt_tensor *in,
                                                     lt_tensor *w, lt_kernel_ctx *ctx, lt_error *err) {
    if (dense_input(in, a->input, err) || lt_contiguous(w, a->weight, err)) return NULL;
    lt_named operands[] = {{"input", in},           {"weight", w},        {"bias", a->bias},
                           {"output", a->output},   {"grad_output", a->grad_output}, {"grad_input", a->grad_input},
                           {"grad_weight", a->grad_weight}, {"grad_bias", a->grad_bias}};
    return (const lt_conv2d_channels_last_impl *)lt_kernel_pick(a->handle, "conv2d.channels_last",
                                                                conv2d_channels_last_impls, s, operands, 8, ctx, err);
}

/* The output's (and so grad_output's) layout: channels-last, bf16 in a bf16 run. */
static lt_conv2d_layout layout_of(const lt_kernel_ctx *ctx) {
    return (lt_conv2d_layout){true, lt_precision_dtype(ctx->precision)};
}

int lt_conv2d_channels_last_forward(const lt_conv2d_args *a, lt_conv2d_shape s, lt_error *err) {
    lt_tensor in = {0}, w = {0};
    lt_kernel_ctx ctx;
    int rc = -1;
    const lt_conv2d_channels_last_impl *impl = open_pass(a, &s, &in, &w, &ctx, err);
    if (!impl) goto done;
    if (lt_conv2d_resize_output(a->output, &s, layout_of(&ctx), err)) goto done;
    if (lt_numel(a->output) && impl->forward(&ctx, lt_data_ptr(a->output), lt_data_ptr(&in), lt_ptr(&w),
                                             lt_ptr(a->bias), s, lt_act_desc_of(&in)))
        goto done;
    lt_kernel_forward_done(a->handle, a->input, NULL, a->output, false);
    rc = 0;
done:
    lt_tensor_release(&in);
    lt_tensor_release(&w);
    return rc;
}

int lt_conv2d_channels_last_backward(const lt_conv2d_args *a, lt_conv2d_shape s, lt_error *err) {
    lt_tensor in = {0}, w = {0};
    lt_kernel_ctx ctx;
    int rc = -1;
    const lt_conv2d_channels_last_impl *impl = open_pass(a, &s, &in, &w, &ctx, err);
    const lt_tensor *go;
    if (!impl || lt_conv2d_backward_operands(a, &s, layout_of(&ctx), &in, &go, err)) goto done;
    if (lt_numel(go) == 0) {   /* (grad_input is zero: lt_conv2d_backward_operands) */
        rc = 0;
        goto done;
    }
    rc = impl->backward(&ctx, a->grad_input ? lt_data_ptr(a->grad_input) : NULL, lt_data(a->grad_weight),
                        lt_ptr(a->grad_bias), lt_data_ptr(go), lt_data_ptr(&in), lt_ptr(&w), s, lt_act_desc_of(&in));
done:
    lt_tensor_release(&in);
    lt_tensor_release(&w);
    return rc;
}
