/* The front of batch normalisation over (N, C, ...) inputs (csrc/core/cpu/batchnorm.c computes it). */
#include "batchnorm_front.h"
#include "channels_last.h"
#include "../device/backend.h"

/* The implementations, tried in order (kernel.h). */
static const lt_impl *const batchnorm_impls[] = {&lt_batchnorm_cpu.base, NULL};

static bool runs_contiguous(const lt_tensor *t) {
    int64_t st = 1;
    for (int d = t->ndim - 1; d >= 2; d--) {
        if (t->size[d] != 1 && t->stride[d] != st) return false;
        st *= t->size[d];
    }
    return true;
}

/* Shares t into *view when it is float32 and its runs (the trailing dimensions) are contiguous, copies
 * it otherwise. */
static int with_runs(lt_tensor *view, const lt_tensor *t, lt_error *err) {
    if (lt_dtype_of(t) != LT_FLOAT32) return lt_planar(view, t, err);
    if (runs_contiguous(t)) {
        lt_tensor_share(view, t);
        return 0;
    }
    return lt_contiguous(view, t, err);
}

static lt_batchnorm_shape shape_of(const lt_tensor *x, bool training) {
    lt_batchnorm_shape s = {.n = x->size[0], .c = x->size[1], .inner = 1, .training = training};
    for (int d = 2; d < x->ndim; d++) s.inner *= x->size[d];
    s.x = (lt_nc_strides){x->stride[0], x->stride[1]};
    return s;
}

static lt_nc_strides strides_of(const lt_tensor *t) { return (lt_nc_strides){t->stride[0], t->stride[1]}; }

/* ---- the forward passes: whole (sums NULL), or the normalisation with given sums ---- */

static int check_input(const lt_tensor *x, lt_error *err) {
    char s[160];
    if (x->ndim < 2)
        return lt_fail(err, "expected an input of at least 2 dimensions (batch x channels ...), got %s",
                       lt_shape_str(x, s, sizeof s));
    return 0;
}

static int check_sums(int64_t len, int64_t C, lt_error *err) {
    if (len != 2 * C + 1)
        return lt_fail(err, "sums must hold 2 x %lld + 1 = %lld float64 values (2 per channel and the count), got %lld",
                       (long long)C, (long long)(2 * C + 1), (long long)len);
    return 0;
}

/* The element count the sums were made over: a training pass needs more than one per channel. */
static int check_count(const double *sums, int64_t C, lt_error *err) {
    double n = sums[2 * C];
    if (!(n > 1) || n > 9e15 || n != (double)(int64_t)n)
        return lt_fail(err, "expected more than 1 value per channel when training, got a count of %g", n);
    return 0;
}

static int forward(const lt_batchnorm_args *a, const double *sums, int64_t len, lt_error *err) {
    lt_kernel_forward_begin(a->handle);
    if (check_input(a->input, err)) return -1;
    int64_t C = a->input->size[1], csize[1] = {C};
    if (sums) {
        if (!a->p.training) return lt_fail(err, "normalising with given statistics is a training pass (training = true)");
        if (check_sums(len, C, err) || lt_bn_check_vectors(a, C, err) || check_count(sums, C, err)) return -1;
    } else {
        if (lt_bn_check_forward(a, C, err)) return -1;
        if (lt_bn_goes_channels_last(a)) return lt_batchnorm_channels_last_forward(a, err);
    }
    if (a->activation) return lt_fail(err, "a fused activation needs a channels-last input");
    lt_tensor x = {0};
    lt_kernel_ctx ctx;
    int rc = -1;
    if (with_runs(&x, a->input, err) || lt_resize_like(a->output, &x, err) ||
        lt_tensor_resize(a->save_mean, 1, csize, err) || lt_tensor_resize(a->save_invstd, 1, csize, err))
        goto done;
    lt_batchnorm_shape sh = shape_of(&x, a->p.training);
    sh.y = strides_of(a->output);
    lt_named operands[LT_BN_OPERANDS];
    int nops = lt_bn_operands(a, &x, NULL, operands);
    const lt_batchnorm_impl *impl = (const lt_batchnorm_impl *)lt_kernel_pick(a->handle, "batchnorm", batchnorm_impls,
                                                                             &sh, operands, nops, &ctx, err);
    if (!impl) goto done;
    if (lt_numel(&x)) {
        int failed = sums ? impl->normalize(&ctx, lt_data(a->output), lt_data(&x), sums, lt_bn_vectors_of(a), sh, a->p)
                          : impl->forward(&ctx, lt_data(a->output), lt_data(&x), lt_bn_vectors_of(a), sh, a->p);
        if (failed) goto done;
    }
    lt_kernel_forward_done(a->handle, a->input, NULL, a->output, a->p.training);
    rc = 0;
done:
    lt_tensor_release(&x);
    return rc;
}

int lt_batchnorm_forward(const lt_batchnorm_args *a, lt_error *err) { return forward(a, NULL, 0, err); }

int lt_batchnorm_normalize(const lt_batchnorm_args *a, const double *sums, int64_t len, lt_error *err) {
    return forward(a, sums, len, err);
}

