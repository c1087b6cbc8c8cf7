/* The front of softmax and log-softmax along one dimension of any tensor (csrc/core/cpu/softmax.c
 * computes them on contiguous tensors; others go through contiguous copies). */
#include "../tensor/tensor_math.h"
#include "ops.h"

/* The implementations, tried in order (kernel.h). */
static const lt_impl *const softmax_impls[] = {&lt_softmax_cpu.base, NULL};

static lt_softmax_shape shape_of(const lt_tensor *t, int dim, bool log) {
    lt_softmax_shape s = {1, t->size[dim], 1, log};
    for (int d = 0; d < dim; d++) s.outer *= t->size[d];
    for (int d = dim + 1; d < t->ndim; d++) s.inner *= t->size[d];
    return s;
}

static int check_dim(int dim, const lt_tensor *t, lt_error *err) {
    if (dim < 0 || dim >= t->ndim) return lt_fail(err, "dimension %d out of range for a %d-D tensor", dim + 1, t->ndim);
    return 0;
}

/* dst, or a contiguous stand-in for it in *tmp that the caller copies back. */
static lt_tensor *contiguous_target(lt_tensor *dst, lt_tensor *tmp, lt_error *err) {
    if (lt_is_contiguous(dst)) return dst;
    return lt_tensor_new_on(tmp, dst->ndim, dst->size, LT_FLOAT32, lt_device_of(dst), err) ? NULL : tmp;
}

int lt_softmax_forward(const lt_softmax_args *a, lt_error *err) {
    lt_kernel_forward_begin(a->handle);
    if (check_dim(a->dim, a->input, err) || lt_resize_like(a->output, a->input, err)) return -1;
    lt_softmax_shape s = shape_of(a->input, a->dim, a->log);
    lt_tensor x = {0}, ty = {0};
    lt_tensor *y = NULL;
    lt_kernel_ctx ctx;
    int rc = -1;
    lt_named operands[] = {{"input", a->input}, {"output", a->output}};
    const lt_softmax_impl *impl =
        (const lt_softmax_impl *)lt_kernel_pick(a->handle, "softmax", softmax_impls, &s, operands, 2, &ctx, err);
    if (!impl || lt_contiguous(&x, a->input, err) || !(y = contiguous_target(a->output, &ty, err))) goto done;
    if (lt_numel(&x) && impl->forward(&ctx, lt_data(y), lt_data(&x), s)) goto done;
    if (y != a->output && lt_copy(a->output, y, err)) goto done;
    lt_kernel_forward_done(a->handle, a->input, NULL, a->output, false);
    rc = 0;
done:
    lt_tensor_release(&x);
    lt_tensor_release(&ty);
    return rc;
}

int lt_softmax_backward(const lt_softmax_args *a, lt_error *err) {
    const char *whose = "the shape of the forward pass's output";
    if (lt_kernel_backward_check(a->handle, a->input, a->grad_output, err) ||
        lt_check_dims("output", a->output, &a->handle->output, whose, err) || check_dim(a->dim, a->output, err) ||
        lt_resize_like(a->grad_input, a->output, err))
        return -1;
    lt_softmax_shape s = shape_of(a->output, a->dim, a->log);
    lt_tensor g = {0}, y = {0}, td = {0};
    lt_tensor *d = NULL;
    lt_kernel_ctx ctx;
    int rc = -1;
    lt_named operands[] = {{"output", a->output}, {"grad_output", a->grad_output}, {"grad_input", a->grad_input}};
    const lt_softmax_impl *impl =
        (const lt_softmax_impl *)lt_kernel_pick(a->handle, "softmax", softmax_impls, &s, operands, 3, &ctx, err);
    if (!impl || lt_contiguous(&g, a->grad_output, err) || lt_contiguous(&y, a->output, err) ||
        !(d = contiguous_target(a->grad_input, &td, err)))
        goto done;
    if (lt_numel(&y) && impl->backward(&ctx, lt_data(d), lt_data(&g), lt_data(&y), s)) goto done;
    if (d != a->grad_input && lt_copy(a->grad_input, d, err)) goto done;
    rc = 0;
done:
    lt_tensor_release(&g);
    lt_tensor_release(&y);
    lt_tensor_release(&td);
    return rc;
}
