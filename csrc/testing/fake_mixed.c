/* The fake device's mixed-precision entries (ops.h's channels-last tables), so that the specs run a
 * bf16-mixed or 16-mixed model "on the GPU" through the same fronts, layouts and element types as the
 * CUDA backend. BatchNorm, max pooling and the activations are the host's entries (its rows take
 * either 16-bit type), wrapped as fake_ops.c wraps the others. The convolution plays cuDNN's bf16 and
 * fp16 ones with the host's float32 kernel: input and weight rounded to the layer's 16-bit type,
 * float32 sums, the output rounded before and after the bias; the weight's gradient rounded before it
 * is added, as the CUDA entry's goes through a 16-bit buffer. So it needs no oneDNN, and the minimal
 * build's specs run it too. */
#include <stdlib.h>

#include "fake.h"

#include "../core/base/half.h"
#include "../core/nn/ops.h"

#define H FAKE_HOST

/* v rounded to the 16-bit type t */
static float rounded(float v, lt_dtype t) { return lt_half_to_f32(lt_f32_to_half(v, t), t); }

static float load(const void *p, lt_dtype t, int64_t i) {
    return lt_dtype_is_half(t) ? lt_half_to_f32(((const uint16_t *)p)[i], t) : ((const float *)p)[i];
}

static void store(void *p, lt_dtype t, int64_t i, float v) {
    if (lt_dtype_is_half(t)) ((uint16_t *)p)[i] = lt_f32_to_half(v, t);
    else ((float *)p)[i] = v;
}

/* ---- the convolution ---- */

/* The host buffers one pass works in: x packed NCHW and w, both rounded to the layer's type t; y or dy batch-folded
 * (C, N, H, W); cols the host kernel's scratch; dx packed NCHW and dw. */
typedef struct conv_buffers {
    float *x, *w, *y, *cols, *dx, *dw;
} conv_buffers;

static void free_buffers(conv_buffers *b) {
    free(b->x);
    free(b->w);
    free(b->y);
    free(b->cols);
    free(b->dx);
    free(b->dw);
}

static float *floats(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }

/* x and w as the host kernel reads them; s's input strides made packed */
static int open_buffers(lt_kernel_ctx *c, conv_buffers *b, const void *in, lt_act_desc d, const float *weight,
                        lt_conv2d_shape *s, int64_t scratch, lt_dtype t) {
    int64_t xn = s->n * s->cin * s->h * s->w, wn = s->cout * s->k, yn = s->n * s->cout * s->ho * s->wo;
    *b = (conv_buffers){floats(xn), floats(wn), floats(yn), floats(scratch), NULL, NULL};
    if (!b->x || !b->w || !b->y || !b->cols) return fake_fail(c->err, "conv2d.channels_last: out of host memory");
    for (int64_t i = 0; i < xn; i++) {
        int64_t x = i % s->w, y = i / s->w % s->h, ch = i / (s->w * s->h) % s->cin, n = i / (s->w * s->h * s->cin);
        b->x[i] = rounded(load(in, d.dtype, n * d.stride[0] + ch * d.stride[1] + y * d.stride[2] + x * d.stride[3]), t);
    }
    for (int64_t i = 0; i < wn; i++) b->w[i] = rounded(weight[i], t);
    s->x = (lt_nc_strides){s->cin * s->h * s->w, s->h * s->w};
    return 0;
}

/* Element (n, c, y, x) of a dense channels-last (N, H, W, C) tensor, and of the batch-folded one. */
static int64_t nhwc_at(const lt_conv2d_shape *s, int64_t n, int64_t c, int64_t yx) {
    return (n * s->ho * s->wo + yx) * s->cout + c;
}
static int64_t cnhw_at(const lt_conv2d_shape *s, int64_t n, int64_t c, int64_t yx) {
    return (c * s->n + n) * s->ho * s->wo + yx;
}

