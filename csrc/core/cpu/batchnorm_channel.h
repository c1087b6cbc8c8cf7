/* Internal to the CPU BatchNorm kernels (batchnorm.c, bn_relu_pool.c): a channel's view of an (N, C, ...)
 * tensor and the per-channel arithmetic both use. */
#ifndef LT_CPU_BATCHNORM_CHANNEL_H
#define LT_CPU_BATCHNORM_CHANNEL_H

#include "../nn/ops.h"

/* A channel's elements are N runs of `inner` contiguous floats (inner = product of the trailing sizes),
 * found through the batch and channel strides. */
typedef struct channel_view {
    int64_t n, c, inner;
    int64_t sn, sc;
} channel_view;

static inline channel_view lt_bn_view(int64_t n, int64_t c, int64_t inner, lt_nc_strides st) {
    return (channel_view){n, c, inner, st.sn, st.sc};
}

/* The normalisation of one channel: y = x * scale + shift. */
typedef struct bn_affine {
    float mean, invstd, scale, shift;
} bn_affine;

/* Channel c's statistics (from the batch when training, updating the running statistics when given;
 * from the running statistics otherwise) and its affine transform. x points at the channel's first
 * element; count is the number of elements per channel. */
bn_affine lt_bn_channel_forward(const float *x, channel_view v, int64_t c, int64_t count, lt_bn_vectors vec,
                                lt_batchnorm_params p);

/* The affine transform of channel c from its (saved) mean and inverse standard deviation: a function of
 * the saved floats alone, so a backward pass can recompute the forward pass's values bit for bit. */
bn_affine lt_bn_affine(float mean, float invstd, const float *weight, const float *bias, int64_t c);

/* dx = a * dy + b * (x - mean) + c for one channel, from sum(dy) and sum(dy * (x - mean)). */
typedef struct bn_grad {
    float a, b, c;
} bn_grad;

bn_grad lt_bn_grad_coefficients(double sum_dy, double sum_dy_xc, int64_t count, float gamma, float invstd,
                                bool training);

#endif
