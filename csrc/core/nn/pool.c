/* 2-D pooling over (N, C, H, W) planes; outputs keep the input's plane layout (nn.h). */
#include <math.h>
#include <string.h>

#include "../parallel.h"
#include "../simd.h"
#include "nn.h"

typedef struct planes {
    int64_t n, c, h, w;
    int64_t sn, sc;
} planes;

static planes planes_of(const lt_tensor *t) {
    return (planes){t->size[0], t->size[1], t->size[2], t->size[3], t->stride[0], t->stride[1]};
}

static int check_input(const lt_tensor *input, lt_error *err) {
    char a[160];
    if (input->ndim != 4)
        return lt_fail(err, "expected a 4-D input (batch x channels x height x width), got %s", lt_shape_str(input, a, sizeof a));
    return 0;
}

static int planar(lt_tensor *view, const lt_tensor *t, lt_error *err) {
    if (lt_planes_contiguous(t)) {
        lt_tensor_share(view, t);
        return 0;
    }
    return lt_contiguous(view, t, err);
}

/* Resizes a gradient to the input's shape, in its layout when that has contiguous planes. */
static int resize_planar_like(lt_tensor *out, const lt_tensor *input, lt_error *err) {
    if (lt_planes_contiguous(input)) return lt_resize_like(out, input, err);
    return lt_tensor_resize(out, input->ndim, input->size, err);
}

/* Resizes out to (n, c, ho, wo) keeping like's order of batch and channel. */
static int resize_planes(lt_tensor *out, const lt_tensor *like, int64_t ho, int64_t wo, lt_error *err) {
    if (lt_is_cnhw(like) && like->size[0] > 1 && like->size[1] > 1)
        return lt_resize_cnhw(out, like->size[0], like->size[1], ho, wo, err);
    int64_t size[4] = {like->size[0], like->size[1], ho, wo};
    return lt_tensor_resize(out, 4, size, err);
}

static int pool_extent(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t *out, lt_error *err) {
    if (k < 1 || s < 1 || pad < 0) return lt_fail(err, "kernel size and stride must be positive and padding non-negative");
    if (pad * 2 > k) return lt_fail(err, "padding %lld must be at most half the kernel size %lld", (long long)pad, (long long)k);
    if (in + 2 * pad < k)
        return lt_fail(err, "input size %lld (padding %lld) is smaller than the kernel %lld", (long long)in, (long long)pad, (long long)k);
    *out = (in + 2 * pad - k) / s + 1;
    return 0;
}

#define FOR_EACH_PLANE(P, NPLANES_WORK)                                                           \
    int threads_ = lt_threads_for((NPLANES_WORK), LT_PARALLEL_GRAIN);                           \
    _Pragma("omp parallel for num_threads(threads_) schedule(static) if (threads_ > 1)")          \
    for (int64_t P = 0; P < planes_total; P++)

/* max that lets NaN through (PyTorch's pooling propagates NaN) */
static inline float nan_max(float best, float v) { return best == best && (v > best || v != v) ? v : best; }

static bool is_two_by_two(lt_pool2d_params p) {
    return p.kernel_h == 2 && p.kernel_w == 2 && p.stride_h == 2 && p.stride_w == 2 && p.pad_h == 0 && p.pad_w == 0;
}

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

/* When input and output store their planes consecutively in the same order and the height is even,
 * all planes together are one tall image whose 2x2 windows never straddle two planes: one call does
 * them all, instead of one call per small plane. */
static bool planes_stack(const lt_tensor *in, const lt_tensor *out) {
    if (in->size[2] % 2 || !lt_is_dense(in) || !lt_is_dense(out) || !lt_planes_contiguous(in) || !lt_planes_contiguous(out))
        return false;
    int64_t pin = in->size[2] * in->size[3], pout = out->size[2] * out->size[3];
    for (int d = 0; d < 2; d++)
        if (in->size[d] > 1 && in->stride[d] / pin != out->stride[d] / pout) return false;
    return true;
}

/* Threads for a stacked image of `work` input elements. */
static int stack_threads(int64_t work) { return lt_threads_for(work, LT_PARALLEL_GRAIN); }

