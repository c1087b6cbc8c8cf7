/* The CPU max pooling over (N, C, H, W) planes (one plane, or a run of rows of a stacked image, per work
 * item). */
#include <string.h>

#include "../nn/ops.h"
#include "../base/parallel.h"
#include "../base/simd.h"

/* max that lets NaN through (PyTorch's pooling propagates NaN) */
static inline float nan_max(float best, float v) { return best == best && (v > best || v != v) ? v : best; }

/* The common 2x2, stride 2 window: a max of four, vectorised; no indices (the backward pass finds the
 * maximum again). With relu, relu(max(x)) = max(relu(x)): the ReLU before the pooling costs nothing. */
LT_SIMD_CLONES
static void maxpool_2x2_plane(float *o, const float *in, int64_t w, int64_t ho, int64_t wo, bool relu) {
    for (int64_t oy = 0; oy < ho; oy++) {
        const float *r0 = in + 2 * oy * w, *r1 = r0 + w;
        float *orow = o + oy * wo;
        for (int64_t ox = 0; ox < wo; ox++) {
            float m = nan_max(nan_max(nan_max(r0[2 * ox], r0[2 * ox + 1]), r1[2 * ox]), r1[2 * ox + 1]);
            orow[ox] = relu && m < 0 ? 0.0f : m;
        }
    }
}

/* Sends each output gradient to the first maximum of its window (the one the forward pass took);
 * with relu, nothing passes where the output is 0 or NaN. Windows do not overlap, so every input
 * element is written exactly once. Branch-free (& rather than &&) so that it vectorises. */
LT_SIMD_CLONES
static void maxpool_2x2_grad_plane(float *d, const float *g, const float *out, const float *in, int64_t w, int64_t ho,
                                   int64_t wo, bool relu) {
    for (int64_t oy = 0; oy < ho; oy++) {
        const float *r0 = in + 2 * oy * w, *r1 = r0 + w, *mo = out + oy * wo, *go = g + oy * wo;
        float *d0 = d + 2 * oy * w, *d1 = d0 + w;
        for (int64_t ox = 0; ox < wo; ox++) {
            float m = mo[ox];
            float gv = relu && !(m > 0) ? 0.0f : go[ox];
            float v0 = r0[2 * ox], v1 = r0[2 * ox + 1], v2 = r1[2 * ox];
            int nan = m != m;
            int t0 = (v0 == m) | (nan & (v0 != v0));
            int t1 = (t0 ^ 1) & ((v1 == m) | (nan & (v1 != v1)));
            int t2 = (t0 ^ 1) & (t1 ^ 1) & ((v2 == m) | (nan & (v2 != v2)));
            int t3 = (t0 | t1 | t2) ^ 1;
            d0[2 * ox] = t0 ? gv : 0.0f;
            d0[2 * ox + 1] = t1 ? gv : 0.0f;
            d1[2 * ox] = t2 ? gv : 0.0f;
            d1[2 * ox + 1] = t3 ? gv : 0.0f;
        }
        if (2 * wo < w) {  /* an odd last column lies in no window */
            d0[w - 1] = 0;
            d1[w - 1] = 0;
        }
    }
}

/* Any window: the first maximum of each and its position (h * W + w) in the plane. */
static void maxpool_plane(float *o, float *ix, const float *in, const lt_pool2d_shape *s) {
    const lt_pool2d_params *p = &s->p;
    for (int64_t oy = 0; oy < s->ho; oy++) {
        int64_t y0 = oy * p->stride_h - p->pad_h, y1 = y0 + p->kernel_h;
        if (y0 < 0) y0 = 0;
        if (y1 > s->h) y1 = s->h;
        for (int64_t ox = 0; ox < s->wo; ox++) {
            int64_t x0 = ox * p->stride_w - p->pad_w, x1 = x0 + p->kernel_w;
            if (x0 < 0) x0 = 0;
            if (x1 > s->w) x1 = s->w;
            float best = in[y0 * s->w + x0];
            int64_t at = y0 * s->w + x0;
            for (int64_t iy = y0; iy < y1; iy++)
                for (int64_t ixx = x0; ixx < x1; ixx++) {
                    float v = in[iy * s->w + ixx];
                    if (best == best && (v > best || v != v)) { best = v; at = iy * s->w + ixx; }
                }
            o[oy * s->wo + ox] = p->relu && best < 0 ? 0.0f : best;
            ix[oy * s->wo + ox] = (float)at;
        }
    }
}

