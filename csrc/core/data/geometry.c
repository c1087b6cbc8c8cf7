/* Crops with padding, flips and rotation. */
#include <math.h>
#include <string.h>

#include "image_ops.h"
#include "pad_index.h"

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void lt_img_crop(float *out, int oh, int ow, const float *in, int c, int h, int w, int top, int left,
                 lt_pad_mode mode, const float *fill) {
    /* output columns [x_lo, x_hi) read inside the input row and are copied in one go */
    int x_lo = clampi(-left, 0, ow), x_hi = clampi(w - left, x_lo, ow);
    for (int ch = 0; ch < c; ch++) {          /* each channel */
        float f = fill ? fill[ch] : 0.0f;
        for (int y = 0; y < oh; y++) {        /* each output row */
            float *orow = out + ((size_t)ch * oh + y) * ow;
            int sy = lt_pad_source_index(top + y, h, (int)mode);
            if (sy < 0) {
                for (int x = 0; x < ow; x++) orow[x] = f;
                continue;
            }
            const float *irow = in + ((size_t)ch * h + sy) * w;
            for (int x = 0; x < x_lo; x++) {
                int sx = lt_pad_source_index(left + x, w, (int)mode);
                orow[x] = sx < 0 ? f : irow[sx];
            }
            if (x_hi > x_lo) memcpy(orow + x_lo, irow + left + x_lo, sizeof(float) * (size_t)(x_hi - x_lo));
            for (int x = x_hi; x < ow; x++) {
                int sx = lt_pad_source_index(left + x, w, (int)mode);
                orow[x] = sx < 0 ? f : irow[sx];
            }
        }
    }
}

void lt_img_hflip(float *img, int c, int h, int w) {
    for (int r = 0; r < c * h; r++) {         /* each row of each channel */
        float *row = img + (size_t)r * w;
        for (int x = 0; x < w / 2; x++) {
            float t = row[x];
            row[x] = row[w - 1 - x];
            row[w - 1 - x] = t;
        }
    }
}

void lt_img_vflip(float *img, int c, int h, int w) {
    for (int ch = 0; ch < c; ch++) {
        float *plane = img + (size_t)ch * h * w;
        for (int y = 0; y < h / 2; y++) {     /* swap row y with its mirror, element by element */
            float *a = plane + (size_t)y * w, *b = plane + (size_t)(h - 1 - y) * w;
            for (int x = 0; x < w; x++) {
                float t = a[x];
                a[x] = b[x];
                b[x] = t;
            }
        }
    }
}

/* torchvision's tensor rotate: an affine grid over output pixel centres (relative to the image centre),
 * then grid_sample(bilinear, zeros padding, align_corners = false). Output pixel (x, y) samples the input at
 *   sx = cos(a) xo - sin(a) yo + (w - 1) / 2,  sy = sin(a) xo + cos(a) yo + (h - 1) / 2,
 * with xo = x - w/2 + 1/2, yo = y - h/2 + 1/2. */
void lt_img_rotate(float *out, const float *in, int c, int h, int w, double angle, const float *fill) {
    double rad = angle * 3.14159265358979323846 / 180.0;
    float cs = (float)cos(rad), sn = (float)sin(rad);
    size_t plane = (size_t)h * w;
    for (int y = 0; y < h; y++) {             /* each output row */
        float yo = (float)y - (float)h * 0.5f + 0.5f;
        for (int x = 0; x < w; x++) {         /* each output column */
            float xo = (float)x - (float)w * 0.5f + 0.5f;
            float sx = cs * xo - sn * yo + ((float)w - 1.0f) * 0.5f;
            float sy = sn * xo + cs * yo + ((float)h - 1.0f) * 0.5f;
            float fx = floorf(sx), fy = floorf(sy);
            int x0 = (int)fx, y0 = (int)fy;
            float ax = sx - fx, ay = sy - fy;
            /* the four neighbours and their weights; those outside the image count as 0 */
            int xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
            float ws[4] = {(1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay};
            float coverage = 0;
            for (int k = 0; k < 4; k++) {
                if (xs[k] < 0 || xs[k] >= w || ys[k] < 0 || ys[k] >= h) ws[k] = 0;
                coverage += ws[k];
            }
            size_t o = (size_t)y * w + x;
            for (int ch = 0; ch < c; ch++) {  /* each channel */
                const float *p = in + ch * plane;
                float v = 0;
                for (int k = 0; k < 4; k++)
                    if (ws[k] != 0) v += ws[k] * p[(size_t)ys[k] * w + xs[k]];
                out[ch * plane + o] = fill ? v * coverage + (1.0f - coverage) * fill[ch] : v;
            }
        }
    }
}
