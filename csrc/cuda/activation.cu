/* The float32 activations over flat arrays of n: ReLU, leaky ReLU and GELU, each an entry the core's
 * activation table picks by name. The element functions are the CPU's (csrc/core/cpu/relu_math.h,
 * gelu_math.h) written for the device: the same selects for NaN and the infinities, GELU's exact (erf)
 * form with the same erf (Abramowitz and Stegun 7.1.26) and exp polynomial, so both give the same
 * values to float rounding (nvcc may fuse a multiply and an add where the CPU does not). */
#include <string.h>

#include "parts.cuh"

namespace ltc {

/* ---- the element functions ---- */

__device__ __forceinline__ float leaky_relu(float x, float slope) {
    float v = slope * x;
    v = v == v || x != x ? v : -0.0f; /* 0 * -inf */
    return x > 0 ? x : v;
}

__device__ __forceinline__ float leaky_relu_grad(float x, float g, float slope) {
    float v = slope * g;
    v = v == v || g != g ? v : 0.0f; /* 0 * +-inf */
    return x > 0 ? g : (x != x ? x : v);
}

/* e^x for x <= 0, 0 below -87; a NaN x gives a finite value (the callers' other terms carry the NaN) */
__device__ __forceinline__ float exp_neg_approx(float x) {
    float c = x > -87.0f ? x : -87.0f;
    float n = rintf(c * 1.44269504088896341f);
    float r = c - n * 0.693145751953125f - n * 1.42860682030941723e-6f;
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    float scale = __uint_as_float((uint32_t)((int32_t)n + 127) << 23);
    return x < -87.0f ? 0.0f : p * scale;
}

__device__ __forceinline__ float erf_approx(float x) {
    float a = x < 0 ? -x : x;
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
    float y = 1.0f - poly * exp_neg_approx(-a * a);
    return x < 0 ? -y : y;
}

__device__ __forceinline__ float gelu(float z) {
    float cdf = 0.5f * (1.0f + erf_approx(z * 0.70710678118654752f));
    return cdf == 0.0f ? -0.0f : z * cdf;
}

__device__ __forceinline__ float gelu_grad(float z) {
    float cdf = 0.5f * (1.0f + erf_approx(z * 0.70710678118654752f));
    float pdf = 0.39894228040143268f * exp_neg_approx(-0.5f * z * z);
    return cdf + (pdf > 0.0f ? z * pdf : 0.0f);
}

/* ---- kernels ---- */

__global__ void leaky_relu_kernel(float *y, const float *x, int64_t n, float slope) {
    LTC_FOR(i, n) y[i] = leaky_relu(x[i], slope);
}

/* x may be the forward pass's output (in place): with a non-negative slope its sign is the input's */
__global__ void leaky_relu_grad_kernel(float *d, const float *g, const float *x, int64_t n, float slope) {
    LTC_FOR(i, n) d[i] = leaky_relu_grad(x[i], g[i], slope);
}

__global__ void gelu_kernel(float *y, const float *x, int64_t n) { LTC_FOR(i, n) y[i] = gelu(x[i]); }

__global__ void gelu_grad_kernel(float *d, const float *g, const float *x, int64_t n) {
    LTC_FOR(i, n) d[i] = g[i] * gelu_grad(x[i]);
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
