/* The loader's device mode: a data set held on a device as its source's bytes, and batches made there
 * from an image plan (image_plan.h), so that no image crosses from the host during an epoch, only each
 * batch's draws and targets (a few dozen bytes a sample). The batches hold the values the host loader
 * makes for the same epoch, order and seed. */
#ifndef LT_DATA_DEVICE_BATCHES_H
#define LT_DATA_DEVICE_BATCHES_H

#include "../tensor/tensor.h"
#include "dataset.h"
#include "image_plan.h"

typedef struct lt_device_batches {
    lt_device device;
    const lt_allocator *allocator;
    uint8_t *pixels;          /* the data set's samples on the device, in its order */
    lt_image_plan plan;
    lt_sample_draw *draws;    /* a batch's, on the host */
    float *targets;
    int64_t capacity;         /* samples draws and targets hold */
} lt_device_batches;

/* Puts ds's samples on device d (their bytes, in the view's order) and plans p for them. The source must be in memory (not an image folder)
 * and p made of flips, crops, pads and at most one Normalize. */
int lt_device_batches_init(lt_device_batches *db, const lt_dataset *ds, const lt_pipeline *p, lt_device d,
                           lt_error *err);
void lt_device_batches_free(lt_device_batches *db);
/* The batch of samples indices[0..n) of ds (0-based), drawn as the host loader draws epoch `epoch` with
 * aug_seed, into new tensors on the device: input (n, C, H, W) and target (n) of classes 1..K. */
int lt_device_batches_make(lt_device_batches *db, const lt_dataset *ds, const lt_pipeline *p, const int64_t *indices,
                           int64_t n, uint64_t aug_seed, int64_t epoch, lt_tensor *input, lt_tensor *target,
                           lt_error *err);

/* F.hflip's and F.shift's path on a GPU: out = in's `planes` float images of (h, w) (dense) mirrored
 * (hflip) or shifted by (dy, dx), out[y][x] = in[y - dy][x - dx], the pixels from outside as `mode`
 * pads them (0 for LT_PAD_CONSTANT). out and in on the same device, of the same (dense) size. */
int lt_device_images_remap(lt_tensor *out, const lt_tensor *in, int64_t planes, int h, int w, bool hflip, int dy,
                           int dx, lt_pad_mode mode, lt_error *err);

#endif
