#include "image.h"

#include <stdlib.h>

void lt_u8image_free(lt_u8image *img) {
    free(img->data);
    img->data = NULL;
}

int lt_image_reserve(lt_image *img, int channels, int height, int width, lt_error *err) {
    if (channels < 1 || height < 1 || width < 1 || (int64_t)height * width > LT_IMAGE_MAX_PIXELS || channels > 64)
        return lt_fail(err, "image size %dx%dx%d is out of range", channels, height, width);
    size_t n = (size_t)channels * (size_t)height * (size_t)width;
    if (n > img->capacity) {
        float *p = realloc(img->data, n * sizeof(float));
        if (!p) return lt_fail(err, "out of memory for a %dx%dx%d image", channels, height, width);
        img->data = p;
        img->capacity = n;
    }
    img->channels = channels;
    img->height = height;
    img->width = width;
    return 0;
}

void lt_image_free(lt_image *img) {
    free(img->data);
    img->data = NULL;
    img->capacity = 0;
}

void lt_u8_to_float(float *out, const uint8_t *in, size_t n) {
    const float scale = 1.0f / 255.0f;
    for (size_t i = 0; i < n; i++) out[i] = (float)in[i] * scale;
}

static inline float gray_of(const uint8_t *px) { return 0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2]; }

void lt_u8_hwc_to_float_chw(float *out, int out_channels, const uint8_t *in, int in_channels, int height, int width) {
    const float scale = 1.0f / 255.0f;
    size_t plane = (size_t)height * (size_t)width;
    int in_color = in_channels >= 3, in_alpha = in_channels == 2 || in_channels == 4;
    int out_color = out_channels >= 3, out_alpha = out_channels == 2 || out_channels == 4;
    for (size_t p = 0; p < plane; p++) {  /* each pixel, row-major */
        const uint8_t *px = in + p * (size_t)in_channels;
        float r, g, b;
        if (in_color && !out_color) {
            r = g = b = gray_of(px) * scale;
        } else if (in_color) {
            r = px[0] * scale, g = px[1] * scale, b = px[2] * scale;
        } else {
            r = g = b = px[0] * scale;
        }
        out[p] = r;
        if (out_color) {
            out[plane + p] = g;
            out[2 * plane + p] = b;
        }
        if (out_alpha) out[(size_t)(out_channels - 1) * plane + p] = in_alpha ? px[in_channels - 1] * scale : 1.0f;
    }
}
