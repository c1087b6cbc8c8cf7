/* BatchNorm's per-channel statistics in parts (bn_math.cuh says how they are cut): the moments of the
 * planar input for the forward pass, and from the moments' or the gradient's sums, which other callers
 * (the gradients, channels-last inputs) compute in parts of their own, the transform or the coefficients
 * of the input gradient. A thread per channel adds its parts in order and does
 * what the CPU does with a channel's sums (bn_from_batch, bn_grad_of). */
#include "bn_math.cuh"
#include "mixed.cuh"
#include "parts.cuh"

namespace ltc {

enum { PART_THREADS = 256 };

/* Block (c, q): sum and sum of squares of part q of channel c's deviations from its first element. */
__global__ void moments_parts_kernel(double *part_sums, const float *in, chan_view vx, int parts) {
    int64_t c = blockIdx.x / parts, begin, end;
    const float *x = in + c * vx.sc;
    part_range(vx.n * vx.inner, parts, (int)(blockIdx.x % parts), &begin, &end);
    double shift = x[0], sum = 0, sumsq = 0;
    for (int64_t e = begin + threadIdx.x; e < end; e += blockDim.x) {
        double d = (double)x[run_at(e, vx.inner, vx.sn)] - shift;
        sum += d;
        sumsq += d * d;
    }
    block_sum2(sum, sumsq);
    if (threadIdx.x == 0) {
        part_sums[2 * blockIdx.x] = sum;
        part_sums[2 * blockIdx.x + 1] = sumsq;
    }
}

/* Channel c's parts added in order. */
__device__ __forceinline__ void add_parts(const double *part_sums, int64_t c, int parts, double &a, double &b) {
    a = 0;
    b = 0;
    for (int q = 0; q < parts; q++) {
        a += part_sums[2 * (c * parts + q)];
        b += part_sums[2 * (c * parts + q) + 1];
    }
}

__global__ void forward_finalize_kernel(bn_affine *aff, chan_first first, int64_t channels, lt_bn_vectors v,
                                        lt_batchnorm_params p, const double *part_sums, int parts, const double *given,
                                        int64_t count) {
    LTC_FOR(c, channels) {
        bn_affine t;
        if (!p.training) {
            t = bn_from_running(c, v, p);
        } else if (given) {
            double mean = given[c] / (double)count;
            t = bn_from_batch(mean, given[channels + c] / (double)count - mean * mean, c, count, v, p);
        } else {
            double shift = load_as_float(first.p, first.t, c * first.stride), sum, sumsq;
            add_parts(part_sums, c, parts, sum, sumsq);
            double dmean = sum / (double)count;
            t = bn_from_batch(shift + dmean, sumsq / (double)count - dmean * dmean, c, count, v, p);
        }
        v.save_mean[c] = t.mean;
        v.save_invstd[c] = t.invstd;
        aff[c] = t;
    }
}

/* sums[c] = sum of x, sums[C + c] = sum of x^2, from the moments about the channel's first element */
__global__ void sums_finalize_kernel(double *sums, const float *in, chan_view vx, int64_t channels,
                                     const double *part_sums, int parts) {
    LTC_FOR(c, channels) {
        double shift = in[c * vx.sc], sum, sumsq, count = (double)(vx.n * vx.inner);
        add_parts(part_sums, c, parts, sum, sumsq);
        sums[c] = count * shift + sum;
        sums[channels + c] = sumsq + 2 * shift * sum + count * shift * shift;
    }
}

__global__ void backward_finalize_kernel(bn_grad *k, const double *part_sums, int parts, const double *given,
                                         int64_t count, int64_t channels, float *dweight, float *dbias,
                                         double *out_sums, lt_bn_vectors v, bool training) {
    LTC_FOR(c, channels) {
        float invstd = v.save_invstd[c], gamma = v.weight ? v.weight[c] : 1.0f;
        double sum_dy, sum_dy_xc;
        if (given) {
            sum_dy = given[c];
            sum_dy_xc = given[channels + c];
        } else {
            add_parts(part_sums, c, parts, sum_dy, sum_dy_xc);
            if (dweight) dweight[c] += (float)(sum_dy_xc * invstd);
            if (dbias) dbias[c] += (float)sum_dy;
            if (out_sums) {
                out_sums[c] = sum_dy;
                out_sums[channels + c] = sum_dy_xc;
            }
        }
        k[c] = bn_grad_of(sum_dy, sum_dy_xc, count, gamma, invstd, training);
    }
}

/* The moments' parts of every channel (2 doubles per part, `parts` per channel), in a buffer the caller
 * frees. */
static double *moments_parts(lt_error *err, const float *in, chan_view vx, int64_t channels, int parts) {
    double *part_sums = (double *)device_alloc(sizeof(double) * 2 * (size_t)(channels * parts), err);
    if (!part_sums) return nullptr;
    moments_parts_kernel<<<(unsigned)(channels * parts), PART_THREADS, 0, state().stream>>>(part_sums, in, vx, parts);
    if (launch_check(err, "moments_parts_kernel")) {
        device_free(part_sums);
        return nullptr;
    }
    return part_sums;
}

int bn_forward_finalize(lt_error *err, bn_affine *aff, chan_first first, int64_t channels, lt_bn_vectors v,
                        lt_batchnorm_params p, const double *part_sums, int parts, const double *given, int64_t count) {
    forward_finalize_kernel<<<grid_for(channels), 256, 0, state().stream>>>(aff, first, channels, v, p, part_sums,
                                                                            parts, given, count);
    LTC_LAUNCHED(err, "forward_finalize_kernel");
    return 0;
}

int bn_forward_stats(lt_error *err, bn_affine *aff, const float *in, chan_view vx, int64_t channels, lt_bn_vectors v,
                     lt_batchnorm_params p, const double *given, int64_t count) {
    double *part_sums = nullptr;
    int parts = bn_parts(channels, vx.n * vx.inner);
    if (p.training && !given && !(part_sums = moments_parts(err, in, vx, channels, parts))) return -1;
    int rc = bn_forward_finalize(err, aff, chan_first{in, LT_FLOAT32, vx.sc}, channels, v, p, part_sums, parts, given,
                                 count);
    device_free(part_sums);
    return rc;
}

int bn_sums(lt_error *err, double *sums, const float *in, chan_view vx, int64_t channels) {
    int parts = bn_parts(channels, vx.n * vx.inner);
    double *part_sums = moments_parts(err, in, vx, channels, parts);
    if (!part_sums) return -1;
    sums_finalize_kernel<<<grid_for(channels), 256, 0, state().stream>>>(sums, in, vx, channels, part_sums, parts);
    device_free(part_sums);
    LTC_LAUNCHED(err, "sums_finalize_kernel");
    return 0;
}

int bn_backward_coefficients(lt_error *err, bn_grad *k, const double *part_sums, int parts, const double *given,
                             int64_t count, int64_t channels, float *dweight, float *dbias, double *out_sums,
                             lt_bn_vectors v, bool training) {
    backward_finalize_kernel<<<grid_for(channels), 256, 0, state().stream>>>(
        k, part_sums, parts, given, count, channels, dweight, dbias, out_sums, v, training);
    LTC_LAUNCHED(err, "backward_finalize_kernel");
    return 0;
}

}  // namespace ltc
