/* The dynamic loss scaler of "16-mixed" on the GPU (optim_ops.h's amp_unscale and amp_update_scale, the
 * CPU's csrc/core/cpu/amp.c): the equivalents of torch.amp.GradScaler's
 * _amp_foreach_non_finite_check_and_unscale_ (a gradient multiplied by the inverse scale, the flag raised
 * when one of its elements was inf or NaN), one tensor per call, and of _amp_update_scale_ (the scale
 * backed off after a step with the flag raised, grown after growth_interval steps without). The scale,
 * the flag and the tracker are device words the kernels read when they run: nothing is copied to the
 * host and nothing allocated, so a step captured in a CUDA graph holds both. */
#include <math.h>

#include "parts.cuh"

namespace ltc {

/* Each thread that meets an element that is not finite writes the flag: they all write 1.0f, so the race
 * is harmless, and an untouched flag keeps the value the caller gave it. */
__global__ void amp_unscale_kernel(float *grad, const float *inv_scale, float *found_inf, int64_t n) {
    const float inv = *inv_scale;
    bool bad = false;
    LTC_FOR(i, n) {
        float v = grad[i];
        bad |= !isfinite(v);
        grad[i] = v * inv;
    }
    if (bad) *found_inf = 1.0f;
}

static int amp_unscale(lt_kernel_ctx *ctx, float *grad, const float *inv_scale, float *found_inf,
                       lt_amp_unscale_shape s) {
    if (s.n <= 0) return 0;
    amp_unscale_kernel<<<grid_for(s.n), 256, 0, state().stream>>>(grad, inv_scale, found_inf, s.n);
    LTC_LAUNCHED(ctx->err, "amp_unscale_kernel");
    return 0;
}

/* One thread: the CPU's update, step for step (the tracker counts in float, compared with the interval
 * as a float). */
__global__ void amp_update_kernel(float *scale, float *tracker, const float *found_inf, lt_amp_update_shape s) {
    if (*found_inf != 0.0f) {
        *scale *= s.backoff_factor;
        *tracker = 0.0f;
        return;
    }
    float successful = *tracker + 1.0f;
    if (successful >= (float)s.growth_interval) {
        float grown = *scale * s.growth_factor;
        if (isfinite(grown)) *scale = grown;
        *tracker = 0.0f;
    } else {
        *tracker = successful;
    }
}

static int amp_update(lt_kernel_ctx *ctx, float *scale, float *growth_tracker, const float *found_inf,
                      lt_amp_update_shape s) {
    amp_update_kernel<<<1, 1, 0, state().stream>>>(scale, growth_tracker, found_inf, s);
    LTC_LAUNCHED(ctx->err, "amp_update_kernel");
    return 0;
}

const lt_amp_unscale_impl amp_unscale_cuda = {{"cuda", supports_fp32, nullptr}, amp_unscale};
const lt_amp_update_impl amp_update_cuda = {{"cuda", supports_fp32, nullptr}, amp_update};

}  // namespace ltc
