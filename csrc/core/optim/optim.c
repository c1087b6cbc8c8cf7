/* The fronts of the optimizer updates and gradient norms: checks, the step's coefficients, and the
 * choice of an implementation (csrc/core/cpu/optim.c computes them). */
#include "optim.h"

#include <math.h>

#include "optim_ops.h"
#include "../device/backend.h"
#include "../tensor/tensor_math.h"

/* The implementations, tried in order (kernel.h). */
static const lt_impl *const sgd_impls[] = {&lt_sgd_cpu.base, NULL};
static const lt_impl *const adam_impls[] = {&lt_adam_cpu.base, NULL};
static const lt_impl *const norm_impls[] = {&lt_norm_cpu.base, NULL};

static int check_operand(const char *what, const lt_tensor *t, const lt_tensor *param, lt_error *err) {
    char a[64], b[64];
    if (!t || !t->storage) return lt_fail(err, "%s is missing", what);
    if (!lt_same_shape(t, param))
        return lt_fail(err, "%s has shape %s, expected %s (the parameter's)", what, lt_shape_str(t, a, sizeof a),
                       lt_shape_str(param, b, sizeof b));
    if (!lt_is_contiguous(t)) return lt_fail(err, "%s is not contiguous", what);
    return 0;
}

static int check_param(const lt_tensor *param, lt_error *err) {
    if (!param || !param->storage) return lt_fail(err, "the parameter is missing");
    if (!lt_is_contiguous(param)) return lt_fail(err, "the parameter is not contiguous");
    return 0;
}

/* In a CUDA graph an update reads its step values from device memory (lt_*_args' step_values): without
 * them a launch would replay the learning rate and step count of the capture. */
static int refuse_in_capture(const char *what, const lt_tensor *param, const lt_tensor *step_values, lt_error *err) {
    if (step_values) return 0;
    return lt_refuse_in_capture(lt_device_of(param), what,
                                "without step values on the GPU its learning rate and step count would be recorded "
                                "as they are now",
                                err);
}

_Static_assert(sizeof(lt_sgd_coefficients) <= LT_STEP_VALUES * sizeof(float) &&
                   sizeof(lt_adam_coefficients) <= LT_STEP_VALUES * sizeof(float),
               "a row of step values holds an update's coefficients");

static int check_step_values(const lt_tensor *v, lt_error *err) {
    if (!v) return 0;
    if (!v->storage || lt_dtype_of(v) != LT_FLOAT32 || !lt_is_contiguous(v) || lt_numel(v) != LT_STEP_VALUES)
        return lt_fail(err, "step_values must be %d contiguous float32 values", LT_STEP_VALUES);
    return 0;
}

void lt_sgd_step_values(const lt_sgd_options *o, lt_sgd_coefficients *k) {
    *k = (lt_sgd_coefficients){.grad_sign = o->maximize ? -1.0f : 1.0f, .weight_decay = (float)o->weight_decay,
                               .momentum = (float)o->momentum, .one_minus_dampening = (float)(1.0 - o->dampening),
                               .neg_lr = (float)-o->lr};
}

int lt_adam_step_values(const lt_adam_options *o, int64_t step, lt_adam_coefficients *k, lt_error *err) {
    if (step < 1) return lt_fail(err, "the step count must be at least 1, got %lld", (long long)step);
    /* Bias corrections in double, as PyTorch computes them in Python floats. */
    double bias_correction1 = 1.0 - pow(o->beta1, (double)step);
    double bias_correction2 = 1.0 - pow(o->beta2, (double)step);
    *k = (lt_adam_coefficients){.grad_sign = o->maximize ? -1.0f : 1.0f, .weight_decay = (float)o->weight_decay,
                                .decay_factor = (float)(1.0 - o->lr * o->weight_decay), .beta1 = (float)o->beta1,
                                .one_minus_beta1 = (float)(1.0 - o->beta1), .beta2 = (float)o->beta2,
                                .one_minus_beta2 = (float)(1.0 - o->beta2),
                                .bias_correction2_sqrt = (float)sqrt(bias_correction2), .eps = (float)o->eps,
                                .neg_step_size = (float)-(o->lr / bias_correction1)};
    return 0;
}

