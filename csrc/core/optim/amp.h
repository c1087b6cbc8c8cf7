/* The dynamic loss scaler of "16-mixed" (torch.amp.GradScaler): fp16's range stops at 65504 and its
 * smallest values are near 6e-8, so the loss is multiplied by a scale before the backward pass and the
 * gradients divided by it before the step; a step whose gradients overflowed is skipped and the scale
 * backs off, and after growth_interval clean steps it grows. These are the two operations on the
 * scaler's one-element float32 tensors, computed where the gradients are (nothing waits on a GPU);
 * lua/lightning/amp/grad_scaler.lua is the scaler itself. */
#ifndef LT_AMP_H
#define LT_AMP_H

#include "../tensor/tensor.h"

/* Every gradient multiplied by inv_scale (one element), and found_inf (one element) set to 1 when one of
 * their elements was inf or NaN (left as it was otherwise: zero it once per step). The gradients are
 * float32 and contiguous; NULL entries are skipped; all on one device. */
int lt_amp_unscale(lt_tensor *const *grads, int n, const lt_tensor *inv_scale, lt_tensor *found_inf, lt_error *err);

typedef struct lt_amp_growth {
    double growth_factor, backoff_factor;  /* > 1 and in (0, 1), as PyTorch asks */
    int64_t growth_interval;               /* clean steps before the scale grows, >= 1 */
} lt_amp_growth;

/* The scale after a step (PyTorch's _amp_update_scale_): backed off after an inf, grown after
 * growth_interval clean steps, counted in growth_tracker. Each a one-element float32 tensor. */
int lt_amp_update_scale(lt_tensor *scale, lt_tensor *growth_tracker, const lt_tensor *found_inf, lt_amp_growth g,
                        lt_error *err);

/* The largest growth_interval: the tracker is a float32 that counts exactly up to 2^24. */
#define LT_AMP_MAX_GROWTH_INTERVAL 16777216

#endif
