/* Images inside the data pipeline. Files decode to 8-bit interleaved pixels (lt_u8image, HWC); the
 * transforms work on float images (lt_image, CHW, values nominally in [0, 1]), the layout of a tensor
 * (C, H, W). */
#ifndef LT_DATA_IMAGE_H
#define LT_DATA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"

#define LT_IMAGE_MAX_CHANNELS 4
/* Largest image we agree to decode or build: keeps byte counts small. The fuzz build lowers it so that a
 * header claiming a huge image costs no time. */
#ifndef LT_IMAGE_MAX_PIXELS
#define LT_IMAGE_MAX_PIXELS ((int64_t)1 << 26)
#endif

typedef struct lt_u8image {
    uint8_t *data;  /* height x width x channels, malloc'd */
    int height, width, channels;
} lt_u8image;

void lt_u8image_free(lt_u8image *img);

typedef struct lt_image {
    float *data;      /* channels x height x width; grows as needed and is reused */
    size_t capacity;  /* in floats */
    int channels, height, width;
} lt_image;

/* Sets the shape and makes room for it (contents undefined). */
int lt_image_reserve(lt_image *img, int channels, int height, int width, lt_error *err);
void lt_image_free(lt_image *img);
static inline size_t lt_image_numel(const lt_image *img) {
    return (size_t)img->channels * (size_t)img->height * (size_t)img->width;
}

/* u8 HWC with in_channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) to float CHW with out_channels, /255.
 * Conversions follow PIL's convert(): gray is replicated into RGB, colour becomes gray as
 * 0.299 R + 0.587 G + 0.114 B, a missing alpha is 1, an unwanted alpha is dropped. */
void lt_u8_hwc_to_float_chw(float *out, int out_channels, const uint8_t *in, int in_channels, int height, int width);
/* u8 planar (already CHW) to float, /255. */
void lt_u8_to_float(float *out, const uint8_t *in, size_t n);

#endif
