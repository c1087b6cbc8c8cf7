/* The channels-last branches of the BatchNorm and fused BatchNorm+ReLU+pool fronts (channels_last.h). */
#include <string.h>

#include "batchnorm_front.h"
#include "channels_last.h"

/* The implementations, tried in order (kernel.h). */
static const lt_impl *const batchnorm_channels_last_impls[] = {&lt_batchnorm_channels_last_cpu.base, NULL};

/* Every channels-last input, float32 or bf16, where the device has the table: the planar kernels
 * (cpu/batchnorm.c, cpu/bn_relu_pool.c) walk each channel's planes as contiguous runs, which a
 * channels-last convolution's output is not. (One entry serves both tables on every device.) */
bool lt_bn_goes_channels_last(const lt_batchnorm_args *a) {
    const lt_tensor *x = a->input;
    return x->ndim == 4 && lt_is_channels_last(x) &&
           lt_kernel_computes(lt_device_of(x), "batchnorm.channels_last", batchnorm_channels_last_impls, NULL, LT_FP32);
}

static int activation_of(const char *name, lt_bn_act *act, lt_error *err) {
    if (!name) *act = LT_BN_ACT_NONE;
    else if (!strcmp(name, "relu")) *act = LT_BN_ACT_RELU;
    else if (!strcmp(name, "gelu")) *act = LT_BN_ACT_GELU;
    else return lt_fail(err, "unknown fused activation '%s' (known: relu, gelu)", name);
    return 0;
}

static lt_bn_channels_last_shape shape_of(const lt_batchnorm_args *a, bool training, lt_bn_act act) {
    const int64_t *sz = a->input->size;
    return (lt_bn_channels_last_shape){.n = sz[0], .c = sz[1], .h = sz[2], .w = sz[3], .training = training, .act = act,
                            .x = lt_dtype_of(a->input)};
}

static const lt_batchnorm_channels_last_impl *pick(const lt_batchnorm_args *a, const char *op, const lt_bn_channels_last_shape *s,
                                        lt_kernel_ctx *ctx, lt_error *err) {
    lt_named operands[LT_BN_OPERANDS];
    int nops = lt_bn_operands(a, a->input, a->grad_output, operands);
    return (const lt_batchnorm_channels_last_impl *)lt_kernel_pick(a->handle, op, batchnorm_channels_last_impls, s, operands, nops, ctx, err);
}

/* grad_output as the kernels read it: channels-last (any type); a copy into tmp otherwise */
static int channels_last_grad(lt_tensor *tmp, const lt_tensor *g, const lt_tensor **use, lt_error *err) {
    *use = g;
    if (lt_is_channels_last(g)) return 0;
    if (lt_convert_channels_last(tmp, g, lt_dtype_of(g), err)) return -1;
    *use = tmp;
    return 0;
}

int lt_batchnorm_channels_last_forward(const lt_batchnorm_args *a, lt_error *err) {
    lt_bn_act act = LT_BN_ACT_NONE;
    const int64_t *sz = a->input->size, csize[1] = {sz[1]};
    if (activation_of(a->activation, &act, err) ||
        lt_resize_channels_last(a->output, sz[0], sz[1], sz[2], sz[3], lt_channels_last_dtype(a->handle), err) ||
        lt_tensor_resize(a->save_mean, 1, csize, err) || lt_tensor_resize(a->save_invstd, 1, csize, err))
        return -1;
    lt_bn_channels_last_shape s = shape_of(a, a->p.training, act);
    s.y = lt_dtype_of(a->output);
    lt_kernel_ctx ctx;
    const lt_batchnorm_channels_last_impl *impl = pick(a, "batchnorm.channels_last", &s, &ctx, err);
    if (!impl) return -1;
    if (lt_numel(a->input) &&
        impl->forward(&ctx, lt_data_ptr(a->output), lt_data_ptr(a->input), lt_bn_vectors_of(a), s, a->p))
        return -1;
    lt_kernel_forward_done(a->handle, a->input, NULL, a->output, a->p.training);
    return 0;
}

