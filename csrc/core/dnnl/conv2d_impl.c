/* The oneDNN convolution as an entry of the channels-last convolution table (nn/conv2d_channels_last.c): the
 * layer's state is its lt_dnnl_conv (primitives and buffers per shape, conv.h). */
#include "../nn/ops.h"
#include "conv.h"
#include "dnnl_info.h"

/* Every shape at bf16. A 3-channel first layer uses little of oneDNN's channel blocks, yet measured at
 * batch 64 on one core of the development machine (a Zen 4 EPYC with avx512_bf16) the reference
 * network's first layer (3 -> 32, 3x3) took 1.0 ms forward and 0.8 ms for its weight gradient in bf16,
 * against 4.0 and 5.7 ms for the float32 im2col + OpenBLAS path and 1.8 and 1.8 ms for oneDNN's float32
 * kernel; so it runs in bf16 too (its input is converted to channels-last bf16, a small copy).
 *
 * Every shape at float32 too, unless lt_set_fp32_onednn(false), where oneDNN's float32 kernels were
 * checked (AVX-512, OpenMP: dnnl_common.c); docs/performance.md has the speed against im2col + OpenBLAS. */
static bool supports(const lt_impl *self, const void *shape, lt_precision p) {
    (void)self;
    (void)shape;
    if (p == LT_FP32) return lt_fp32_onednn() && lt_dnnl_fp32_available();
    return p == LT_BF16 && lt_dnnl_bf16_available();
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
    /* float32 keeps its promise of the same bits at any thread count without being asked (the
     * library's im2col path does): its weight gradients are always summed by fixed parts */
    lt_dnnl_conv_types ty = {.compute = t, .src = in.dtype, .dst = t,
                             .deterministic = lt_deterministic() || t == LT_FLOAT32};
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

const lt_conv2d_channels_last_impl lt_conv2d_dnnl = {
    .base = {.name = "dnnl", .supports = supports, .release = release},
    .forward = forward,
    .backward = backward,
};