static int maxpool2d_forward_cpu(lt_kernel_ctx *ctx, float *out, float *indices, const float *in, lt_pool2d_shape s) {
    bool fast = !lt_maxpool2d_keeps_indices(s.p);
    int64_t planes = s.n * s.c;
    int threads = lt_threads_for(planes * s.h * s.w, LT_PARALLEL_GRAIN);
    if (fast && s.stacked) {
        int64_t rows = planes * s.ho;
        #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int t = 0; t < threads; t++) {
            int64_t r0, r1;
            lt_split_range(rows, threads, t, &r0, &r1);
            maxpool_2x2_plane(out + r0 * s.wo, in + 2 * r0 * s.w, s.w, r1 - r0, s.wo, s.p.relu);
        }
        return 0;
    }
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t q = 0; q < planes; q++) {
        int64_t b = q / s.c, c = q % s.c;
        const float *x = in + b * s.x.sn + c * s.x.sc;
        float *o = out + b * s.y.sn + c * s.y.sc;
        if (fast) maxpool_2x2_plane(o, x, s.w, s.ho, s.wo, s.p.relu);
        else maxpool_plane(o, indices + b * s.idx.sn + c * s.idx.sc, x, &s);
    }
    return 0;
}

static int maxpool2d_backward_cpu(lt_kernel_ctx *ctx, float *dinp, const float *dout, const float *out,
                                  const float *indices, const float *in, lt_pool2d_shape s) {
    bool fast = !lt_maxpool2d_keeps_indices(s.p), any = s.ho * s.wo > 0;
    int64_t planes = s.n * s.c, ho = s.ho, wo = s.wo;
    int threads = lt_threads_for(planes * s.h * s.w, LT_PARALLEL_GRAIN);
    if (fast && any && s.stacked) {
        int64_t rows = planes * ho;
        #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int t = 0; t < threads; t++) {
            int64_t r0, r1;
            lt_split_range(rows, threads, t, &r0, &r1);
            maxpool_2x2_grad_plane(dinp + 2 * r0 * s.w, dout + r0 * wo, out + r0 * wo, in + 2 * r0 * s.w, s.w, r1 - r0,
                                   wo, s.p.relu);
        }
        return 0;
    }
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t q = 0; q < planes; q++) {
        int64_t b = q / s.c, c = q % s.c;
        float *d = dinp + b * s.dx.sn + c * s.dx.sc;
        const float *gq = any ? dout + b * s.dy.sn + c * s.dy.sc : NULL, *yq = any ? out + b * s.y.sn + c * s.y.sc : NULL;
        if (fast && any) {
            if (s.h > 2 * ho) memset(d + 2 * ho * s.w, 0, sizeof(float) * (size_t)((s.h - 2 * ho) * s.w));
            maxpool_2x2_grad_plane(d, gq, yq, in + b * s.x.sn + c * s.x.sc, s.w, ho, wo, s.p.relu);
            continue;
        }
        memset(d, 0, sizeof(float) * (size_t)(s.h * s.w));
        if (!any) continue;
        const float *iq = indices + b * s.idx.sn + c * s.idx.sc;
        for (int64_t i = 0; i < ho * wo; i++)
            if (!s.p.relu || yq[i] > 0) d[(int64_t)iq[i]] += gq[i];
    }
    return 0;
}

const lt_maxpool2d_impl lt_maxpool2d_cpu = {
    .base = {.name = "cpu", .supports = lt_supports_fp32},
    .forward = maxpool2d_forward_cpu,
    .backward = maxpool2d_backward_cpu,
};
