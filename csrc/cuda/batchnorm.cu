/* Batch normalisation over (N, C, ...) inputs, per channel, with the CPU's semantics
 * (csrc/core/cpu/batchnorm.c): a channel's elements are n runs of `inner` contiguous floats found
 * through each tensor's batch and channel strides; statistics in double about the channel's first
 * element; save_mean / save_invstd written in both modes; running statistics updated with momentum (or
 * the cumulative average) and the unbiased variance; parameter gradients accumulated.
 *
 * A pass is three kernels: the channels' sums in parts (bn_stats.cu for the forward pass's moments, here
 * for the gradient's), a thread per channel that turns them into the channel's transform (bn_stats.cu),
 * and an elementwise kernel that applies it. The split for a reduction between processes (statistics /
 * normalize / grad_sums / grad_input) takes and gives its sums in host memory, as the core's front
 * passes them (they go to MPI): the sums come back through a synchronising copy. */
#include "bn_math.cuh"
#include "parts.cuh"

namespace ltc {

enum { GRAD_THREADS = 256 };

__global__ void bn_apply_kernel(float *out, const float *in, const bn_affine *aff, lt_batchnorm_shape s) {
    int64_t count = s.n * s.inner;
    LTC_FOR(i, s.c * count) {
        int64_t c = i / count, e = i % count;
        bn_affine t = aff[c];
        out[c * s.y.sc + run_at(e, s.inner, s.y.sn)] = in[c * s.x.sc + run_at(e, s.inner, s.x.sn)] * t.scale + t.shift;
    }
}

/* Block (c, q): sum(dy) and sum(dy * (x - mean)) over part q of channel c. */
__global__ void bn_grad_parts_kernel(double *part_sums, const float *dout, const float *in, const float *save_mean,
                                     lt_batchnorm_shape s, int parts) {
    int64_t c = blockIdx.x / parts, begin, end;
    part_range(s.n * s.inner, parts, (int)(blockIdx.x % parts), &begin, &end);
    const float *x = in + c * s.x.sc, *g = dout + c * s.dy.sc;
    float mean = save_mean[c];
    double sum_dy = 0, sum_dy_xc = 0;
    for (int64_t e = begin + threadIdx.x; e < end; e += blockDim.x) {
        double gv = g[run_at(e, s.inner, s.dy.sn)];
        sum_dy += gv;
        sum_dy_xc += gv * (double)(x[run_at(e, s.inner, s.x.sn)] - mean);
    }
    block_sum2(sum_dy, sum_dy_xc);
    if (threadIdx.x == 0) {
        part_sums[2 * blockIdx.x] = sum_dy;
        part_sums[2 * blockIdx.x + 1] = sum_dy_xc;
    }
}

__global__ void bn_grad_apply_kernel(float *dinp, const float *dout, const float *in, const bn_grad *k,
                                     const float *save_mean, lt_batchnorm_shape s) {
    int64_t count = s.n * s.inner;
    LTC_FOR(i, s.c * count) {
        int64_t c = i / count, e = i % count;
        dinp[c * s.dx.sc + run_at(e, s.inner, s.dx.sn)] =
            bn_dx(k[c], dout[c * s.dy.sc + run_at(e, s.inner, s.dy.sn)], in[c * s.x.sc + run_at(e, s.inner, s.x.sn)],
                  save_mean[c]);
    }
}

/* ---- host side ---- */

static bool empty(const lt_batchnorm_shape &s) { return s.c * s.n * s.inner == 0; }

/* A device copy of n host doubles (the caller frees it). */
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
    return wait_for_stream(err);
}

/* The forward pass with the batch's statistics (given NULL) or added sums (device, over count). */
static int forward_with(lt_error *err, float *out, const float *in, lt_bn_vectors v, lt_batchnorm_shape s,
                        lt_batchnorm_params p, const double *given, int64_t count) {
    bn_affine *aff = (bn_affine *)device_alloc(sizeof(bn_affine) * (size_t)s.c, err);
    if (!aff) return -1;
    int rc = bn_forward_stats(err, aff, in, chan_view_of(s.n, s.inner, s.x), s.c, v, p, given, count);
    if (!rc) {
        bn_apply_kernel<<<grid_for(s.c * s.n * s.inner), 256, 0, state().stream>>>(out, in, aff, s);
        rc = launch_check(err, "bn_apply_kernel");
    }
    device_free(aff);
    return rc;
}

/* The backward pass: the gradient's sums from the batch (given NULL: dweight, dbias accumulate,
 * out_sums gets them when not NULL) or added ones (device, over count); the input gradient when dinp. */