int lt_maxpool2d_forward(lt_tensor *out, lt_tensor *indices, const lt_tensor *input, lt_pool2d_params p,
                         lt_error *err) {
    int64_t ho, wo;
    if (check_input(input, err) || pool_extent(input->size[2], p.kernel_h, p.stride_h, p.pad_h, &ho, err) ||
        pool_extent(input->size[3], p.kernel_w, p.stride_w, p.pad_w, &wo, err))
        return -1;
    lt_tensor x = {0};
    int rc = -1;
    bool fast = is_two_by_two(p);
    if (planar(&x, input, err) || resize_planes(out, &x, ho, wo, err)) goto done;
    if (!fast && resize_planes(indices, &x, ho, wo, err)) goto done;
    planes pi = planes_of(&x), po = planes_of(out);
    int64_t planes_total = pi.n * pi.c;
    if (planes_total * ho * wo == 0) { rc = 0; goto done; }
    const float *xd = lt_data(&x);
    float *yd = lt_data(out), *id = fast ? NULL : lt_data(indices);
    if (fast && planes_stack(&x, out)) {
        int64_t rows = planes_total * ho;
        int threads = stack_threads(planes_total * pi.h * pi.w);
        #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int t = 0; t < threads; t++) {
            int64_t r0, r1;
            lt_split_range(rows, threads, t, &r0, &r1);
            maxpool_2x2_plane(yd + r0 * wo, xd + 2 * r0 * pi.w, pi.w, r1 - r0, wo, p.relu);
        }
        rc = 0;
        goto done;
    }
    FOR_EACH_PLANE(q, planes_total * pi.h * pi.w) {
        int64_t b = q / pi.c, c = q % pi.c;
        const float *in = xd + b * pi.sn + c * pi.sc;
        float *o = yd + b * po.sn + c * po.sc;
        if (fast) {
            maxpool_2x2_plane(o, in, pi.w, ho, wo, p.relu);
            continue;
        }
        float *ix = id + b * po.sn + c * po.sc;
        for (int64_t oy = 0; oy < ho; oy++) {
            int64_t y0 = oy * p.stride_h - p.pad_h, y1 = y0 + p.kernel_h;
            if (y0 < 0) y0 = 0;
            if (y1 > pi.h) y1 = pi.h;
            for (int64_t ox = 0; ox < wo; ox++) {
                int64_t x0 = ox * p.stride_w - p.pad_w, x1 = x0 + p.kernel_w;
                if (x0 < 0) x0 = 0;
                if (x1 > pi.w) x1 = pi.w;
                float best = in[y0 * pi.w + x0];
                int64_t at = y0 * pi.w + x0;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ixx = x0; ixx < x1; ixx++) {
                        float v = in[iy * pi.w + ixx];
                        if (best == best && (v > best || v != v)) { best = v; at = iy * pi.w + ixx; }
                    }
                o[oy * wo + ox] = p.relu && best < 0 ? 0.0f : best;
                ix[oy * wo + ox] = (float)at;
            }
        }
    }
    rc = 0;
done:
    lt_tensor_release(&x);
    return rc;
}

