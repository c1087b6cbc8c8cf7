/* A pipeline of flips, crops and pads with at most one Normalize, reduced to where each pixel of a
 * sample's result comes from: the form in which a device makes whole batches of augmented images from a
 * data set it holds as bytes (issue 21's data path; airbench's loader does the same in PyTorch). The
 * plan is the pipeline's fixed part (sizes, padding modes, fills, the normalisation); a sample's draw
 * is its random part (crop offsets, flips), drawn from the generators lt_pipeline_apply draws from, so
 * a batch made this way holds exactly the values the host's loader makes (same bits: the arithmetic
 * below is the host pipeline's, in the same order).
 *
 * The per-pixel function is a static inline that the CUDA module compiles too (it includes no core
 * function); image_plan.c builds plans and draws and runs batches on the host. */
#ifndef LT_DATA_IMAGE_PLAN_H
#define LT_DATA_IMAGE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "image_ops.h"
#include "pad_index.h"

#if defined(__CUDA_ARCH__)
#define LT_PLAN_MUL(a, b) __fmul_rn((a), (b))  /* never fused with the subtraction that follows */
#else
#define LT_PLAN_MUL(a, b) ((a) * (b))          /* image_plan.c is built with -ffp-contract=off */
#endif

#define LT_PLAN_MAX_STEPS 16

enum { LT_PLAN_WINDOW, LT_PLAN_HFLIP, LT_PLAN_VFLIP };

typedef struct lt_plan_step {
    int32_t kind;          /* LT_PLAN_WINDOW, _HFLIP or _VFLIP */
    int32_t in_h, in_w;    /* the image the step takes */
    int32_t mode;          /* a window's lt_pad_mode */
    float fill[LT_IMAGE_MAX_CHANNELS];
} lt_plan_step;

typedef struct lt_image_plan {
    int32_t c, src_h, src_w;  /* the source's samples (planar) */
    int32_t float_source;     /* 0: bytes, scaled by 1/255 as lt_u8_to_float; 1: float32 values as they are */
    int32_t h, w;             /* the result */
    int32_t nsteps;
    int32_t normalized_from;  /* the steps before the Normalize (their fills are normalised too); -1: none */
    float mean[LT_IMAGE_MAX_CHANNELS], inv_std[LT_IMAGE_MAX_CHANNELS];
    lt_plan_step step[LT_PLAN_MAX_STEPS];
} lt_image_plan;

/* One sample's part: where its bytes are (a sample index into the pixels given), and per step a window's offsets (a = top, b = left) or
 * whether a flip acts (a = 1). */
typedef struct lt_sample_draw {
    int64_t src;
    int32_t a[LT_PLAN_MAX_STEPS], b[LT_PLAN_MAX_STEPS];
} lt_sample_draw;

/* The value of channel ch at (y, x) of a sample's result; pixels: samples of (c, src_h, src_w) bytes or
 * floats (float_source). */
LT_PLAN_FN float lt_image_plan_value(const lt_image_plan *p, const lt_sample_draw *d, const void *pixels, int ch,
                                     int y, int x) {
    for (int s = p->nsteps - 1; s >= 0; s--) {  /* from the result back to the source */
        const lt_plan_step *st = &p->step[s];
        if (st->kind == LT_PLAN_HFLIP) {
            if (d->a[s]) x = st->in_w - 1 - x;
        } else if (st->kind == LT_PLAN_VFLIP) {
            if (d->a[s]) y = st->in_h - 1 - y;
        } else {
            int sy = lt_pad_source_index(y + d->a[s], st->in_h, st->mode);
            int sx = lt_pad_source_index(x + d->b[s], st->in_w, st->mode);
            if (sy < 0 || sx < 0)
                return s < p->normalized_from ? (st->fill[ch] - p->mean[ch]) * p->inv_std[ch] : st->fill[ch];
            y = sy, x = sx;
        }
    }
    size_t at = ((size_t)d->src * (size_t)p->c + (size_t)ch) * (size_t)p->src_h * (size_t)p->src_w +
                (size_t)y * (size_t)p->src_w + (size_t)x;
    float v = p->float_source ? ((const float *)pixels)[at] : LT_PLAN_MUL((float)((const uint8_t *)pixels)[at], 1.0f / 255.0f);
    return p->normalized_from >= 0 ? (v - p->mean[ch]) * p->inv_std[ch] : v;
}

#ifndef __CUDACC__
#include "../base/error.h"
#include "../base/rng.h"
#include "transform.h"

/* The plan of pipeline p for samples of (c, h, w), or an error naming the first step a plan cannot
 * hold ("step 2 (RandomRotation) is not a flip, crop, pad or Normalize"). */
int lt_image_plan_init(lt_image_plan *plan, const lt_pipeline *p, int c, int h, int w, lt_error *err);
/* Sample `index` of the epoch's draws (aug_seed and epoch as the loader's), src where its bytes are. */
void lt_image_plan_draw(const lt_image_plan *plan, const lt_pipeline *p, int64_t index, int64_t src, uint64_t aug_seed,
                        int64_t epoch, lt_sample_draw *d);
/* n samples' results into out (n, c, h, w) on the host. */
void lt_image_plan_run(float *out, const lt_image_plan *plan, const lt_sample_draw *draws, int64_t n,
                       const void *pixels);
/* The plan that mirrors (hflip) or shifts by (dy, dx) with padding `mode` float images of (h, w), one
 * channel a sample (a batch's planes are its samples): out[y][x] = in[y - dy][x - dx]. Its draw for
 * every plane is *d with d->src the plane's index. */
void lt_image_plan_remap(lt_image_plan *plan, lt_sample_draw *d, int h, int w, bool hflip, int dy, int dx,
                         lt_pad_mode mode);
#endif

#endif
