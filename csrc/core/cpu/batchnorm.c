/* The CPU batch normalisation over (N, C, ...) inputs, per channel C (one channel per work item). A
 * channel's elements are N runs of `inner` contiguous floats, found through the batch and channel
 * strides, so both NCHW tensors and the batch-folded layout of nn.h work without copies. */
#include <math.h>

#include "../base/parallel.h"
#include "../base/simd.h"
#include "batchnorm_channel.h"

/* Partial sums in LANES independent accumulators: a float reduction the compiler can vectorise
 * without reassociating (we build without -ffast-math). */
#define LANES 16

/* Sum and sum of squares of one channel's deviations from `shift` (its first element, which keeps
 * E[x^2] - E[x]^2 from cancelling when the mean is large next to the spread). Runs are summed in float
 * lanes, the runs' totals in double. */
LT_SIMD_CLONES
static void channel_moments(const float *x, channel_view v, float shift, double *sum, double *sumsq) {
    double s = 0, q = 0;
    if (v.inner == 1) {  /* (N, C) inputs: one element per sample, a plain strided loop */
        for (int64_t b = 0; b < v.n; b++) {
            double d = (double)x[b * v.sn] - shift;
            s += d;
            q += d * d;
        }
        *sum = s;
        *sumsq = q;
        return;
    }
    for (int64_t b = 0; b < v.n; b++) {
        const float *run = x + b * v.sn;
        float ls[LANES] = {0}, lq[LANES] = {0};
        int64_t i = 0;
        for (; i + LANES <= v.inner; i += LANES)
            for (int k = 0; k < LANES; k++) {
                float d = run[i + k] - shift;
                ls[k] += d;
                lq[k] += d * d;
            }
        for (; i < v.inner; i++) {
            float d = run[i] - shift;
            ls[0] += d;
            lq[0] += d * d;
        }
        for (int k = 0; k < LANES; k++) {
            s += ls[k];
            q += lq[k];
        }
    }
    *sum = s;
    *sumsq = q;
}

/* y = x * scale + shift over one channel */
LT_SIMD_CLONES
static void channel_affine(float *y, channel_view vy, const float *x, channel_view vx, float scale, float shift) {
    if (vx.inner == 1) {
        for (int64_t b = 0; b < vx.n; b++) y[b * vy.sn] = x[b * vx.sn] * scale + shift;
        return;
    }
    for (int64_t b = 0; b < vx.n; b++) {
        const float *in = x + b * vx.sn;
        float *out = y + b * vy.sn;
        for (int64_t i = 0; i < vx.inner; i++) out[i] = in[i] * scale + shift;
    }
}

/* sum(dy) and sum(dy * (x - mean)) over one channel, in lanes as channel_moments */
LT_SIMD_CLONES
static void channel_grad_sums(const float *dy, channel_view vg, const float *x, channel_view vx, float mean,
                              double *sum_dy, double *sum_dy_xc) {
    double s = 0, q = 0;
    if (vx.inner == 1) {
        for (int64_t b = 0; b < vx.n; b++) {
            s += dy[b * vg.sn];
            q += (double)dy[b * vg.sn] * (x[b * vx.sn] - mean);
        }
        *sum_dy = s;
        *sum_dy_xc = q;
        return;
    }
    for (int64_t b = 0; b < vx.n; b++) {
        const float *g = dy + b * vg.sn, *in = x + b * vx.sn;
        float ls[LANES] = {0}, lq[LANES] = {0};
        int64_t i = 0;
        for (; i + LANES <= vx.inner; i += LANES)
            for (int k = 0; k < LANES; k++) {
                ls[k] += g[i + k];
                lq[k] += g[i + k] * (in[i + k] - mean);
            }
        for (; i < vx.inner; i++) {
            ls[0] += g[i];
            lq[0] += g[i] * (in[i] - mean);
        }
        for (int k = 0; k < LANES; k++) {
            s += ls[k];
            q += lq[k];
        }
    }
    *sum_dy = s;
    *sum_dy_xc = q;
}

/* dx = a * dy + b * (x - mean) + c over one channel; with b = 0 (eval mode) x takes no part, so an
 * infinite x gives a * dy, not 0 * inf = NaN */
LT_SIMD_CLONES
static void channel_grad_input(float *dx, channel_view vd, const float *dy, channel_view vg, const float *x,
                               channel_view vx, float mean, float a, float b, float c) {
    if (vx.inner == 1) {
        for (int64_t n = 0; n < vx.n; n++) dx[n * vd.sn] = a * dy[n * vg.sn] + (b == 0 ? 0.0f : b * (x[n * vx.sn] - mean)) + c;
        return;
    }
    for (int64_t n = 0; n < vx.n; n++) {
        float *d = dx + n * vd.sn;
        const float *g = dy + n * vg.sn, *in = x + n * vx.sn;
        for (int64_t i = 0; i < vx.inner; i++) d[i] = a * g[i] + (b == 0 ? 0.0f : b * (in[i] - mean)) + c;
    }
}