int lt_maxpool2d_backward(lt_tensor *grad_input, const lt_tensor *grad_output, const lt_tensor *output,
                          const lt_tensor *indices, const lt_tensor *input, lt_pool2d_params p, lt_error *err) {
    char a[160], b[160];
    if (check_input(input, err)) return -1;
    if (!lt_same_shape(grad_output, output))
        return lt_fail(err, "grad_output %s must have the output's shape %s", lt_shape_str(grad_output, a, sizeof a),
                       lt_shape_str(output, b, sizeof b));
    bool fast = is_two_by_two(p);
    lt_tensor g = {0}, x = {0}, y = {0};
    int rc = -1;
    if (planar(&g, grad_output, err) || planar(&x, input, err) || planar(&y, output, err) ||
        resize_planar_like(grad_input, &x, err))
        goto done;
    planes pi = planes_of(grad_input), pg = planes_of(&g), px = planes_of(&x), py = planes_of(&y);
    planes pn = fast ? py : planes_of(indices);
    int64_t planes_total = pi.n * pi.c, ho = pg.h, wo = pg.w;
    if (planes_total * pi.h * pi.w == 0) { rc = 0; goto done; }
    float *dx = lt_data(grad_input);
    bool any = lt_numel(&g) > 0;
    const float *gd = any ? lt_data(&g) : NULL, *yd = any ? lt_data(&y) : NULL, *xd = lt_data(&x);
    const float *id = any && !fast ? lt_data(indices) : NULL;
    if (fast && any && planes_stack(&x, &y) && planes_stack(grad_input, &g)) {
        int64_t rows = planes_total * ho;
        int threads = stack_threads(planes_total * pi.h * pi.w);
        #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int t = 0; t < threads; t++) {
            int64_t r0, r1;
            lt_split_range(rows, threads, t, &r0, &r1);
            maxpool_2x2_grad_plane(dx + 2 * r0 * pi.w, gd + r0 * wo, yd + r0 * wo, xd + 2 * r0 * pi.w, pi.w, r1 - r0,
                                   wo, p.relu);
        }
        rc = 0;
        goto done;
    }
    FOR_EACH_PLANE(q, planes_total * pi.h * pi.w) {
        int64_t bb = q / pi.c, c = q % pi.c;
        float *d = dx + bb * pi.sn + c * pi.sc;
        const float *gq = any ? gd + bb * pg.sn + c * pg.sc : NULL, *yq = any ? yd + bb * py.sn + c * py.sc : NULL;
        if (fast && any) {
            if (pi.h > 2 * ho) memset(d + 2 * ho * pi.w, 0, sizeof(float) * (size_t)((pi.h - 2 * ho) * pi.w));
            maxpool_2x2_grad_plane(d, gq, yq, xd + bb * px.sn + c * px.sc, pi.w, ho, wo, p.relu);
            continue;
        }
        memset(d, 0, sizeof(float) * (size_t)(pi.h * pi.w));
        if (!any) continue;
        const float *iq = id + bb * pn.sn + c * pn.sc;
        for (int64_t i = 0; i < ho * wo; i++)
            if (!p.relu || yq[i] > 0) d[(int64_t)iq[i]] += gq[i];
    }
    rc = 0;
done:
    lt_tensor_release(&g);
    lt_tensor_release(&x);
    lt_tensor_release(&y);
    return rc;
}

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

/* Average pooling in one direction of the computation: forward sums input windows into outputs;
 * backward spreads output gradients over input windows. */
static int avgpool(lt_tensor *dst, const lt_tensor *src, const lt_tensor *input, lt_pool2d_params p, bool backward,
                   lt_error *err) {
    int64_t ho, wo;
    if (check_input(input, err) || pool_extent(input->size[2], p.kernel_h, p.stride_h, p.pad_h, &ho, err) ||
        pool_extent(input->size[3], p.kernel_w, p.stride_w, p.pad_w, &wo, err))
        return -1;
    if (backward && (src->ndim != 4 || src->size[0] != input->size[0] || src->size[1] != input->size[1] ||
                     src->size[2] != ho || src->size[3] != wo)) {
        char a[160];
        return lt_fail(err, "grad_output must be %lldx%lldx%lldx%lld, got %s", (long long)input->size[0],
                       (long long)input->size[1], (long long)ho, (long long)wo, lt_shape_str(src, a, sizeof a));
    }
    lt_tensor s = {0};
    int rc = -1;
    if (planar(&s, src, err)) goto done;
    if (backward ? resize_planar_like(dst, input, err) : resize_planes(dst, &s, ho, wo, err)) goto done;
    planes ps = planes_of(&s), pd = planes_of(dst);
    int64_t planes_total = ps.n * ps.c, H = input->size[2], W = input->size[3];
    if (lt_numel(dst) == 0) { rc = 0; goto done; }
    const float *sd = lt_numel(&s) ? lt_data(&s) : NULL;
    float *dd = lt_data(dst);
    FOR_EACH_PLANE(q, planes_total * H * W) {
        int64_t b = q / ps.c, c = q % ps.c;
        const float *in = sd + b * ps.sn + c * ps.sc;
        float *out = dd + b * pd.sn + c * pd.sc;
        if (backward) memset(out, 0, sizeof(float) * (size_t)(H * W));
        for (int64_t oy = 0; oy < ho; oy++) {
            int64_t y0, y1, ylen, x0, x1, xlen;
            avg_window(oy, p.kernel_h, p.stride_h, p.pad_h, H, &y0, &y1, &ylen);
            for (int64_t ox = 0; ox < wo; ox++) {
                avg_window(ox, p.kernel_w, p.stride_w, p.pad_w, W, &x0, &x1, &xlen);
                int64_t divisor = p.count_include_pad ? ylen * xlen : (y1 - y0) * (x1 - x0);
                if (backward) {
                    float g = divisor ? in[oy * wo + ox] / (float)divisor : 0.0f;
                    for (int64_t iy = y0; iy < y1; iy++)
                        for (int64_t ix = x0; ix < x1; ix++) out[iy * W + ix] += g;
                } else {
                    float acc = 0;
                    for (int64_t iy = y0; iy < y1; iy++)
                        for (int64_t ix = x0; ix < x1; ix++) acc += in[iy * W + ix];
                    out[oy * wo + ox] = divisor ? acc / (float)divisor : 0.0f;
                }
            }
        }
    }
    rc = 0;
done:
    lt_tensor_release(&s);
    return rc;
}

