/* The CPU dropout: the mask is drawn from the global generator in memory order (the same numbers at any
 * thread count), then multiplied in. */
#include "../nn/ops.h"
#include "../base/rng.h"
#include "../base/simd.h"
#include "elementwise.h"

LT_SIMD_CLONES
static void mul_run(float *y, const float *a, const float *b, int64_t n, float unused) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
}

static int dropout_forward_cpu(lt_kernel_ctx *ctx, float *out, float *mask, const float *in, lt_dropout_shape s) {
    float keep = s.p < 1 ? (float)(1.0 / (1.0 - s.p)) : 0.0f;
    lt_rng *rng = lt_rng_global();
    for (int64_t i = 0; i < s.n; i++) mask[i] = lt_rng_uniform(rng) >= s.p ? keep : 0.0f;
    lt_cpu_map(mul_run, out, in, mask, s.n, 0.0f);
    return 0;
}

static int dropout_backward_cpu(lt_kernel_ctx *ctx, float *dinp, const float *dout, const float *mask,
                                lt_dropout_shape s) {
    lt_cpu_map(mul_run, dinp, dout, mask, s.n, 0.0f);
    return 0;
}

const lt_dropout_impl lt_dropout_cpu = {
    .base = {.name = "cpu", .supports = lt_supports_fp32},
    .forward = dropout_forward_cpu,
    .backward = dropout_backward_cpu,
};
