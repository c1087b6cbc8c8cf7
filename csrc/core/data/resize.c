/* Bilinear resizing, separable: rows first (into tmp), then columns, as torch does for antialias. */
#include <math.h>
#include <stdlib.h>

#include "image_ops.h"

/* For each output index along one axis: the first input index it reads, how many, and their weights
 * (taps per output index, zero-padded). */
typedef struct axis_weights {
    int *start, *count;
    float *weights;
    int taps;
} axis_weights;

static void axis_free(axis_weights *a) {
    free(a->start);
    free(a->count);
    free(a->weights);
}

static float triangle(float x) {
    x = fabsf(x);
    return x < 1.0f ? 1.0f - x : 0.0f;
}

/* torch's _compute_weights_aa (PIL's resampling): the filter spans `support` input pixels either side
 * of the output pixel's centre, widened by the scale when shrinking. */
static void weights_antialias(axis_weights *a, int in_size, int out_size) {
    float scale = (float)in_size / (float)out_size;
    float support = scale >= 1.0f ? scale : 1.0f;
    float invscale = scale >= 1.0f ? 1.0f / scale : 1.0f;
    for (int i = 0; i < out_size; i++) {
        float center = scale * ((float)i + 0.5f);
        int lo = (int)(center - support + 0.5f);
        if (lo < 0) lo = 0;
        int hi = (int)(center + support + 0.5f);
        if (hi > in_size) hi = in_size;
        int n = hi - lo;
        if (n > a->taps) n = a->taps;
        float *wt = a->weights + (size_t)i * a->taps, total = 0;
        for (int j = 0; j < n; j++) {
            wt[j] = triangle(((float)(j + lo) - center + 0.5f) * invscale);
            total += wt[j];
        }
        for (int j = 0; j < n; j++) wt[j] = total != 0.0f ? wt[j] / total : 0.0f;
        a->start[i] = lo;
        a->count[i] = n;
    }
}

/* upsample_bilinear2d with align_corners = false: source = scale (i + 1/2) - 1/2, clamped at 0. */
static void weights_bilinear(axis_weights *a, int in_size, int out_size) {
    float scale = (float)in_size / (float)out_size;
    for (int i = 0; i < out_size; i++) {
        float src = scale * ((float)i + 0.5f) - 0.5f;
        if (src < 0) src = 0;
        int x0 = (int)src;
        if (x0 > in_size - 1) x0 = in_size - 1;
        float l1 = src - (float)x0;
        float *wt = a->weights + (size_t)i * a->taps;
        a->start[i] = x0;
        if (x0 < in_size - 1) {
            wt[0] = 1.0f - l1;
            wt[1] = l1;
            a->count[i] = 2;
        } else {
            wt[0] = 1.0f;
            a->count[i] = 1;
        }
    }
}

static int axis_init(axis_weights *a, int in_size, int out_size, bool antialias, lt_error *err) {
    float scale = (float)in_size / (float)out_size;
    a->taps = antialias && scale > 1.0f ? (int)ceilf(scale) * 2 + 1 : 2;
    a->start = malloc(sizeof(int) * (size_t)out_size);
    a->count = malloc(sizeof(int) * (size_t)out_size);
    a->weights = calloc((size_t)out_size * (size_t)a->taps, sizeof(float));
    if (!a->start || !a->count || !a->weights) {
        axis_free(a);
        return lt_fail(err, "out of memory for resize weights");
    }
    if (antialias) weights_antialias(a, in_size, out_size);
    else weights_bilinear(a, in_size, out_size);
    return 0;
}

int lt_img_resize(float *out, int oh, int ow, const float *in, int c, int h, int w, bool antialias, float *tmp,
                  lt_error *err) {
    axis_weights ax = {0}, ay = {0};
    if (axis_init(&ax, w, ow, antialias, err) || axis_init(&ay, h, oh, antialias, err)) {
        axis_free(&ax);
        return -1;
    }
    /* rows: tmp (c, h, ow) */
    for (int r = 0; r < c * h; r++) {                     /* each input row of each channel */
        const float *irow = in + (size_t)r * w;
        float *trow = tmp + (size_t)r * ow;
        for (int x = 0; x < ow; x++) {                     /* each output column */
            const float *wt = ax.weights + (size_t)x * ax.taps;
            const float *src = irow + ax.start[x];
            float acc = 0;
            for (int k = 0; k < ax.count[x]; k++) acc += wt[k] * src[k];
            trow[x] = acc;
        }
    }
    /* columns: out (c, oh, ow) */
    for (int ch = 0; ch < c; ch++) {
        const float *tplane = tmp + (size_t)ch * h * ow;
        for (int y = 0; y < oh; y++) {                     /* each output row */
            float *orow = out + ((size_t)ch * oh + y) * ow;
            const float *wt = ay.weights + (size_t)y * ay.taps;
            for (int x = 0; x < ow; x++) orow[x] = 0;
            for (int k = 0; k < ay.count[y]; k++) {        /* each contributing input row */
                const float *trow = tplane + (size_t)(ay.start[y] + k) * ow;
                for (int x = 0; x < ow; x++) orow[x] += wt[k] * trow[x];
            }
        }
    }
    axis_free(&ax);
    axis_free(&ay);
    return 0;
}
