/* The front of the activations: elementwise functions chosen by name (csrc/core/cpu/activation.c
 * computes them). Outputs take their input's layout; the kernels see dense tensors as flat arrays. */
#include <stdio.h>
#include <string.h>

#include "../tensor_math.h"
#include "ops.h"

/* The implementations, tried in order (kernel.h); an entry serves the activation it names. */
static const lt_impl *const activation_impls[] = {&lt_relu_cpu.base, &lt_leaky_relu_cpu.base, NULL};

/* The entry names the activation: an unknown name is an error that lists the known ones. */
static int check_name(const char *name, lt_error *err) {
    char known[256] = "";
    for (size_t i = 0; activation_impls[i]; i++) {
        const char *a = ((const lt_activation_impl *)activation_impls[i])->activation;
        if (!strcmp(a, name)) return 0;
        if (!strstr(known, a)) snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", *known ? ", " : "", a);
    }
    return lt_fail(err, "unknown activation '%s' (known: %s)", name, known);
}

static const lt_activation_impl *pick(const lt_activation_args *a, int64_t n, lt_activation_shape *s,
                                      lt_kernel_ctx *ctx, lt_error *err) {
    if (check_name(a->activation, err)) return NULL;
    *s = (lt_activation_shape){a->activation, n, a->negative_slope};
    return (const lt_activation_impl *)lt_kernel_pick(a->handle, "activation", activation_impls, s, ctx, err);
}

int lt_activation_forward(const lt_activation_args *a, lt_error *err) {
    lt_kernel_forward_begin(a->handle);
    lt_tensor *out = a->output;
    if (out != a->input && lt_resize_like(out, a->input, err)) return -1;
    lt_activation_shape s;
    lt_kernel_ctx ctx;
    const lt_activation_impl *impl = pick(a, lt_numel(a->input), &s, &ctx, err);
    if (!impl) return -1;
    lt_tensor tmp = {0};
    const lt_tensor *in;
    int rc = -1;
    if (!lt_is_dense(out)) {  /* in place on a view with gaps: through a dense copy */
        if (lt_contiguous(&tmp, out, err)) goto done;
        if (s.n && impl->forward(&ctx, lt_data(&tmp), lt_data(&tmp), s)) goto done;
        if (lt_copy(out, &tmp, err)) goto done;
    } else {
        if (lt_laid_out_like(&tmp, a->input, out, &in, err)) goto done;
        if (s.n && impl->forward(&ctx, lt_data(out), lt_data(in), s)) goto done;
    }
    lt_kernel_forward_done(a->handle, a->input, NULL, out, false);
    rc = 0;
done:
    lt_tensor_release(&tmp);
    return rc;
}

int lt_activation_backward(const lt_activation_args *a, lt_error *err) {
    if (lt_kernel_backward_check(a->handle, a->input, a->grad_output, err) ||
        lt_check_dims("output", a->output, &a->handle->output, "the shape of the forward pass's output", err))
        return -1;
    lt_tensor *gi = a->grad_input;
    lt_tensor tg = {0}, tx = {0}, ty = {0}, tgi = {0};
    const lt_tensor *g, *x, *y;
    lt_activation_shape s;
    lt_kernel_ctx ctx;
    int rc = -1;
    if (gi != a->grad_output && lt_resize_like(gi, a->input, err)) goto done;
    const lt_activation_impl *impl = pick(a, lt_numel(a->input), &s, &ctx, err);
    if (!impl) goto done;
    lt_tensor *dst = gi;
    if (!lt_is_dense(gi)) {  /* in place on a gradient with gaps: through a dense copy */
        if (lt_contiguous(&tgi, gi, err)) goto done;
        dst = &tgi;
    }
    if (lt_laid_out_like(&tg, a->grad_output, dst, &g, err) || lt_laid_out_like(&tx, a->input, dst, &x, err) ||
        lt_laid_out_like(&ty, a->output, dst, &y, err))
        goto done;
    if (s.n && impl->backward(&ctx, lt_data(dst), lt_data(g), lt_data(x), lt_data(y), s)) goto done;
    if (dst != gi && lt_copy(gi, dst, err)) goto done;
    rc = 0;
done:
    lt_tensor_release(&tg);
    lt_tensor_release(&tx);
    lt_tensor_release(&ty);
    lt_tensor_release(&tgi);
    return rc;
}
