/* Softmax and log-softmax along the middle dimension of an outer x n x inner contiguous tensor, as the
 * CPU's (csrc/core/cpu/softmax.c): the line's maximum (fmaxf) subtracted first (0 when it is -inf),
 * sums in double. Lines along the last dimension (inner = 1: a classifier's rows) take a block each;
 * lines with a stride take a thread each (neighbouring threads read neighbouring columns). The loss
 * (loss.cu) uses the row form for its log-softmax. */
#include "parts.cuh"
#include "reduce.cuh"
#include "softmax.cuh"

namespace ltc {

enum { ROW_THREADS = 256 };

__global__ void softmax_rows_kernel(float *out, const float *in, int64_t n, bool log_mode) {
    const float *x = in + (int64_t)blockIdx.x * n;
    float *y = out + (int64_t)blockIdx.x * n;
    float mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) mx = fmaxf(mx, x[i]);
    mx = block_fmax(mx);
    if (isinf(mx) && mx < 0) mx = 0; /* all -inf: avoid -inf - -inf */
    double sum = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += exp((double)x[i] - mx);
    sum = block_sum(sum);
    if (log_mode) {
        double lse = mx + log(sum);
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) y[i] = (float)(x[i] - lse);
    } else {
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) y[i] = (float)(exp((double)x[i] - mx) / sum);
    }
}

__global__ void softmax_lines_kernel(float *out, const float *in, lt_softmax_shape s) {
    LTC_FOR(line, s.outer * s.inner) {
        int64_t at = (line / s.inner) * s.n * s.inner + line % s.inner, st = s.inner;
        const float *x = in + at;
        float *y = out + at;
        float mx = -INFINITY;
        for (int64_t i = 0; i < s.n; i++) mx = fmaxf(mx, x[i * st]);
        if (isinf(mx) && mx < 0) mx = 0;
        double sum = 0;
        for (int64_t i = 0; i < s.n; i++) sum += exp((double)x[i * st] - mx);
        if (s.log) {
            double lse = mx + log(sum);
            for (int64_t i = 0; i < s.n; i++) y[i * st] = (float)(x[i * st] - lse);
        } else {
            for (int64_t i = 0; i < s.n; i++) y[i * st] = (float)(exp((double)x[i * st] - mx) / sum);
        }
    }
}

/* softmax y: d = y * (g - sum(g * y)); log-softmax y: d = g - exp(y) * sum(g) */
__global__ void softmax_grad_rows_kernel(float *dinp, const float *dout, const float *out, int64_t n, bool log_mode) {
    int64_t base = (int64_t)blockIdx.x * n;
    const float *g = dout + base, *y = out + base;
    float *d = dinp + base;
    double acc = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += log_mode ? (double)g[i] : (double)g[i] * y[i];
    acc = block_sum(acc);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        d[i] = log_mode ? (float)(g[i] - exp((double)y[i]) * acc) : (float)(y[i] * (g[i] - acc));
}

__global__ void softmax_grad_lines_kernel(float *dinp, const float *dout, const float *out, lt_softmax_shape s) {
    LTC_FOR(line, s.outer * s.inner) {
        int64_t at = (line / s.inner) * s.n * s.inner + line % s.inner, st = s.inner;
        const float *g = dout + at, *y = out + at;
        float *d = dinp + at;
        double acc = 0;
        for (int64_t i = 0; i < s.n; i++) acc += s.log ? (double)g[i * st] : (double)g[i * st] * y[i * st];
        for (int64_t i = 0; i < s.n; i++)
            d[i * st] =
                s.log ? (float)(g[i * st] - exp((double)y[i * st]) * acc) : (float)(y[i * st] * (g[i * st] - acc));
    }
}

int softmax_run(lt_error *err, float *out, const float *in, lt_softmax_shape s) {
    if (s.outer * s.n * s.inner <= 0) return 0;
    if (s.inner == 1 && s.outer <= INT32_MAX) {
        softmax_rows_kernel<<<(unsigned)s.outer, ROW_THREADS, 0, state().stream>>>(out, in, s.n, s.log);
        LTC_LAUNCHED(err, "softmax_rows_kernel");
    } else {
        softmax_lines_kernel<<<grid_for(s.outer * s.inner), 256, 0, state().stream>>>(out, in, s);
        LTC_LAUNCHED(err, "softmax_lines_kernel");
    }
    return 0;
}

static int softmax_forward(lt_kernel_ctx *ctx, float *out, const float *in, lt_softmax_shape s) {
    return softmax_run(ctx->err, out, in, s);
}

static int softmax_backward(lt_kernel_ctx *ctx, float *dinp, const float *dout, const float *out, lt_softmax_shape s) {
    if (s.outer * s.n * s.inner <= 0) return 0;
    if (s.inner == 1 && s.outer <= INT32_MAX) {
        softmax_grad_rows_kernel<<<(unsigned)s.outer, ROW_THREADS, 0, state().stream>>>(dinp, dout, out, s.n, s.log);
        LTC_LAUNCHED(ctx->err, "softmax_grad_rows_kernel");
    } else {
        softmax_grad_lines_kernel<<<grid_for(s.outer * s.inner), 256, 0, state().stream>>>(dinp, dout, out, s);
        LTC_LAUNCHED(ctx->err, "softmax_grad_lines_kernel");
    }
    return 0;
}

const lt_softmax_impl softmax_cuda = {{"cuda", supports_fp32, nullptr}, softmax_forward, softmax_backward};

}  // namespace ltc
