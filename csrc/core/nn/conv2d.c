/* The front of the 2-D convolution: checks, the batch-folded output and the scratch buffers, and the
 * choice of an implementation (the CPU's: csrc/core/cpu/conv2d.c). */
#include "../tensor/tensor_math.h"
#include "channels_last.h"
#include "conv2d_layout.h"

/* The host's implementations, tried in order (kernel.h). oneDNN's is in the channels-last table
 * (conv2d_channels_last.c), which is tried first. */
static const lt_impl *const conv2d_impls[] = {&lt_conv2d_cpu.base, NULL};

static int64_t out_extent(int64_t in, int64_t kernel, int64_t stride, int64_t pad) {
    return (in + 2 * pad - kernel) / stride + 1;
}

static int shape_of(lt_conv2d_shape *s, const lt_tensor *input, const lt_tensor *weight, const lt_tensor *bias,
                    const char *bias_name, lt_conv2d_params p, lt_error *err) {
    char a[160], b[160];
    if (input->ndim != 4)
        return lt_fail(err, "expected a 4-D input (batch x channels x height x width), got %s", lt_shape_str(input, a, sizeof a));
    if (weight->ndim != 4 || weight->size[2] != p.kernel_h || weight->size[3] != p.kernel_w)
        return lt_fail(err, "weight must be out x in x %lld x %lld, got %s", (long long)p.kernel_h, (long long)p.kernel_w,
                       lt_shape_str(weight, a, sizeof a));
    if (input->size[1] != weight->size[1])
        return lt_fail(err, "input has %lld channels but the layer expects %lld (input %s, weight %s)",
                       (long long)input->size[1], (long long)weight->size[1], lt_shape_str(input, a, sizeof a),
                       lt_shape_str(weight, b, sizeof b));
    if (bias && (bias->ndim != 1 || bias->size[0] != weight->size[0]))
        return lt_fail(err, "%s must have %lld elements, got %s", bias_name, (long long)weight->size[0],
                       lt_shape_str(bias, a, sizeof a));
    if (p.kernel_h < 1 || p.kernel_w < 1 || p.stride_h < 1 || p.stride_w < 1 || p.pad_h < 0 || p.pad_w < 0)
        return lt_fail(err, "kernel size and stride must be positive and padding non-negative");
    *s = (lt_conv2d_shape){.n = input->size[0], .cin = input->size[1], .h = input->size[2], .w = input->size[3],
                           .cout = weight->size[0], .p = p};
    s->k = s->cin * p.kernel_h * p.kernel_w;
    if (s->h + 2 * p.pad_h < p.kernel_h || s->w + 2 * p.pad_w < p.kernel_w)
        return lt_fail(err, "input %lldx%lld (padding %lldx%lld) is smaller than the kernel %lldx%lld", (long long)s->h,
                       (long long)s->w, (long long)p.pad_h, (long long)p.pad_w, (long long)p.kernel_h, (long long)p.kernel_w);
    s->ho = out_extent(s->h, p.kernel_h, p.stride_h, p.pad_h);
    s->wo = out_extent(s->w, p.kernel_w, p.stride_w, p.pad_w);
    return 0;
}

/* The input float32 with contiguous planes and the weight contiguous (shared, or copied when they are
 * not). */
static int operands(lt_tensor *in, lt_tensor *w, lt_conv2d_shape *s, const lt_conv2d_args *a, lt_error *err) {
    lt_tensor f = {0};
    int rc = lt_as_float32(&f, a->input, err) || lt_planar(in, &f, err) || lt_contiguous(w, a->weight, err);
    lt_tensor_release(&f);
    if (rc) return -1;
    s->x = (lt_nc_strides){in->stride[0], in->stride[1]};
    return 0;
}

/* The plain front's layout: the GEMMs take dY as [Cout, N*Ho*Wo] rows. */
static const lt_conv2d_layout batch_folded = {false, LT_FLOAT32};

/* Whether the channels-last branch computes the pass. */
static bool goes_channels_last(const lt_conv2d_args *a, const lt_conv2d_shape *s) {
    return lt_conv2d_goes_channels_last(a->handle, s, lt_device_of(a->input));
}

