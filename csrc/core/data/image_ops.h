/* Image kernels on float images laid out (C, H, W), contiguous, with torchvision's semantics for tensor
 * images (see tools/make_transform_fixtures.py, which checks them against torchvision 0.14). Outputs
 * first; `in` and `out` never alias unless a function says it works in place. */
#ifndef LT_DATA_IMAGE_OPS_H
#define LT_DATA_IMAGE_OPS_H

#include <stdbool.h>

#include "../base/error.h"
#include "../base/rng.h"

typedef enum { LT_PAD_CONSTANT, LT_PAD_EDGE, LT_PAD_REFLECT, LT_PAD_SYMMETRIC } lt_pad_mode;

/* ---- geometry ---- */
/* out (C, oh, ow) = the window of in (C, h, w) whose top-left corner sits at (top, left) in the input's
 * coordinates, which may lie outside it: such positions are filled per mode (constant: fill[c]; edge:
 * the nearest pixel; reflect: mirrored without repeating the edge; symmetric: mirrored with it). This
 * is pad followed by crop in one pass. */
void lt_img_crop(float *out, int oh, int ow, const float *in, int c, int h, int w, int top, int left,
                 lt_pad_mode mode, const float *fill);
void lt_img_hflip(float *img, int c, int h, int w);  /* in place */
void lt_img_vflip(float *img, int c, int h, int w);  /* in place */
/* Rotation by angle degrees counter-clockwise about the image centre, same size, bilinear. fill NULL:
 * outside is 0 (F.rotate without fill); otherwise torchvision's fill rule, out = v * m + (1 - m) * fill
 * where m is the interpolated coverage. */
void lt_img_rotate(float *out, const float *in, int c, int h, int w, double angle, const float *fill);
/* Bilinear resize, align_corners = false. antialias: when shrinking, a triangle filter as wide as the
 * scale (PIL's and torch's antialias = True); otherwise plain 2-tap bilinear. tmp holds c*h*ow floats. */
int lt_img_resize(float *out, int oh, int ow, const float *in, int c, int h, int w, bool antialias, float *tmp,
                  lt_error *err);

/* ---- colour (in place) ---- */
/* x = (x - mean[c]) / std[c]; mean and std have `n` entries, 1 (shared) or c. */
void lt_img_normalize(float *img, int c, int h, int w, const float *mean, const float *std, int n);
/* out (out_c, h, w) = 0.2989 R + 0.587 G + 0.114 B (a 1-channel input is copied), repeated out_c times. */
void lt_img_grayscale(float *out, int out_c, const float *in, int c, int h, int w);
/* ColorJitter's adjustments, for 1 or 3 channels (saturation and hue leave gray images alone). */
void lt_img_adjust_brightness(float *img, int c, int h, int w, float factor);
void lt_img_adjust_contrast(float *img, int c, int h, int w, float factor);
void lt_img_adjust_saturation(float *img, int c, int h, int w, float factor);
void lt_img_adjust_hue(float *img, int c, int h, int w, float hue_factor);
/* Sets the rectangle (top, left, eh, ew) to value[c] (n entries: 1 or c), or to standard normal noise
 * from rng when value is NULL. */
void lt_img_erase(float *img, int c, int h, int w, int top, int left, int eh, int ew, const float *value, int n,
                  lt_rng *rng);

#endif
