/* Max pooling over channels-last rows (pool_channels_last.h): ranges of output pixels (forward) or of images
 * (backward) in functions compiled for every SIMD level, channels in chunks (rows.h). */
#include "pool_channels_last.h"

#include <string.h>

#include "../base/parallel.h"
#include "../base/simd.h"

#define INLINE static inline __attribute__((always_inline))

INLINE int64_t chunk_of(int64_t C, int64_t c0) { return C - c0 < LT_ROW_CHUNK ? C - c0 : LT_ROW_CHUNK; }

/* Output pixels [o0, o1). */
LT_SIMD_CLONES
static void forward_pixels(lt_rows out, uint8_t *codes, lt_rows input, lt_pool_shape s, int64_t o0, int64_t o1) {
    int64_t C = s.in.c;
    float tin[LT_ROW_CHUNK], tout[LT_ROW_CHUNK];
    for (int64_t o = o0; o < o1; o++) {
        int64_t b = o / (s.out_h * s.out_w), oy = o / s.out_w % s.out_h, ox = o % s.out_w;
        for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
            int64_t n = chunk_of(C, c0);
            float *restrict m = lt_rows_target(out, o, c0, tout);
            uint8_t *restrict code = codes + o * C + c0;
            bool first = true;
            for (int64_t ky = 0; ky < s.kernel_h; ky++) {
                int64_t y = oy * s.stride_h - s.pad_h + ky;
                if (y < 0 || y >= s.in.h) continue;
                for (int64_t kx = 0; kx < s.kernel_w; kx++) {
                    int64_t x = ox * s.stride_w - s.pad_w + kx;
                    if (x < 0 || x >= s.in.w) continue;
                    const float *restrict v = lt_rows_load(input, (b * s.in.h + y) * s.in.w + x, c0, n, tin);
                    uint8_t k = (uint8_t)(ky * s.kernel_w + kx);
                    if (first) {
                        memcpy(m, v, (size_t)n * sizeof *m);
                        memset(code, k, (size_t)n);
                        first = false;
                        continue;
                    }
                    LT_VECTOR_LOOP
                    for (int64_t i = 0; i < n; i++) {  /* the first maximum; NaN wins */
                        bool take = m[i] == m[i] && (v[i] > m[i] || v[i] != v[i]);
                        m[i] = take ? v[i] : m[i];
                        code[i] = take ? k : code[i];
                    }
                }
            }
            if (s.relu) {  /* relu(max(x)): where the maximum is not positive nothing passed (code 255) */
                LT_VECTOR_LOOP
                for (int64_t i = 0; i < n; i++) {
                    code[i] = m[i] > 0 ? code[i] : 255;
                    m[i] = m[i] < 0 ? 0.0f : m[i];
                }
            }
            lt_rows_store(out, o, c0, m, n);
        }
    }
}

void lt_cpu_maxpool_channels_last_forward(lt_rows out, uint8_t *codes, lt_rows input, lt_pool_shape s) {
    int64_t out_rows = s.in.n * s.out_h * s.out_w;
    int threads = lt_threads_for(out_rows * s.in.c * s.kernel_h * s.kernel_w, LT_PARALLEL_GRAIN);
    int blocks = threads > 1 ? 4 * threads : 1;  /* elementwise: any split gives the same results */
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int b = 0; b < blocks; b++) {
        int64_t o0, o1;
        lt_split_range(out_rows, blocks, b, &o0, &o1);
        forward_pixels(out, codes, input, s, o0, o1);
    }
}

/* Images [b0, b1): each input row gathers from the windows that hold it, in order, so the sums
 * where windows overlap are the same at any thread count. */
LT_SIMD_CLONES
static void backward_images(lt_rows grad_input, lt_rows grad_output, const uint8_t *codes, lt_pool_shape s, int64_t b0,
                            int64_t b1) {
    int64_t C = s.in.c, plane = s.in.h * s.in.w;
    float tg[LT_ROW_CHUNK], tdy[LT_ROW_CHUNK];
    for (int64_t b = b0; b < b1; b++)
        for (int64_t y = 0; y < s.in.h; y++)
            for (int64_t x = 0; x < s.in.w; x++) {
                int64_t r = b * plane + y * s.in.w + x;
                int64_t oy_hi = (y + s.pad_h) / s.stride_h, ox_hi = (x + s.pad_w) / s.stride_w;
                for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
                    int64_t n = chunk_of(C, c0);
                    float *restrict g = lt_rows_target(grad_input, r, c0, tg);
                    memset(g, 0, (size_t)n * sizeof *g);
                    /* output windows covering (y, x): oy with oy*sh - ph <= y < oy*sh - ph + kh */
                    for (int64_t oy = oy_hi; oy >= 0 && oy * s.stride_h - s.pad_h + s.kernel_h > y; oy--) {
                        if (oy >= s.out_h) continue;
                        for (int64_t ox = ox_hi; ox >= 0 && ox * s.stride_w - s.pad_w + s.kernel_w > x; ox--) {
                            if (ox >= s.out_w) continue;
                            int64_t o = (b * s.out_h + oy) * s.out_w + ox;
                            uint8_t k = (uint8_t)((y - (oy * s.stride_h - s.pad_h)) * s.kernel_w +
                                                  (x - (ox * s.stride_w - s.pad_w)));
                            const float *restrict dy = lt_rows_load(grad_output, o, c0, n, tdy);
                            const uint8_t *restrict code = codes + o * C + c0;
                            LT_VECTOR_LOOP
                            for (int64_t i = 0; i < n; i++) g[i] += code[i] == k ? dy[i] : 0.0f;
                        }
                    }
                    lt_rows_store(grad_input, r, c0, g, n);
                }
            }
}

void lt_cpu_maxpool_channels_last_backward(lt_rows grad_input, lt_rows grad_output, const uint8_t *codes, lt_pool_shape s) {
    int threads = lt_threads_for(s.in.n * s.in.h * s.in.w * s.in.c, LT_PARALLEL_GRAIN);
    int blocks = threads > 1 ? (int)(s.in.n < 4 * threads ? s.in.n : 4 * threads) : 1;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int p = 0; p < blocks; p++) {
        int64_t b0, b1;
        lt_split_range(s.in.n, blocks, p, &b0, &b1);
        backward_images(grad_input, grad_output, codes, s, b0, b1);
    }
}
