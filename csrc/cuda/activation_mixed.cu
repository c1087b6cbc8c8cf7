/* The mixed-precision activations (ReLU, leaky ReLU, GELU) over n dense elements of float32, bf16 or fp16, the
 * input's and output's types free: one entry for the three, as the CPU's (lt_activation_mixed_cpu,
 * csrc/core/cpu/activation_rows.c). The element functions are the CPU's own (relu_math.h, gelu_math.h,
 * as activation.cu's), computed in float between the conversions. A thread reads an element and then
 * writes the same one, so output and input may be one array (in place), and so may the gradients. */
#include <string.h>

#include "mixed.cuh"
#include "parts.cuh"
#include "cpu/gelu_math.h"
#include "cpu/relu_math.h"

namespace ltc {

__global__ void leaky_relu_mixed_kernel(void *y, const void *x, lt_activation_mixed_shape s, float slope) {
    LTC_FOR(i, s.a.n) store_float(y, s.y, i, lt_leaky_relu(load_as_float(x, s.x, i), slope));
}

/* x may be the forward pass's output (in place): with a non-negative slope its sign is the input's */
__global__ void leaky_relu_mixed_grad_kernel(void *d, const void *g, const void *x, lt_activation_mixed_shape s,
                                             float slope) {
    LTC_FOR(i, s.a.n) {
        store_float(d, s.dx, i, lt_leaky_relu_grad(load_as_float(x, s.x, i), load_as_float(g, s.dy, i), slope));
    }
}

__global__ void gelu_mixed_kernel(void *y, const void *x, lt_activation_mixed_shape s) {
    LTC_FOR(i, s.a.n) store_float(y, s.y, i, lt_gelu(load_as_float(x, s.x, i)));
}

__global__ void gelu_mixed_grad_kernel(void *d, const void *g, const void *x, lt_activation_mixed_shape s) {
    LTC_FOR(i, s.a.n) store_float(d, s.dx, i, load_as_float(g, s.dy, i) * lt_gelu_grad(load_as_float(x, s.x, i)));
}

static bool computes(const char *name) {
    return !strcmp(name, "relu") || !strcmp(name, "leaky_relu") || !strcmp(name, "gelu");
}

static bool is_gelu(const lt_activation_mixed_shape &s) { return !strcmp(s.a.activation, "gelu"); }

/* ReLU: the leaky ReLU of slope 0 */
static float slope_of(const lt_activation_mixed_shape &s) {
    return strcmp(s.a.activation, "relu") ? s.a.negative_slope : 0.0f;
}

static int mixed_forward(lt_kernel_ctx *ctx, void *out, const void *in, lt_activation_mixed_shape s) {
    if (s.a.n <= 0) return 0;
    if (is_gelu(s)) {
        gelu_mixed_kernel<<<grid_for(s.a.n), 256, 0, state().stream>>>(out, in, s);
        LTC_LAUNCHED(ctx->err, "gelu_mixed_kernel");
    } else {
        leaky_relu_mixed_kernel<<<grid_for(s.a.n), 256, 0, state().stream>>>(out, in, s, slope_of(s));
        LTC_LAUNCHED(ctx->err, "leaky_relu_mixed_kernel");
    }
    return 0;
}

static int mixed_backward(lt_kernel_ctx *ctx, void *dinp, const void *dout, const void *in,
                          lt_activation_mixed_shape s) {
    if (s.a.n <= 0) return 0;
    if (is_gelu(s)) {
        gelu_mixed_grad_kernel<<<grid_for(s.a.n), 256, 0, state().stream>>>(dinp, dout, in, s);
        LTC_LAUNCHED(ctx->err, "gelu_mixed_grad_kernel");
    } else {
        leaky_relu_mixed_grad_kernel<<<grid_for(s.a.n), 256, 0, state().stream>>>(dinp, dout, in, s, slope_of(s));
        LTC_LAUNCHED(ctx->err, "leaky_relu_mixed_grad_kernel");
    }
    return 0;
}

/* any precision, as the CPU's entry: an activation it computes, over float32, bf16 or fp16 tensors (the fields
 * a pass does not use are float32) */
static bool mixed_supports(const lt_impl *self, const void *shape, lt_precision p) {
    const lt_activation_mixed_shape *s = (const lt_activation_mixed_shape *)shape;
    return computes(s->a.activation) && mixed_dtype(s->x) && mixed_dtype(s->y) && mixed_dtype(s->dy) &&
           mixed_dtype(s->dx);
}

const lt_activation_mixed_impl activation_mixed_cuda = {
    {"cuda", mixed_supports, nullptr},
    computes,
    mixed_forward,
    mixed_backward,
};

}  // namespace ltc
