/* The oneDNN convolution as an entry of the channels-last convolution table (nn/cl_conv2d.c): the
 * layer's state is its lt_dnnl_conv (primitives and buffers per shape, conv.h). */
#include "../nn/ops.h"
#include "conv.h"

/* Below this many multiply-adds per output element (Cin x kh x kw) a bf16 convolution does not pay:
 * oneDNN's bf16 kernels block 16 or 32 input channels, and a 3-channel first layer leaves most of each
 * block empty. Measured on the reference network's first layer (3 -> 32, 3x3, K = 27) and the whitening
 * layer of AirNet (3 -> 24, 2x2, K = 12): both run faster in float32 on the CPU path
 * (bench/conv_bench.lua). */
#define MIN_BF16_K 32

static bool supports(const lt_impl *self, const void *shape, lt_precision p) {
    (void)self;
    const lt_conv2d_shape *s = shape;
    return p == LT_BF16 && s->k >= MIN_BF16_K;
}

static void release(void *state) { lt_dnnl_conv_free(state); }

static lt_dnnl_conv *state_of(lt_kernel_ctx *ctx) {
    if (!ctx->state) return lt_fail(ctx->err, "a oneDNN convolution needs its layer's kernel handle"), NULL;
    if (!*ctx->state) *ctx->state = lt_dnnl_conv_new(ctx->err);
    return *ctx->state;
}

static lt_dnnl_conv_shape dnnl_shape(const lt_conv2d_shape *s) {
    return (lt_dnnl_conv_shape){s->n, s->cin, s->h, s->w, s->cout, s->ho, s->wo, s->p.kernel_h, s->p.kernel_w,
                                s->p.stride_h, s->p.stride_w, s->p.pad_h, s->p.pad_w};
}

static lt_dnnl_conv_types types(lt_kernel_ctx *ctx, lt_act_desc in) {
    lt_dtype t = ctx->precision == LT_BF16 ? LT_BFLOAT16 : LT_FLOAT32;
    lt_dnnl_conv_types ty = {.compute = t, .src = in.dtype, .dst = t, .deterministic = lt_deterministic()};
    for (int d = 0; d < 4; d++) ty.src_strides[d] = in.stride[d];
    return ty;
}

static int forward(lt_kernel_ctx *ctx, void *out, const void *in, const float *weight, const float *bias,
                   lt_conv2d_shape s, lt_act_desc d) {
    lt_dnnl_conv *c = state_of(ctx);
    return c ? lt_dnnl_conv_forward(c, out, in, weight, bias, dnnl_shape(&s), types(ctx, d), ctx->err) : -1;
}

static int backward(lt_kernel_ctx *ctx, void *dinp, float *dweight, float *dbias, const void *dout, const void *in,
                    const float *weight, lt_conv2d_shape s, lt_act_desc d) {
    lt_dnnl_conv *c = state_of(ctx);
    return c ? lt_dnnl_conv_backward(c, dinp, dweight, dbias, dout, in, weight, dnnl_shape(&s), types(ctx, d), ctx->err)
             : -1;
}

const lt_conv2d_cl_impl lt_conv2d_dnnl = {
    .base = {.name = "dnnl", .supports = supports, .release = release},
    .forward = forward,
    .backward = backward,
};
