/* Optimizer kernels: one fused pass per parameter tensor (PyTorch 1.13's single-tensor SGD, Adam and
 * AdamW, element for element), and gradient norms over many tensors for clipping. The front (optim.c)
 * checks the tensors and derives the step's coefficients; the arithmetic is in csrc/core/cpu/optim.c
 * (optim_ops.h is the contract). The state tensors (momentum buffer, moments) belong to the caller,
 * which allocates them once, at a parameter's first step. Every tensor a step touches must be
 * contiguous and have the parameter's shape. */
#ifndef LT_OPTIM_H
#define LT_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "../tensor/tensor.h"
#include "optim_ops.h"

typedef struct lt_sgd_options {
    double lr, momentum, dampening, weight_decay;
    bool nesterov, maximize;
} lt_sgd_options;

/* param -= lr * d, where d is the gradient (negated when maximize, plus weight_decay * param) or,
 * with momentum, the buffer: buf = momentum * buf + (1 - dampening) * d, or buf = d when
 * init_buffer (the parameter's first step with momentum). */
typedef struct lt_sgd_args {
    lt_tensor *param;
    lt_tensor *momentum_buffer;  /* NULL when momentum == 0 */
    const lt_tensor *grad;
    bool init_buffer;
    lt_sgd_options o;
    /* NULL, or LT_STEP_VALUES float32 on the parameter's device from which the update reads its
     * coefficients when it runs, as lt_sgd_step_values writes them: what an update in a CUDA graph needs */
    const lt_tensor *step_values;
} lt_sgd_args;

int lt_sgd_step(const lt_sgd_args *a, lt_error *err);
/* A step's coefficients (the step values of an update in a CUDA graph, LT_STEP_VALUES floats a row). */
void lt_sgd_step_values(const lt_sgd_options *o, lt_sgd_coefficients *out);

typedef struct lt_adam_options {
    double lr, beta1, beta2, eps, weight_decay;
    bool amsgrad, maximize;
    bool decoupled_weight_decay;  /* AdamW: param *= 1 - lr * weight_decay; Adam: grad += weight_decay * param */
} lt_adam_options;

/* One Adam/AdamW step; `step` counts this step (1 at the first). */
typedef struct lt_adam_args {
    lt_tensor *param, *exp_avg, *exp_avg_sq;
    lt_tensor *max_exp_avg_sq;  /* used, and required, only with amsgrad */
    const lt_tensor *grad;
    int64_t step;
    lt_adam_options o;
    const lt_tensor *step_values;  /* as lt_sgd_args': its coefficients, as lt_adam_step_values writes them */
} lt_adam_args;

int lt_adam_step(const lt_adam_args *a, lt_error *err);
int lt_adam_step_values(const lt_adam_options *o, int64_t step, lt_adam_coefficients *out, lt_error *err);

/* Gradient norms over many tensors, as if they were concatenated: start with acc = 0, add each
 * tensor, then finish. norm_type > 0, INFINITY for the largest absolute value (NaN propagates). */
int lt_norm_accumulate(double *acc, const lt_tensor *t, double norm_type, lt_error *err);
double lt_norm_finish(double acc, double norm_type);

/* The same total norm of n tensors as a one-element float32 tensor on their device, made in *total
 * (PyTorch's torch.nn.utils.get_total_norm): on a GPU nothing waits for it, so a CUDA graph can hold it. */
int lt_total_norm(lt_tensor *total, const lt_tensor *const *ts, int n, double norm_type, lt_error *err);
/* Every tensor scaled by min(1, max_norm / (total + 1e-6)), total a one-element tensor on their device
 * (a NaN total scales them to NaN: PyTorch's clamp lets it through), computed in float32 where the
 * tensors are (PyTorch's clip_grads_with_norm_). NULL entries are skipped. */
int lt_clip_with_norm(lt_tensor *const *ts, int n, double max_norm, const lt_tensor *total, lt_error *err);

#endif
