/* The CPU fully connected layer: out[B, O] = x[B, I] @ W[O, I]^T + b[O], through OpenBLAS. */
#include <string.h>

#include "../base/blas.h"
#include "../nn/ops.h"

static int linear_forward_cpu(lt_kernel_ctx *ctx, float *out, const float *in, const float *weight, const float *bias,
                              lt_linear_shape s) {
    int64_t B = s.batch, I = s.in, O = s.out;
    if (bias)  /* start from the bias, let the GEMM accumulate */
        for (int64_t i = 0; i < B; i++)
            for (int64_t o = 0; o < O; o++) out[i * O + o] = bias[o];
    lt_sgemm(false, true, B, O, I, 1.0f, in, I, weight, I, bias ? 1.0f : 0.0f, out, O);
    if (I == 0 && !bias) memset(out, 0, sizeof(float) * (size_t)(B * O));
    return 0;
}

static int linear_backward_cpu(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *in, const float *weight, lt_linear_shape s) {
    int64_t B = s.batch, I = s.in, O = s.out;
    if (B * O * I > 0) {
        /* dW[O, I] += dY^T[O, B] @ x[B, I] */
        lt_sgemm(true, false, O, I, B, 1.0f, dout, O, in, I, 1.0f, dweight, I);
        /* dx[B, I] = dY[B, O] @ W[O, I] */
        if (dinp) lt_sgemm(false, false, B, I, O, 1.0f, dout, O, weight, I, 0.0f, dinp, I);
    } else if (dinp && B * I > 0) {
        memset(dinp, 0, sizeof(float) * (size_t)(B * I));
    }
    if (dbias && B * O > 0)
        for (int64_t o = 0; o < O; o++) {
            double acc = 0;
            for (int64_t i = 0; i < B; i++) acc += dout[i * O + o];
            dbias[o] += (float)acc;
        }
    return 0;
}

const lt_linear_impl lt_linear_cpu = {
    .base = {.name = "cpu", .supports = lt_supports_fp32},
    .forward = linear_forward_cpu,
    .backward = linear_backward_cpu,
};
