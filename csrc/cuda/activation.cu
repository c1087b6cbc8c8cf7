/* The float32 activations over flat arrays of n: ReLU, leaky ReLU and GELU, each an entry the core's
 * activation table picks by name. The element functions are the CPU's own (csrc/core/cpu/relu_math.h,
 * gelu_math.h, declared __host__ __device__ under nvcc): the same selects for NaN and the infinities,
 * GELU's exact (erf) form with the same erf and exp polynomial, so both give the same values to float
 * rounding (nvcc may fuse a multiply and an add where the CPU does not). */
#include <string.h>

#include "parts.cuh"
#include "cpu/gelu_math.h"
#include "cpu/relu_math.h"

namespace ltc {

/* ---- kernels ---- */

__global__ void leaky_relu_kernel(float *y, const float *x, int64_t n, float slope) {
    LTC_FOR(i, n) y[i] = lt_leaky_relu(x[i], slope);
}

/* x may be the forward pass's output (in place): with a non-negative slope its sign is the input's */
__global__ void leaky_relu_grad_kernel(float *d, const float *g, const float *x, int64_t n, float slope) {
    LTC_FOR(i, n) d[i] = lt_leaky_relu_grad(x[i], g[i], slope);
}

__global__ void gelu_kernel(float *y, const float *x, int64_t n) { LTC_FOR(i, n) y[i] = lt_gelu(x[i]); }

__global__ void gelu_grad_kernel(float *d, const float *g, const float *x, int64_t n) {
    LTC_FOR(i, n) d[i] = g[i] * lt_gelu_grad(x[i]);
}

static int leaky_relu_forward(lt_kernel_ctx *ctx, float *out, const float *in, lt_activation_shape s) {
    if (s.n <= 0) return 0;
    leaky_relu_kernel<<<grid_for(s.n), 256, 0, state().stream>>>(out, in, s.n, s.negative_slope);
    LTC_LAUNCHED(ctx->err, "leaky_relu_kernel");
    return 0;
}

static int leaky_relu_backward(lt_kernel_ctx *ctx, float *dinp, const float *dout, const float *in, const float *out,
                               lt_activation_shape s) {
    if (s.n <= 0) return 0;
    leaky_relu_grad_kernel<<<grid_for(s.n), 256, 0, state().stream>>>(dinp, dout, in, s.n, s.negative_slope);
    LTC_LAUNCHED(ctx->err, "leaky_relu_grad_kernel");
    return 0;
}

/* ReLU: the leaky ReLU of slope 0 */
static int relu_forward(lt_kernel_ctx *ctx, float *out, const float *in, lt_activation_shape s) {
    s.negative_slope = 0.0f;
    return leaky_relu_forward(ctx, out, in, s);
}

static int relu_backward(lt_kernel_ctx *ctx, float *dinp, const float *dout, const float *in, const float *out,
                         lt_activation_shape s) {
    s.negative_slope = 0.0f;
    return leaky_relu_backward(ctx, dinp, dout, in, out, s);
}

static int gelu_forward(lt_kernel_ctx *ctx, float *out, const float *in, lt_activation_shape s) {
    if (s.n <= 0) return 0;
    gelu_kernel<<<grid_for(s.n), 256, 0, state().stream>>>(out, in, s.n);
    LTC_LAUNCHED(ctx->err, "gelu_kernel");
    return 0;
}

static int gelu_backward(lt_kernel_ctx *ctx, float *dinp, const float *dout, const float *in, const float *out,
                         lt_activation_shape s) {
    if (s.n <= 0) return 0;
    gelu_grad_kernel<<<grid_for(s.n), 256, 0, state().stream>>>(dinp, dout, in, s.n);
    LTC_LAUNCHED(ctx->err, "gelu_grad_kernel");
    return 0;
}

/* the entry's activation at fp32 (the CPU's lt_activation_supports_fp32, which the module cannot call) */
static bool activation_supports(const lt_impl *self, const void *shape, lt_precision p) {
    const lt_activation_impl *impl = (const lt_activation_impl *)self;
    return p == LT_FP32 && strcmp(impl->activation, ((const lt_activation_shape *)shape)->activation) == 0;
}

const lt_activation_impl relu_cuda = {{"cuda", activation_supports, nullptr}, "relu", relu_forward, relu_backward};
const lt_activation_impl leaky_relu_cuda = {
    {"cuda", activation_supports, nullptr}, "leaky_relu", leaky_relu_forward, leaky_relu_backward};
const lt_activation_impl gelu_cuda = {{"cuda", activation_supports, nullptr}, "gelu", gelu_forward, gelu_backward};

}  // namespace ltc
