/* The optimizers' updates and the gradient norm over flat arrays of n floats, with the CPU's semantics
 * (csrc/core/cpu/optim.c): PyTorch's single-tensor SGD (weight decay, momentum, dampening, Nesterov) and
 * Adam / AdamW (L2 or decoupled weight decay, amsgrad with torch.maximum's NaN rule), the same float
 * operations in the same order per element. The switches are template arguments, so that each
 * combination is a branch-free kernel, as the CPU's always-inlined variants.
 *
 * The norm's first contract gives its result in a host double (*acc), so each call ends with a
 * synchronising copy (reduce.cu); its second keeps the sum and the total on the device (clipping in a CUDA
 * graph). Its partial sums have a fixed split for a given n, so the result is deterministic. */
#include <math.h>

#include "parts.cuh"
#include "reduce.cuh"

namespace ltc {

/* An update in a CUDA graph reads its step's coefficients when it runs (optim_ops.h's step values), as
 * lt_*_shape_read does on the host. */
__device__ __forceinline__ void read_step_values(lt_sgd_shape &c) {
    if (c.step_values) c.k = *c.step_values;
}
__device__ __forceinline__ void read_step_values(lt_adam_shape &c) {
    if (c.step_values) c.k = *c.step_values;
}

/* ---- SGD ---- */

template <bool WEIGHT_DECAY, bool MOMENTUM, bool INIT_BUFFER, bool NESTEROV>
__global__ void sgd_kernel(float *p, float *buf, const float *g, lt_sgd_shape c) {
    read_step_values(c);
    LTC_FOR(i, c.n) {
        float d = c.k.grad_sign * g[i];
        if (WEIGHT_DECAY) d = d + c.k.weight_decay * p[i];
        if (MOMENTUM) {
            float b = INIT_BUFFER ? d : buf[i] * c.k.momentum + c.k.one_minus_dampening * d;
            buf[i] = b;
            d = NESTEROV ? d + c.k.momentum * b : b;
        }
        p[i] = p[i] + c.k.neg_lr * d;
    }
}

template <bool WEIGHT_DECAY, bool MOMENTUM, bool INIT_BUFFER, bool NESTEROV>
static void launch_sgd(float *p, float *buf, const float *g, const lt_sgd_shape &c) {
    sgd_kernel<WEIGHT_DECAY, MOMENTUM, INIT_BUFFER, NESTEROV><<<grid_for(c.n), 256, 0, state().stream>>>(p, buf, g, c);
}

/* WEIGHT_DECAY fixed; the momentum switches from the shape */
template <bool WEIGHT_DECAY>
static void sgd_momentum_variants(float *p, float *buf, const float *g, const lt_sgd_shape &c) {
    if (!c.has_momentum)
        launch_sgd<WEIGHT_DECAY, false, false, false>(p, buf, g, c);
    else if (c.init_buffer && c.nesterov)
        launch_sgd<WEIGHT_DECAY, true, true, true>(p, buf, g, c);
    else if (c.init_buffer)
        launch_sgd<WEIGHT_DECAY, true, true, false>(p, buf, g, c);
    else if (c.nesterov)
        launch_sgd<WEIGHT_DECAY, true, false, true>(p, buf, g, c);
    else
        launch_sgd<WEIGHT_DECAY, true, false, false>(p, buf, g, c);
}

static int sgd_step(lt_kernel_ctx *ctx, float *param, float *buf, const float *grad, lt_sgd_shape s) {
    if (s.n <= 0) return 0;
    if (s.has_weight_decay)
        sgd_momentum_variants<true>(param, buf, grad, s);
    else
        sgd_momentum_variants<false>(param, buf, grad, s);
    LTC_LAUNCHED(ctx->err, "sgd_kernel");
    return 0;
}

const lt_sgd_impl sgd_cuda = {{"cuda", supports_fp32, nullptr}, sgd_step};

/* ---- Adam and AdamW ---- */

template <bool L2, bool DECOUPLED, bool AMSGRAD>
__global__ void adam_kernel(float *p, float *m, float *v, float *vmax, const float *g, lt_adam_shape c) {
    read_step_values(c);
    LTC_FOR(i, c.n) {
        float pi = p[i], grad = c.k.grad_sign * g[i];
        if (DECOUPLED) pi = pi * c.k.decay_factor;
        if (L2) grad = grad + c.k.weight_decay * pi;
        float mi = m[i] * c.k.beta1 + c.k.one_minus_beta1 * grad;
        float vi = v[i] * c.k.beta2 + c.k.one_minus_beta2 * (grad * grad);
        m[i] = mi;
        v[i] = vi;
        if (AMSGRAD) {
            float old = vmax[i];
            vi = old >= vi || old != old ? old : vi; /* torch.maximum: NaN wins */
            vmax[i] = vi;
        }
        float denom = sqrtf(vi) / c.k.bias_correction2_sqrt + c.k.eps;
        p[i] = pi + c.k.neg_step_size * (mi / denom);
    }
}

template <bool AMSGRAD>
static void adam_decay_variants(float *p, float *m, float *v, float *vmax, const float *g, const lt_adam_shape &c) {
    unsigned grid = grid_for(c.n);
    cudaStream_t st = state().stream;
    if (c.decoupled)
        adam_kernel<false, true, AMSGRAD><<<grid, 256, 0, st>>>(p, m, v, vmax, g, c);
    else if (c.l2)
        adam_kernel<true, false, AMSGRAD><<<grid, 256, 0, st>>>(p, m, v, vmax, g, c);
    else
        adam_kernel<false, false, AMSGRAD><<<grid, 256, 0, st>>>(p, m, v, vmax, g, c);
}

static int adam_step(lt_kernel_ctx *ctx, float *param, float *exp_avg, float *exp_avg_sq, float *vmax,
                     const float *grad, lt_adam_shape s) {
    if (s.n <= 0) return 0;
    if (s.amsgrad)
        adam_decay_variants<true>(param, exp_avg, exp_avg_sq, vmax, grad, s);
    else
        adam_decay_variants<false>(param, exp_avg, exp_avg_sq, vmax, grad, s);
    LTC_LAUNCHED(ctx->err, "adam_kernel");
    return 0;
}

const lt_adam_impl adam_cuda = {{"cuda", supports_fp32, nullptr}, adam_step};

/* ---- the gradient norm: sum |x|^p (p finite) or max |x| (p infinite) ---- */

__global__ void norm_partials_kernel(double *partials, const float *x, int64_t n, double p) {
    bool max_mode = isinf(p);
    double acc = 0;
    LTC_FOR(i, n) {
        double a = fabs((double)x[i]);
        if (max_mode)
            acc = nan_max(acc, a);
        else
            acc += p == 2.0 ? a * a : p == 1.0 ? a : pow(a, p);
    }
    acc = max_mode ? block_max(acc) : block_sum(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

static int norm_accumulate(lt_kernel_ctx *ctx, double *acc, const float *x, lt_norm_shape s) {
    if (s.n <= 0) return 0;
    bool max_mode = isinf(s.norm_type);
    unsigned blocks = partial_blocks(s.n);
    double *partials = (double *)device_alloc(sizeof(double) * blocks, ctx->err);
    if (!partials) return -1;
    norm_partials_kernel<<<blocks, 256, 0, state().stream>>>(partials, x, s.n, s.norm_type);
    double part = 0;
    int rc =
        launch_check(ctx->err, "norm_partials_kernel") || finish_to_host(ctx->err, &part, partials, blocks, max_mode)
            ? -1
            : 0;
    device_free(partials);
    if (rc) return -1;
    *acc = !max_mode ? *acc + part : (*acc > part || *acc != *acc ? *acc : part);
    return 0;
}

/* The same into a double on the device, and the total norm from it: clipping that waits for nothing
 * (lt_total_norm, a CUDA graph's). */
static int norm_accumulate_on_device(lt_kernel_ctx *ctx, double *acc, const float *x, lt_norm_shape s) {
    if (s.n <= 0) return 0;
    unsigned blocks = partial_blocks(s.n);
    double *partials = (double *)device_alloc(sizeof(double) * blocks, ctx->err);
    if (!partials) return -1;
    norm_partials_kernel<<<blocks, 256, 0, state().stream>>>(partials, x, s.n, s.norm_type);
    int rc = launch_check(ctx->err, "norm_partials_kernel") ||
                     combine_on_device(ctx->err, acc, partials, blocks, isinf(s.norm_type))
                 ? -1
                 : 0;
    device_free(partials);
    return rc;
}

/* lt_norm_finish's rule, on the device */
__global__ void norm_finish_kernel(float *total, const double *acc, double p) {
    double a = *acc;
    *total = (float)(isinf(p) || p == 1.0 ? a : p == 2.0 ? sqrt(a) : pow(a, 1.0 / p));
}

static int norm_finish_on_device(lt_kernel_ctx *ctx, float *total, const double *acc, double norm_type) {
    norm_finish_kernel<<<1, 1, 0, state().stream>>>(total, acc, norm_type);
    LTC_LAUNCHED(ctx->err, "norm_finish_kernel");
    return 0;
}

const lt_norm_impl grad_norm_cuda = {{"cuda", supports_fp32, nullptr}, norm_accumulate, norm_accumulate_on_device,
                                     norm_finish_on_device};

}  // namespace ltc
