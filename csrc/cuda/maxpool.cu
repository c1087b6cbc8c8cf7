/* Max pooling over (N, C, H, W) planes with the CPU's semantics (csrc/core/cpu/maxpool.c): the first
 * maximum of each window (NaN wins), ReLU fused in front when p.relu (relu(max(x)) = max(relu(x))), and
 * two paths: the common 2x2 stride-2 window without padding keeps no indices (the backward pass finds
 * the maximum again from input and output), every other window records its maximum's place h * W + w
 * in its plane (as a float). Each tensor is addressed through its own batch and channel strides.
 *
 * The backward passes write each input element once: the 2x2 windows do not overlap (a thread per
 * window), and with other windows each input element gathers the gradients of the windows that chose
 * it, in output order, as the CPU adds them: deterministic, no atomics. */
#include "parts.cuh"
#include "pool_math.cuh"

namespace ltc {

/* The plane (b, c) of flat plane index q. */
__device__ __forceinline__ int64_t plane_offset(int64_t q, int64_t channels, lt_nc_strides st) {
    return (q / channels) * st.sn + (q % channels) * st.sc;
}

__global__ void maxpool_2x2_kernel(float *out, const float *in, lt_pool2d_shape s) {
    int64_t oplane = s.ho * s.wo;
    LTC_FOR(e, s.n * s.c * oplane) {
        int64_t q = e / oplane, r = e % oplane, oy = r / s.wo, ox = r % s.wo;
        const float *r0 = in + plane_offset(q, s.c, s.x) + 2 * oy * s.w + 2 * ox, *r1 = r0 + s.w;
        float m = nan_max_f(nan_max_f(nan_max_f(r0[0], r0[1]), r1[0]), r1[1]);
        out[plane_offset(q, s.c, s.y) + r] = s.p.relu && m < 0 ? 0.0f : m;
    }
}

/* Window (oy, ox) of plane q: its gradient to its first maximum (the one the forward pass took), 0 to
 * its other three elements; with relu, nothing where the output is 0 or NaN. Windows do not overlap, so
 * each input element is written once; the last window of a row (a column) also zeroes an odd last
 * column (row), which lies in no window. */
__global__ void maxpool_2x2_grad_kernel(float *dinp, const float *dout, const float *out, const float *in,
                                        lt_pool2d_shape s) {
    int64_t oplane = s.ho * s.wo;
    LTC_FOR(e, s.n * s.c * oplane) {
        int64_t q = e / oplane, r = e % oplane, oy = r / s.wo, ox = r % s.wo;
        float m = out[plane_offset(q, s.c, s.y) + r];
        float g = s.p.relu && !(m > 0) ? 0.0f : dout[plane_offset(q, s.c, s.dy) + r];
        const float *r0 = in + plane_offset(q, s.c, s.x) + 2 * oy * s.w + 2 * ox, *r1 = r0 + s.w;
        float v[4] = {r0[0], r0[1], r1[0], r1[1]};
        bool nan = m != m;
        int winner = 3;
        for (int k = 2; k >= 0; k--)
            if (v[k] == m || (nan && v[k] != v[k])) winner = k;
        float *d0 = dinp + plane_offset(q, s.c, s.dx) + 2 * oy * s.w + 2 * ox, *d1 = d0 + s.w;
        d0[0] = winner == 0 ? g : 0.0f;
        d0[1] = winner == 1 ? g : 0.0f;
        d1[0] = winner == 2 ? g : 0.0f;
        d1[1] = winner == 3 ? g : 0.0f;
        bool last_col = ox == s.wo - 1 && s.w > 2 * s.wo, last_row = oy == s.ho - 1 && s.h > 2 * s.ho;
        if (last_col) d0[2] = d1[2] = 0.0f;
        if (last_row) d1[s.w] = d1[s.w + 1] = 0.0f;
        if (last_col && last_row) d1[s.w + 2] = 0.0f;
    }
}

/* Any window: the first maximum and its place in the plane. */
__global__ void maxpool_kernel(float *out, float *indices, const float *in, lt_pool2d_shape s) {
    int64_t oplane = s.ho * s.wo;
    LTC_FOR(e, s.n * s.c * oplane) {
        int64_t q = e / oplane, r = e % oplane, oy = r / s.wo, ox = r % s.wo;
        const float *x = in + plane_offset(q, s.c, s.x);
        int64_t y0 = oy * s.p.stride_h - s.p.pad_h, y1 = y0 + s.p.kernel_h;
        int64_t x0 = ox * s.p.stride_w - s.p.pad_w, x1 = x0 + s.p.kernel_w;
        y0 = y0 < 0 ? 0 : y0;
        y1 = y1 > s.h ? s.h : y1;
        x0 = x0 < 0 ? 0 : x0;
        x1 = x1 > s.w ? s.w : x1;
        float best = x[y0 * s.w + x0];
        int64_t at = y0 * s.w + x0;
        for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) {
                float v = x[iy * s.w + ix];
                if (nan_takes(best, v)) {
                    best = v;
                    at = iy * s.w + ix;
                }
            }
        out[plane_offset(q, s.c, s.y) + r] = s.p.relu && best < 0 ? 0.0f : best;
        indices[plane_offset(q, s.c, s.idx) + r] = (float)at;
    }
}

