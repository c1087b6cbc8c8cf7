/* The fronts of 2-D pooling over (N, C, H, W) planes (csrc/core/cpu/maxpool.c, avgpool.c compute them).
 * Outputs keep the input's plane layout (nn.h). */
#include "channels_last.h"

/* The implementations, tried in order (kernel.h). */
static const lt_impl *const maxpool2d_impls[] = {&lt_maxpool2d_cpu.base, NULL};
static const lt_impl *const avgpool2d_impls[] = {&lt_avgpool2d_cpu.base, NULL};
static const lt_impl *const adaptive_avgpool2d_impls[] = {&lt_adaptive_avgpool2d_cpu.base, NULL};

static int check_input(const lt_tensor *input, lt_error *err) {
    char a[160];
    if (input->ndim != 4)
        return lt_fail(err, "expected a 4-D input (batch x channels x height x width), got %s", lt_shape_str(input, a, sizeof a));
    return 0;
}

/* Resizes a gradient to the input's shape, in its layout when that has contiguous planes. */
static int resize_planar_like(lt_tensor *out, const lt_tensor *input, lt_error *err) {
    if (lt_planes_contiguous(input)) return lt_resize_like(out, input, err);
    return lt_tensor_resize(out, input->ndim, input->size, err);
}

/* Resizes out to (n, c, ho, wo) keeping like's order of batch and channel. */
static int resize_planes(lt_tensor *out, const lt_tensor *like, int64_t ho, int64_t wo, lt_error *err) {
    if (lt_is_cnhw(like) && like->size[0] > 1 && like->size[1] > 1)
        return lt_resize_cnhw(out, like->size[0], like->size[1], ho, wo, err);
    int64_t size[4] = {like->size[0], like->size[1], ho, wo};
    return lt_tensor_resize(out, 4, size, err);
}

static int pool_extent(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t *out, lt_error *err) {
    if (k < 1 || s < 1 || pad < 0) return lt_fail(err, "kernel size and stride must be positive and padding non-negative");
    if (pad * 2 > k) return lt_fail(err, "padding %lld must be at most half the kernel size %lld", (long long)pad, (long long)k);
    if (in + 2 * pad < k)
        return lt_fail(err, "input size %lld (padding %lld) is smaller than the kernel %lld", (long long)in, (long long)pad, (long long)k);
    *out = (in + 2 * pad - k) / s + 1;
    return 0;
}

/* The shape of a pooling of input with windows p (adaptive: p.out_h x p.out_w windows). */
static int shape_of(lt_pool2d_shape *s, const lt_tensor *input, lt_pool2d_params p, bool adaptive, lt_error *err) {
    if (check_input(input, err)) return -1;
    *s = (lt_pool2d_shape){.n = input->size[0], .c = input->size[1], .h = input->size[2], .w = input->size[3], .p = p};
    if (adaptive) {
        if (p.out_h < 1 || p.out_w < 1)
            return lt_fail(err, "output size must be positive, got %lldx%lld", (long long)p.out_h, (long long)p.out_w);
        s->ho = p.out_h;
        s->wo = p.out_w;
        return 0;
    }
    return pool_extent(s->h, p.kernel_h, p.stride_h, p.pad_h, &s->ho, err) ||
           pool_extent(s->w, p.kernel_w, p.stride_w, p.pad_w, &s->wo, err);
}

static lt_nc_strides strides_of(const lt_tensor *t) { return (lt_nc_strides){t->stride[0], t->stride[1]}; }

/* When input and output store their planes consecutively in the same order and the height is even,
 * all planes together are one tall image whose 2x2 windows never straddle two planes. */
static bool planes_stack(const lt_tensor *in, const lt_tensor *out) {
    if (in->size[2] % 2 || !lt_is_dense(in) || !lt_is_dense(out) || !lt_planes_contiguous(in) || !lt_planes_contiguous(out))
        return false;
    int64_t pin = in->size[2] * in->size[3], pout = out->size[2] * out->size[3];
    for (int d = 0; d < 2; d++)
        if (in->size[d] > 1 && in->stride[d] / pin != out->stride[d] / pout) return false;
    return true;
}