/* Normalisation with a batch's mean and (biased) variance over count elements: the running
 * statistics' update, then the affine transform. */
static bn_affine from_batch_moments(double mean, double var, int64_t c, int64_t count, lt_bn_vectors vec,
                                    lt_batchnorm_params p) {
    if (var < 0) var = 0;
    if (vec.running_mean) {
        double factor = p.momentum >= 0 ? p.momentum : 1.0 / (double)(p.num_batches_tracked > 0 ? p.num_batches_tracked : 1);
        vec.running_mean[c] = (float)((1 - factor) * vec.running_mean[c] + factor * mean);
        vec.running_var[c] = (float)((1 - factor) * vec.running_var[c] + factor * var * (double)count / (double)(count - 1));
    }
    return lt_bn_affine((float)mean, (float)(1.0 / sqrt(var + p.eps)), vec.weight, vec.bias, c);
}

bn_affine lt_bn_channel_forward(const float *x, channel_view v, int64_t c, int64_t count, lt_bn_vectors vec,
                                lt_batchnorm_params p) {
    if (!p.training)
        return lt_bn_affine(vec.running_mean[c], (float)(1.0 / sqrt((double)vec.running_var[c] + p.eps)), vec.weight,
                            vec.bias, c);
    double sum, sumsq;
    float shift = x[0];
    channel_moments(x, v, shift, &sum, &sumsq);
    double dmean = sum / (double)count;
    return from_batch_moments(shift + dmean, sumsq / (double)count - dmean * dmean, c, count, vec, p);
}

bn_affine lt_bn_affine(float mean, float invstd, const float *weight, const float *bias, int64_t c) {
    double scale = (weight ? weight[c] : 1.0) * (double)invstd;
    double shift = (bias ? bias[c] : 0.0) - (double)mean * scale;
    return (bn_affine){mean, invstd, (float)scale, (float)shift};
}

bn_grad lt_bn_grad_coefficients(double sum_dy, double sum_dy_xc, int64_t count, float gamma, float invstd,
                                bool training) {
    double k = (double)gamma * invstd;
    if (!training) return (bn_grad){(float)k, 0.0f, 0.0f};
    /* dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)) */
    double dmean = sum_dy / (double)count, dvar = sum_dy_xc / (double)count * invstd * invstd;
    return (bn_grad){(float)k, (float)(-k * dvar), (float)(-k * dmean)};
}

/* The forward pass over every channel: its statistics from the batch (sums NULL) or from sums added
 * over processes, saved; then the normalisation. */
static void forward_channels(float *out, const float *in, const double *sums, lt_bn_vectors v, lt_batchnorm_shape s,
                             lt_batchnorm_params p) {
    channel_view vx = lt_bn_view(s.n, s.c, s.inner, s.x), vy = lt_bn_view(s.n, s.c, s.inner, s.y);
    int64_t count = sums ? (int64_t)sums[2 * s.c] : s.n * s.inner;
    int threads = lt_threads_for(s.c * s.n * s.inner, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t c = 0; c < s.c; c++) {
        bn_affine t;
        if (sums) {
            double mean = sums[c] / (double)count;
            t = from_batch_moments(mean, sums[s.c + c] / (double)count - mean * mean, c, count, v, p);
        } else {
            t = lt_bn_channel_forward(in + c * vx.sc, vx, c, count, v, p);
        }
        v.save_mean[c] = t.mean;
        v.save_invstd[c] = t.invstd;
        channel_affine(out + c * vy.sc, vy, in + c * vx.sc, vx, t.scale, t.shift);
    }
}

static int batchnorm_forward_cpu(lt_kernel_ctx *ctx, float *out, const float *in, lt_bn_vectors v,
                                 lt_batchnorm_shape s, lt_batchnorm_params p) {
    forward_channels(out, in, NULL, v, s, p);
    return 0;
}