int lt_avgpool2d_forward(lt_tensor *out, const lt_tensor *input, lt_pool2d_params p, lt_error *err) {
    return avgpool(out, input, input, p, false, err);
}

int lt_avgpool2d_backward(lt_tensor *grad_input, const lt_tensor *grad_output, const lt_tensor *input,
                          lt_pool2d_params p, lt_error *err) {
    return avgpool(grad_input, grad_output, input, p, true, err);
}

/* PyTorch's adaptive windows: [floor(o * in / out), ceil((o + 1) * in / out)). */
static void adaptive_window(int64_t o, int64_t out, int64_t in, int64_t *lo, int64_t *hi) {
    *lo = (o * in) / out;
    *hi = ((o + 1) * in + out - 1) / out;
}

static int adaptive(lt_tensor *dst, const lt_tensor *src, const lt_tensor *input, int64_t oh, int64_t ow, bool backward,
                    lt_error *err) {
    if (check_input(input, err)) return -1;
    if (oh < 1 || ow < 1) return lt_fail(err, "output size must be positive, got %lldx%lld", (long long)oh, (long long)ow);
    lt_tensor s = {0};
    int rc = -1;
    if (planar(&s, src, err)) goto done;
    if (backward ? resize_planar_like(dst, input, err) : resize_planes(dst, &s, oh, ow, err)) goto done;
    planes ps = planes_of(&s), pd = planes_of(dst);
    int64_t planes_total = ps.n * ps.c, H = input->size[2], W = input->size[3];
    if (lt_numel(dst) == 0 || H * W == 0) { rc = 0; goto done; }
    const float *sd = lt_data(&s);
    float *dd = lt_data(dst);
    FOR_EACH_PLANE(q, planes_total * H * W) {
        int64_t b = q / ps.c, c = q % ps.c;
        const float *in = sd + b * ps.sn + c * ps.sc;
        float *out = dd + b * pd.sn + c * pd.sc;
        if (backward) memset(out, 0, sizeof(float) * (size_t)(H * W));
        for (int64_t oy = 0; oy < oh; oy++) {
            int64_t y0, y1;
            adaptive_window(oy, oh, H, &y0, &y1);
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t x0, x1;
                adaptive_window(ox, ow, W, &x0, &x1);
                float count = (float)((y1 - y0) * (x1 - x0));
                if (backward) {
                    float g = in[oy * ow + ox] / count;
                    for (int64_t iy = y0; iy < y1; iy++)
                        for (int64_t ix = x0; ix < x1; ix++) out[iy * W + ix] += g;
                } else {
                    float acc = 0;
                    for (int64_t iy = y0; iy < y1; iy++)
                        for (int64_t ix = x0; ix < x1; ix++) acc += in[iy * W + ix];
                    out[oy * ow + ox] = acc / count;
                }
            }
        }
    }
    rc = 0;
done:
    lt_tensor_release(&s);
    return rc;
}

int lt_adaptive_avgpool2d_forward(lt_tensor *out, const lt_tensor *input, int64_t out_h, int64_t out_w, lt_error *err) {
    return adaptive(out, input, input, out_h, out_w, false, err);
}

int lt_adaptive_avgpool2d_backward(lt_tensor *grad_input, const lt_tensor *grad_output, const lt_tensor *input,
                                   lt_error *err) {
    char a[160];
    if (grad_output->ndim != 4 || grad_output->size[0] != input->size[0] || grad_output->size[1] != input->size[1])
        return lt_fail(err, "grad_output %s does not match the input's batch and channels", lt_shape_str(grad_output, a, sizeof a));
    return adaptive(grad_input, grad_output, input, grad_output->size[2], grad_output->size[3], true, err);
}
