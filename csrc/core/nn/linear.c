/* The front of the fully connected layer (csrc/core/cpu/linear.c computes it). */
#include "ops.h"

/* The implementations, tried in order (kernel.h): oneDNN's computes bf16 (mixed precision). */
static const lt_impl *const linear_impls[] = {
#ifdef LT_HAVE_DNNL
    &lt_linear_dnnl.base,
#endif
    &lt_linear_cpu.base, NULL};

static int shape_of(lt_linear_shape *s, const lt_tensor *input, const lt_tensor *weight, const lt_tensor *bias,
                    const char *bias_name, lt_error *err) {
    char a[160], b[160];
    if (input->ndim != 2) return lt_fail(err, "expected a 2-D input (batch x features), got %s", lt_shape_str(input, a, sizeof a));
    if (weight->ndim != 2 || input->size[1] != weight->size[1])
        return lt_fail(err, "input has %lld features but the layer expects %lld (input %s, weight %s)",
                       (long long)input->size[1], (long long)(weight->ndim == 2 ? weight->size[1] : -1),
                       lt_shape_str(input, a, sizeof a), lt_shape_str(weight, b, sizeof b));
    if (bias && (bias->ndim != 1 || bias->size[0] != weight->size[0]))
        return lt_fail(err, "%s must have %lld elements, got %s", bias_name, (long long)weight->size[0],
                       lt_shape_str(bias, a, sizeof a));
    *s = (lt_linear_shape){input->size[0], input->size[1], weight->size[0]};
    return 0;
}

int lt_linear_forward(const lt_linear_args *a, lt_error *err) {
    lt_kernel_forward_begin(a->handle);
    lt_linear_shape s;
    lt_named written[] = {{"output", a->output}}, read[] = {{"input", a->input}, {"weight", a->weight}, {"bias", a->bias}};
    if (shape_of(&s, a->input, a->weight, a->bias, "bias", err) || lt_check_apart(written, 1, read, 3, err)) return -1;
    int64_t size[2] = {s.batch, s.out};
    lt_tensor x = {0}, w = {0};
    lt_kernel_ctx ctx;
    int rc = -1;
    if (lt_contiguous(&x, a->input, err) || lt_contiguous(&w, a->weight, err) ||
        lt_tensor_resize(a->output, 2, size, err))
        goto done;
    lt_named operands[] = {{"input", &x}, {"weight", &w}, {"bias", a->bias}, {"output", a->output}};
    const lt_linear_impl *impl =
        (const lt_linear_impl *)lt_kernel_pick(a->handle, "linear", linear_impls, &s, operands, 4, &ctx, err);
    if (!impl) goto done;
    if (s.batch * s.out > 0 && impl->forward(&ctx, lt_data(a->output), lt_ptr(&x), lt_ptr(&w), lt_ptr(a->bias), s))
        goto done;
    lt_kernel_forward_done(a->handle, a->input, NULL, a->output, false);
    rc = 0;
done:
    lt_tensor_release(&x);
    lt_tensor_release(&w);
    return rc;
}

int lt_linear_backward(const lt_linear_args *a, lt_error *err) {
    lt_linear_shape s;
    char g[160];
    lt_named written[] = {{"grad_input", a->grad_input}, {"grad_weight", a->grad_weight}, {"grad_bias", a->grad_bias}};
    lt_named read[] = {{"input", a->input}, {"weight", a->weight}, {"grad_output", a->grad_output}};
    if (lt_kernel_backward_check(a->handle, a->input, a->grad_output, err) ||
        shape_of(&s, a->input, a->weight, a->grad_bias, "grad_bias", err) || lt_check_apart(written, 3, read, 3, err))
        return -1;
    if (a->grad_output->ndim != 2 || a->grad_output->size[0] != s.batch || a->grad_output->size[1] != s.out)
        return lt_fail(err, "grad_output must be %lldx%lld, got %s", (long long)s.batch, (long long)s.out,
                       lt_shape_str(a->grad_output, g, sizeof g));
    if (!lt_same_shape(a->grad_weight, a->weight) || !lt_is_contiguous(a->grad_weight))
        return lt_fail(err, "grad_weight must be a contiguous tensor shaped like the weight");
    lt_tensor x = {0}, w = {0}, dy = {0};
    lt_kernel_ctx ctx;
    int rc = -1;
    if (lt_contiguous(&x, a->input, err) || lt_contiguous(&w, a->weight, err) ||
        lt_contiguous(&dy, a->grad_output, err))
        goto done;
    if (a->grad_input && lt_tensor_resize(a->grad_input, 2, a->input->size, err)) goto done;
    lt_named operands[] = {{"input", &x},           {"weight", &w}, {"grad_output", &dy}, {"grad_input", a->grad_input},
                           {"grad_weight", a->grad_weight}, {"grad_bias", a->grad_bias}};
    const lt_linear_impl *impl =
        (const lt_linear_impl *)lt_kernel_pick(a->handle, "linear", linear_impls, &s, operands, 6, &ctx, err);
    if (!impl) goto done;
    rc = impl->backward(&ctx, lt_ptr(a->grad_input), lt_ptr(a->grad_weight), lt_ptr(a->grad_bias), lt_ptr(&dy),
                        lt_ptr(&x), lt_ptr(&w), s);
done:
    lt_tensor_release(&x);
    lt_tensor_release(&w);
    lt_tensor_release(&dy);
    return rc;
}
