/* im2col and col2im of the CPU convolution. Loops are written out (no memcpy per image row): rows are
 * short for small images, and the compiler vectorises the copies. */
#include "im2col.h"

#include <string.h>

#include "../base/simd.h"

/* The output columns ox whose input column ox*sw - pw + j lies inside the image: [lo, hi). */
static void valid_columns(const lt_conv2d_shape *s, int64_t j, int64_t *lo, int64_t *hi) {
    const lt_conv2d_params *p = &s->p;
    int64_t a = p->pad_w - j, b = s->w + p->pad_w - j;  /* lo * sw >= a, hi = first ox with ox * sw >= b */
    int64_t l = a <= 0 ? 0 : (a + p->stride_w - 1) / p->stride_w;
    int64_t h = b <= 0 ? 0 : (b + p->stride_w - 1) / p->stride_w;
    if (h > s->wo) h = s->wo;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* With stride 1 and the output as wide as the input (a "same" convolution), row (c, i, j) of cols is the
 * input plane shifted by (i - ph, j - pw): element e of an image's output plane comes from element
 * e + offset of its input plane. Such a row is one contiguous run [*start, *end) per image, whose
 * wrapped-around border columns (ox < lo or ox >= hi) are then zeroed (im2col) or were zeroed first
 * (col2im). The rows of 4 to 32 floats of a small image make the row-by-row loops slow. */
typedef struct shifted_plane {
    int64_t offset, start, end;  /* start == end == 0: the row only sees padding */
    int64_t oy_lo, oy_hi, lo, hi;
} shifted_plane;

static bool shifted_plane_of(shifted_plane *sp, const lt_conv2d_shape *s, int64_t i, int64_t j) {
    const lt_conv2d_params *p = &s->p;
    if (p->stride_h != 1 || p->stride_w != 1 || s->wo != s->w) return false;
    valid_columns(s, j, &sp->lo, &sp->hi);
    sp->oy_lo = p->pad_h - i > 0 ? p->pad_h - i : 0;
    sp->oy_hi = s->h + p->pad_h - i < s->ho ? s->h + p->pad_h - i : s->ho;
    sp->offset = (i - p->pad_h) * s->w + (j - p->pad_w);
    bool empty = sp->oy_lo >= sp->oy_hi || sp->lo >= sp->hi;
    sp->start = empty ? 0 : sp->oy_lo * s->wo + sp->lo;
    sp->end = empty ? 0 : (sp->oy_hi - 1) * s->wo + sp->hi;
    return true;
}

/* Zeroes, in an output plane, the elements of the valid rows that lie in the border columns. */
static void zero_border_columns(float *plane, const shifted_plane *sp, int64_t wo) {
    for (int64_t oy = sp->oy_lo; oy < sp->oy_hi; oy++) {
        float *row = plane + oy * wo;
        for (int64_t ox = 0; ox < sp->lo; ox++) row[ox] = 0;
        for (int64_t ox = sp->hi; ox < wo; ox++) row[ox] = 0;
    }
}

/* Row (c, i, j) of cols for nb images. */
LT_SIMD_CLONES
static void im2col_row(float *dst, const float *in, const lt_conv2d_shape *s, int64_t c, int64_t i, int64_t j,
                       int64_t b0, int64_t nb) {
    shifted_plane sp;
    if (shifted_plane_of(&sp, s, i, j)) {
        int64_t plane_out = s->ho * s->wo;
        for (int64_t b = 0; b < nb; b++, dst += plane_out) {
            const float *plane = in + (b0 + b) * s->x.sn + c * s->x.sc;
            for (int64_t e = 0; e < sp.start; e++) dst[e] = 0;
            for (int64_t e = sp.start; e < sp.end; e++) dst[e] = plane[e + sp.offset];
            for (int64_t e = sp.end; e < plane_out; e++) dst[e] = 0;
            zero_border_columns(dst, &sp, s->wo);
        }
        return;
    }
    int64_t lo, hi;
    valid_columns(s, j, &lo, &hi);
    int64_t shift = j - s->p.pad_w, sw = s->p.stride_w;
    for (int64_t b = 0; b < nb; b++) {
        const float *plane = in + (b0 + b) * s->x.sn + c * s->x.sc;
        for (int64_t oy = 0; oy < s->ho; oy++, dst += s->wo) {
            int64_t iy = oy * s->p.stride_h - s->p.pad_h + i;
            if (iy < 0 || iy >= s->h) {
                for (int64_t ox = 0; ox < s->wo; ox++) dst[ox] = 0;
                continue;
            }
            const float *src = plane + iy * s->w + shift;
            for (int64_t ox = 0; ox < lo; ox++) dst[ox] = 0;
            if (sw == 1)
                for (int64_t ox = lo; ox < hi; ox++) dst[ox] = src[ox];
            else
                for (int64_t ox = lo; ox < hi; ox++) dst[ox] = src[ox * sw];
            for (int64_t ox = hi; ox < s->wo; ox++) dst[ox] = 0;
        }
    }
}

void lt_im2col_cpu(float *cols, const float *in, const lt_conv2d_shape *s, int64_t b0, int64_t nb) {
    int64_t ld = nb * s->ho * s->wo, kk = s->p.kernel_h * s->p.kernel_w;
    for (int64_t r = 0; r < s->k; r++)
        im2col_row(cols + r * ld, in, s, r / kk, (r % kk) / s->p.kernel_w, r % s->p.kernel_w, b0, nb);
}

/* Adds row (c, i, j) of dcols back into the input-gradient planes of channel c (im2col's adjoint). */
LT_SIMD_CLONES
static void col2im_row(float *dx, float *src, const lt_conv2d_shape *s, int64_t i, int64_t j, int64_t b0,
                       int64_t nb) {
    shifted_plane sp;
    if (shifted_plane_of(&sp, s, i, j)) {
        int64_t plane_out = s->ho * s->wo;
        for (int64_t b = 0; b < nb; b++, src += plane_out) {
            float *plane = dx + (b0 + b) * s->dx.sn;
            zero_border_columns(src, &sp, s->wo);  /* what they hold belongs to the padding */
            for (int64_t e = sp.start; e < sp.end; e++) plane[e + sp.offset] += src[e];
        }
        return;
    }
    int64_t lo, hi;
    valid_columns(s, j, &lo, &hi);
    int64_t shift = j - s->p.pad_w, sw = s->p.stride_w;
    for (int64_t b = 0; b < nb; b++) {
        float *plane = dx + (b0 + b) * s->dx.sn;
        for (int64_t oy = 0; oy < s->ho; oy++, src += s->wo) {
            int64_t iy = oy * s->p.stride_h - s->p.pad_h + i;
            if (iy < 0 || iy >= s->h) continue;
            float *d = plane + iy * s->w + shift;
            if (sw == 1)
                for (int64_t ox = lo; ox < hi; ox++) d[ox] += src[ox];
            else
                for (int64_t ox = lo; ox < hi; ox++) d[ox * sw] += src[ox];
        }
    }
}

void lt_col2im_cpu(float *dx, float *dcols, const lt_conv2d_shape *s, int64_t b0, int64_t nb) {
    int64_t ld = nb * s->ho * s->wo, kk = s->p.kernel_h * s->p.kernel_w;
    for (int64_t c = 0; c < s->cin; c++) {
        float *channel = dx + c * s->dx.sc;
        for (int64_t b = 0; b < nb; b++) memset(channel + (b0 + b) * s->dx.sn, 0, sizeof(float) * (size_t)(s->h * s->w));
        for (int64_t r = c * kk; r < (c + 1) * kk; r++)
            col2im_row(channel, dcols + r * ld, s, (r % kk) / s->p.kernel_w, r % s->p.kernel_w, b0, nb);
    }
}
