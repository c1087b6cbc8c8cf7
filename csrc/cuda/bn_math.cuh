/* A BatchNorm channel's arithmetic, shared by batchnorm.cu, bn_relu_pool.cu and bn_channels_last.cu: the
 * same operations as the CPU's (csrc/core/cpu/batchnorm.c, batchnorm_channel.h), so that both compute the
 * same values to float rounding. */
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
        v.running_var[c] =
            (float)((1 - factor) * v.running_var[c] + factor * var * (double)count / (double)(count - 1));
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

/* ---- the statistics of every channel, in parts (bn_stats.cu) ----
 * A channel's elements are cut into `parts` equal ranges, each summed by a block of its own, so that a
 * few channels of many elements still fill the GPU; a thread per channel then adds its parts in order.
 * The parts depend on the shape alone: results do not change from run to run. */

/* A channel's view of an (N, C, ...) tensor: n runs of `inner` contiguous floats, sn apart, channels sc
 * apart. */
struct chan_view {
    int64_t n, inner, sn, sc;
};

static inline chan_view chan_view_of(int64_t n, int64_t inner, lt_nc_strides st) { return {n, inner, st.sn, st.sc}; }

/* Parts per channel for C channels of count elements: about 4 blocks per SM of an H100 in all, at least
 * 4096 elements a part. */
static inline int bn_parts(int64_t channels, int64_t count) {
    int64_t parts = (4 * 132 + channels - 1) / (channels > 0 ? channels : 1), most = (count + 4095) / 4096;
    if (parts > most) parts = most;
    if (parts > 256) parts = 256;
    return parts < 1 ? 1 : (int)parts;
}

/* The elements [*begin, *end) of part `part` of a channel of count elements. */
__device__ __forceinline__ void part_range(int64_t count, int parts, int part, int64_t *begin, int64_t *end) {
    int64_t size = (count + parts - 1) / parts;
    *begin = part * size < count ? part * size : count;
    *end = *begin + size < count ? *begin + size : count;
}

/* A channel's first element, about which its moments are summed: element c * stride of p, of type t
 * (planar float32: the channel stride; channels-last float32, bf16 or fp16: 1). */
struct chan_first {
    const void *p;
    lt_dtype t;
    int64_t stride;
};

/* Forward, from the moments' parts the caller summed (2 doubles each: sum of x - first, of its square;
 * `parts` per channel), from given sums (device, 2C doubles, over count elements), or from the running
 * statistics (p.training false): each channel's transform into aff (device, C), its save_mean /
 * save_invstd, and the running statistics' update. */
int bn_forward_finalize(lt_error *err, bn_affine *aff, chan_first first, int64_t channels, lt_bn_vectors v,
                        lt_batchnorm_params p, const double *part_sums, int parts, const double *given, int64_t count);

/* Forward: each channel's affine transform into aff (device, C of them), its save_mean / save_invstd,
 * and the running statistics' update; from the batch (given NULL), from sums added over processes (given:
 * device, 2C doubles, over count elements), or the running statistics (p.training false). */
int bn_forward_stats(lt_error *err, bn_affine *aff, const float *in, chan_view vx, int64_t channels, lt_bn_vectors v,
                     lt_batchnorm_params p, const double *given, int64_t count);
/* sums (device, 2C) = per channel [sum of x], [sum of x^2], as lt_batchnorm_statistics. */
int bn_sums(lt_error *err, double *sums, const float *in, chan_view vx, int64_t channels);

/* Backward: from each channel's parts (2 doubles each: sum(dy), sum(dy * (x - mean)); `parts` per
 * channel) or given sums (device, 2C, over count elements): dweight and dbias accumulate (not with
 * given sums), out_sums (device, 2C, or NULL) gets the channel's sums, k (device, C) the coefficients of
 * its input gradient. */
int bn_backward_coefficients(lt_error *err, bn_grad *k, const double *part_sums, int parts, const double *given,
                             int64_t count, int64_t channels, float *dweight, float *dbias, double *out_sums,
                             lt_bn_vectors v, bool training);

/* A backward pass's device scratch in one allocation, freed with it: C gradient coefficients, C affine
 * transforms when asked for (the channels-last passes recompute their activation's input), then `parts`
 * pairs of part sums per channel (none when parts is 0). */
struct bn_grad_scratch {
    char *block = nullptr;
    bn_grad *k = nullptr;
    bn_affine *aff = nullptr;
    double *part_sums = nullptr;
    bn_grad_scratch() = default;
    bn_grad_scratch(const bn_grad_scratch &) = delete;
    bn_grad_scratch &operator=(const bn_grad_scratch &) = delete;
    ~bn_grad_scratch() { device_free(block); }

    /* 0, or -1 with err written */
    int make(lt_error *err, int64_t channels, int parts, bool with_affine) {
        size_t k_bytes = aligned(channels, sizeof(bn_grad));
        size_t aff_bytes = with_affine ? aligned(channels, sizeof(bn_affine)) : 0;
        block = (char *)device_alloc(k_bytes + aff_bytes + sizeof(double) * 2 * (size_t)(channels * parts), err);
        if (!block) return -1;
        k = (bn_grad *)block;
        aff = with_affine ? (bn_affine *)(block + k_bytes) : nullptr;
        part_sums = parts ? (double *)(block + k_bytes + aff_bytes) : nullptr;
        return 0;
    }

  private:
    /* bytes of n things of `size`, rounded up so that what follows them stays 16-byte aligned */
    static size_t aligned(int64_t n, size_t size) { return ((size_t)n * size + 15) / 16 * 16; }
};

}  // namespace ltc

#endif
