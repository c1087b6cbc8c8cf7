/* The fake device's mixed-precision entries (ops.h's channels-last tables), so that the specs run a
 * bf16-mixed or 16-mixed model "on the GPU" through the same fronts, layouts and element types as the
 * CUDA backend. BatchNorm, max pooling and the activations are the host's entries (its rows take
 * either 16-bit type), wrapped as fake_ops.c wraps the others. The convolution plays cuDNN's bf16 and
 * fp16 ones with the host's float32 kernel (host_mixed_conv.c), so it needs no oneDNN, and the minimal
 * build's specs run it too. */
#include <stdlib.h>

#include "fake.h"

#include "host_mixed_conv.h"

#define H FAKE_HOST

static bool conv_supports(const lt_impl *self, const void *s, lt_precision p) { return p == LT_BF16 || p == LT_FP16; }
FAKE_DEFERRED_OP(conv_forward, host_mixed_conv_forward(c, H(a.out), H(a.in), H(a.w), H(a.b), a.s, a.d),
                 (void *, out), (const void *, in), (const float *, w), (const float *, b), (lt_conv2d_shape, s),
                 (lt_act_desc, d))
FAKE_DEFERRED_OP(conv_backward, host_mixed_conv_backward(c, H(a.dx), H(a.dw), H(a.db), H(a.dy), H(a.x), H(a.w), a.s, a.d),
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
