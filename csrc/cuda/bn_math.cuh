/* A BatchNorm channel's arithmetic, shared by batchnorm.cu and bn_relu_pool.cu: the same operations as
 * the CPU's (csrc/core/cpu/batchnorm.c, batchnorm_channel.h), so that both compute the same values to
 * float rounding. */
#ifndef LTC_BN_MATH_CUH
#define LTC_BN_MATH_CUH

#include "common.cuh"
#include "reduce.cuh"

namespace ltc {

/* y = x * scale + shift for one channel, from its mean and inverse standard deviation */
struct bn_affine {
    float mean, invstd, scale, shift;
};

__device__ inline bn_affine bn_affine_of(float mean, float invstd, const float *weight, const float *bias, int64_t c) {
    double scale = (weight ? weight[c] : 1.0) * (double)invstd;
    double shift = (bias ? bias[c] : 0.0) - (double)mean * scale;
    return {mean, invstd, (float)scale, (float)shift};
}

/* A batch's mean and biased variance over count elements: the running statistics' update (momentum, or
 * the cumulative average when momentum < 0; the unbiased variance), then the affine transform. */
__device__ inline bn_affine bn_from_batch(double mean, double var, int64_t c, int64_t count, lt_bn_vectors v,
                                          lt_batchnorm_params p) {
    if (var < 0) var = 0;
    if (v.running_mean) {
        double factor =
            p.momentum >= 0 ? p.momentum : 1.0 / (double)(p.num_batches_tracked > 0 ? p.num_batches_tracked : 1);
        v.running_mean[c] = (float)((1 - factor) * v.running_mean[c] + factor * mean);
        v.running_var[c] = (float)((1 - factor) * v.running_var[c] + factor * var * (double)count / (double)(count - 1));
    }
    return bn_affine_of((float)mean, (float)(1.0 / sqrt(var + p.eps)), v.weight, v.bias, c);
}

/* Evaluation: the running statistics. */
__device__ inline bn_affine bn_from_running(int64_t c, lt_bn_vectors v, lt_batchnorm_params p) {
    return bn_affine_of(v.running_mean[c], (float)(1.0 / sqrt((double)v.running_var[c] + p.eps)), v.weight, v.bias, c);
}

/* dx = a * dy + b * (x - mean) + c, from sum(dy) and sum(dy * (x - mean)) over count elements */
struct bn_grad {
    float a, b, c;
};

__device__ inline bn_grad bn_grad_of(double sum_dy, double sum_dy_xc, int64_t count, float gamma, float invstd,
                                     bool training) {
    double k = (double)gamma * invstd;
    if (!training) return {(float)k, 0.0f, 0.0f};
    double dmean = sum_dy / (double)count, dvar = sum_dy_xc / (double)count * invstd * invstd;
    return {(float)k, (float)(-k * dvar), (float)(-k * dmean)};
}

/* with b = 0 (evaluation) x takes no part: an infinite x gives a * dy, not 0 * inf = NaN */
__device__ __forceinline__ float bn_dx(bn_grad k, float dy, float x, float mean) {
    return k.a * dy + (k.b == 0.0f ? 0.0f : k.b * (x - mean)) + k.c;
}

/* Element e (of n * inner) of a channel whose runs start `sn` apart. */
__device__ __forceinline__ int64_t run_at(int64_t e, int64_t inner, int64_t sn) { return (e / inner) * sn + e % inner; }

/* Sum and sum of squares of the channel's deviations from its first element (block-wide). */
__device__ inline void channel_moments(const float *x, int64_t count, int64_t inner, int64_t sn, double shift, double &sum,
                                double &sumsq) {
    sum = 0;
    sumsq = 0;
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
        double d = (double)x[run_at(e, inner, sn)] - shift;
        sum += d;
        sumsq += d * d;
    }
    block_sum2(sum, sumsq);
}

}  // namespace ltc

#endif