int lt_batchnorm_statistics(const lt_batchnorm_args *a, double *sums, int64_t len, lt_error *err) {
    if (check_input(a->input, err)) return -1;
    int64_t C = a->input->size[1];
    if (!a->p.training) return lt_fail(err, "batch statistics are those of a training pass (training = true)");
    if (check_sums(len, C, err) || lt_bn_check_vectors(a, C, err)) return -1;
    lt_tensor x = {0};
    lt_kernel_ctx ctx;
    int rc = -1;
    if (with_runs(&x, a->input, err)) goto done;
    lt_batchnorm_shape sh = shape_of(&x, true);
    lt_named operands[LT_BN_OPERANDS];
    int nops = lt_bn_operands(a, &x, NULL, operands);
    const lt_batchnorm_impl *impl = (const lt_batchnorm_impl *)lt_kernel_pick(a->handle, "batchnorm", batchnorm_impls,
                                                                             &sh, operands, nops, &ctx, err);
    if (!impl || lt_device_sync_point(lt_device_of(&x), "SyncBatchNorm's statistics (read on the host)", err)) goto done;
    for (int64_t i = 0; i < len; i++) sums[i] = 0;
    rc = lt_numel(&x) ? impl->statistics(&ctx, sums, lt_data(&x), sh) : 0;
done:
    lt_tensor_release(&x);
    return rc;
}

/* ---- the backward passes: whole, the gradient's sums, or the input gradient from given sums ---- */

typedef enum { BACKWARD_WHOLE, BACKWARD_SUMS, BACKWARD_INPUT } backward_part;

static int backward(const lt_batchnorm_args *a, backward_part part, double *sums, int64_t len, int64_t count,
                    lt_error *err) {
    char s[160], t[160];
    if (lt_kernel_backward_check(a->handle, a->input, a->grad_output, err)) return -1;
    if (a->input->ndim < 2 || !lt_same_shape(a->input, a->grad_output))
        return lt_fail(err, "grad_output %s must have the input's shape %s", lt_shape_str(a->grad_output, s, sizeof s),
                       lt_shape_str(a->input, t, sizeof t));
    int64_t C = a->input->size[1];
    if (lt_bn_check_backward(a, C, err)) return -1;
    if (part == BACKWARD_WHOLE && lt_bn_goes_channels_last(a)) return lt_batchnorm_channels_last_backward(a, err);
    if (a->activation) return lt_fail(err, "a fused activation needs a channels-last input");
    if (part != BACKWARD_WHOLE) {
        if (check_sums(len, C, err)) return -1;
        if (!a->handle->training) return lt_fail(err, "the forward pass did not use batch statistics (it was not training)");
    }
    if (part == BACKWARD_INPUT) {
        if (!a->grad_input) return lt_fail(err, "grad_input is required");
        if (count < 1) return lt_fail(err, "count must be >= 1, got %lld", (long long)count);
    }
    lt_tensor x = {0}, g = {0};
    lt_kernel_ctx ctx;
    int rc = -1;
    if (with_runs(&x, a->input, err) || with_runs(&g, a->grad_output, err)) goto done;
    if (a->grad_input && lt_resize_like(a->grad_input, &x, err)) goto done;
    if (part == BACKWARD_SUMS)
        for (int64_t i = 0; i < 2 * C; i++) sums[i] = 0;
    if (lt_numel(&x) == 0) { rc = 0; goto done; }
    lt_batchnorm_shape sh = shape_of(&x, a->handle->training);
    sh.dy = strides_of(&g);
    if (a->grad_input) sh.dx = strides_of(a->grad_input);
    lt_named operands[LT_BN_OPERANDS];
    int nops = lt_bn_operands(a, &x, &g, operands);
    const lt_batchnorm_impl *impl = (const lt_batchnorm_impl *)lt_kernel_pick(a->handle, "batchnorm", batchnorm_impls,
                                                                             &sh, operands, nops, &ctx, err);
    if (!impl || (part == BACKWARD_SUMS &&
                  lt_device_sync_point(lt_device_of(&x), "SyncBatchNorm's gradient sums (read on the host)", err)))
        goto done;
    lt_bn_vectors v = lt_bn_vectors_of(a);
    if (part == BACKWARD_WHOLE)
        rc = impl->backward(&ctx, lt_ptr(a->grad_input), lt_ptr(a->grad_weight), lt_ptr(a->grad_bias), lt_data(&g),
                            lt_data(&x), v, sh);
    else if (part == BACKWARD_SUMS)
        rc = impl->grad_sums(&ctx, sums, lt_ptr(a->grad_weight), lt_ptr(a->grad_bias), lt_data(&g), lt_data(&x), v, sh);
    else
        rc = impl->grad_input(&ctx, lt_data(a->grad_input), sums, count, lt_data(&g), lt_data(&x), v, sh);
done:
    lt_tensor_release(&x);
    lt_tensor_release(&g);
    return rc;
}

int lt_batchnorm_backward(const lt_batchnorm_args *a, lt_error *err) { return backward(a, BACKWARD_WHOLE, NULL, 0, 0, err); }

int lt_batchnorm_grad_sums(const lt_batchnorm_args *a, double *sums, int64_t len, lt_error *err) {
    return backward(a, BACKWARD_SUMS, sums, len, 0, err);
}

int lt_batchnorm_grad_input(const lt_batchnorm_args *a, const double *sums, int64_t len, int64_t count, lt_error *err) {
    return backward(a, BACKWARD_INPUT, (double *)sums, len, count, err);
}
