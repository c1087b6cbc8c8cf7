/* Batch normalisation over (N, C, ...) inputs, per channel, with the CPU's semantics
 * (csrc/core/cpu/batchnorm.c): a channel's elements are n runs of `inner` contiguous floats found
 * through each tensor's batch and channel strides; statistics in double about the channel's first
 * element; save_mean / save_invstd written in both modes; running statistics updated with momentum (or
 * the cumulative average) and the unbiased variance; parameter gradients accumulated.
 *
 * One block per channel: it reduces the channel, then normalises it (or computes its input gradient)
 * with the result, so a pass is one kernel. The split for a reduction between processes
 * (statistics / normalize / grad_sums / grad_input) takes and gives its sums in host memory, as the
 * core's front passes them (they go to MPI): the sums come back through a synchronising copy. */
#include "bn_math.cuh"
#include "parts.cuh"

namespace ltc {

enum { BN_THREADS = 512 };

/* The forward pass of channel blockIdx.x: statistics from the batch (sums NULL), from sums added over
 * processes (device copy, count elements), or the running ones (evaluation); saved; normalisation. */
__global__ void bn_forward_kernel(float *out, const float *in, lt_bn_vectors v, lt_batchnorm_shape s,
                                  lt_batchnorm_params p, const double *sums, int64_t count) {
    int64_t c = blockIdx.x;
    const float *x = in + c * s.x.sc;
    float *y = out + c * s.y.sc;
    int64_t m = s.n * s.inner;
    __shared__ bn_affine t;
    if (p.training && !sums) {
        double shift = x[0], sum, sumsq;
        channel_moments(x, m, s.inner, s.x.sn, shift, sum, sumsq);
        if (threadIdx.x == 0) {
            double dmean = sum / (double)count;
            t = bn_from_batch(shift + dmean, sumsq / (double)count - dmean * dmean, c, count, v, p);
        }
    } else if (threadIdx.x == 0) {
        if (!p.training) {
            t = bn_from_running(c, v, p);
        } else {
            double mean = sums[c] / (double)count;
            t = bn_from_batch(mean, sums[s.c + c] / (double)count - mean * mean, c, count, v, p);
        }
    }
    if (threadIdx.x == 0) {
        v.save_mean[c] = t.mean;
        v.save_invstd[c] = t.invstd;
    }
    __syncthreads();
    bn_affine a = t;
    for (int64_t e = threadIdx.x; e < m; e += blockDim.x)
        y[run_at(e, s.inner, s.y.sn)] = x[run_at(e, s.inner, s.x.sn)] * a.scale + a.shift;
}

/* sums[c] = sum of x, sums[C + c] = sum of x^2 (device), from the moments about the first element. */
__global__ void bn_statistics_kernel(double *sums, const float *in, lt_batchnorm_shape s) {
    int64_t c = blockIdx.x, count = s.n * s.inner;
    const float *x = in + c * s.x.sc;
    double shift = x[0], sum, sumsq;
    channel_moments(x, count, s.inner, s.x.sn, shift, sum, sumsq);
    if (threadIdx.x == 0) {
        sums[c] = (double)count * shift + sum;
        sums[s.c + c] = sumsq + 2 * shift * sum + (double)count * shift * shift;
    }
}

/* The backward pass of channel blockIdx.x: sum(dy) and sum(dy * (x - mean)) from the batch (given NULL;
 * then dweight, dbias accumulate and out_sums, when given, gets them) or added over processes (given,
 * over count elements); then, when dinp is given, the input gradient. */
__global__ void bn_backward_kernel(float *dinp, float *dweight, float *dbias, const float *dout, const float *in,
                                   lt_bn_vectors v, lt_batchnorm_shape s, const double *given, int64_t count,
                                   double *out_sums) {
    int64_t c = blockIdx.x, m = s.n * s.inner;
    const float *x = in + c * s.x.sc, *g = dout + c * s.dy.sc;
    float mean = v.save_mean[c], invstd = v.save_invstd[c], gamma = v.weight ? v.weight[c] : 1.0f;
    double sum_dy, sum_dy_xc;
    if (given) {
        sum_dy = given[c];
        sum_dy_xc = given[s.c + c];
    } else {
        sum_dy = 0;
        sum_dy_xc = 0;
        for (int64_t e = threadIdx.x; e < m; e += blockDim.x) {
            double gv = g[run_at(e, s.inner, s.dy.sn)];
            sum_dy += gv;
            sum_dy_xc += gv * (double)(x[run_at(e, s.inner, s.x.sn)] - mean);
        }
        block_sum2(sum_dy, sum_dy_xc);
        if (threadIdx.x == 0) {
            if (dweight) dweight[c] += (float)(sum_dy_xc * invstd);
            if (dbias) dbias[c] += (float)sum_dy;
            if (out_sums) {
                out_sums[c] = sum_dy;
                out_sums[s.c + c] = sum_dy_xc;
            }
        }
    }
    if (!dinp) return;
    bn_grad k = bn_grad_of(sum_dy, sum_dy_xc, count, gamma, invstd, s.training);
    float *d = dinp + c * s.dx.sc;
    for (int64_t e = threadIdx.x; e < m; e += blockDim.x)
        d[run_at(e, s.inner, s.dx.sn)] = bn_dx(k, g[run_at(e, s.inner, s.dy.sn)], x[run_at(e, s.inner, s.x.sn)], mean);
}

/* ---- host side ---- */

/* A device copy of n host doubles (the caller frees it), or the reverse. */
static double *sums_to_device(const double *host, int64_t n, lt_error *err) {
    double *dev = (double *)device_alloc(sizeof(double) * (size_t)n, err);
    if (!dev) return nullptr;
    cudaError_t e = cudaMemcpyAsync(dev, host, sizeof(double) * (size_t)n, cudaMemcpyHostToDevice, state().stream);
    if (e != cudaSuccess) {
        device_free(dev);
        cuda_fail(err, e, "cudaMemcpyAsync");
        return nullptr;
    }
    return dev;
}

static int sums_to_host(double *host, const double *dev, int64_t n, lt_error *err) {
    LTC_CUDA(err, cudaMemcpyAsync(host, dev, sizeof(double) * (size_t)n, cudaMemcpyDeviceToHost, state().stream));
    LTC_CUDA(err, cudaStreamSynchronize(state().stream));
    return 0;
}

static int batchnorm_forward(lt_kernel_ctx *ctx, float *out, const float *in, lt_bn_vectors v, lt_batchnorm_shape s,
                             lt_batchnorm_params p) {
    if (s.c * s.n * s.inner == 0) return 0;  /* the front passes none; a launch of 0 blocks would fail */
    bn_forward_kernel<<<(unsigned)s.c, BN_THREADS, 0, state().stream>>>(out, in, v, s, p, nullptr, s.n * s.inner);
    LTC_LAUNCHED(ctx->err, "bn_forward_kernel");
    return 0;
}

static int batchnorm_backward(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *in, lt_bn_vectors v, lt_batchnorm_shape s) {
    if (s.c * s.n * s.inner == 0) return 0;
    bn_backward_kernel<<<(unsigned)s.c, BN_THREADS, 0, state().stream>>>(dinp, dweight, dbias, dout, in, v, s, nullptr,
                                                                         s.n * s.inner, nullptr);
    LTC_LAUNCHED(ctx->err, "bn_backward_kernel");
    return 0;
}

static int batchnorm_statistics(lt_kernel_ctx *ctx, double *sums, const float *in, lt_batchnorm_shape s) {
    double *dev = (double *)device_alloc(sizeof(double) * (size_t)(2 * s.c), ctx->err);
    if (!dev) return -1;
    bn_statistics_kernel<<<(unsigned)s.c, BN_THREADS, 0, state().stream>>>(dev, in, s);
    int rc = launch_check(ctx->err, "bn_statistics_kernel") || sums_to_host(sums, dev, 2 * s.c, ctx->err) ? -1 : 0;
    device_free(dev);
    sums[2 * s.c] = (double)(s.n * s.inner);
    return rc;
}

static int batchnorm_normalize(lt_kernel_ctx *ctx, float *out, const float *in, const double *sums, lt_bn_vectors v,
                               lt_batchnorm_shape s, lt_batchnorm_params p) {
    double *dev = sums_to_device(sums, 2 * s.c, ctx->err);
    if (!dev) return -1;
    bn_forward_kernel<<<(unsigned)s.c, BN_THREADS, 0, state().stream>>>(out, in, v, s, p, dev, (int64_t)sums[2 * s.c]);
    device_free(dev);
    LTC_LAUNCHED(ctx->err, "bn_forward_kernel");
    return 0;
}

static int batchnorm_grad_sums(lt_kernel_ctx *ctx, double *sums, float *dweight, float *dbias, const float *dout,
                               const float *in, lt_bn_vectors v, lt_batchnorm_shape s) {
    double *dev = (double *)device_alloc(sizeof(double) * (size_t)(2 * s.c), ctx->err);
    if (!dev) return -1;
    bn_backward_kernel<<<(unsigned)s.c, BN_THREADS, 0, state().stream>>>(nullptr, dweight, dbias, dout, in, v, s, nullptr,
                                                                         s.n * s.inner, dev);
    int rc = launch_check(ctx->err, "bn_backward_kernel") || sums_to_host(sums, dev, 2 * s.c, ctx->err) ? -1 : 0;
    device_free(dev);
    return rc;
}

static int batchnorm_grad_input(lt_kernel_ctx *ctx, float *dinp, const double *sums, int64_t count, const float *dout,
                                const float *in, lt_bn_vectors v, lt_batchnorm_shape s) {
    double *dev = sums_to_device(sums, 2 * s.c, ctx->err);
    if (!dev) return -1;
    bn_backward_kernel<<<(unsigned)s.c, BN_THREADS, 0, state().stream>>>(dinp, nullptr, nullptr, dout, in, v, s, dev,
                                                                         count, nullptr);
    device_free(dev);
    LTC_LAUNCHED(ctx->err, "bn_backward_kernel");
    return 0;
}

/* one block per channel: a grid of at most 2^31 - 1 */
static bool batchnorm_supports(const lt_impl *self, const void *shape, lt_precision p) {
    return p == LT_FP32 && ((const lt_batchnorm_shape *)shape)->c <= INT32_MAX;
}

const lt_batchnorm_impl batchnorm_cuda = {
    {"cuda", batchnorm_supports, nullptr},
    batchnorm_forward,
    batchnorm_backward,
    batchnorm_statistics,
    batchnorm_normalize,
    batchnorm_grad_sums,
    batchnorm_grad_input,
};

}  // namespace ltc
