/* The losses, with the CPU's definitions (csrc/core/cpu/loss.c), sums in double:
 *   cross entropy = log-softmax (softmax.cu) + NLL, with label smoothing (PyTorch 1.13's form), class
 *   weights, ignore_index and the three reductions; NLL of given log-probabilities; mean squared error.
 * Targets hold 1-based classes as floats.
 *
 * Nothing waits for the GPU: the reduced loss is written on the device, and an invalid target makes it
 * NaN and is reported, with the CPU's message, at the host's next wait (common.cuh, deferred_error).
 * The backward passes recompute the totals on the device, give an invalid target a zero gradient row,
 * and read autograd's gradient of the loss where it is (dscale). */
#include <math.h>

#include "parts.cuh"
#include "reduce.cuh"
#include "softmax.cuh"

namespace ltc {

/* What a pass needs summed over the batch. */
struct class_totals {
    double total_w; /* the counted targets' weights: mean reduction's normaliser */
    double nll_sum, smooth_sum;
    double wsum;       /* sum of all class weights */
    long long counted; /* targets not ignored */
    long long bad;     /* the first invalid target's position, or -1 */
    float bad_value;
};

/* Target i as a 0-based class; -1 for the ignored class, -2 for an invalid one. */
__device__ __forceinline__ int64_t class_of(const float *target, int64_t i, const lt_class_loss_shape &s) {
    float v = target[i];
    if (v != floorf(v) || !(v >= 1 && v <= (float)s.classes))
        return s.ignore_index >= 0 && v == (float)(s.ignore_index + 1) ? -1 : -2;
    int64_t k = (int64_t)v - 1;
    return k == s.ignore_index ? -1 : k;
}

__device__ __forceinline__ float weight_of(const float *weight, int64_t k) { return weight ? weight[k] : 1.0f; }

enum { ROWS_PER_BLOCK = 8 }; /* a warp per sample */

/* Sample i's loss (1 - e) * nll + e / K * smooth into losses[i], its nll and smooth terms into terms. */
__global__ void class_rows_kernel(float *losses, double *terms, const float *lp, const float *target,
                                  const float *weight, lt_class_loss_shape s) {
    int64_t i = (int64_t)blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (i >= s.batch) return; /* the whole warp leaves together */
    int64_t y = class_of(target, i, s);
    const float *row = lp + i * s.classes;
    double smooth = 0;
    if (y >= 0 && s.label_smoothing > 0)
        for (int64_t k = lane; k < s.classes; k += 32) smooth -= (double)weight_of(weight, k) * row[k];
    smooth = warp_sum(smooth);
    if (lane != 0) return;
    double nll = y >= 0 ? -(double)weight_of(weight, y) * row[y] : 0.0, eps = s.label_smoothing;
    if (losses) losses[i] = y >= 0 ? (float)((1 - eps) * nll + eps / (double)s.classes * smooth) : 0.0f;
    terms[2 * i] = nll;
    terms[2 * i + 1] = smooth;
}

/* The reduced loss from the totals (NaN when a target is invalid). */
__device__ float reduced_loss(const class_totals &t, const float *weight, lt_class_loss_shape s) {
    if (t.bad >= 0) return NAN;
    double eps = s.label_smoothing, K = (double)s.classes;
    if (s.reduction == LT_REDUCE_MEAN)
        return (float)((1 - eps) * t.nll_sum / t.total_w + eps / K * t.smooth_sum / (weight ? t.total_w : (double)t.counted));
    return (float)((1 - eps) * t.nll_sum + eps / K * t.smooth_sum);
}

/* One block: the totals, the terms' sums (terms NULL: none) and the first invalid target. A forward pass
 * (deferred given) reports that target at the host's next wait, and writes the reduced loss into *loss
 * when not NULL (reduction mean or sum). */
__global__ void class_totals_kernel(class_totals *out, float *loss, deferred_error *deferred, const double *terms,
                                    const float *target, const float *weight, lt_class_loss_shape s, int op) {
    __shared__ unsigned long long first_bad;
    if (threadIdx.x == 0) first_bad = ~0ULL;
    __syncthreads();
    double total_w = 0, counted = 0, nll = 0, smooth = 0, wsum = 0;
    for (int64_t i = threadIdx.x; i < s.batch; i += blockDim.x) {
        int64_t k = class_of(target, i, s);
        if (k == -2) atomicMin(&first_bad, (unsigned long long)i);
        if (k >= 0) {
            total_w += weight_of(weight, k);
            counted += 1;
        }
        if (terms) {
            nll += terms[2 * i];
            smooth += terms[2 * i + 1];
        }
    }
    for (int64_t k = threadIdx.x; k < s.classes; k += blockDim.x) wsum += weight_of(weight, k);
    block_sum2(total_w, counted);
    block_sum2(nll, smooth);
    wsum = block_sum(wsum);
    if (threadIdx.x != 0) return;
    long long bad = first_bad == ~0ULL ? -1 : (long long)first_bad;
    *out = {total_w, nll, smooth, wsum, (long long)counted, bad, bad >= 0 ? target[bad] : 0.0f};
    if (bad >= 0 && deferred) defer_bad_target(deferred, op, bad, target[bad], s.classes);
    if (loss) *loss = reduced_loss(*out, weight, s);
}

/* d loss / d scores (through_softmax: cross entropy) or d loss / d log-probabilities (NLL), scaled. */
__global__ void class_grad_kernel(float *grad, const float *lp, const float *target, const float *weight,
                                  const float *dout, const float *dscale, double scale, const class_totals *tot,
                                  lt_class_loss_shape s, bool through_softmax) {
    int64_t K = s.classes;
    double eps = s.label_smoothing;
    bool mean = s.reduction == LT_REDUCE_MEAN;
    double nll_scale = mean ? 1.0 / tot->total_w : 1.0;
    double smooth_scale = mean ? 1.0 / (weight ? tot->total_w : (double)tot->counted) : 1.0;
    if (dscale) scale *= (double)*dscale;
    LTC_FOR(e, s.batch * K) {
        int64_t i = e / K, k = e % K, y = class_of(target, i, s);
        if (y < 0) {
            grad[e] = 0.0f;
            continue;
        }
        double sc = s.reduction == LT_REDUCE_NONE ? (double)dout[i] : scale;
        double a = (1 - eps) * weight_of(weight, y) * nll_scale * sc; /* coefficient of -lp[y] */
        double b = eps / (double)K * smooth_scale * sc;               /* of -sum_k w_k lp[k] */
        double v;
        if (through_softmax) { /* d(-lp[j])/dz_k = p_k - [j == k] */
            double p = exp((double)lp[e]);
            v = a * p + b * (tot->wsum * p - weight_of(weight, k));
        } else {
            v = -b * weight_of(weight, k);
        }
        if (k == y) v -= a;
        grad[e] = (float)v;
    }
}

/* ---- host side ---- */

static int class_forward(lt_kernel_ctx *ctx, float *loss, float *losses, float *log_probs, const float *scores,
                         const float *target, const float *weight, lt_class_loss_shape s, bool softmax) {
    lt_error *err = ctx->err;
    int64_t B = s.batch, K = s.classes;
    if (softmax && B * K > 0 && softmax_run(err, log_probs, scores, {B, K, 1, true})) return -1;
    /* the totals, then the terms (2 per sample) in one allocation */
    char *buf = (char *)device_alloc(sizeof(class_totals) + sizeof(double) * (size_t)(2 * B), err);
    if (!buf) return -1;
    class_totals *tot = (class_totals *)buf;
    double *terms = (double *)(buf + sizeof(class_totals));
    int rc = 0;
    if (B > 0) {
        class_rows_kernel<<<(unsigned)((B + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK, 0,
                            state().stream>>>(losses, terms, log_probs, target, weight, s);
        rc = launch_check(err, "class_rows_kernel");
    }
    if (!rc) {
        class_totals_kernel<<<1, 1024, 0, state().stream>>>(tot, loss, deferred_on_device(), terms, target, weight,
                                                            s, softmax ? DEFERRED_CROSS_ENTROPY : DEFERRED_NLL_LOSS);
        rc = launch_check(err, "class_totals_kernel");
    }
    device_free(buf);
    return rc;
}

static int class_backward(lt_kernel_ctx *ctx, float *dinp, const float *log_probs, const float *target,
                          const float *weight, const float *dout, const float *dscale, double scale,
                          lt_class_loss_shape s, bool softmax) {
    int64_t n = s.batch * s.classes;
    if (n <= 0) return 0;
    class_totals *tot = (class_totals *)device_alloc(sizeof(class_totals), ctx->err);
    if (!tot) return -1;
    class_totals_kernel<<<1, 1024, 0, state().stream>>>(tot, nullptr, nullptr, nullptr, target, weight, s, 0);
    int rc = launch_check(ctx->err, "class_totals_kernel");
    if (!rc) {
        class_grad_kernel<<<grid_for(n), 256, 0, state().stream>>>(dinp, log_probs, target, weight, dout, dscale, scale,
                                                                   tot, s, softmax);
        rc = launch_check(ctx->err, "class_grad_kernel");
    }
    device_free(tot);
    return rc;
}

static int cross_entropy_forward(lt_kernel_ctx *ctx, float *loss, float *losses, float *log_probs, const float *scores,
                                 const float *target, const float *weight, lt_class_loss_shape s) {
    return class_forward(ctx, loss, losses, log_probs, scores, target, weight, s, true);
}

static int cross_entropy_backward(lt_kernel_ctx *ctx, float *dinp, const float *log_probs, const float *target,
                                  const float *weight, const float *dout, const float *dscale, double scale,
                                  lt_class_loss_shape s) {
    return class_backward(ctx, dinp, log_probs, target, weight, dout, dscale, scale, s, true);
}

static int nll_loss_forward(lt_kernel_ctx *ctx, float *loss, float *losses, float *log_probs, const float *scores,
                            const float *target, const float *weight, lt_class_loss_shape s) {
    return class_forward(ctx, loss, losses, log_probs, scores, target, weight, s, false);
}

static int nll_loss_backward(lt_kernel_ctx *ctx, float *dinp, const float *log_probs, const float *target,
                             const float *weight, const float *dout, const float *dscale, double scale,
                             lt_class_loss_shape s) {
    return class_backward(ctx, dinp, log_probs, target, weight, dout, dscale, scale, s, false);
}

static bool class_loss_supports(const lt_impl *self, const void *shape, lt_precision p) {
    return p == LT_FP32 && ((const lt_class_loss_shape *)shape)->batch / ROWS_PER_BLOCK < INT32_MAX;
}

const lt_class_loss_impl cross_entropy_cuda = {
    {"cuda", class_loss_supports, nullptr}, cross_entropy_forward, cross_entropy_backward};
const lt_class_loss_impl nll_loss_cuda = {{"cuda", class_loss_supports, nullptr}, nll_loss_forward, nll_loss_backward};

/* ---- mean squared error ---- */

__global__ void mse_kernel(double *partials, float *losses, const float *in, const float *target, int64_t n) {
    double acc = 0;
    LTC_FOR(i, n) {
        float d = in[i] - target[i];
        if (losses) losses[i] = d * d;
        acc += (double)d * d;
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void mse_grad_kernel(float *dinp, const float *in, const float *target, const float *dout,
                                const float *dscale, double k, int64_t n) {
    if (dscale) k *= (double)*dscale;
    LTC_FOR(i, n) {
        double d = (double)in[i] - target[i];
        dinp[i] = (float)(k * d * (dout ? (double)dout[i] : 1.0));
    }
}

static int mse_forward(lt_kernel_ctx *ctx, float *loss, float *losses, const float *in, const float *target,
                       lt_mse_shape s) {
    unsigned blocks = s.n > 0 ? partial_blocks(s.n) : 0;
    double *partials = (double *)device_alloc(sizeof(double) * (blocks ? blocks : 1), ctx->err);
    if (!partials) return -1;
    int rc = 0;
    if (blocks) {
        mse_kernel<<<blocks, 256, 0, state().stream>>>(partials, losses, in, target, s.n);
        rc = launch_check(ctx->err, "mse_kernel");
    }
    /* mean of no elements: 0 times infinity, NaN as the CPU's 0 / 0 */
    if (!rc && loss)
        rc = finish_on_device(ctx->err, loss, s.reduction == LT_REDUCE_MEAN ? 1.0 / (double)s.n : 1.0, partials, blocks);
    device_free(partials);
    return rc;
}

static int mse_backward(lt_kernel_ctx *ctx, float *dinp, const float *in, const float *target, const float *dout,
                        const float *dscale, double scale, lt_mse_shape s) {
    if (s.n <= 0) return 0;
    double k = 2.0 * scale / (s.reduction == LT_REDUCE_MEAN ? (double)s.n : 1.0);
    mse_grad_kernel<<<grid_for(s.n), 256, 0, state().stream>>>(dinp, in, target, dout, dscale, k, s.n);
    LTC_LAUNCHED(ctx->err, "mse_grad_kernel");
    return 0;
}

const lt_mse_impl mse_loss_cuda = {{"cuda", supports_fp32, nullptr}, mse_forward, mse_backward};

}  // namespace ltc