int lt_sgd_step(const lt_sgd_args *a, lt_error *err) {
    const lt_sgd_options *o = &a->o;
    if (check_param(a->param, err) || check_operand("the gradient", a->grad, a->param, err)) return -1;
    bool momentum = o->momentum != 0;
    if (momentum && check_operand("the momentum buffer", a->momentum_buffer, a->param, err)) return -1;
    if (check_step_values(a->step_values, err)) return -1;
    lt_sgd_shape s = {.n = lt_numel(a->param), .has_weight_decay = o->weight_decay != 0, .has_momentum = momentum,
                      .init_buffer = a->init_buffer, .nesterov = o->nesterov,
                      .step_values = a->step_values ? (const lt_sgd_coefficients *)lt_data(a->step_values) : NULL};
    lt_sgd_step_values(o, &s.k);
    lt_kernel_ctx ctx;
    lt_named operands[] = {{"param", a->param},
                           {"grad", a->grad},
                           {"momentum_buffer", momentum ? a->momentum_buffer : NULL},
                           {"step_values", a->step_values}};
    const lt_sgd_impl *impl = (const lt_sgd_impl *)lt_kernel_pick(NULL, "sgd", sgd_impls, &s, operands, 4, &ctx, err);
    if (!impl || refuse_in_capture("SGD's update", a->param, a->step_values, err)) return -1;
    if (s.n == 0) return 0;
    return impl->step(&ctx, lt_data(a->param), momentum ? lt_data(a->momentum_buffer) : NULL, lt_data(a->grad), s);
}

int lt_adam_step(const lt_adam_args *a, lt_error *err) {
    const lt_adam_options *o = &a->o;
    if (check_param(a->param, err) || check_operand("the gradient", a->grad, a->param, err) ||
        check_operand("exp_avg", a->exp_avg, a->param, err) || check_operand("exp_avg_sq", a->exp_avg_sq, a->param, err))
        return -1;
    if (o->amsgrad && check_operand("max_exp_avg_sq", a->max_exp_avg_sq, a->param, err)) return -1;
    bool decoupled = o->decoupled_weight_decay;
    lt_adam_shape s = {.n = lt_numel(a->param), .l2 = !decoupled && o->weight_decay != 0, .decoupled = decoupled,
                       .amsgrad = o->amsgrad,
                       .step_values = a->step_values ? (const lt_adam_coefficients *)lt_data(a->step_values) : NULL};
    if (check_step_values(a->step_values, err) || lt_adam_step_values(o, a->step, &s.k, err)) return -1;
    lt_kernel_ctx ctx;
    lt_named operands[] = {{"param", a->param},
                           {"grad", a->grad},
                           {"exp_avg", a->exp_avg},
                           {"exp_avg_sq", a->exp_avg_sq},
                           {"max_exp_avg_sq", o->amsgrad ? a->max_exp_avg_sq : NULL},
                           {"step_values", a->step_values}};
    const lt_adam_impl *impl = (const lt_adam_impl *)lt_kernel_pick(NULL, "adam", adam_impls, &s, operands, 6, &ctx, err);
    if (!impl || refuse_in_capture("Adam's update", a->param, a->step_values, err)) return -1;
    if (s.n == 0) return 0;
    return impl->step(&ctx, lt_data(a->param), lt_data(a->exp_avg), lt_data(a->exp_avg_sq),
                      o->amsgrad ? lt_data(a->max_exp_avg_sq) : NULL, lt_data(a->grad), s);
}

int lt_norm_accumulate(double *acc, const lt_tensor *t, double norm_type, lt_error *err) {
    if (!(norm_type > 0)) return lt_fail(err, "the norm type must be positive (or inf), got %g", norm_type);
    lt_norm_shape s = {lt_numel(t), norm_type};
    lt_kernel_ctx ctx;
    lt_named operands[] = {{"gradient", t}};
    const lt_norm_impl *impl = (const lt_norm_impl *)lt_kernel_pick(NULL, "grad_norm", norm_impls, &s, operands, 1, &ctx, err);
    if (!impl || lt_device_sync_point(lt_device_of(t), "a gradient norm (its total is read on the host)", err))
        return -1;
    lt_tensor flat = {0};
    if (lt_contiguous(&flat, t, err)) return -1;  /* copies only a non-contiguous gradient */
    int rc = impl->accumulate(&ctx, acc, lt_ptr(&flat), s);
    lt_tensor_release(&flat);
    return rc;
}

double lt_norm_finish(double acc, double norm_type) {
    if (isinf(norm_type) || norm_type == 1.0) return acc;
    if (norm_type == 2.0) return sqrt(acc);
    return pow(acc, 1.0 / norm_type);
}

/* The tensors' one device, NULL entries skipped (every one on it: "expected cuda:0, got cpu for tensor 3
 * (the device of tensor 1)"); the host when there are none. */
static int device_of_all(const lt_tensor *const *ts, int n, lt_device *d, lt_error *err) {
    int first = -1;
    *d = LT_DEVICE_CPU;
    for (int i = 0; i < n; i++) {
        if (!ts[i]) continue;
        lt_device di = lt_device_of(ts[i]);
        if (first < 0) {
            first = i;
            *d = di;
        } else if (di != *d) {
            return lt_fail(err, "expected %s, got %s for tensor %d (the device of tensor %d)", lt_device_name(*d),
                           lt_device_name(di), i + 1, first + 1);
        }
    }
    return 0;
}

