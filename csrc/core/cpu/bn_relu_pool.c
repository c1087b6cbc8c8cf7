/* The CPU BatchNorm2d -> ReLU -> MaxPool2d(2) as one layer, the tail of every block of the reference network.
 * Separately, the three layers write the full-size normalised tensor, read it to pool, write a
 * full-size gradient for BatchNorm and read that twice. Fused, the forward pass reads the convolution's
 * output twice (statistics, then normalise-and-pool) and writes only the pooled output; the backward
 * pass reads it twice (gradient sums, then the input gradient) and writes the input gradient once.
 * The forward pass records which element of each window passed (a code per output), and the backward
 * pass routes the gradient with it. */
#include <math.h>

#include "../base/parallel.h"
#include "../base/simd.h"
#include "batchnorm_channel.h"

/* A normalised value, rounded once (fmaf): the same in every build of the kernels. */
static inline float norm(float x, bn_affine t) { return fmaf(x, t.scale, t.shift); }

/* max that lets NaN through, as PyTorch's pooling */
static inline float nan_max(float best, float v) { return best == best && (v > best || v != v) ? v : best; }

/* Output rows [0, rows) of one channel. Its input is an image of width w whose row pairs (2r, 2r+1)
 * make output row r: one plane, or all the channel's planes when they are consecutive. code records
 * which of each window's values (0..3, the first maximum) passed the ReLU, or -1 when none did (the
 * maximum was <= 0 or NaN): the backward pass routes the gradient with it. */
static inline __attribute__((always_inline)) void pool_rows_impl(float *restrict o, float *restrict code,
                                                                  const float *restrict x, int64_t w, int64_t rows,
                                                                  int64_t wo, bn_affine t) {
    for (int64_t r = 0; r < rows; r++) {
        const float *r0 = x + 2 * r * w, *r1 = r0 + w;
        for (int64_t ox = 0; ox < wo; ox++) {
            float v0 = norm(r0[2 * ox], t), v1 = norm(r0[2 * ox + 1], t), v2 = norm(r1[2 * ox], t),
                  v3 = norm(r1[2 * ox + 1], t);
            float m = nan_max(nan_max(nan_max(v0, v1), v2), v3);
            float c = v2 == m ? 2.0f : 3.0f;
            c = v1 == m ? 1.0f : c;
            c = v0 == m ? 0.0f : c;
            o[r * wo + ox] = m < 0 ? 0.0f : m;
            code[r * wo + ox] = m > 0 ? c : -1.0f;
        }
    }
}

/* Small planes (8x8, 4x4 in the reference network) make rows too short to vectorise; with the width a
 * constant the compiler vectorises across rows instead. */
LT_SIMD_CLONES
static void pool_rows(float *o, float *code, const float *x, int64_t w, int64_t rows, int64_t wo, bn_affine t) {
    if (w == 2 * wo) {
        switch (wo) {
        case 1: pool_rows_impl(o, code, x, 2, rows, 1, t); return;
        case 2: pool_rows_impl(o, code, x, 4, rows, 2, t); return;
        case 4: pool_rows_impl(o, code, x, 8, rows, 4, t); return;
        case 8: pool_rows_impl(o, code, x, 16, rows, 8, t); return;
        }
    }
    pool_rows_impl(o, code, x, w, rows, wo, t);
}

/* Backward pass 1 over n outputs of one channel: sum(dy) and sum(dy * (x - mean)), where dy (the
 * gradient of the normalised values) is g at each window's maximum and 0 elsewhere. At a maximum that
 * passed, x - mean = (m - bias) / scale, so the sums need only the outputs, not the input (to float
 * rounding, which is all a gradient sum needs; scale = 0 takes the exact path in the caller). */
LT_SIMD_CLONES
static void grad_sums_outputs(const float *g, const float *out, const float *code, int64_t n, float bias,
                              double *sum_dy, double *sum_g_mb) {
    enum { LANES = 8 };
    double s[LANES] = {0}, q[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) {
            double gv = code[i + k] >= 0 ? (double)g[i + k] : 0.0;
            s[k] += gv;
            q[k] += gv * ((double)out[i + k] - bias);
        }
    for (; i < n; i++) {
        double gv = code[i] >= 0 ? (double)g[i] : 0.0;
        s[0] += gv;
        q[0] += gv * ((double)out[i] - bias);
    }
    for (int k = 0; k < LANES; k++) {
        *sum_dy += s[k];
        *sum_g_mb += q[k];
    }
}

