/* The CPU softmax and log-softmax along the middle dimension of an outer x n x inner contiguous tensor.
 * Sums run in double; the row maximum is subtracted first, so large inputs neither overflow nor lose the
 * small probabilities. */
#include "softmax.h"

#include <math.h>

/* One line of n values at stride st. */
static void softmax_line(float *y, const float *x, int64_t n, int64_t st, bool log_mode) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = fmaxf(mx, x[i * st]);
    if (isinf(mx) && mx < 0) mx = 0;  /* all -inf: avoid -inf - -inf */
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += exp((double)x[i * st] - mx);
    if (log_mode) {
        double lse = mx + log(sum);
        for (int64_t i = 0; i < n; i++) y[i * st] = (float)(x[i * st] - lse);
    } else {
        for (int64_t i = 0; i < n; i++) y[i * st] = (float)(exp((double)x[i * st] - mx) / sum);
    }
}

/* softmax y: d = y * (g - sum(g * y)); log-softmax y: d = g - exp(y) * sum(g) */
static void softmax_grad_line(float *d, const float *g, const float *y, int64_t n, int64_t st, bool log_mode) {
    double acc = 0;
    if (log_mode) {
        for (int64_t i = 0; i < n; i++) acc += g[i * st];
        for (int64_t i = 0; i < n; i++) d[i * st] = (float)(g[i * st] - exp(y[i * st]) * acc);
    } else {
        for (int64_t i = 0; i < n; i++) acc += (double)g[i * st] * y[i * st];
        for (int64_t i = 0; i < n; i++) d[i * st] = (float)(y[i * st] * (g[i * st] - acc));
    }
}

void lt_softmax_forward_cpu(float *out, const float *in, lt_softmax_shape s) {
    for (int64_t o = 0; o < s.outer; o++)
        for (int64_t j = 0; j < s.inner; j++) {
            int64_t at = o * s.n * s.inner + j;
            softmax_line(out + at, in + at, s.n, s.inner, s.log);
        }
}

static int softmax_forward(lt_kernel_ctx *ctx, float *out, const float *in, lt_softmax_shape s) {
    lt_softmax_forward_cpu(out, in, s);
    return 0;
}

static int softmax_backward(lt_kernel_ctx *ctx, float *dinp, const float *dout, const float *out, lt_softmax_shape s) {
    for (int64_t o = 0; o < s.outer; o++)
        for (int64_t j = 0; j < s.inner; j++) {
            int64_t at = o * s.n * s.inner + j;
            softmax_grad_line(dinp + at, dout + at, out + at, s.n, s.inner, s.log);
        }
    return 0;
}

const lt_softmax_impl lt_softmax_cpu = {
    .base = {.name = "cpu", .supports = lt_supports_fp32},
    .forward = softmax_forward,
    .backward = softmax_backward,
};