static int conv_forward_now(lt_kernel_ctx *c, uint16_t *out, const void *in, const float *weight, const float *bias,
                            lt_conv2d_shape s, lt_act_desc d) {
    conv_buffers b;
    lt_dtype t = lt_precision_dtype(c->precision);
    int rc = open_buffers(c, &b, in, d, weight, &s, lt_conv2d_cpu.forward_scratch(&s), t);
    if (!rc) rc = lt_conv2d_cpu.forward(c, b.y, b.x, b.w, NULL, b.cols, s);
    for (int64_t n = 0; !rc && n < s.n; n++)
        for (int64_t ch = 0; ch < s.cout; ch++)
            for (int64_t yx = 0; yx < s.ho * s.wo; yx++) {
                float v = rounded(b.y[cnhw_at(&s, n, ch, yx)], t);
                out[nhwc_at(&s, n, ch, yx)] = lt_f32_to_half(bias ? v + bias[ch] : v, t);
            }
    free_buffers(&b);
    return rc;
}

static int conv_backward_now(lt_kernel_ctx *c, void *dinp, float *dweight, float *dbias, const uint16_t *dout,
                             const void *in, const float *weight, lt_conv2d_shape s, lt_act_desc d) {
    conv_buffers b;
    int64_t xn = s.n * s.cin * s.h * s.w, wn = s.cout * s.k;
    lt_dtype t = lt_precision_dtype(c->precision);
    int rc = open_buffers(c, &b, in, d, weight, &s, lt_conv2d_cpu.backward_scratch(&s, dinp != NULL), t);
    if (!rc && (!(b.dw = floats(wn)) || (dinp && !(b.dx = floats(xn)))))
        rc = fake_fail(c->err, "conv2d.channels_last: out of host memory");
    if (rc) goto done;
    for (int64_t n = 0; n < s.n; n++)  /* dy into the host kernel's batch-folded layout */
        for (int64_t ch = 0; ch < s.cout; ch++) {
            double sum = 0;
            for (int64_t yx = 0; yx < s.ho * s.wo; yx++) {
                float g = lt_half_to_f32(dout[nhwc_at(&s, n, ch, yx)], t);
                b.y[cnhw_at(&s, n, ch, yx)] = g;
                sum += g;
            }
            if (dbias) dbias[ch] += (float)sum;
        }
    s.dx = s.x;
    if ((rc = lt_conv2d_cpu.backward(c, b.dx, b.dw, NULL, b.y, b.x, b.w, b.cols, s))) goto done;
    for (int64_t i = 0; i < wn; i++) dweight[i] += rounded(b.dw[i], t);
    for (int64_t i = 0; dinp && i < xn; i++) {
        int64_t x = i % s.w, y = i / s.w % s.h, ch = i / (s.w * s.h) % s.cin, n = i / (s.w * s.h * s.cin);
        store(dinp, d.dtype, n * d.stride[0] + ch * d.stride[1] + y * d.stride[2] + x * d.stride[3],
              rounded(b.dx[i], t));
    }
done:
    free_buffers(&b);
    return rc;
}

static bool conv_supports(const lt_impl *self, const void *s, lt_precision p) { return p == LT_BF16 || p == LT_FP16; }
FAKE_DEFERRED_OP(conv_forward, conv_forward_now(c, H(a.out), H(a.in), H(a.w), H(a.b), a.s, a.d),
                 (void *, out), (const void *, in), (const float *, w), (const float *, b), (lt_conv2d_shape, s),
                 (lt_act_desc, d))
FAKE_DEFERRED_OP(conv_backward, conv_backward_now(c, H(a.dx), H(a.dw), H(a.db), H(a.dy), H(a.x), H(a.w), a.s, a.d),
                 (void *, dx), (float *, dw), (float *, db), (const void *, dy), (const void *, x),
                 (const float *, w), (lt_conv2d_shape, s), (lt_act_desc, d))
const lt_conv2d_channels_last_impl fake_conv2d_channels_last = {{"fake", conv_supports, NULL}, conv_forward,
                                                                 conv_backward};

