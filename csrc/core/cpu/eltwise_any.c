#include "eltwise_any.h"

#include "../parallel.h"
#include "../simd.h"
#include "gelu_math.h"

LT_SIMD_CLONES
static void gelu_chunk(float *restrict y, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = lt_gelu(x[i]);
}

LT_SIMD_CLONES
static void gelu_grad_chunk(float *restrict dx, const float *restrict dy, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * lt_gelu_grad(x[i]);
}


/* The n elements as one row, cut in chunks: x, y and dy use ld = 0 and row 0. */
void lt_gelu_forward_any(lt_rows y, lt_rows x, int64_t n) {
    int64_t chunks = (n + LT_ROW_CHUNK - 1) / LT_ROW_CHUNK;
    int threads = lt_threads_for(n, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t k = 0; k < chunks; k++) {
        int64_t c0 = k * LT_ROW_CHUNK, m = n - c0 < LT_ROW_CHUNK ? n - c0 : LT_ROW_CHUNK;
        float tx[LT_ROW_CHUNK], ty[LT_ROW_CHUNK];
        float *out = lt_rows_target(y, 0, c0, ty);
        gelu_chunk(out, lt_rows_load(x, 0, c0, m, tx), m);
        lt_rows_store(y, 0, c0, out, m);
    }
}

void lt_gelu_backward_any(lt_rows dx, lt_rows dy, lt_rows x, int64_t n) {
    int64_t chunks = (n + LT_ROW_CHUNK - 1) / LT_ROW_CHUNK;
    int threads = lt_threads_for(n, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t k = 0; k < chunks; k++) {
        int64_t c0 = k * LT_ROW_CHUNK, m = n - c0 < LT_ROW_CHUNK ? n - c0 : LT_ROW_CHUNK;
        float tx[LT_ROW_CHUNK], tdy[LT_ROW_CHUNK], tdx[LT_ROW_CHUNK];
        float *out = lt_rows_target(dx, 0, c0, tdx);
        gelu_grad_chunk(out, lt_rows_load(dy, 0, c0, m, tdy), lt_rows_load(x, 0, c0, m, tx), m);
        lt_rows_store(dx, 0, c0, out, m);
    }
}
