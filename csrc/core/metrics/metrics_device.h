/* The confusion matrix's counts on a device (metrics.h's lt_confusion keeps one of these): each batch
 * of logits is counted where it is, by the backend's confusion_update (no copy, no wait), into
 * classes^2 + 1 uint64 whose last one counts invalid targets; the counts come to the host when they
 * are read. */
#ifndef LT_METRICS_DEVICE_H
#define LT_METRICS_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "../tensor/tensor.h"

typedef struct lt_device_counts {
    uint64_t *counts;  /* on `device`, from the first batch counted there on; NULL before */
    lt_device device;
} lt_device_counts;

/* Counts a batch (logits (B, classes) and targets (B), checked by the caller, on one device). */
int lt_device_counts_add(lt_device_counts *pending, int classes, const lt_tensor *logits, const lt_tensor *target,
                         bool one_based, lt_error *err);
/* Adds the pending counts into counts (classes x classes, on the host), a copy that waits for the
 * device, and zeroes them there. Fails, after adding the valid samples, when targets were not class
 * indices. */
int lt_device_counts_take(lt_device_counts *pending, int classes, int64_t *counts, lt_error *err);
/* dst (nothing pending) gets a copy of what src has pending, made on the device: no wait. */
int lt_device_counts_copy(lt_device_counts *dst, const lt_device_counts *src, int classes, lt_error *err);
/* Zeroes the pending counts where they are (the buffer stays: a CUDA graph counting batches writes it);
 * when that fails the buffer is dropped. */
int lt_device_counts_zero(lt_device_counts *pending, int classes, lt_error *err);
/* Frees the buffer (the backend's free cannot fail). */
void lt_device_counts_drop(lt_device_counts *pending);

#endif
