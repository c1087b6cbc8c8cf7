#include "pool_nhwc.h"

#include <string.h>

#include "../parallel.h"
#include "../simd.h"


/* Folds one more window element (its place k) into the running maxima. */
LT_SIMD_CLONES
static void max_chunk(float *restrict m, uint8_t *restrict code, const float *restrict x, int k, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (m[i] == m[i] && (x[i] > m[i] || x[i] != x[i])) {
            m[i] = x[i];
            code[i] = (uint8_t)k;
        }
}

/* ReLU after the pooling: where the maximum is not positive nothing passed (code 255) */
LT_SIMD_CLONES
static void relu_chunk(float *restrict m, uint8_t *restrict code, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        if (!(m[i] > 0)) code[i] = 255;
        m[i] = m[i] < 0 ? 0.0f : m[i];
    }
}

LT_SIMD_CLONES
static void add_where_chunk(float *restrict g, const float *restrict dy, const uint8_t *restrict code, int k,
                            int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] += code[i] == k ? dy[i] : 0.0f;
}

void lt_maxpool_nhwc_forward(lt_rows out, uint8_t *codes, lt_rows input, lt_pool_shape s) {
    int64_t C = s.in.c, out_rows = s.in.n * s.out_h * s.out_w;
    int threads = lt_threads_for(out_rows * C * s.kernel_h * s.kernel_w, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t o = 0; o < out_rows; o++) {
        int64_t b = o / (s.out_h * s.out_w), oy = o / s.out_w % s.out_h, ox = o % s.out_w;
        float tin[LT_ROW_CHUNK], tout[LT_ROW_CHUNK];
        for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
            int64_t n = C - c0 < LT_ROW_CHUNK ? C - c0 : LT_ROW_CHUNK;
            float *m = lt_rows_target(out, o, c0, tout);
            uint8_t *code = codes + o * C + c0;
            bool first = true;
            for (int64_t ky = 0; ky < s.kernel_h; ky++) {
                int64_t y = oy * s.stride_h - s.pad_h + ky;
                if (y < 0 || y >= s.in.h) continue;
                for (int64_t kx = 0; kx < s.kernel_w; kx++) {
                    int64_t x = ox * s.stride_w - s.pad_w + kx;
                    if (x < 0 || x >= s.in.w) continue;
                    const float *v = lt_rows_load(input, (b * s.in.h + y) * s.in.w + x, c0, n, tin);
                    int k = (int)(ky * s.kernel_w + kx);
                    if (first) {
                        memcpy(m, v, (size_t)n * sizeof *m);
                        memset(code, k, (size_t)n);
                        first = false;
                    } else {
                        max_chunk(m, code, v, k, n);
                    }
                }
            }
            if (s.relu) relu_chunk(m, code, n);
            lt_rows_store(out, o, c0, m, n);
        }
    }
}

/* Each thread takes whole images: windows overlap only within an image, so the sums need no atomics
 * and are added in the same order at any thread count. */
void lt_maxpool_nhwc_backward(lt_rows grad_input, lt_rows grad_output, const uint8_t *codes, lt_pool_shape s) {
    int64_t C = s.in.c, plane = s.in.h * s.in.w;
    int threads = lt_threads_for(s.in.n * plane * C, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t b = 0; b < s.in.n; b++) {
        float tg[LT_ROW_CHUNK], tdy[LT_ROW_CHUNK];
        for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
            int64_t n = C - c0 < LT_ROW_CHUNK ? C - c0 : LT_ROW_CHUNK;
            /* input rows in order; each gathers from the windows that hold it */
            for (int64_t y = 0; y < s.in.h; y++)
                for (int64_t x = 0; x < s.in.w; x++) {
                    int64_t r = b * plane + y * s.in.w + x;
                    float *g = lt_rows_target(grad_input, r, c0, tg);
                    memset(g, 0, (size_t)n * sizeof *g);
                    /* output windows covering (y, x): oy with oy*sh - ph <= y < oy*sh - ph + kh */
                    int64_t oy_hi = (y + s.pad_h) / s.stride_h, ox_hi = (x + s.pad_w) / s.stride_w;
                    for (int64_t oy = oy_hi; oy >= 0 && oy * s.stride_h - s.pad_h + s.kernel_h > y; oy--) {
                        if (oy >= s.out_h) continue;
                        for (int64_t ox = ox_hi; ox >= 0 && ox * s.stride_w - s.pad_w + s.kernel_w > x; ox--) {
                            if (ox >= s.out_w) continue;
                            int64_t o = (b * s.out_h + oy) * s.out_w + ox;
                            int k = (int)((y - (oy * s.stride_h - s.pad_h)) * s.kernel_w + (x - (ox * s.stride_w - s.pad_w)));
                            add_where_chunk(g, lt_rows_load(grad_output, o, c0, n, tdy), codes + o * C + c0, k, n);
                        }
                    }
                    lt_rows_store(grad_input, r, c0, g, n);
                }
        }
    }
}
