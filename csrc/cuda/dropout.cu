/* Dropout: mask[i] = keep (1 / (1 - p)) or 0, out = in * mask, as the CPU's (csrc/core/cpu/dropout.c),
 * with the CPU's rule (an element is kept when its uniform number u in [0, 1) is >= p). The numbers are
 * counter-based: u of element i is a hash of (seed, counter + i), where the counter moves on by n each
 * call and manual_seed resets it. So the mask depends on the seed, the calls before and the element's
 * index, never on the launch shape. (The CPU draws from its own generator: the two masks differ.)
 * In a CUDA graph the seed and counter come from device words that each launch writes (graph.cu), the
 * counter plus the call's place in the capture, so every launch draws the numbers its recorded calls
 * would have drawn, run in its place. */
#include "parts.cuh"

namespace ltc {

/* splitmix64's finaliser over (seed, counter): a counter-based generator passing BigCrush. */
__device__ __forceinline__ uint64_t mix(uint64_t seed, uint64_t counter) {
    uint64_t z = seed + (counter + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* 24 random bits as a float in [0, 1) */
__device__ __forceinline__ float uniform(uint64_t seed, uint64_t counter) {
    return (float)(mix(seed, counter) >> 40) * (1.0f / 16777216.0f);
}

/* counter: the first element's; in a graph's launch rng = {counter of the launch, seed} */
__global__ void dropout_kernel(float *out, float *mask, const float *in, int64_t n, double p, float keep, uint64_t seed,
                               const uint64_t *rng, uint64_t counter) {
    if (rng) {
        counter += rng[0];
        seed = rng[1];
    }
    LTC_FOR(i, n) {
        float m = (double)uniform(seed, counter + (uint64_t)i) >= p ? keep : 0.0f;
        mask[i] = m;
        out[i] = in[i] * m;
    }
}

__global__ void times_mask_kernel(float *dinp, const float *dout, const float *mask, int64_t n) {
    LTC_FOR(i, n) dinp[i] = dout[i] * mask[i];
}

static int dropout_forward(lt_kernel_ctx *ctx, float *out, float *mask, const float *in, lt_dropout_shape s) {
    if (s.n <= 0) return 0;
    float keep = s.p < 1 ? (float)(1.0 / (1.0 - s.p)) : 0.0f;
    backend_state &st = state();
    uint64_t &drawn = st.capturing ? st.captured_draws : st.offset;
    uint64_t counter = drawn;
    drawn += (uint64_t)s.n;
    dropout_kernel<<<grid_for(s.n), 256, 0, st.stream>>>(out, mask, in, s.n, s.p, keep, st.seed,
                                                         st.capturing ? st.graph_rng : nullptr, counter);
    LTC_LAUNCHED(ctx->err, "dropout_kernel");
    return 0;
}

static int dropout_backward(lt_kernel_ctx *ctx, float *dinp, const float *dout, const float *mask, lt_dropout_shape s) {
    if (s.n <= 0) return 0;
    times_mask_kernel<<<grid_for(s.n), 256, 0, state().stream>>>(dinp, dout, mask, s.n);
    LTC_LAUNCHED(ctx->err, "times_mask_kernel");
    return 0;
}

const lt_dropout_impl dropout_cuda = {{"cuda", supports_fp32, nullptr}, dropout_forward, dropout_backward};

}  // namespace ltc
