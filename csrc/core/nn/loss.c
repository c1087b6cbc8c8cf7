/* The fronts of the losses (csrc/core/cpu/loss.c computes them on contiguous tensors). The forward pass
 * records input and target; the backward pass checks what it is given against them. */
#include "ops.h"

#include <string.h>

/* The implementations, tried in order (kernel.h). */
static const lt_impl *const cross_entropy_impls[] = {&lt_cross_entropy_cpu.base, NULL};
static const lt_impl *const nll_loss_impls[] = {&lt_nll_loss_cpu.base, NULL};
static const lt_impl *const mse_loss_impls[] = {&lt_mse_loss_cpu.base, NULL};

/* ---- classification ---- */

static int check_class_inputs(const lt_tensor *scores, const lt_tensor *target, const lt_class_loss_params *p,
                              lt_error *err) {
    char a[160], b[160];
    if (scores->ndim != 2)
        return lt_fail(err, "expected a 2-D input (batch x classes), got %s", lt_shape_str(scores, a, sizeof a));
    if (target->ndim != 1 || target->size[0] != scores->size[0])
        return lt_fail(err, "target must be a vector of %lld class indices, got %s (input %s)", (long long)scores->size[0],
                       lt_shape_str(target, a, sizeof a), lt_shape_str(scores, b, sizeof b));
    if (p->weight && (p->weight->ndim != 1 || p->weight->size[0] != scores->size[1]))
        return lt_fail(err, "class weights must be a vector of %lld elements, got %s", (long long)scores->size[1],
                       lt_shape_str(p->weight, a, sizeof a));
    if (!(p->label_smoothing >= 0 && p->label_smoothing <= 1))
        return lt_fail(err, "label_smoothing must be between 0 and 1, got %g", p->label_smoothing);
    return 0;
}

/* Every tensor a loss's implementation touches, for lt_kernel_pick's device check. */
#define LOSS_OPERANDS 8
static int loss_operands(const lt_loss_args *a, lt_named o[LOSS_OPERANDS]) {
    const lt_named all[LOSS_OPERANDS] = {{"input", a->input},           {"target", a->target},
                                         {"weight", a->p.weight},       {"losses", a->losses},
                                         {"log_probs", a->log_probs},   {"grad_output", a->grad_output},
                                         {"grad_input", a->grad_input}, {"the loss's gradient", a->scale_tensor}};
    memcpy(o, all, sizeof all);
    return LOSS_OPERANDS;
}

/* The reduced loss: a new one-element tensor on the input's device (a result kept from an earlier call
 * keeps its value); none for reduction none. */
static int new_loss(const lt_loss_args *a, float **loss, lt_error *err) {
    static const int64_t one[1] = {1};
    *loss = NULL;
    if (a->p.reduction == LT_REDUCE_NONE) return 0;
    if (!a->loss) return lt_fail(err, "the loss's tensor is required");
    if (lt_tensor_new_on(a->loss, 1, one, LT_FLOAT32, lt_device_of(a->input), err)) return -1;
    *loss = lt_ptr(a->loss);
    return 0;
}

/* The backward pass's one-element gradient of the loss, or NULL. */
static int scale_of(const lt_loss_args *a, const float **dscale, lt_error *err) {
    *dscale = NULL;
    if (!a->scale_tensor || a->p.reduction == LT_REDUCE_NONE) return 0;
    if (lt_numel(a->scale_tensor) != 1 || lt_dtype_of(a->scale_tensor) != LT_FLOAT32)
        return lt_fail(err, "the loss's gradient must be a one-element float32 tensor, got %lld elements",
                       (long long)lt_numel(a->scale_tensor));
    *dscale = lt_data(a->scale_tensor);
    return 0;
}

static lt_class_loss_shape class_shape(const lt_tensor *scores, const lt_class_loss_params *p) {
    return (lt_class_loss_shape){scores->size[0], scores->size[1], p->label_smoothing, p->reduction, p->ignore_index};
}

/* Contiguous copies (or shares) of what the kernels read: scores, target, class weights. */
typedef struct class_operands {
    lt_tensor scores, target, weight;
} class_operands;