/* The backward pass's checks: a forward pass went before, input and grad_output have its shapes, and so
 * do the tensors it left (output, indices: `saved`, NULL when none). */
static int check_backward(const lt_pool2d_args *a, const lt_tensor *const *saved, const char *const *names,
                          lt_error *err) {
    if (lt_kernel_backward_check(a->handle, a->input, a->grad_output, err)) return -1;
    for (int i = 0; saved && saved[i]; i++)
        if (lt_check_dims(names[i], saved[i], &a->handle->output, "the shape of the forward pass's output", err))
            return -1;
    return 0;
}

int lt_maxpool2d_forward(const lt_pool2d_args *a, lt_error *err) {
    lt_kernel_forward_begin(a->handle);
    lt_pool2d_shape s;
    if (shape_of(&s, a->input, a->p, false, err)) return -1;
    if (lt_maxpool2d_goes_channels_last(a)) return lt_maxpool2d_channels_last_forward(a, s.ho, s.wo, err);
    bool keep_indices = lt_maxpool2d_keeps_indices(a->p);
    lt_tensor x = {0};
    lt_kernel_ctx ctx;
    int rc = -1;
    if (lt_planar(&x, a->input, err) || resize_planes(a->output, &x, s.ho, s.wo, err)) goto done;
    if (keep_indices && resize_planes(a->indices, &x, s.ho, s.wo, err)) goto done;
    s.x = strides_of(&x);
    s.y = s.idx = strides_of(a->output);
    s.stacked = planes_stack(&x, a->output);
    lt_named operands[] = {{"input", &x}, {"output", a->output}, {"indices", keep_indices ? a->indices : NULL}};
    const lt_maxpool2d_impl *impl =
        (const lt_maxpool2d_impl *)lt_kernel_pick(a->handle, "maxpool2d", maxpool2d_impls, &s, operands, 3, &ctx, err);
    if (!impl) goto done;
    if (s.n * s.c * s.ho * s.wo > 0 &&
        impl->forward(&ctx, lt_data(a->output), keep_indices ? lt_data(a->indices) : NULL, lt_data(&x), s))
        goto done;
    lt_kernel_forward_done(a->handle, a->input, NULL, a->output, false);
    rc = 0;
done:
    lt_tensor_release(&x);
    return rc;
}

int lt_maxpool2d_backward(const lt_pool2d_args *a, lt_error *err) {
    lt_pool2d_shape s;
    bool keep_indices = lt_maxpool2d_keeps_indices(a->p);
    const lt_tensor *saved[3] = {a->output, keep_indices ? a->indices : NULL, NULL};
    static const char *const names[2] = {"output", "indices"};
    if (check_backward(a, saved, names, err) || shape_of(&s, a->input, a->p, false, err)) return -1;
    if (lt_maxpool2d_goes_channels_last(a)) return lt_maxpool2d_channels_last_backward(a, s.ho, s.wo, err);
    if (keep_indices && !lt_planes_contiguous(a->indices))
        return lt_fail(err, "indices must have contiguous planes, as the forward pass left them");
    lt_tensor g = {0}, x = {0}, y = {0};
    lt_kernel_ctx ctx;
    int rc = -1;
    if (lt_planar(&g, a->grad_output, err) || lt_planar(&x, a->input, err) || lt_planar(&y, a->output, err) ||
        resize_planar_like(a->grad_input, &x, err))
        goto done;
    s.x = strides_of(&x);
    s.y = strides_of(&y);
    s.dy = strides_of(&g);
    s.dx = strides_of(a->grad_input);
    if (keep_indices) s.idx = strides_of(a->indices);
    s.stacked = planes_stack(&x, &y) && planes_stack(a->grad_input, &g);
    if (s.n * s.c * s.h * s.w == 0) { rc = 0; goto done; }
    lt_named operands[] = {{"input", &x},
                           {"output", &y},
                           {"indices", keep_indices ? a->indices : NULL},
                           {"grad_output", &g},
                           {"grad_input", a->grad_input}};
    const lt_maxpool2d_impl *impl =
        (const lt_maxpool2d_impl *)lt_kernel_pick(a->handle, "maxpool2d", maxpool2d_impls, &s, operands, 5, &ctx, err);
    if (!impl) goto done;
    rc = impl->backward(&ctx, lt_data(a->grad_input), lt_ptr(&g), lt_ptr(&y), keep_indices ? lt_ptr(a->indices) : NULL,
                        lt_data(&x), s);
done:
    lt_tensor_release(&g);
    lt_tensor_release(&x);
    lt_tensor_release(&y);
    return rc;
}

