/* The front of dropout (csrc/core/cpu/dropout.c computes it). Mask and output take the input's layout;
 * the kernels see them as flat arrays. */
#include "ops.h"

/* The implementations, tried in order (kernel.h). */
static const lt_impl *const dropout_impls[] = {&lt_dropout_cpu.base, NULL};

int lt_dropout_forward(const lt_dropout_args *a, const lt_tensor **result, lt_error *err) {
    lt_kernel_forward_begin(a->handle);
    if (!(a->p >= 0 && a->p <= 1)) return lt_fail(err, "dropout probability must be between 0 and 1, got %g", a->p);
    if (!a->training || a->p == 0) {  /* the identity */
        *result = a->input;
        lt_kernel_forward_done(a->handle, a->input, NULL, a->input, false);
        return 0;
    }
    if (lt_resize_like(a->mask, a->input, err) || lt_resize_like(a->output, a->input, err)) return -1;
    lt_dropout_shape s = {lt_numel(a->mask), a->p};
    lt_tensor tmp = {0};
    const lt_tensor *in;
    lt_kernel_ctx ctx;
    int rc = -1;
    lt_named operands[] = {{"input", a->input}, {"mask", a->mask}, {"output", a->output}};
    const lt_dropout_impl *impl =
        (const lt_dropout_impl *)lt_kernel_pick(a->handle, "dropout", dropout_impls, &s, operands, 3, &ctx, err);
    if (!impl || lt_laid_out_like(&tmp, a->input, a->mask, &in, err)) goto done;
    if (s.n && impl->forward(&ctx, lt_data(a->output), lt_data(a->mask), lt_data(in), s)) goto done;
    *result = a->output;
    lt_kernel_forward_done(a->handle, a->input, NULL, a->output, true);
    rc = 0;
done:
    lt_tensor_release(&tmp);
    return rc;
}

int lt_dropout_backward(const lt_dropout_args *a, const lt_tensor **result, lt_error *err) {
    if (lt_kernel_backward_check(a->handle, a->input, a->grad_output, err)) return -1;
    if (!a->handle->training) {  /* the forward pass was the identity */
        *result = a->grad_output;
        return 0;
    }
    if (lt_check_dims("mask", a->mask, &a->handle->output, "the shape of the forward pass's output", err) ||
        lt_resize_like(a->grad_input, a->mask, err))
        return -1;
    lt_dropout_shape s = {lt_numel(a->mask), a->p};
    lt_tensor tmp = {0};
    const lt_tensor *g;
    lt_kernel_ctx ctx;
    int rc = -1;
    lt_named operands[] = {{"grad_output", a->grad_output}, {"mask", a->mask}, {"grad_input", a->grad_input}};
    const lt_dropout_impl *impl =
        (const lt_dropout_impl *)lt_kernel_pick(a->handle, "dropout", dropout_impls, &s, operands, 3, &ctx, err);
    if (!impl || lt_laid_out_like(&tmp, a->grad_output, a->mask, &g, err)) goto done;
    if (s.n && impl->backward(&ctx, lt_data(a->grad_input), lt_data(g), lt_data(a->mask), s)) goto done;
    *result = a->grad_input;
    rc = 0;
done:
    lt_tensor_release(&tmp);
    return rc;
}