int lt_batchnorm_channels_last_backward(const lt_batchnorm_args *a, lt_error *err) {
    lt_bn_act act = LT_BN_ACT_NONE;
    if (activation_of(a->activation, &act, err)) return -1;
    lt_tensor tmp = {0};
    const lt_tensor *g;
    int rc = -1;
    const int64_t *sz = a->input->size;
    if (channels_last_grad(&tmp, a->grad_output, &g, err)) goto done;
    if (a->grad_input && lt_resize_channels_last(a->grad_input, sz[0], sz[1], sz[2], sz[3], lt_dtype_of(a->input), err)) goto done;
    lt_bn_channels_last_shape s = shape_of(a, a->handle->training, act);
    s.dy = lt_dtype_of(g);
    if (a->grad_input) s.dx = lt_dtype_of(a->grad_input);
    lt_kernel_ctx ctx;
    const lt_batchnorm_channels_last_impl *impl = pick(a, "batchnorm.channels_last", &s, &ctx, err);
    if (!impl) goto done;
    rc = lt_numel(a->input) ? impl->backward(&ctx, a->grad_input ? lt_data_ptr(a->grad_input) : NULL,
                                             lt_ptr(a->grad_weight), lt_ptr(a->grad_bias), lt_data_ptr(g),
                                             lt_data_ptr(a->input), lt_bn_vectors_of(a), s)
                            : 0;
done:
    lt_tensor_release(&tmp);
    return rc;
}

int lt_bn_relu_pool_channels_last_forward(const lt_bn_relu_pool_args *f, lt_error *err) {
    const lt_batchnorm_args *a = &f->bn;
    const int64_t *sz = a->input->size, csize[1] = {sz[1]};
    int64_t ho = sz[2] / 2, wo = sz[3] / 2;
    if (lt_resize_channels_last(a->output, sz[0], sz[1], ho, wo, lt_channels_last_dtype(a->handle), err) ||
        lt_resize_channels_last(f->codes, sz[0], sz[1], ho, wo, LT_UINT8, err) ||
        lt_tensor_resize(a->save_mean, 1, csize, err) || lt_tensor_resize(a->save_invstd, 1, csize, err))
        return -1;
    lt_bn_channels_last_shape s = shape_of(a, a->p.training, LT_BN_ACT_RELU);
    s.y = lt_dtype_of(a->output);
    lt_kernel_ctx ctx;
    const lt_batchnorm_channels_last_impl *impl = pick(a, "bn_relu_pool.channels_last", &s, &ctx, err);
    if (!impl) return -1;
    if (lt_numel(a->output) && impl->pool_forward(&ctx, lt_data_ptr(a->output), lt_data_ptr(f->codes),
                                                  lt_data_ptr(a->input), lt_bn_vectors_of(a), s, a->p))
        return -1;
    lt_kernel_forward_done(a->handle, a->input, NULL, a->output, a->p.training);
    return 0;
}

int lt_bn_relu_pool_channels_last_backward(const lt_bn_relu_pool_args *f, lt_error *err) {
    const lt_batchnorm_args *a = &f->bn;
    if (lt_dtype_of(f->codes) != LT_UINT8 || !lt_is_channels_last(f->codes))
        return lt_fail(err, "codes must be as the channels-last forward pass left them");
    const lt_tensor *g = a->grad_output;
    if (!lt_is_channels_last(g)) {
        if (lt_convert_channels_last(f->dy, g, LT_FLOAT32, err)) return -1;
        g = f->dy;
    }
    const int64_t *sz = a->input->size;
    if (a->grad_input && lt_resize_channels_last(a->grad_input, sz[0], sz[1], sz[2], sz[3], lt_dtype_of(a->input), err))
        return -1;
    lt_bn_channels_last_shape s = shape_of(a, a->handle->training, LT_BN_ACT_RELU);
    s.dy = lt_dtype_of(g);
    if (a->grad_input) s.dx = lt_dtype_of(a->grad_input);
    lt_kernel_ctx ctx;
    const lt_batchnorm_channels_last_impl *impl = pick(a, "bn_relu_pool.channels_last", &s, &ctx, err);
    if (!impl) return -1;
    if (!lt_numel(a->input)) return 0;
    return impl->pool_backward(&ctx, a->grad_input ? lt_data_ptr(a->grad_input) : NULL, lt_ptr(a->grad_weight),
                               lt_ptr(a->grad_bias), lt_data_ptr(g), lt_data_ptr(f->codes), lt_data_ptr(a->input),
                               lt_bn_vectors_of(a), s);
}