static int class_operands_of(class_operands *o, const lt_tensor *scores, const lt_loss_args *a, lt_error *err) {
    return lt_contiguous(&o->scores, scores, err) || lt_contiguous(&o->target, a->target, err) ||
           (a->p.weight && lt_contiguous(&o->weight, a->p.weight, err));
}

static void class_operands_release(class_operands *o) {
    lt_tensor_release(&o->scores);
    lt_tensor_release(&o->target);
    lt_tensor_release(&o->weight);
}

/* Cross entropy (softmax: true) or NLL: scores are logits or log-probabilities. */
static int class_loss_forward(const lt_loss_args *a, bool softmax, lt_error *err) {
    lt_kernel_forward_begin(a->handle);
    lt_loss_args args = *a;
    if (!softmax) args.p.label_smoothing = 0;
    if (check_class_inputs(a->input, a->target, &args.p, err)) return -1;
    lt_class_loss_shape s = class_shape(a->input, &args.p);
    int64_t lsize[1] = {s.batch};
    class_operands o = {0};
    lt_kernel_ctx ctx;
    int rc = -1;
    const char *op = softmax ? "cross_entropy" : "nll_loss";
    lt_named operands[LOSS_OPERANDS];
    const lt_class_loss_impl *impl = (const lt_class_loss_impl *)lt_kernel_pick(
        a->handle, op, softmax ? cross_entropy_impls : nll_loss_impls, &s, operands, loss_operands(a, operands), &ctx, err);
    if (!impl || class_operands_of(&o, a->input, &args, err) || lt_tensor_resize(a->losses, 1, lsize, err)) goto done;
    if (softmax && lt_tensor_resize(a->log_probs, 2, a->input->size, err)) goto done;
    float *loss;
    if (new_loss(a, &loss, err)) goto done;
    float *log_probs = softmax ? lt_ptr(a->log_probs) : lt_ptr(&o.scores);
    if (impl->forward(&ctx, loss, lt_ptr(a->losses), log_probs, softmax ? lt_ptr(&o.scores) : NULL, lt_ptr(&o.target),
                      lt_ptr(&o.weight), s))
        goto done;
    lt_kernel_forward_done(a->handle, a->input, a->target, a->losses, false);
    rc = 0;
done:
    class_operands_release(&o);
    return rc;
}

/* The checks every loss's backward pass makes: a forward pass went before, input and target have its
 * shapes, and reduction none comes with one gradient per loss. */
static int check_loss_backward(const lt_loss_args *a, lt_error *err) {
    if (a->p.reduction == LT_REDUCE_NONE && !a->grad_output)
        return lt_fail(err, "with reduction 'none' the gradient must be a tensor of the per-sample losses' shape");
    if (lt_kernel_backward_check(a->handle, a->input, a->p.reduction == LT_REDUCE_NONE ? a->grad_output : NULL, err) ||
        lt_check_dims("target", a->target, &a->handle->target, "the shape of the forward pass's target", err))
        return -1;
    return 0;
}

static int class_loss_backward(const lt_loss_args *a, bool softmax, lt_error *err) {
    lt_loss_args args = *a;
    if (!softmax) args.p.label_smoothing = 0;
    if (check_loss_backward(a, err) || check_class_inputs(a->input, a->target, &args.p, err)) return -1;
    /* cross entropy differentiates through its saved log-probabilities, NLL at its input */
    const lt_tensor *lp = softmax ? a->log_probs : a->input;
    if (softmax && lt_check_dims("log_probs", lp, &a->handle->input, "the shape of the forward pass's input", err))
        return -1;
    lt_class_loss_shape s = class_shape(a->input, &args.p);
    class_operands o = {0};
    lt_tensor dout = {0};
    lt_kernel_ctx ctx;
    int rc = -1;
    const float *dscale;
    const char *op = softmax ? "cross_entropy" : "nll_loss";
    lt_named operands[LOSS_OPERANDS];
    const lt_class_loss_impl *impl = (const lt_class_loss_impl *)lt_kernel_pick(
        a->handle, op, softmax ? cross_entropy_impls : nll_loss_impls, &s, operands, loss_operands(a, operands), &ctx, err);
    if (!impl || class_operands_of(&o, lp, &args, err) || lt_tensor_resize(a->grad_input, 2, a->input->size, err))
        goto done;
    if (s.reduction == LT_REDUCE_NONE && lt_contiguous(&dout, a->grad_output, err)) goto done;
    if (scale_of(a, &dscale, err)) goto done;
    rc = impl->backward(&ctx, lt_ptr(a->grad_input), lt_ptr(&o.scores), lt_ptr(&o.target), lt_ptr(&o.weight),
                        lt_ptr(&dout), dscale, a->scale, s);
done:
    class_operands_release(&o);
    lt_tensor_release(&dout);
    return rc;
}

