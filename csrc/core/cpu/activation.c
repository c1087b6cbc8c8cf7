/* The CPU activations: a pair of run functions each (forward, backward) over flat arrays, and the
 * entries that nn/activation.c's table lists. Adding an activation: its pair and its entry here, a line
 * in that table, a Lua class in lua/lightning/nn/activation.lua. */
#include <string.h>

#include "../nn/ops.h"
#include "../base/simd.h"
#include "elementwise.h"
#include "relu_math.h"

bool lt_activation_supports_fp32(const lt_impl *self, const void *shape, lt_precision p) {
    const lt_activation_impl *impl = (const lt_activation_impl *)self;
    return p == LT_FP32 && strcmp(impl->activation, ((const lt_activation_shape *)shape)->activation) == 0;
}

/* ---- leaky_relu: y = x > 0 ? x : negative_slope * x ---- */

LT_SIMD_CLONES
static void leaky_relu_run(float *y, const float *x, const float *unused, int64_t n, float slope) {
    for (int64_t i = 0; i < n; i++) y[i] = lt_leaky_relu(x[i], slope);
}

/* with a non-negative slope the output's sign is the input's, so an in-place pass (which leaves only the
 * output) differentiates alike */
LT_SIMD_CLONES
static void leaky_relu_grad_run(float *d, const float *g, const float *x, int64_t n, float slope) {
    for (int64_t i = 0; i < n; i++) d[i] = lt_leaky_relu_grad(x[i], g[i], slope);
}

static int leaky_relu_forward_cpu(lt_kernel_ctx *ctx, float *out, const float *in, lt_activation_shape s) {
    lt_cpu_map(leaky_relu_run, out, in, NULL, s.n, s.negative_slope);
    return 0;
}

static int leaky_relu_backward_cpu(lt_kernel_ctx *ctx, float *dinp, const float *dout, const float *in,
                                   const float *out, lt_activation_shape s) {
    lt_cpu_map(leaky_relu_grad_run, dinp, dout, in, s.n, s.negative_slope);
    return 0;
}

const lt_activation_impl lt_leaky_relu_cpu = {
    .base = {.name = "cpu", .supports = lt_activation_supports_fp32},
    .activation = "leaky_relu",
    .forward = leaky_relu_forward_cpu,
    .backward = leaky_relu_backward_cpu,
};

/* ---- relu: y = x > 0 ? x : 0, the leaky ReLU of slope 0 (-0 for negative x, NaN for NaN; relu_math.h) ---- */

static int relu_forward_cpu(lt_kernel_ctx *ctx, float *out, const float *in, lt_activation_shape s) {
    s.negative_slope = 0.0f;
    return leaky_relu_forward_cpu(ctx, out, in, s);
}

static int relu_backward_cpu(lt_kernel_ctx *ctx, float *dinp, const float *dout, const float *in, const float *out,
                             lt_activation_shape s) {
    s.negative_slope = 0.0f;
    return leaky_relu_backward_cpu(ctx, dinp, dout, in, out, s);
}

const lt_activation_impl lt_relu_cpu = {
    .base = {.name = "cpu", .supports = lt_activation_supports_fp32},
    .activation = "relu",
    .forward = relu_forward_cpu,
    .backward = relu_backward_cpu,
};