/* The same sums read from the input, exactly: for a channel whose scale is 0. */
static void grad_sums_exact(const float *g, const float *code, const float *x, int64_t w, int64_t rows, int64_t wo,
                            float mean, double *sum_dy, double *sum_dy_xc) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t ox = 0; ox < wo; ox++) {
            float c = code[r * wo + ox];
            if (c < 0) continue;
            int k = (int)c;
            float xv = x[(2 * r + k / 2) * w + 2 * ox + k % 2];
            *sum_dy += g[r * wo + ox];
            *sum_dy_xc += (double)g[r * wo + ox] * (xv - mean);
        }
}

/* b * x, 0 where b is 0 (eval mode, where x takes no part: an infinite x gives no 0 * inf = NaN) */
static inline float times(float b, float x) { return b == 0.0f ? 0.0f : b * x; }

/* One input row of backward pass 2: dx = b * x + c0 plus a * g where the window's code says this row's
 * first (code == first) or second (first + 1) element was the maximum. One row per loop: the compiler
 * vectorises a loop with two interleaved stores, not with four across two rows. */
static inline __attribute__((always_inline)) void grad_input_row(float *restrict d, const float *restrict xr, const float *restrict gr,
                                  const float *restrict cr, int64_t wo, float a, float b, float c0, float first) {
    for (int64_t ox = 0; ox < wo; ox++) {
        float ag = a * gr[ox], c = cr[ox];
        d[2 * ox] = times(b, xr[2 * ox]) + c0 + (c == first ? ag : 0.0f);
        d[2 * ox + 1] = times(b, xr[2 * ox + 1]) + c0 + (c == first + 1 ? ag : 0.0f);
    }
}

/* Backward pass 2: dx = a * dy + b * (x - mean) + c over the windows of output rows [0, rows). */
static inline __attribute__((always_inline)) void grad_input_rows_impl(float *restrict dx, const float *restrict g,
                                                                        const float *restrict code,
                                                                        const float *restrict x, int64_t w,
                                                                        int64_t rows, int64_t wo, float a, float b,
                                                                        float c0) {
    for (int64_t r = 0; r < rows; r++) {
        const float *r0 = x + 2 * r * w, *r1 = r0 + w, *gr = g + r * wo, *cr = code + r * wo;
        float *d0 = dx + 2 * r * w, *d1 = d0 + w;
        grad_input_row(d0, r0, gr, cr, wo, a, b, c0, 0.0f);
        grad_input_row(d1, r1, gr, cr, wo, a, b, c0, 2.0f);
        for (int64_t ix = 2 * wo; ix < w; ix++) {  /* an odd last column lies in no window */
            d0[ix] = times(b, r0[ix]) + c0;
            d1[ix] = times(b, r1[ix]) + c0;
        }
    }
}

LT_SIMD_CLONES
static void grad_input_rows(float *dx, const float *g, const float *code, const float *x, int64_t w, int64_t rows,
                            int64_t wo, float mean, bn_grad k) {
    const float a = k.a, b = k.b, c0 = k.c - k.b * mean;  /* dx = b * x + c0 (+ a * g at the maximum) */
    if (w == 2 * wo) {  /* constant widths, as in pool_rows */
        switch (wo) {
        case 1: grad_input_rows_impl(dx, g, code, x, 2, rows, 1, a, b, c0); return;
        case 2: grad_input_rows_impl(dx, g, code, x, 4, rows, 2, a, b, c0); return;
        case 4: grad_input_rows_impl(dx, g, code, x, 8, rows, 4, a, b, c0); return;
        case 8: grad_input_rows_impl(dx, g, code, x, 16, rows, 8, a, b, c0); return;
        }
    }
    grad_input_rows_impl(dx, g, code, x, w, rows, wo, a, b, c0);
}

/* A channel's planes for n = 0..N-1 follow each other in memory (the batch-folded layout), so that with
 * an even height the channel is one tall image: one call for N planes. */
static bool planes_follow(const lt_bn_relu_pool_shape *s, lt_nc_strides st, int64_t plane) {
    return s->n == 1 || st.sn == plane;
}