int lt_cross_entropy_forward(const lt_loss_args *a, lt_error *err) { return class_loss_forward(a, true, err); }
int lt_cross_entropy_backward(const lt_loss_args *a, lt_error *err) { return class_loss_backward(a, true, err); }
int lt_nll_loss_forward(const lt_loss_args *a, lt_error *err) { return class_loss_forward(a, false, err); }
int lt_nll_loss_backward(const lt_loss_args *a, lt_error *err) { return class_loss_backward(a, false, err); }

/* ---- regression ---- */

static int check_same(const lt_tensor *input, const lt_tensor *target, lt_error *err) {
    char a[160], b[160];
    if (!lt_same_shape(input, target))
        return lt_fail(err, "target %s must have the input's shape %s", lt_shape_str(target, a, sizeof a),
                       lt_shape_str(input, b, sizeof b));
    return 0;
}

int lt_mse_loss_forward(const lt_loss_args *a, lt_error *err) {
    lt_kernel_forward_begin(a->handle);
    if (check_same(a->input, a->target, err) || lt_tensor_resize(a->losses, a->input->ndim, a->input->size, err))
        return -1;
    lt_mse_shape s = {lt_numel(a->input), a->p.reduction};
    lt_tensor x = {0}, t = {0};
    lt_kernel_ctx ctx;
    int rc = -1;
    lt_named operands[LOSS_OPERANDS];
    const lt_mse_impl *impl = (const lt_mse_impl *)lt_kernel_pick(a->handle, "mse_loss", mse_loss_impls, &s, operands,
                                                                  loss_operands(a, operands), &ctx, err);
    if (!impl || lt_contiguous(&x, a->input, err) || lt_contiguous(&t, a->target, err)) goto done;
    float *loss;
    if (new_loss(a, &loss, err)) goto done;
    if (impl->forward(&ctx, loss, lt_ptr(a->losses), lt_ptr(&x), lt_ptr(&t), s)) goto done;
    lt_kernel_forward_done(a->handle, a->input, a->target, a->losses, false);
    rc = 0;
done:
    lt_tensor_release(&x);
    lt_tensor_release(&t);
    return rc;
}

int lt_mse_loss_backward(const lt_loss_args *a, lt_error *err) {
    if (check_loss_backward(a, err) || check_same(a->input, a->target, err) ||
        lt_tensor_resize(a->grad_input, a->input->ndim, a->input->size, err))
        return -1;
    lt_mse_shape s = {lt_numel(a->input), a->p.reduction};
    lt_tensor x = {0}, t = {0}, dout = {0};
    lt_kernel_ctx ctx;
    int rc = -1;
    const float *dscale;
    lt_named operands[LOSS_OPERANDS];
    const lt_mse_impl *impl = (const lt_mse_impl *)lt_kernel_pick(a->handle, "mse_loss", mse_loss_impls, &s, operands,
                                                                  loss_operands(a, operands), &ctx, err);
    if (!impl || lt_contiguous(&x, a->input, err) || lt_contiguous(&t, a->target, err)) goto done;
    if (s.reduction == LT_REDUCE_NONE && lt_contiguous(&dout, a->grad_output, err)) goto done;
    if (scale_of(a, &dscale, err)) goto done;
    rc = impl->backward(&ctx, lt_ptr(a->grad_input), lt_ptr(&x), lt_ptr(&t), lt_ptr(&dout), dscale, a->scale, s);
done:
    lt_tensor_release(&x);
    lt_tensor_release(&t);
    lt_tensor_release(&dout);
    return rc;
}
