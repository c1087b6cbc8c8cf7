/* Max pooling over channels-last activations (dense (N, H, W, C), float32, bf16 or fp16) with the CPU's
 * semantics (csrc/core/cpu/pool_channels_last.c): any window, stride and padding; the first maximum of
 * each window (NaN wins) and a code per output element, its place ky * kernel_w + kx in the window; with
 * p.relu, the ReLU in front (relu(max(x)) = max(relu(x))) and code 255 where the maximum is <= 0 or NaN.
 *
 * The backward pass gathers: each input element adds, in the CPU's order (the windows over it from the
 * last row and column back), the gradients of the windows whose code names it. Overlapping windows need
 * no atomics, and the sums do not change from run to run. */
#include "mixed.cuh"
#include "parts.cuh"
#include "pool_math.cuh"

namespace ltc {

/* Output element (b, oy, ox, c). */
__global__ void maxpool_cl_kernel(void *out, uint8_t *codes, const void *in, lt_maxpool_channels_last_shape s) {
    int64_t C = s.c;
    LTC_FOR(i, s.n * s.ho * s.wo * C) {
        int64_t o = i / C, c = i - o * C, q = o / s.wo, ox = o - q * s.wo, b = q / s.ho, oy = q - b * s.ho;
        /* the padding leaves every window an element (the front: pad <= kernel / 2) */
        float m = -INFINITY;
        int code = 0;
        bool first = true;
        for (int64_t ky = 0; ky < s.p.kernel_h; ky++) {
            int64_t y = oy * s.p.stride_h - s.p.pad_h + ky;
            if (y < 0 || y >= s.h) continue;
            for (int64_t kx = 0; kx < s.p.kernel_w; kx++) {
                int64_t x = ox * s.p.stride_w - s.p.pad_w + kx;
                if (x < 0 || x >= s.w) continue;
                float v = load_as_float(in, s.x, ((b * s.h + y) * s.w + x) * C + c);
                if (first || nan_takes(m, v)) {
                    m = v;
                    code = (int)(ky * s.p.kernel_w + kx);
                    first = false;
                }
            }
        }
        if (s.p.relu) {
            code = m > 0 ? code : 255;
            m = m < 0 ? 0.0f : m;
        }
        store_float(out, s.y, i, m);
        codes[i] = (uint8_t)code;
    }
}

/* Input element (b, y, x, c): the windows over it, oy from (y + pad_h) / stride_h down while the window
 * still reaches row y (and the same across), adding the gradient of each whose code is its place there. */
__global__ void maxpool_cl_grad_kernel(void *dinp, const void *dout, const uint8_t *codes,
                                       lt_maxpool_channels_last_shape s) {
    int64_t C = s.c;
    LTC_FOR(i, s.n * s.h * s.w * C) {
        int64_t r = i / C, c = i - r * C, q = r / s.w, x = r - q * s.w, b = q / s.h, y = q - b * s.h;
        int64_t oy_hi = (y + s.p.pad_h) / s.p.stride_h, ox_hi = (x + s.p.pad_w) / s.p.stride_w;
        float g = 0.0f;
        for (int64_t oy = oy_hi; oy >= 0 && oy * s.p.stride_h - s.p.pad_h + s.p.kernel_h > y; oy--) {
            if (oy >= s.ho) continue;
            for (int64_t ox = ox_hi; ox >= 0 && ox * s.p.stride_w - s.p.pad_w + s.p.kernel_w > x; ox--) {
                if (ox >= s.wo) continue;
                int64_t o = ((b * s.ho + oy) * s.wo + ox) * C + c;
                int64_t k =
                    (y - (oy * s.p.stride_h - s.p.pad_h)) * s.p.kernel_w + (x - (ox * s.p.stride_w - s.p.pad_w));
                if (codes[o] == k) g += load_as_float(dout, s.dy, o);
            }
        }
        store_float(dinp, s.dx, i, g);
    }
}

static int maxpool_cl_forward(lt_kernel_ctx *ctx, void *out, uint8_t *codes, const void *in,
                              lt_maxpool_channels_last_shape s) {
    int64_t n = s.n * s.ho * s.wo * s.c;
    if (n <= 0) return 0;
    maxpool_cl_kernel<<<grid_for(n), 256, 0, state().stream>>>(out, codes, in, s);
    LTC_LAUNCHED(ctx->err, "maxpool_cl_kernel");
    return 0;
}

static int maxpool_cl_backward(lt_kernel_ctx *ctx, void *dinp, const void *dout, const uint8_t *codes,
                               lt_maxpool_channels_last_shape s) {
    int64_t n = s.n * s.h * s.w * s.c;
    if (n <= 0) return 0;
    maxpool_cl_grad_kernel<<<grid_for(n), 256, 0, state().stream>>>(dinp, dout, codes, s);
    LTC_LAUNCHED(ctx->err, "maxpool_cl_grad_kernel");
    return 0;
}

/* any precision, as the CPU's entry; float32, bf16 or fp16 tensors, and windows whose places fit a byte's codes
 * below 255 (the front's condition) */
static bool maxpool_cl_supports(const lt_impl *self, const void *shape, lt_precision p) {
    const lt_maxpool_channels_last_shape *s = (const lt_maxpool_channels_last_shape *)shape;
    return mixed_dtype(s->x) && mixed_dtype(s->y) && mixed_dtype(s->dy) && mixed_dtype(s->dx) &&
           s->p.kernel_h * s->p.kernel_w < 255;
}

const lt_maxpool2d_channels_last_impl maxpool2d_channels_last_cuda = {
    {"cuda", maxpool_cl_supports, nullptr},
    maxpool_cl_forward,
    maxpool_cl_backward,
};

}  // namespace ltc
