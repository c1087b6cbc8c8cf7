/* The contract between the optimizer fronts (optim.c) and their implementations (csrc/core/cpu/optim.c;
 * kernel.h explains the tables). Implementations see flat arrays of n floats. The contract stands
 * below the fronts: it does not include optim.h, whose front calls the implementations. */
#ifndef LT_OPTIM_OPS_H
#define LT_OPTIM_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "../kernel/kernel.h"

/* A step's coefficients (the floats it computes with, which the learning rate, the step count and a
 * schedule's momentum change from step to step) can be read by the update when it runs, from memory on
 * the parameter's device, instead of from its shape: a CUDA graph's launch runs the update captured
 * earlier, and the host writes that step's coefficients before each launch (optim.h's
 * lt_*_step_values). There they take a row of LT_STEP_VALUES floats. */
#define LT_STEP_VALUES 16

/* One SGD step's coefficients, as floats in PyTorch's order of operations. */
typedef struct lt_sgd_coefficients {
    float grad_sign, weight_decay, momentum, one_minus_dampening, neg_lr;
} lt_sgd_coefficients;

/* ... and its switches. */
typedef struct lt_sgd_shape {
    int64_t n;
    lt_sgd_coefficients k;
    bool has_weight_decay, has_momentum, init_buffer, nesterov;
    const lt_sgd_coefficients *step_values;  /* NULL, or where k is read when the update runs */
} lt_sgd_shape;

typedef struct lt_sgd_impl {
    lt_impl base;
    /* buf NULL without momentum */
    int (*step)(lt_kernel_ctx *ctx, float *param, float *buf, const float *grad, lt_sgd_shape s);
} lt_sgd_impl;

/* One Adam step's coefficients (bias corrections folded in) ... */
typedef struct lt_adam_coefficients {
    float grad_sign, weight_decay, decay_factor, beta1, one_minus_beta1, beta2, one_minus_beta2;
    float bias_correction2_sqrt, eps, neg_step_size;
} lt_adam_coefficients;

/* ... and switches. l2: Adam's weight decay (added to the gradient); decoupled: AdamW's (the parameter
 * shrinks). */
typedef struct lt_adam_shape {
    int64_t n;
    lt_adam_coefficients k;
    bool l2, decoupled, amsgrad;
    const lt_adam_coefficients *step_values;  /* NULL, or where k is read when the update runs */
} lt_adam_shape;

/* The shapes with their step values read (from host memory): what an implementation on the host
 * computes with. */
static inline lt_sgd_shape lt_sgd_shape_read(lt_sgd_shape s) {
    if (s.step_values) s.k = *s.step_values;
    return s;
}
static inline lt_adam_shape lt_adam_shape_read(lt_adam_shape s) {
    if (s.step_values) s.k = *s.step_values;
    return s;
}

typedef struct lt_adam_impl {
    lt_impl base;
    /* vmax NULL without amsgrad */
    int (*step)(lt_kernel_ctx *ctx, float *param, float *exp_avg, float *exp_avg_sq, float *vmax, const float *grad,
                lt_adam_shape s);
} lt_adam_impl;

typedef struct lt_norm_shape {
    int64_t n;
    double norm_type;  /* > 0, INFINITY for the max norm */
} lt_norm_shape;

typedef struct lt_norm_impl {
    lt_impl base;
    /* *acc combined with sum |x|^p (finite p) or max |x| (infinite p) */
    int (*accumulate)(lt_kernel_ctx *ctx, double *acc, const float *x, lt_norm_shape s);
    /* A device's (NULL on the host): the same with acc in the device's memory, so that nothing waits, and
     * the total norm from it (lt_norm_finish's rule) into the float *total, also on the device. */
    int (*accumulate_on_device)(lt_kernel_ctx *ctx, double *acc, const float *x, lt_norm_shape s);
    int (*finish_on_device)(lt_kernel_ctx *ctx, float *total, const double *acc, double norm_type);
} lt_norm_impl;

/* The dynamic loss scaler of "16-mixed" (torch.amp.GradScaler's two kernels). Every value stays where
 * the gradients are: a GPU's step waits for nothing until the optimizer asks whether to skip. */
typedef struct lt_amp_unscale_shape {
    int64_t n;
} lt_amp_unscale_shape;

typedef struct lt_amp_unscale_impl {
    lt_impl base;
    /* grad[i] *= *inv_scale for the n elements; *found_inf = 1 when one of them was inf or NaN (left as
     * it was otherwise: the caller zeroes it once for all the tensors of a step). */
    int (*unscale)(lt_kernel_ctx *ctx, float *grad, const float *inv_scale, float *found_inf, lt_amp_unscale_shape s);
} lt_amp_unscale_impl;

typedef struct lt_amp_update_shape {
    float growth_factor, backoff_factor;
    int64_t growth_interval;
} lt_amp_update_shape;

typedef struct lt_amp_update_impl {
    lt_impl base;
    /* PyTorch's _amp_update_scale_: after a step with *found_inf set, *scale *= backoff_factor and the
     * tracker (a count of steps without inf, a float holding an integer) goes to 0; otherwise the
     * tracker counts one more, and at growth_interval *scale *= growth_factor (kept when the product is
     * finite) and the tracker goes back to 0. */
    int (*update)(lt_kernel_ctx *ctx, float *scale, float *growth_tracker, const float *found_inf,
                  lt_amp_update_shape s);
} lt_amp_update_impl;

/* csrc/core/cpu/optim.c */
extern const lt_sgd_impl lt_sgd_cpu;
extern const lt_adam_impl lt_adam_cpu;
extern const lt_norm_impl lt_norm_cpu;
/* csrc/core/cpu/amp.c */
extern const lt_amp_unscale_impl lt_amp_unscale_cpu;
extern const lt_amp_update_impl lt_amp_update_cpu;

#endif