static int backward_with(lt_error *err, float *dinp, float *dweight, float *dbias, double *out_sums, const float *dout,
                         const float *in, lt_bn_vectors v, lt_batchnorm_shape s, const double *given, int64_t count) {
    int parts = given ? 0 : bn_parts(s.c, s.n * s.inner);
    bn_grad_scratch scratch;
    if (scratch.make(err, s.c, parts, false)) return -1;
    bn_grad *k = scratch.k;
    double *part_sums = scratch.part_sums;
    int rc = 0;
    if (parts) {
        bn_grad_parts_kernel<<<(unsigned)(s.c * parts), GRAD_THREADS, 0, state().stream>>>(part_sums, dout, in,
                                                                                           v.save_mean, s, parts);
        rc = launch_check(err, "bn_grad_parts_kernel");
    }
    if (!rc)
        rc = bn_backward_coefficients(err, k, part_sums, parts, given, count, s.c, dweight, dbias, out_sums, v,
                                      s.training);
    if (!rc && dinp) {
        bn_grad_apply_kernel<<<grid_for(s.c * s.n * s.inner), 256, 0, state().stream>>>(dinp, dout, in, k, v.save_mean,
                                                                                        s);
        rc = launch_check(err, "bn_grad_apply_kernel");
    }
    return rc;
}

static int batchnorm_forward(lt_kernel_ctx *ctx, float *out, const float *in, lt_bn_vectors v, lt_batchnorm_shape s,
                             lt_batchnorm_params p) {
    if (empty(s)) return 0; /* the front passes none */
    return forward_with(ctx->err, out, in, v, s, p, nullptr, s.n * s.inner);
}

static int batchnorm_backward(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *in, lt_bn_vectors v, lt_batchnorm_shape s) {
    if (empty(s)) return 0;
    return backward_with(ctx->err, dinp, dweight, dbias, nullptr, dout, in, v, s, nullptr, s.n * s.inner);
}

static int batchnorm_statistics(lt_kernel_ctx *ctx, double *sums, const float *in, lt_batchnorm_shape s) {
    sums[2 * s.c] = (double)(s.n * s.inner);
    if (empty(s)) { /* nothing to sum (and no first element to sum about) */
        for (int64_t i = 0; i < 2 * s.c; i++) sums[i] = 0;
        return 0;
    }
    double *dev = (double *)device_alloc(sizeof(double) * (size_t)(2 * s.c), ctx->err);
    if (!dev) return -1;
    int rc =
        bn_sums(ctx->err, dev, in, chan_view_of(s.n, s.inner, s.x), s.c) || sums_to_host(sums, dev, 2 * s.c, ctx->err)
            ? -1
            : 0;
    device_free(dev);
    return rc;
}

static int batchnorm_normalize(lt_kernel_ctx *ctx, float *out, const float *in, const double *sums, lt_bn_vectors v,
                               lt_batchnorm_shape s, lt_batchnorm_params p) {
    if (empty(s)) return 0;
    double *dev = sums_to_device(sums, 2 * s.c, ctx->err);
    if (!dev) return -1;
    int rc = forward_with(ctx->err, out, in, v, s, p, dev, (int64_t)sums[2 * s.c]);
    device_free(dev);
    return rc;
}

static int batchnorm_grad_sums(lt_kernel_ctx *ctx, double *sums, float *dweight, float *dbias, const float *dout,
                               const float *in, lt_bn_vectors v, lt_batchnorm_shape s) {
    if (empty(s)) {
        for (int64_t i = 0; i < 2 * s.c; i++) sums[i] = 0;
        return 0;
    }
    double *dev = (double *)device_alloc(sizeof(double) * (size_t)(2 * s.c), ctx->err);
    if (!dev) return -1;
    int rc = backward_with(ctx->err, nullptr, dweight, dbias, dev, dout, in, v, s, nullptr, s.n * s.inner) ||
                     sums_to_host(sums, dev, 2 * s.c, ctx->err)
                 ? -1
                 : 0;
    device_free(dev);
    return rc;
}

static int batchnorm_grad_input(lt_kernel_ctx *ctx, float *dinp, const double *sums, int64_t count, const float *dout,
                                const float *in, lt_bn_vectors v, lt_batchnorm_shape s) {
    if (empty(s)) return 0;
    double *dev = sums_to_device(sums, 2 * s.c, ctx->err);
    if (!dev) return -1;
    int rc = backward_with(ctx->err, dinp, nullptr, nullptr, nullptr, dout, in, v, s, dev, count);
    device_free(dev);
    return rc;
}

/* a block per part of a channel: C * parts blocks in a grid of at most 2^31 - 1 */
static bool batchnorm_supports(const lt_impl *self, const void *shape, lt_precision p) {
    return p == LT_FP32 && ((const lt_batchnorm_shape *)shape)->c <= (1 << 22);
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