/* ---- BatchNorm and the fused pool, max pooling, activations: the host's entries ---- */

#define BN lt_batchnorm_channels_last_cpu
FAKE_DEFERRED_OP(bn_forward, BN.forward(c, H(a.out), H(a.in), fake_host_vectors(a.v), a.s, a.p),
                 (void *, out), (const void *, in), (lt_bn_vectors, v), (lt_bn_channels_last_shape, s),
                 (lt_batchnorm_params, p))
FAKE_DEFERRED_OP(bn_backward, BN.backward(c, H(a.dx), H(a.dw), H(a.db), H(a.dy), H(a.x), fake_host_vectors(a.v), a.s),
                 (void *, dx), (float *, dw), (float *, db), (const void *, dy), (const void *, x), (lt_bn_vectors, v),
                 (lt_bn_channels_last_shape, s))
FAKE_DEFERRED_OP(pool_forward, BN.pool_forward(c, H(a.out), H(a.codes), H(a.in), fake_host_vectors(a.v), a.s, a.p),
                 (void *, out), (uint8_t *, codes), (const void *, in), (lt_bn_vectors, v),
                 (lt_bn_channels_last_shape, s), (lt_batchnorm_params, p))
FAKE_DEFERRED_OP(pool_backward, BN.pool_backward(c, H(a.dx), H(a.dw), H(a.db), H(a.dy), H(a.codes), H(a.x),
                 fake_host_vectors(a.v), a.s),
                 (void *, dx), (float *, dw), (float *, db), (const void *, dy), (const uint8_t *, codes),
                 (const void *, x), (lt_bn_vectors, v), (lt_bn_channels_last_shape, s))
static bool bn_supports(const lt_impl *self, const void *s, lt_precision p) { return BN.base.supports(&BN.base, s, p); }
/* the host entry keeps its scratch in the layer's state: its release frees it */
static void bn_release(void *state) { BN.base.release(state); }
const lt_batchnorm_channels_last_impl fake_batchnorm_channels_last = {{"fake", bn_supports, bn_release}, bn_forward,
                                                                      bn_backward, pool_forward, pool_backward};
#undef BN

#define MP lt_maxpool2d_channels_last_cpu
FAKE_DEFERRED_OP(maxpool_forward, MP.forward(c, H(a.out), H(a.codes), H(a.in), a.s),
                 (void *, out), (uint8_t *, codes), (const void *, in), (lt_maxpool_channels_last_shape, s))
FAKE_DEFERRED_OP(maxpool_backward, MP.backward(c, H(a.dx), H(a.dy), H(a.codes), a.s),
                 (void *, dx), (const void *, dy), (const uint8_t *, codes), (lt_maxpool_channels_last_shape, s))
static bool maxpool_supports(const lt_impl *self, const void *s, lt_precision p) {
    return MP.base.supports(&MP.base, s, p);
}
const lt_maxpool2d_channels_last_impl fake_maxpool2d_channels_last = {{"fake", maxpool_supports, NULL},
                                                                      maxpool_forward, maxpool_backward};
#undef MP

#define ACT lt_activation_mixed_cpu
FAKE_DEFERRED_OP(activation_forward, ACT.forward(c, H(a.out), H(a.in), a.s),
                 (void *, out), (const void *, in), (lt_activation_mixed_shape, s))
FAKE_DEFERRED_OP(activation_backward, ACT.backward(c, H(a.dx), H(a.dy), H(a.x), a.s),
                 (void *, dx), (const void *, dy), (const void *, x), (lt_activation_mixed_shape, s))
static bool activation_supports(const lt_impl *self, const void *s, lt_precision p) {
    return ACT.base.supports(&ACT.base, s, p);
}
static bool activation_computes(const char *name) { return ACT.computes(name); }
const lt_activation_mixed_impl fake_activation_mixed = {{"fake", activation_supports, NULL}, activation_computes,
                                                        activation_forward, activation_backward};
#undef ACT
