/* The loss scaler's fronts (amp.h): checks, then the implementation of the tensors' device
 * (csrc/core/cpu/amp.c on the host, a backend's "amp_unscale" and "amp_update_scale" on a GPU). */
#include "amp.h"

#include <math.h>

#include "optim_ops.h"

static const lt_impl *const unscale_impls[] = {&lt_amp_unscale_cpu.base, NULL};
static const lt_impl *const update_impls[] = {&lt_amp_update_cpu.base, NULL};

/* t is a one-element float32 tensor (the scaler's values) */
static int check_value(const char *what, const lt_tensor *t, lt_error *err) {
    char shape[160];
    if (!t || !t->storage) return lt_fail(err, "%s is missing", what);
    if (lt_numel(t) != 1 || lt_dtype_of(t) != LT_FLOAT32)
        return lt_fail(err, "%s must be a one-element float32 tensor, got a %s tensor of size %s", what,
                       lt_dtype_name(lt_dtype_of(t)), lt_shape_str(t, shape, sizeof shape));
    return 0;
}

int lt_amp_unscale(lt_tensor *const *grads, int n, const lt_tensor *inv_scale, lt_tensor *found_inf, lt_error *err) {
    if (check_value("the inverse scale", inv_scale, err) || check_value("found_inf", found_inf, err)) return -1;
    for (int i = 0; i < n; i++) {
        lt_tensor *g = grads[i];
        if (!g || !lt_numel(g)) continue;
        if (lt_dtype_of(g) != LT_FLOAT32 || !lt_is_contiguous(g))
            return lt_fail(err, "gradient %d must be a contiguous float32 tensor, got %s%s", i + 1,
                           lt_dtype_name(lt_dtype_of(g)), lt_is_contiguous(g) ? "" : " (not contiguous)");
        lt_amp_unscale_shape s = {lt_numel(g)};
        lt_named operands[] = {{"gradient", g}, {"the inverse scale", inv_scale}, {"found_inf", found_inf}};
        lt_kernel_ctx ctx;
        const lt_amp_unscale_impl *impl =
            (const lt_amp_unscale_impl *)lt_kernel_pick(NULL, "amp_unscale", unscale_impls, &s, operands, 3, &ctx, err);
        if (!impl || impl->unscale(&ctx, lt_ptr(g), lt_data(inv_scale), lt_ptr(found_inf), s)) return -1;
        lt_bump_version(g);
    }
    lt_bump_version(found_inf);
    return 0;
}

int lt_amp_update_scale(lt_tensor *scale, lt_tensor *growth_tracker, const lt_tensor *found_inf, lt_amp_growth g,
                        lt_error *err) {
    if (check_value("the scale", scale, err) || check_value("the growth tracker", growth_tracker, err) ||
        check_value("found_inf", found_inf, err))
        return -1;
    if (!(g.growth_factor > 1.0) || !isfinite(g.growth_factor))
        return lt_fail(err, "growth_factor must be a finite number above 1, got %g", g.growth_factor);
    if (!(g.backoff_factor > 0.0 && g.backoff_factor < 1.0))
        return lt_fail(err, "backoff_factor must be between 0 and 1, got %g", g.backoff_factor);
    if (g.growth_interval < 1 || g.growth_interval > LT_AMP_MAX_GROWTH_INTERVAL)
        return lt_fail(err, "growth_interval must be between 1 and %d, got %lld", LT_AMP_MAX_GROWTH_INTERVAL,
                       (long long)g.growth_interval);
    lt_amp_update_shape s = {(float)g.growth_factor, (float)g.backoff_factor, g.growth_interval};
    lt_named operands[] = {{"the scale", scale}, {"the growth tracker", growth_tracker}, {"found_inf", found_inf}};
    lt_kernel_ctx ctx;
    const lt_amp_update_impl *impl =
        (const lt_amp_update_impl *)lt_kernel_pick(NULL, "amp_update_scale", update_impls, &s, operands, 3, &ctx, err);
    if (!impl || impl->update(&ctx, lt_ptr(scale), lt_ptr(growth_tracker), lt_data(found_inf), s)) return -1;
    lt_bump_version(scale);
    lt_bump_version(growth_tracker);
    return 0;
}
