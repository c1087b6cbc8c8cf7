/* The front of the fused BatchNorm2d -> ReLU -> MaxPool2d(2) (csrc/core/cpu/bn_relu_pool.c computes it). */
#include "../device/backend.h"
#include "../tensor/tensor_math.h"
#include "batchnorm_front.h"
#include "channels_last.h"

/* The implementations, tried in order (kernel.h). */
static const lt_impl *const bn_relu_pool_impls[] = {&lt_bn_relu_pool_cpu.base, NULL};

static int check_input(const lt_tensor *input, lt_error *err) {
    char a[160];
    if (input->ndim != 4 || !(lt_planes_contiguous(input) || lt_is_channels_last(input)))
        return lt_fail(err, "expected a 4-D input with contiguous planes or channels-last, got %s", lt_shape_str(input, a, sizeof a));
    if (input->size[2] < 2 || input->size[3] < 2)
        return lt_fail(err, "input planes %lldx%lld are smaller than the 2x2 pooling window", (long long)input->size[2],
                       (long long)input->size[3]);
    return 0;
}

static lt_bn_relu_pool_shape shape_of(const lt_tensor *input, bool training) {
    const int64_t *sz = input->size;
    return (lt_bn_relu_pool_shape){.n = sz[0], .c = sz[1], .h = sz[2], .w = sz[3], .ho = sz[2] / 2, .wo = sz[3] / 2,
                                   .training = training, .x = {input->stride[0], input->stride[1]}};
}

static bool same_layout(const lt_tensor *a, const lt_tensor *b) {
    for (int d = 0; d < a->ndim; d++)
        if (a->size[d] > 1 && a->stride[d] != b->stride[d]) return false;
    return true;
}

int lt_bn_relu_pool_forward(const lt_bn_relu_pool_args *f, lt_error *err) {
    const lt_batchnorm_args *a = &f->bn;
    lt_kernel_forward_begin(a->handle);
    if (check_input(a->input, err) || lt_bn_check_forward(a, a->input->size[1], err)) return -1;
    if (lt_bn_goes_channels_last(a)) return lt_bn_relu_pool_channels_last_forward(f, err);
    if (lt_dtype_of(a->input) != LT_FLOAT32)
        return lt_fail(err, "a bf16 input that is not channels-last is not supported here: call :float() first");
    if (!lt_planes_contiguous(a->input))  /* a channels-last input on a GPU: its kernels read planes */
        return lt_fail(err, "on %s the input must have contiguous planes (call :contiguous() first)",
                       lt_device_name(lt_device_of(a->input)));
    lt_bn_relu_pool_shape s = shape_of(a->input, a->p.training);
    int64_t csize[1] = {s.c}, osize[4] = {s.n, s.c, s.ho, s.wo};
    if (lt_tensor_resize(a->save_mean, 1, csize, err) || lt_tensor_resize(a->save_invstd, 1, csize, err)) return -1;
    if (lt_is_cnhw(a->input) ? lt_resize_cnhw(a->output, s.n, s.c, s.ho, s.wo, err)
                             : lt_tensor_resize(a->output, 4, osize, err))
        return -1;
    if (lt_resize_like(f->codes, a->output, err)) return -1;
    s.y = (lt_nc_strides){a->output->stride[0], a->output->stride[1]};
    lt_kernel_ctx ctx;
    lt_named operands[LT_BN_OPERANDS + 1];
    int nops = lt_bn_operands(a, a->input, NULL, operands);
    operands[nops++] = (lt_named){"codes", f->codes};
    const lt_bn_relu_pool_impl *impl = (const lt_bn_relu_pool_impl *)lt_kernel_pick(
        a->handle, "bn_relu_pool", bn_relu_pool_impls, &s, operands, nops, &ctx, err);
    if (!impl) return -1;
    if (s.n * s.c > 0 && impl->forward(&ctx, lt_data(a->output), lt_data(f->codes), lt_data(a->input), lt_bn_vectors_of(a),
                                   s, a->p))
        return -1;
    lt_kernel_forward_done(a->handle, a->input, NULL, a->output, a->p.training);
    return 0;
}

int lt_bn_relu_pool_backward(const lt_bn_relu_pool_args *f, lt_error *err) {
    const lt_batchnorm_args *a = &f->bn;
    if (lt_kernel_backward_check(a->handle, a->input, a->grad_output, err) || check_input(a->input, err) ||
        lt_bn_check_backward(a, a->input->size[1], err))
        return -1;
    if (lt_bn_goes_channels_last(a)) return lt_bn_relu_pool_channels_last_backward(f, err);
    if (lt_dtype_of(a->input) != LT_FLOAT32 || lt_dtype_of(a->grad_output) != LT_FLOAT32)
        return lt_fail(err, "a bf16 input that is not channels-last is not supported here: call :float() first");
    lt_bn_relu_pool_shape s = shape_of(a->input, a->handle->training);
    const lt_tensor *out = a->output;
    const char *whose = "the shape of the forward pass's output";
    if (lt_check_dims("output", out, &a->handle->output, whose, err) ||
        lt_check_dims("codes", f->codes, &a->handle->output, whose, err))
        return -1;
    if (!same_layout(f->codes, out)) return lt_fail(err, "codes must have the output's layout");
    /* the kernels walk grad_output with the output's index: give it the output's layout when it has another */
    const lt_tensor *go = a->grad_output;
    if (!same_layout(go, out)) {
        if (lt_resize_like(f->dy, out, err) || lt_copy(f->dy, go, err)) return -1;
        go = f->dy;
    }
    if (a->grad_input) {
        if (lt_resize_like(a->grad_input, a->input, err)) return -1;
        s.dx = (lt_nc_strides){a->grad_input->stride[0], a->grad_input->stride[1]};
    }
    if (s.n * s.c == 0) return 0;
    s.y = (lt_nc_strides){out->stride[0], out->stride[1]};
    lt_kernel_ctx ctx;
    lt_named operands[LT_BN_OPERANDS + 1];
    int nops = lt_bn_operands(a, a->input, go, operands);
    operands[nops++] = (lt_named){"codes", f->codes};
    const lt_bn_relu_pool_impl *impl = (const lt_bn_relu_pool_impl *)lt_kernel_pick(
        a->handle, "bn_relu_pool", bn_relu_pool_impls, &s, operands, nops, &ctx, err);
    if (!impl) return -1;
    return impl->backward(&ctx, lt_ptr(a->grad_input), lt_ptr(a->grad_weight), lt_ptr(a->grad_bias), lt_data(go),
                          lt_data(out), lt_data(f->codes), lt_data(a->input), lt_bn_vectors_of(a), s);
}