static int batchnorm_backward_cpu(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                                  const float *in, lt_bn_vectors v, lt_batchnorm_shape s) {
    channel_view vx = lt_bn_view(s.n, s.c, s.inner, s.x), vg = lt_bn_view(s.n, s.c, s.inner, s.dy);
    channel_view vd = dinp ? lt_bn_view(s.n, s.c, s.inner, s.dx) : vx;
    int64_t count = s.n * s.inner;
    int threads = lt_threads_for(s.c * count, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t c = 0; c < s.c; c++) {
        double sum_dy, sum_dy_xc;
        float mean = v.save_mean[c], invstd = v.save_invstd[c], gamma = v.weight ? v.weight[c] : 1.0f;
        channel_grad_sums(dout + c * vg.sc, vg, in + c * vx.sc, vx, mean, &sum_dy, &sum_dy_xc);
        if (dweight) dweight[c] += (float)(sum_dy_xc * invstd);
        if (dbias) dbias[c] += (float)sum_dy;
        if (!dinp) continue;
        bn_grad k = lt_bn_grad_coefficients(sum_dy, sum_dy_xc, count, gamma, invstd, s.training);
        channel_grad_input(dinp + c * vd.sc, vd, dout + c * vg.sc, vg, in + c * vx.sc, vx, mean, k.a, k.b, k.c);
    }
    return 0;
}

/* ---- the split for a reduction between processes (nn.h, lt_batchnorm_statistics) ---- */

/* sums[c] = sum of x, sums[C + c] = sum of x^2, from the moments about the channel's first element
 * (in double: adding them over processes then loses nothing a float32 mean or variance keeps) */
static int batchnorm_statistics_cpu(lt_kernel_ctx *ctx, double *sums, const float *in, lt_batchnorm_shape s) {
    channel_view vx = lt_bn_view(s.n, s.c, s.inner, s.x);
    int64_t count = s.n * s.inner;
    int threads = lt_threads_for(s.c * count, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t c = 0; c < s.c; c++) {
        double sum, sumsq, shift = in[c * vx.sc];
        channel_moments(in + c * vx.sc, vx, (float)shift, &sum, &sumsq);
        sums[c] = (double)count * shift + sum;
        sums[s.c + c] = sumsq + 2 * shift * sum + (double)count * shift * shift;
    }
    sums[2 * s.c] = (double)count;
    return 0;
}

static int batchnorm_normalize_cpu(lt_kernel_ctx *ctx, float *out, const float *in, const double *sums, lt_bn_vectors v,
                                   lt_batchnorm_shape s, lt_batchnorm_params p) {
    forward_channels(out, in, sums, v, s, p);
    return 0;
}

static int batchnorm_grad_sums_cpu(lt_kernel_ctx *ctx, double *sums, float *dweight, float *dbias, const float *dout,
                                   const float *in, lt_bn_vectors v, lt_batchnorm_shape s) {
    channel_view vx = lt_bn_view(s.n, s.c, s.inner, s.x), vg = lt_bn_view(s.n, s.c, s.inner, s.dy);
    int threads = lt_threads_for(s.c * s.n * s.inner, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t c = 0; c < s.c; c++) {
        double sum_dy, sum_dy_xc;
        channel_grad_sums(dout + c * vg.sc, vg, in + c * vx.sc, vx, v.save_mean[c], &sum_dy, &sum_dy_xc);
        if (dweight) dweight[c] += (float)(sum_dy_xc * v.save_invstd[c]);
        if (dbias) dbias[c] += (float)sum_dy;
        sums[c] = sum_dy;
        sums[s.c + c] = sum_dy_xc;
    }
    return 0;
}

static int batchnorm_grad_input_cpu(lt_kernel_ctx *ctx, float *dinp, const double *sums, int64_t count,
                                    const float *dout, const float *in, lt_bn_vectors v, lt_batchnorm_shape s) {
    channel_view vx = lt_bn_view(s.n, s.c, s.inner, s.x), vg = lt_bn_view(s.n, s.c, s.inner, s.dy);
    channel_view vd = lt_bn_view(s.n, s.c, s.inner, s.dx);
    int threads = lt_threads_for(s.c * s.n * s.inner, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t c = 0; c < s.c; c++) {
        float mean = v.save_mean[c], gamma = v.weight ? v.weight[c] : 1.0f;
        bn_grad k = lt_bn_grad_coefficients(sums[c], sums[s.c + c], count, gamma, v.save_invstd[c], s.training);
        channel_grad_input(dinp + c * vd.sc, vd, dout + c * vg.sc, vg, in + c * vx.sc, vx, mean, k.a, k.b, k.c);
    }
    return 0;
}

const lt_batchnorm_impl lt_batchnorm_cpu = {
    .base = {.name = "cpu", .supports = lt_supports_fp32},
    .forward = batchnorm_forward_cpu,
    .backward = batchnorm_backward_cpu,
    .statistics = batchnorm_statistics_cpu,
    .normalize = batchnorm_normalize_cpu,
    .grad_sums = batchnorm_grad_sums_cpu,
    .grad_input = batchnorm_grad_input_cpu,
};