/* Average pooling, fixed or adaptive windows: one front for both. */
static int avgpool_forward(const lt_pool2d_args *a, bool adaptive, lt_error *err) {
    lt_kernel_forward_begin(a->handle);
    lt_pool2d_shape s;
    if (shape_of(&s, a->input, a->p, adaptive, err)) return -1;
    lt_tensor x = {0};
    lt_kernel_ctx ctx;
    int rc = -1;
    if (lt_planar(&x, a->input, err) || resize_planes(a->output, &x, s.ho, s.wo, err)) goto done;
    s.x = strides_of(&x);
    s.y = strides_of(a->output);
    const char *op = adaptive ? "adaptive_avgpool2d" : "avgpool2d";
    lt_named operands[] = {{"input", &x}, {"output", a->output}};
    const lt_avgpool2d_impl *impl = (const lt_avgpool2d_impl *)lt_kernel_pick(
        a->handle, op, adaptive ? adaptive_avgpool2d_impls : avgpool2d_impls, &s, operands, 2, &ctx, err);
    if (!impl) goto done;
    if (lt_numel(a->output) && (!adaptive || s.h * s.w > 0) && impl->forward(&ctx, lt_data(a->output), lt_data(&x), s)) goto done;
    lt_kernel_forward_done(a->handle, a->input, NULL, a->output, false);
    rc = 0;
done:
    lt_tensor_release(&x);
    return rc;
}

static int avgpool_backward(const lt_pool2d_args *a, bool adaptive, lt_error *err) {
    lt_pool2d_shape s;
    if (check_backward(a, NULL, NULL, err) || shape_of(&s, a->input, a->p, adaptive, err)) return -1;
    lt_tensor g = {0};
    lt_kernel_ctx ctx;
    int rc = -1;
    if (lt_planar(&g, a->grad_output, err) || resize_planar_like(a->grad_input, a->input, err)) goto done;
    s.dy = strides_of(&g);
    s.dx = strides_of(a->grad_input);
    const char *op = adaptive ? "adaptive_avgpool2d" : "avgpool2d";
    lt_named operands[] = {{"grad_output", &g}, {"grad_input", a->grad_input}};
    const lt_avgpool2d_impl *impl = (const lt_avgpool2d_impl *)lt_kernel_pick(
        a->handle, op, adaptive ? adaptive_avgpool2d_impls : avgpool2d_impls, &s, operands, 2, &ctx, err);
    if (!impl) goto done;
    if (lt_numel(a->grad_input) && impl->backward(&ctx, lt_data(a->grad_input), lt_ptr(&g), s)) goto done;
    rc = 0;
done:
    lt_tensor_release(&g);
    return rc;
}

int lt_avgpool2d_forward(const lt_pool2d_args *a, lt_error *err) { return avgpool_forward(a, false, err); }
int lt_avgpool2d_backward(const lt_pool2d_args *a, lt_error *err) { return avgpool_backward(a, false, err); }
int lt_adaptive_avgpool2d_forward(const lt_pool2d_args *a, lt_error *err) { return avgpool_forward(a, true, err); }
int lt_adaptive_avgpool2d_backward(const lt_pool2d_args *a, lt_error *err) { return avgpool_backward(a, true, err); }
