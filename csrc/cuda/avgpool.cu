/* Average pooling over (N, C, H, W) planes with the CPU's semantics (csrc/core/cpu/avgpool.c): fixed
 * windows (padding, count_include_pad) or PyTorch's adaptive ones, [floor(o * in / out), ceil((o + 1) *
 * in / out)). Forward: a thread per output. Backward gathers: each input element adds, in output order as
 * the CPU does, the gradient / divisor of every window over it. */
#include "parts.cuh"

namespace ltc {

/* Output position o's window along one axis, [lo, hi) within the input, and its length with padding. */
__device__ __forceinline__ void axis_window(const lt_pool2d_shape &s, bool adaptive, bool vertical, int64_t o,
                                            int64_t *lo, int64_t *hi, int64_t *padded) {
    int64_t in = vertical ? s.h : s.w, out = vertical ? s.ho : s.wo;
    if (adaptive) {
        *lo = (o * in) / out;
        *hi = ((o + 1) * in + out - 1) / out;
        *padded = *hi - *lo;
        return;
    }
    int64_t k = vertical ? s.p.kernel_h : s.p.kernel_w, st = vertical ? s.p.stride_h : s.p.stride_w;
    int64_t pad = vertical ? s.p.pad_h : s.p.pad_w;
    int64_t a = o * st - pad, b = a + k;
    if (b > in + pad) b = in + pad;
    *padded = b - a;
    *lo = a < 0 ? 0 : a;
    *hi = b > in ? in : b;
}

struct avg_window {
    int64_t y0, y1, x0, x1;
    float divisor;
};

__device__ __forceinline__ avg_window window_at(const lt_pool2d_shape &s, bool adaptive, int64_t oy, int64_t ox) {
    avg_window w;
    int64_t ylen, xlen;
    axis_window(s, adaptive, true, oy, &w.y0, &w.y1, &ylen);
    axis_window(s, adaptive, false, ox, &w.x0, &w.x1, &xlen);
    bool padded = !adaptive && s.p.count_include_pad;
    w.divisor = (float)(padded ? ylen * xlen : (w.y1 - w.y0) * (w.x1 - w.x0));
    return w;
}

/* The outputs along one axis whose windows may hold input position i: [*first, *last]. */
__device__ __forceinline__ void covering(const lt_pool2d_shape &s, bool adaptive, bool vertical, int64_t i,
                                         int64_t *first, int64_t *last) {
    int64_t in = vertical ? s.h : s.w, out = vertical ? s.ho : s.wo;
    if (adaptive) { /* windows grow by at most one position a step: a few before i * out / in on */
        int64_t guess = i * out / in - 1;
        *first = guess < 0 ? 0 : guess;
        int64_t end = (i + 1) * out / in + 1;
        *last = end < out - 1 ? end : out - 1;
        return;
    }
    int64_t k = vertical ? s.p.kernel_h : s.p.kernel_w, st = vertical ? s.p.stride_h : s.p.stride_w;
    int64_t pad = vertical ? s.p.pad_h : s.p.pad_w, t = i + pad - k + 1;
    *first = t > 0 ? (t + st - 1) / st : 0;
    int64_t l = (i + pad) / st;
    *last = l < out - 1 ? l : out - 1;
}

__global__ void avgpool_kernel(float *out, const float *in, lt_pool2d_shape s, bool adaptive) {
    int64_t oplane = s.ho * s.wo;
    LTC_FOR(e, s.n * s.c * oplane) {
        int64_t q = e / oplane, r = e % oplane, oy = r / s.wo, ox = r % s.wo;
        const float *x = in + (q / s.c) * s.x.sn + (q % s.c) * s.x.sc;
        avg_window w = window_at(s, adaptive, oy, ox);
        float acc = 0;
        for (int64_t iy = w.y0; iy < w.y1; iy++)
            for (int64_t ix = w.x0; ix < w.x1; ix++) acc += x[iy * s.w + ix];
        out[(q / s.c) * s.y.sn + (q % s.c) * s.y.sc + r] = adaptive || w.divisor != 0 ? acc / w.divisor : 0.0f;
    }
}

__global__ void avgpool_grad_kernel(float *dinp, const float *dout, lt_pool2d_shape s, bool adaptive) {
    int64_t plane = s.h * s.w;
    LTC_FOR(e, s.n * s.c * plane) {
        int64_t q = e / plane, r = e % plane, iy = r / s.w, ix = r % s.w;
        const float *g = dout + (q / s.c) * s.dy.sn + (q % s.c) * s.dy.sc;
        int64_t oy0, oy1, ox0, ox1;
        covering(s, adaptive, true, iy, &oy0, &oy1);
        covering(s, adaptive, false, ix, &ox0, &ox1);
        float acc = 0;
        for (int64_t oy = oy0; oy <= oy1; oy++)
            for (int64_t ox = ox0; ox <= ox1; ox++) {
                avg_window w = window_at(s, adaptive, oy, ox);
                if (iy < w.y0 || iy >= w.y1 || ix < w.x0 || ix >= w.x1) continue;
                acc += adaptive || w.divisor != 0 ? g[oy * s.wo + ox] / w.divisor : 0.0f;
            }
        dinp[(q / s.c) * s.dx.sn + (q % s.c) * s.dx.sc + r] = acc;
    }
}

static int pool_forward(lt_kernel_ctx *ctx, float *out, const float *in, lt_pool2d_shape s, bool adaptive) {
    int64_t n = s.n * s.c * s.ho * s.wo;
    if (n <= 0) return 0;
    avgpool_kernel<<<grid_for(n), 256, 0, state().stream>>>(out, in, s, adaptive);
    LTC_LAUNCHED(ctx->err, "avgpool_kernel");
    return 0;
}

static int pool_backward(lt_kernel_ctx *ctx, float *dinp, const float *dout, lt_pool2d_shape s, bool adaptive) {
    int64_t n = s.n * s.c * s.h * s.w;
    if (n <= 0) return 0;
    avgpool_grad_kernel<<<grid_for(n), 256, 0, state().stream>>>(dinp, dout, s, adaptive);
    LTC_LAUNCHED(ctx->err, "avgpool_grad_kernel");
    return 0;
}

static int avgpool2d_forward(lt_kernel_ctx *ctx, float *out, const float *in, lt_pool2d_shape s) {
    return pool_forward(ctx, out, in, s, false);
}
static int avgpool2d_backward(lt_kernel_ctx *ctx, float *dinp, const float *dout, lt_pool2d_shape s) {
    return pool_backward(ctx, dinp, dout, s, false);
}
static int adaptive_avgpool2d_forward(lt_kernel_ctx *ctx, float *out, const float *in, lt_pool2d_shape s) {
    return pool_forward(ctx, out, in, s, true);
}
static int adaptive_avgpool2d_backward(lt_kernel_ctx *ctx, float *dinp, const float *dout, lt_pool2d_shape s) {
    return pool_backward(ctx, dinp, dout, s, true);
}

const lt_avgpool2d_impl avgpool2d_cuda = {{"cuda", supports_fp32, nullptr}, avgpool2d_forward, avgpool2d_backward};
const lt_avgpool2d_impl adaptive_avgpool2d_cuda = {
    {"cuda", supports_fp32, nullptr}, adaptive_avgpool2d_forward, adaptive_avgpool2d_backward};

}  // namespace ltc
