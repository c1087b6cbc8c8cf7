/* Per-pixel colour operations: normalisation, grayscale, ColorJitter's four adjustments, erasing. */
#include <math.h>

#include "image_ops.h"

static inline float clamp01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }

void lt_img_normalize(float *img, int c, int h, int w, const float *mean, const float *std, int n) {
    size_t plane = (size_t)h * w;
    for (int ch = 0; ch < c; ch++) {          /* each channel */
        float m = mean[n == 1 ? 0 : ch], inv = 1.0f / std[n == 1 ? 0 : ch];
        float *p = img + ch * plane;
        for (size_t i = 0; i < plane; i++) p[i] = (p[i] - m) * inv;
    }
}

void lt_img_grayscale(float *out, int out_c, const float *in, int c, int h, int w) {
    size_t plane = (size_t)h * w;
    for (size_t i = 0; i < plane; i++)        /* each pixel */
        out[i] = c >= 3 ? 0.2989f * in[i] + 0.587f * in[plane + i] + 0.114f * in[2 * plane + i] : in[i];
    for (int ch = 1; ch < out_c; ch++)
        for (size_t i = 0; i < plane; i++) out[ch * plane + i] = out[i];
}

/* torchvision's _blend: ratio * img + (1 - ratio) * other, clamped to [0, 1]. */
static inline float blend(float x, float other, float ratio) { return clamp01(ratio * x + (1.0f - ratio) * other); }

void lt_img_adjust_brightness(float *img, int c, int h, int w, float factor) {
    size_t n = (size_t)c * h * w;
    for (size_t i = 0; i < n; i++) img[i] = blend(img[i], 0.0f, factor);
}

void lt_img_adjust_contrast(float *img, int c, int h, int w, float factor) {
    size_t plane = (size_t)h * w;
    double sum = 0;  /* the mean of the grayscale image */
    for (size_t i = 0; i < plane; i++)
        sum += c >= 3 ? 0.2989f * img[i] + 0.587f * img[plane + i] + 0.114f * img[2 * plane + i] : img[i];
    float mean = (float)(sum / (double)plane);
    size_t n = (size_t)c * plane;
    for (size_t i = 0; i < n; i++) img[i] = blend(img[i], mean, factor);
}

void lt_img_adjust_saturation(float *img, int c, int h, int w, float factor) {
    if (c < 3) return;  /* as torchvision (and PIL): gray images are left alone */
    size_t plane = (size_t)h * w;
    for (size_t i = 0; i < plane; i++) {      /* each pixel */
        float gray = 0.2989f * img[i] + 0.587f * img[plane + i] + 0.114f * img[2 * plane + i];
        for (int ch = 0; ch < 3; ch++) img[ch * plane + i] = blend(img[ch * plane + i], gray, factor);
    }
}

/* torchvision's _rgb2hsv, hue shift, _hsv2rgb, one pixel at a time. */
void lt_img_adjust_hue(float *img, int c, int h, int w, float hue_factor) {
    if (c < 3) return;
    size_t plane = (size_t)h * w;
    float *R = img, *G = img + plane, *B = img + 2 * plane;
    for (size_t i = 0; i < plane; i++) {      /* each pixel */
        float r = R[i], g = G[i], b = B[i];
        float maxc = fmaxf(r, fmaxf(g, b)), minc = fminf(r, fminf(g, b));
        int eqc = maxc == minc;
        float cr = maxc - minc;
        float s = cr / (eqc ? 1.0f : maxc);
        float divisor = eqc ? 1.0f : cr;
        float rc = (maxc - r) / divisor, gc = (maxc - g) / divisor, bc = (maxc - b) / divisor;
        float hue;
        if (maxc == r) hue = bc - gc;
        else if (maxc == g) hue = 2.0f + rc - bc;
        else hue = 4.0f + gc - rc;
        hue = fmodf(hue / 6.0f + 1.0f, 1.0f);
        /* (h + factor) % 1.0 with Python's sign rule */
        hue = hue + hue_factor;
        hue = hue - floorf(hue);
        float v = maxc;
        float i6 = floorf(hue * 6.0f), f = hue * 6.0f - i6;
        int sector = ((int)i6 % 6 + 6) % 6;
        float p = clamp01(v * (1.0f - s)), q = clamp01(v * (1.0f - s * f)), t = clamp01(v * (1.0f - s * (1.0f - f)));
        switch (sector) {
        case 0: r = v, g = t, b = p; break;
        case 1: r = q, g = v, b = p; break;
        case 2: r = p, g = v, b = t; break;
        case 3: r = p, g = q, b = v; break;
        case 4: r = t, g = p, b = v; break;
        default: r = v, g = p, b = q; break;
        }
        R[i] = r, G[i] = g, B[i] = b;
    }
}

void lt_img_erase(float *img, int c, int h, int w, int top, int left, int eh, int ew, const float *value, int n,
                  lt_rng *rng) {
    int y0 = top < 0 ? 0 : top, x0 = left < 0 ? 0 : left;
    for (int ch = 0; ch < c; ch++)            /* each channel */
        for (int y = y0; y < top + eh && y < h; y++)
            for (int x = x0; x < left + ew && x < w; x++)
                img[((size_t)ch * h + y) * w + x] = value ? value[n == 1 ? 0 : ch] : (float)lt_rng_normal(rng);
}
