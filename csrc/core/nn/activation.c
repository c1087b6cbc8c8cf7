/* The front of the activations: elementwise functions chosen by name (csrc/core/cpu/activation.c
 * computes them). Outputs take their input's layout; the kernels see dense tensors as flat arrays. */
#include <stdio.h>
#include <string.h>

#include "../tensor/tensor_math.h"
#include "channels_last.h"

/* The implementations, tried in order (kernel.h); an entry serves the activation it names. */
static const lt_impl *const activation_impls[] = {&lt_relu_cpu.base, &lt_leaky_relu_cpu.base, &lt_gelu_cpu.base, NULL};
/* Mixed precision's (bf16 tensors, channels_last.h): one entry for the activations it computes. */
static const lt_impl *const activation_mixed_impls[] = {&lt_activation_mixed_cpu.base, NULL};

/* The mixed-precision branch: for a bf16 or fp16 input (a float32 input stays float32 under a bf16
 * handle: after Flatten, the network's head is float32 throughout). Every device's entry computes the
 * host's set. */
static bool goes_mixed(const lt_activation_args *a) {
    return lt_activation_mixed_cpu.computes(a->activation) && lt_dtype_is_half(lt_dtype_of(a->input)) &&
           lt_kernel_computes(lt_device_of(a->input), "activation.mixed", activation_mixed_impls, NULL, LT_FP32);
}

static int mixed_forward(const lt_activation_args *a, lt_error *err) {
    lt_tensor *out = a->output;
    lt_tensor tmp = {0};
    const lt_tensor *in = a->input;
    int rc = -1;
    if (!lt_is_dense(in)) {
        if (lt_contiguous(&tmp, in, err)) goto done;
        in = &tmp;
    }
    /* in place keeps the input's type; otherwise the output takes the handle's */
    if (out != a->input && lt_resize_like_typed(out, in, lt_channels_last_dtype(a->handle), err)) goto done;
    if (out == a->input && in != a->input) {
        lt_fail(err, "in place needs a dense input");
        goto done;
    }
    lt_activation_mixed_shape s = {{a->activation, lt_numel(in), a->negative_slope}, lt_dtype_of(in), lt_dtype_of(out),
                                   LT_FLOAT32, LT_FLOAT32};
    lt_kernel_ctx ctx;
    lt_named operands[] = {{"input", in}, {"output", out}};
    const lt_activation_mixed_impl *impl = (const lt_activation_mixed_impl *)lt_kernel_pick(
        a->handle, "activation.mixed", activation_mixed_impls, &s, operands, 2, &ctx, err);
    if (!impl || (s.a.n && impl->forward(&ctx, lt_data_ptr(out), lt_data_ptr(in), s))) goto done;
    lt_kernel_forward_done(a->handle, a->input, NULL, out, false);
    rc = 0;
done:
    lt_tensor_release(&tmp);
    return rc;
}

/* Gradients like the input (its type and layout); grad_output and the input read laid out as it. */
static int mixed_backward(const lt_activation_args *a, lt_error *err) {
    lt_tensor *gi = a->grad_input;
    lt_tensor tg = {0}, tx = {0};
    const lt_tensor *g = a->grad_output, *x = a->input;
    int rc = -1;
    if (!lt_is_dense(x)) {
        if (lt_contiguous(&tx, x, err)) goto done;
        x = &tx;
    }
    if (gi != a->grad_output && lt_resize_like_typed(gi, x, lt_dtype_of(x), err)) goto done;
    if (!lt_is_dense(gi) || !lt_same_strides(gi, x)) {
        lt_fail(err, "grad_input must be laid out as the input");
        goto done;
    }
    if (!lt_same_strides(g, x)) {
        if (lt_resize_like_typed(&tg, x, lt_dtype_of(g), err) || lt_convert(&tg, g, err)) goto done;
        g = &tg;
    }
    lt_activation_mixed_shape s = {{a->activation, lt_numel(x), a->negative_slope}, lt_dtype_of(x), LT_FLOAT32,
                                   lt_dtype_of(g), lt_dtype_of(gi)};
    lt_kernel_ctx ctx;
    lt_named operands[] = {{"input", x}, {"grad_output", g}, {"grad_input", gi}};
    const lt_activation_mixed_impl *impl = (const lt_activation_mixed_impl *)lt_kernel_pick(
        a->handle, "activation.mixed", activation_mixed_impls, &s, operands, 3, &ctx, err);
    if (!impl || (s.a.n && impl->backward(&ctx, lt_data_ptr(gi), lt_data_ptr(g), lt_data_ptr(x), s))) goto done;
    rc = 0;
done:
    lt_tensor_release(&tg);
    lt_tensor_release(&tx);
    return rc;
}

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
    lt_named operands[] = {{"input", a->input}, {"output", a->output}, {"grad_output", a->grad_output},
                           {"grad_input", a->grad_input}};
    return (const lt_activation_impl *)lt_kernel_pick(a->handle, "activation", activation_impls, s, operands, 4, ctx, err);
}

int lt_activation_forward(const lt_activation_args *a, lt_error *err) {
    lt_kernel_forward_begin(a->handle);
    if (check_name(a->activation, err)) return -1;
    if (goes_mixed(a)) return mixed_forward(a, err);
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
    if (check_name(a->activation, err)) return -1;
    if (goes_mixed(a)) return mixed_backward(a, err);
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