/* On a device: the sums (or maxima) gathered into a double there, then the total from it. */
static int total_norm_on_device(lt_tensor *total, const lt_tensor *const *ts, int n, double norm_type, lt_device d,
                                lt_error *err) {
    static const int64_t two[1] = {2}, one[1] = {1};
    lt_tensor acc = {0}, flat = {0};
    int rc = -1;
    /* a double's 8 bytes, zero as two float zeros */
    if (lt_tensor_new_on(&acc, 1, two, LT_FLOAT32, d, err) || lt_fill(&acc, 0.0f, err) ||
        lt_tensor_new_on(total, 1, one, LT_FLOAT32, d, err))
        goto done;
    lt_kernel_ctx ctx;
    const lt_norm_impl *impl = NULL;
    for (int i = 0; i < n; i++) {
        if (!ts[i]) continue;
        lt_norm_shape s = {lt_numel(ts[i]), norm_type};
        lt_named operands[] = {{"gradient", ts[i]}, {"the norm's sum", &acc}};
        impl = (const lt_norm_impl *)lt_kernel_pick(NULL, "grad_norm", norm_impls, &s, operands, 2, &ctx, err);
        if (!impl) goto done;
        if (!impl->accumulate_on_device) {
            lt_fail(err, "the %s backend has no gradient norm that stays on the device", lt_device_name(d));
            goto done;
        }
        if (lt_contiguous(&flat, ts[i], err) ||  /* copies only a non-contiguous gradient */
            (s.n && impl->accumulate_on_device(&ctx, (double *)lt_data_ptr(&acc), lt_ptr(&flat), s)))
            goto done;
        lt_tensor_release(&flat);
    }
    if (!impl) {  /* no tensor: the empty norm, 0 */
        rc = lt_fill(total, 0.0f, err);
        goto done;
    }
    rc = impl->finish_on_device(&ctx, lt_data(total), (const double *)lt_data_ptr(&acc), norm_type);
done:
    lt_tensor_release(&flat);
    lt_tensor_release(&acc);
    return rc;
}

int lt_total_norm(lt_tensor *total, const lt_tensor *const *ts, int n, double norm_type, lt_error *err) {
    if (!(norm_type > 0)) return lt_fail(err, "the norm type must be positive (or inf), got %g", norm_type);
    lt_device d;
    if (device_of_all(ts, n, &d, err)) return -1;
    if (d != LT_DEVICE_CPU) return total_norm_on_device(total, ts, n, norm_type, d, err);
    double acc = 0.0;
    for (int i = 0; i < n; i++)
        if (ts[i] && lt_norm_accumulate(&acc, ts[i], norm_type, err)) return -1;
    static const int64_t one[1] = {1};
    return lt_tensor_new_on(total, 1, one, LT_FLOAT32, LT_DEVICE_CPU, err) ||
                   lt_fill(total, (float)lt_norm_finish(acc, norm_type), err)
               ? -1
               : 0;
}

int lt_clip_with_norm(lt_tensor *const *ts, int n, double max_norm, const lt_tensor *total, lt_error *err) {
    char shape[160];
    if (lt_numel(total) != 1)
        return lt_fail(err, "the total norm must be a one-element tensor, got %s", lt_shape_str(total, shape, sizeof shape));
    lt_device d;
    if (device_of_all((const lt_tensor *const *)ts, n, &d, err)) return -1;
    if (n > 0 && lt_device_of(total) != d)
        return lt_fail(err, "expected %s, got %s for the total norm (the gradients' device)", lt_device_name(d),
                       lt_device_name(lt_device_of(total)));
    lt_tensor coef = {0}, scalar = {0}, wide = {0};
    /* min(max_norm / (total + 1e-6), 1) as a 0-D tensor (which expands to any shape); minimum keeps a NaN
     * of its first operand */
    int rc = lt_scalar_new(&coef, total, 1e-6f, LT_ADD, false, err) ||
             lt_scalar_into(&coef, &coef, (float)max_norm, LT_DIV, true, err) ||
             lt_scalar_into(&coef, &coef, 1.0f, LT_MINIMUM, false, err) || lt_squeeze(&scalar, &coef, -1, err);
    for (int i = 0; !rc && i < n; i++) {
        if (!ts[i] || !lt_numel(ts[i])) continue;
        rc = lt_expand(&wide, &scalar, ts[i]->ndim, ts[i]->size, err) ||
             lt_binary_into(ts[i], ts[i], &wide, LT_MUL, 1.0f, err);
        lt_tensor_release(&wide);
    }
    lt_tensor_release(&scalar);
    lt_tensor_release(&coef);
    return rc ? -1 : 0;
}