int lt_conv2d_forward(const lt_conv2d_args *a, lt_error *err) {
    lt_kernel_forward_begin(a->handle);
    lt_conv2d_shape s;
    lt_named written[] = {{"output", a->output}, {"cols", a->cols}};
    lt_named read[] = {{"input", a->input}, {"weight", a->weight}, {"bias", a->bias}};
    if (shape_of(&s, a->input, a->weight, a->bias, "bias", a->p, err) || lt_check_apart(written, 2, read, 3, err))
        return -1;
    if (goes_channels_last(a, &s)) return lt_conv2d_channels_last_forward(a, s, err);
    lt_tensor in = {0}, w = {0};
    lt_kernel_ctx ctx;
    int rc = -1;
    if (operands(&in, &w, &s, a, err)) goto done;
    lt_named operands[] = {{"input", &in}, {"weight", &w}, {"bias", a->bias}, {"output", a->output}, {"cols", a->cols}};
    const lt_conv2d_impl *impl =
        (const lt_conv2d_impl *)lt_kernel_pick(a->handle, "conv2d", conv2d_impls, &s, operands, 5, &ctx, err);
    if (!impl) goto done;
    int64_t cols_size[1] = {impl->forward_scratch(&s)};
    if (lt_conv2d_resize_output(a->output, &s, batch_folded, err) || lt_tensor_resize(a->cols, 1, cols_size, err))
        goto done;
    if (lt_numel(a->output) &&
        impl->forward(&ctx, lt_data(a->output), lt_ptr(&in), lt_ptr(&w), lt_ptr(a->bias), lt_ptr(a->cols), s))
        goto done;
    lt_kernel_forward_done(a->handle, a->input, NULL, a->output, false);
    rc = 0;
done:
    lt_tensor_release(&in);
    lt_tensor_release(&w);
    return rc;
}

int lt_conv2d_backward(const lt_conv2d_args *a, lt_error *err) {
    lt_conv2d_shape s;
    char g[160];
    lt_named written[] = {{"grad_input", a->grad_input}, {"grad_weight", a->grad_weight}, {"grad_bias", a->grad_bias},
                          {"cols", a->cols}, {"dy", a->dy}};
    lt_named read[] = {{"input", a->input}, {"weight", a->weight}, {"grad_output", a->grad_output}};
    if (lt_kernel_backward_check(a->handle, a->input, a->grad_output, err) ||
        shape_of(&s, a->input, a->weight, a->grad_bias, "grad_bias", a->p, err) || lt_check_apart(written, 5, read, 3, err))
        return -1;
    const lt_tensor *go = a->grad_output;
    if (go->ndim != 4 || go->size[0] != s.n || go->size[1] != s.cout || go->size[2] != s.ho || go->size[3] != s.wo)
        return lt_fail(err, "grad_output must be %lldx%lldx%lldx%lld, got %s", (long long)s.n, (long long)s.cout,
                       (long long)s.ho, (long long)s.wo, lt_shape_str(go, g, sizeof g));
    if (!lt_same_shape(a->grad_weight, a->weight) || !lt_is_contiguous(a->grad_weight))
        return lt_fail(err, "grad_weight must be a contiguous tensor shaped like the weight");
    if (goes_channels_last(a, &s)) return lt_conv2d_channels_last_backward(a, s, err);
    lt_tensor in = {0}, w = {0};
    lt_kernel_ctx ctx;
    int rc = -1;
    if (operands(&in, &w, &s, a, err) || lt_conv2d_backward_operands(a, &s, batch_folded, &in, &go, err)) goto done;
    if (a->grad_input) s.dx = (lt_nc_strides){a->grad_input->stride[0], a->grad_input->stride[1]};
    if (lt_numel(go) == 0) {   /* (grad_input is zero: lt_conv2d_backward_operands) */
        rc = 0;
        goto done;
    }
    lt_named operands[] = {{"input", &in},           {"weight", &w},      {"grad_output", go},
                           {"grad_input", a->grad_input}, {"grad_weight", a->grad_weight}, {"grad_bias", a->grad_bias},
                           {"cols", a->cols}};
    const lt_conv2d_impl *impl =
        (const lt_conv2d_impl *)lt_kernel_pick(a->handle, "conv2d", conv2d_impls, &s, operands, 7, &ctx, err);
    if (!impl) goto done;
    int64_t scratch_size[1] = {impl->backward_scratch(&s, a->grad_input != NULL)};
    if (lt_tensor_resize(a->cols, 1, scratch_size, err)) goto done;
    rc = impl->backward(&ctx, lt_ptr(a->grad_input), lt_data(a->grad_weight), lt_ptr(a->grad_bias), lt_data(go),
                        lt_ptr(&in), lt_ptr(&w), lt_ptr(a->cols), s);
done:
    lt_tensor_release(&in);
    lt_tensor_release(&w);
    return rc;
}
