/* The CPU's loss-scaler kernels (optim_ops.h): the check-and-unscale of gradients and the scale's
 * update, as torch.amp.GradScaler's CPU kernels compute them. The unscale is one pass over each
 * gradient, threaded by lt_threads_for; the flag it raises does not depend on how the pass is cut. */
#include <math.h>
#include <stdbool.h>

#include "../optim/optim_ops.h"
#include "../base/parallel.h"

static int unscale_cpu(lt_kernel_ctx *ctx, float *grad, const float *inv_scale, float *found_inf,
                       lt_amp_unscale_shape s) {
    const float inv = *inv_scale;
    int bad = 0;
    int threads = lt_threads_for(s.n, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) reduction(|:bad) if (threads > 1)
    for (int64_t i = 0; i < s.n; i++) {
        float v = grad[i];
        bad |= !isfinite(v);
        grad[i] = v * inv;
    }
    if (bad) *found_inf = 1.0f;
    return 0;
}

static int update_cpu(lt_kernel_ctx *ctx, float *scale, float *growth_tracker, const float *found_inf,
                      lt_amp_update_shape s) {
    if (*found_inf != 0.0f) {
        *scale *= s.backoff_factor;
        *growth_tracker = 0.0f;
        return 0;
    }
    float successful = *growth_tracker + 1.0f;
    if (successful >= (float)s.growth_interval) {
        float grown = *scale * s.growth_factor;
        if (isfinite(grown)) *scale = grown;
        *growth_tracker = 0.0f;
    } else {
        *growth_tracker = successful;
    }
    return 0;
}

const lt_amp_unscale_impl lt_amp_unscale_cpu = {{.name = "cpu", .supports = lt_supports_fp32}, unscale_cpu};
const lt_amp_update_impl lt_amp_update_cpu = {{.name = "cpu", .supports = lt_supports_fp32}, update_cpu};