/* Input element (iy, ix): the sum, in output order, of the gradients of the windows over it whose
 * recorded maximum it is (with relu, of those whose output passed). */
__global__ void maxpool_grad_kernel(float *dinp, const float *dout, const float *out, const float *indices,
                                    lt_pool2d_shape s) {
    int64_t plane = s.h * s.w;
    LTC_FOR(e, s.n * s.c * plane) {
        int64_t q = e / plane, r = e % plane, iy = r / s.w, ix = r % s.w;
        /* windows oy with oy * stride - pad <= iy < oy * stride - pad + kernel */
        int64_t ty = iy + s.p.pad_h - s.p.kernel_h + 1, tx = ix + s.p.pad_w - s.p.kernel_w + 1;
        int64_t oy0 = ty > 0 ? (ty + s.p.stride_h - 1) / s.p.stride_h : 0;
        int64_t ox0 = tx > 0 ? (tx + s.p.stride_w - 1) / s.p.stride_w : 0;
        int64_t oy1 = (iy + s.p.pad_h) / s.p.stride_h, ox1 = (ix + s.p.pad_w) / s.p.stride_w;
        oy1 = oy1 < s.ho - 1 ? oy1 : s.ho - 1;
        ox1 = ox1 < s.wo - 1 ? ox1 : s.wo - 1;
        const float *ix_plane = indices + plane_offset(q, s.c, s.idx), *g = dout + plane_offset(q, s.c, s.dy);
        const float *y = out + plane_offset(q, s.c, s.y);
        float acc = 0.0f;
        for (int64_t oy = oy0; oy <= oy1; oy++)
            for (int64_t ox = ox0; ox <= ox1; ox++) {
                int64_t o = oy * s.wo + ox;
                if ((int64_t)ix_plane[o] == r && (!s.p.relu || y[o] > 0)) acc += g[o];
            }
        dinp[plane_offset(q, s.c, s.dx) + r] = acc;
    }
}

static int maxpool2d_forward(lt_kernel_ctx *ctx, float *out, float *indices, const float *in, lt_pool2d_shape s) {
    int64_t n = s.n * s.c * s.ho * s.wo;
    if (n <= 0) return 0;
    if (!lt_maxpool2d_keeps_indices(s.p)) {
        maxpool_2x2_kernel<<<grid_for(n), 256, 0, state().stream>>>(out, in, s);
        LTC_LAUNCHED(ctx->err, "maxpool_2x2_kernel");
    } else {
        maxpool_kernel<<<grid_for(n), 256, 0, state().stream>>>(out, indices, in, s);
        LTC_LAUNCHED(ctx->err, "maxpool_kernel");
    }
    return 0;
}

static int maxpool2d_backward(lt_kernel_ctx *ctx, float *dinp, const float *dout, const float *out,
                              const float *indices, const float *in, lt_pool2d_shape s) {
    int64_t n = s.n * s.c * s.h * s.w;
    if (n <= 0) return 0;
    if (!lt_maxpool2d_keeps_indices(s.p)) { /* the front makes sure of h, w >= 2: at least one window */
        maxpool_2x2_grad_kernel<<<grid_for(s.n * s.c * s.ho * s.wo), 256, 0, state().stream>>>(dinp, dout, out, in, s);
        LTC_LAUNCHED(ctx->err, "maxpool_2x2_grad_kernel");
    } else {
        maxpool_grad_kernel<<<grid_for(n), 256, 0, state().stream>>>(dinp, dout, out, indices, s);
        LTC_LAUNCHED(ctx->err, "maxpool_grad_kernel");
    }
    return 0;
}

const lt_maxpool2d_impl maxpool2d_cuda = {
    {"cuda", supports_fp32, nullptr},
    maxpool2d_forward,
    maxpool2d_backward,
};

}  // namespace ltc
