/* The CPU average pooling over (N, C, H, W) planes, with fixed windows (AvgPool2d) or PyTorch's adaptive
 * ones (AdaptiveAvgPool2d); one plane per work item. Forward sums input windows into outputs; backward
 * spreads output gradients over input windows. */
#include <string.h>

#include "../nn/ops.h"
#include "../base/parallel.h"

/* The window of output position o along one axis: [lo, hi) clipped to the input, and its divisor. */
static void avg_window(int64_t o, int64_t k, int64_t s, int64_t pad, int64_t in, int64_t *lo, int64_t *hi,
                       int64_t *padded_len) {
    int64_t a = o * s - pad, b = a + k;
    if (b > in + pad) b = in + pad;
    *padded_len = b - a;
    if (a < 0) a = 0;
    if (b > in) b = in;
    *lo = a;
    *hi = b;
}

/* PyTorch's adaptive windows: [floor(o * in / out), ceil((o + 1) * in / out)). */
static void adaptive_window(int64_t o, int64_t out, int64_t in, int64_t *lo, int64_t *hi) {
    *lo = (o * in) / out;
    *hi = ((o + 1) * in + out - 1) / out;
}

/* Output (oy, ox)'s window [y0, y1) x [x0, x1) and the divisor of its sum. */
typedef struct window {
    int64_t y0, y1, x0, x1;
    float divisor;
} window;

static window window_at(const lt_pool2d_shape *s, bool adaptive, int64_t oy, int64_t ox) {
    window w;
    if (adaptive) {
        adaptive_window(oy, s->ho, s->h, &w.y0, &w.y1);
        adaptive_window(ox, s->wo, s->w, &w.x0, &w.x1);
        w.divisor = (float)((w.y1 - w.y0) * (w.x1 - w.x0));
        return w;
    }
    const lt_pool2d_params *p = &s->p;
    int64_t ylen, xlen;
    avg_window(oy, p->kernel_h, p->stride_h, p->pad_h, s->h, &w.y0, &w.y1, &ylen);
    avg_window(ox, p->kernel_w, p->stride_w, p->pad_w, s->w, &w.x0, &w.x1, &xlen);
    w.divisor = (float)(p->count_include_pad ? ylen * xlen : (w.y1 - w.y0) * (w.x1 - w.x0));
    return w;
}

/* One plane: out (ho x wo) = window means of in (h x w). */
static void pool_plane(float *out, const float *in, const lt_pool2d_shape *s, bool adaptive) {
    for (int64_t oy = 0; oy < s->ho; oy++)
        for (int64_t ox = 0; ox < s->wo; ox++) {
            window w = window_at(s, adaptive, oy, ox);
            float acc = 0;
            for (int64_t iy = w.y0; iy < w.y1; iy++)
                for (int64_t ix = w.x0; ix < w.x1; ix++) acc += in[iy * s->w + ix];
            out[oy * s->wo + ox] = adaptive || w.divisor != 0 ? acc / w.divisor : 0.0f;
        }
}

/* One plane: d (h x w) = the output gradients g (ho x wo) spread evenly over their windows. */
static void pool_grad_plane(float *d, const float *g, const lt_pool2d_shape *s, bool adaptive) {
    memset(d, 0, sizeof(float) * (size_t)(s->h * s->w));
    for (int64_t oy = 0; oy < s->ho; oy++)
        for (int64_t ox = 0; ox < s->wo; ox++) {
            window w = window_at(s, adaptive, oy, ox);
            float gv = adaptive || w.divisor != 0 ? g[oy * s->wo + ox] / w.divisor : 0.0f;
            for (int64_t iy = w.y0; iy < w.y1; iy++)
                for (int64_t ix = w.x0; ix < w.x1; ix++) d[iy * s->w + ix] += gv;
        }
}

static void pool_planes(float *out, const float *in, const lt_pool2d_shape *s, bool adaptive) {
    int64_t planes = s->n * s->c;
    int threads = lt_threads_for(planes * s->h * s->w, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t q = 0; q < planes; q++) {
        int64_t b = q / s->c, c = q % s->c;
        pool_plane(out + b * s->y.sn + c * s->y.sc, in + b * s->x.sn + c * s->x.sc, s, adaptive);
    }
}

static void pool_grad_planes(float *dinp, const float *dout, const lt_pool2d_shape *s, bool adaptive) {
    int64_t planes = s->n * s->c;
    int threads = lt_threads_for(planes * s->h * s->w, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t q = 0; q < planes; q++) {
        int64_t b = q / s->c, c = q % s->c;
        pool_grad_plane(dinp + b * s->dx.sn + c * s->dx.sc, dout + b * s->dy.sn + c * s->dy.sc, s, adaptive);
    }
}

static int avgpool2d_forward_cpu(lt_kernel_ctx *ctx, float *out, const float *in, lt_pool2d_shape s) {
    pool_planes(out, in, &s, false);
    return 0;
}

static int avgpool2d_backward_cpu(lt_kernel_ctx *ctx, float *dinp, const float *dout, lt_pool2d_shape s) {
    pool_grad_planes(dinp, dout, &s, false);
    return 0;
}

static int adaptive_avgpool2d_forward_cpu(lt_kernel_ctx *ctx, float *out, const float *in, lt_pool2d_shape s) {
    pool_planes(out, in, &s, true);
    return 0;
}

static int adaptive_avgpool2d_backward_cpu(lt_kernel_ctx *ctx, float *dinp, const float *dout, lt_pool2d_shape s) {
    pool_grad_planes(dinp, dout, &s, true);
    return 0;
}

const lt_avgpool2d_impl lt_avgpool2d_cpu = {
    .base = {.name = "cpu", .supports = lt_supports_fp32},
    .forward = avgpool2d_forward_cpu,
    .backward = avgpool2d_backward_cpu,
};

const lt_avgpool2d_impl lt_adaptive_avgpool2d_cpu = {
    .base = {.name = "cpu", .supports = lt_supports_fp32},
    .forward = adaptive_avgpool2d_forward_cpu,
    .backward = adaptive_avgpool2d_backward_cpu,
};