static int bn_relu_pool_forward_cpu(lt_kernel_ctx *ctx, float *out, float *codes, const float *in, lt_bn_vectors v,
                                    lt_bn_relu_pool_shape s, lt_batchnorm_params p) {
    int64_t N = s.n, C = s.c, H = s.h, W = s.w, ho = s.ho, wo = s.wo;
    channel_view vx = lt_bn_view(N, C, H * W, s.x);
    bool stacked = H % 2 == 0 && planes_follow(&s, s.x, H * W) && planes_follow(&s, s.y, ho * wo);
    int threads = lt_threads_for(N * C * H * W, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t c = 0; c < C; c++) {
        const float *xc = in + c * vx.sc;
        bn_affine t = lt_bn_channel_forward(xc, vx, c, N * H * W, v, p);
        v.save_mean[c] = t.mean;
        v.save_invstd[c] = t.invstd;
        float *yc = out + c * s.y.sc, *cc = codes + c * s.y.sc;
        if (stacked) pool_rows(yc, cc, xc, W, N * ho, wo, t);
        else
            for (int64_t n = 0; n < N; n++) pool_rows(yc + n * s.y.sn, cc + n * s.y.sn, xc + n * vx.sn, W, ho, wo, t);
    }
    return 0;
}

static int bn_relu_pool_backward_cpu(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                                     const float *out, const float *codes, const float *in, lt_bn_vectors v,
                                     lt_bn_relu_pool_shape s) {
    int64_t N = s.n, C = s.c, H = s.h, W = s.w, ho = s.ho, wo = s.wo;
    channel_view vx = lt_bn_view(N, C, H * W, s.x);
    bool stacked = H % 2 == 0 && planes_follow(&s, s.x, H * W) && planes_follow(&s, s.y, ho * wo) &&
                   (!dinp || planes_follow(&s, s.dx, H * W));
    int64_t osn = s.y.sn, osc = s.y.sc, planes = stacked ? 1 : N, rows = stacked ? N * ho : ho;
    int threads = lt_threads_for(N * C * H * W, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t c = 0; c < C; c++) {
        bn_affine t = lt_bn_affine(v.save_mean[c], v.save_invstd[c], v.weight, v.bias, c);
        const float *xc = in + c * vx.sc, *gc = dout + c * osc, *yc = out + c * osc, *kc = codes + c * osc;
        double sum_dy = 0, sum_dy_xc = 0;
        if (t.scale != 0) {
            double sum_g_mb = 0;  /* sum of g * (m - bias) */
            for (int64_t n = 0; n < planes; n++)
                grad_sums_outputs(gc + n * osn, yc + n * osn, kc + n * osn, rows * wo, v.bias ? v.bias[c] : 0.0f, &sum_dy,
                                  &sum_g_mb);
            sum_dy_xc = sum_g_mb / t.scale;
        } else {
            for (int64_t n = 0; n < planes; n++)
                grad_sums_exact(gc + n * osn, kc + n * osn, xc + n * vx.sn, W, rows, wo, t.mean, &sum_dy, &sum_dy_xc);
        }
        if (dweight) dweight[c] += (float)(sum_dy_xc * t.invstd);
        if (dbias) dbias[c] += (float)sum_dy;
        if (!dinp) continue;
        bn_grad k = lt_bn_grad_coefficients(sum_dy, sum_dy_xc, N * H * W, v.weight ? v.weight[c] : 1.0f, t.invstd,
                                            s.training);
        float *dc = dinp + c * s.dx.sc;
        for (int64_t n = 0; n < planes; n++) {
            float *dn = dc + n * s.dx.sn;
            const float *xn = xc + n * vx.sn;
            grad_input_rows(dn, gc + n * osn, kc + n * osn, xn, W, rows, wo, t.mean, k);
            if (H % 2)  /* an odd last row lies in no window (never stacked) */
                for (int64_t ix = 0; ix < W; ix++) dn[(H - 1) * W + ix] = times(k.b, xn[(H - 1) * W + ix] - t.mean) + k.c;
        }
    }
    return 0;
}

const lt_bn_relu_pool_impl lt_bn_relu_pool_cpu = {
    .base = {.name = "cpu", .supports = lt_supports_fp32},
    .forward = bn_relu_pool_forward_cpu,
    .backward = bn_relu_pool_backward_cpu,
};
