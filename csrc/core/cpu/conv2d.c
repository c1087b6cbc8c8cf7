/* The CPU convolution: im2col + GEMM (OpenBLAS), in the batch-folded layout (nn.h).
 *   forward:  out[Cout, N*Ho*Wo]   = W[Cout, K] @ cols[K, N*Ho*Wo] (+ bias), K = Cin*kh*kw
 *   backward: dW[Cout, K]         += dY[Cout, N*Ho*Wo] @ cols^T
 *             dcols[K, N*Ho*Wo]    = W^T @ dY, then col2im adds dcols into dX
 * Each thread takes its share of the batch's images and goes through them a chunk at a time, with its
 * own im2col buffer small enough to stay in the core's L2 cache (CHUNK_FLOATS): the im2col matrix is
 * written, packed by the GEMM and read back without a trip to memory, and no GEMM waits for another
 * thread. The weight gradient is summed per thread and the partial sums added in thread order. */
#include <string.h>

#include "../blas.h"
#include "../parallel.h"
#include "../sums.h"
#include "im2col.h"

#define CHUNK_FLOATS ((int64_t)192 << 10)  /* 768 KB of im2col per thread: within a 2 MB L2 with the rest */

/* Images per chunk: as many as fit CHUNK_FLOATS of im2col, at least one. */
static int64_t images_per_chunk(const lt_conv2d_shape *s) {
    int64_t per_image = s->k * s->ho * s->wo;
    int64_t nb = per_image > 0 ? CHUNK_FLOATS / per_image : s->n;
    if (nb < 1) nb = 1;
    return nb < s->n ? nb : s->n;
}

/* The threads of a convolution: no more than images; thread t takes its share of the batch. */
static int conv_threads(const lt_conv2d_shape *s) {
    int threads = lt_threads_for(s->n * s->k * s->ho * s->wo, LT_PARALLEL_GRAIN);
    if (threads > s->n) threads = (int)(s->n > 0 ? s->n : 1);
    return threads;
}

static int64_t chunk_floats(const lt_conv2d_shape *s) { return s->k * images_per_chunk(s) * s->ho * s->wo; }

static int64_t forward_scratch(const lt_conv2d_shape *s) { return conv_threads(s) * chunk_floats(s); }

/* Per thread: an im2col chunk, a dcols chunk (with grad_input) and, with several threads, a partial
 * weight gradient. */
static int64_t backward_per_thread(const lt_conv2d_shape *s, bool grad_input, int threads) {
    int64_t chunk = chunk_floats(s);
    return chunk + (grad_input ? chunk : 0) + (threads > 1 ? s->cout * s->k : 0);
}

static int64_t backward_scratch(const lt_conv2d_shape *s, bool grad_input) {
    int threads = conv_threads(s);
    return threads * backward_per_thread(s, grad_input, threads);
}

static int conv2d_forward_cpu(lt_kernel_ctx *ctx, float *out, const float *in, const float *weight, const float *bias,
                              float *cols, lt_conv2d_shape s) {
    (void)ctx;
    int threads = conv_threads(&s);
    int64_t nb = images_per_chunk(&s), plane_out = s.ho * s.wo, ldo = s.n * plane_out, chunk = chunk_floats(&s);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int t = 0; t < threads; t++) {
        int64_t first, last;
        lt_split_range(s.n, threads, t, &first, &last);
        float *cbuf = cols + t * chunk;
        for (int64_t b0 = first; b0 < last; b0 += nb) {
            int64_t cnt = last - b0 < nb ? last - b0 : nb, cols_n = cnt * plane_out;
            float *yc = out + b0 * plane_out;
            lt_im2col_cpu(cbuf, in, &s, b0, cnt);
            if (bias)  /* start from the bias and let the GEMM accumulate (beta = 1): one pass fewer */
                for (int64_t c = 0; c < s.cout; c++)
                    for (int64_t i = 0; i < cols_n; i++) yc[c * ldo + i] = bias[c];
            /* out[:, images b0..] (Cout x cols_n, row stride ldo) (+)= W @ cols */
            lt_sgemm_serial(false, false, s.cout, cols_n, s.k, 1.0f, weight, s.k, cbuf, cols_n, bias ? 1.0f : 0.0f, yc,
                            ldo);
        }
    }
    return 0;
}

static int conv2d_backward_cpu(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *in, const float *weight, float *scratch, lt_conv2d_shape s) {
    (void)ctx;
    int64_t nb = images_per_chunk(&s), plane_out = s.ho * s.wo, ldo = s.n * plane_out;
    if (dbias) {  /* dY as [Cout, N*Ho*Wo] rows */
        int threads = lt_threads_for(s.cout * ldo, LT_PARALLEL_GRAIN);
        #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int64_t c = 0; c < s.cout; c++) dbias[c] += (float)lt_sum_f32(dout + c * ldo, ldo);
    }
    int threads = conv_threads(&s);
    int64_t chunk = chunk_floats(&s), wsize = s.cout * s.k;
    int64_t per_thread = backward_per_thread(&s, dinp != NULL, threads);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int t = 0; t < threads; t++) {
        int64_t first, last;
        lt_split_range(s.n, threads, t, &first, &last);
        float *cbuf = scratch + t * per_thread, *dc = cbuf + chunk;
        float *gwt = threads > 1 ? cbuf + chunk + (dinp ? chunk : 0) : dweight;
        if (threads > 1) memset(gwt, 0, sizeof(float) * (size_t)wsize);
        for (int64_t b0 = first; b0 < last; b0 += nb) {
            int64_t cnt = last - b0 < nb ? last - b0 : nb, cols_n = cnt * plane_out;
            const float *gc = dout + b0 * plane_out;
            lt_im2col_cpu(cbuf, in, &s, b0, cnt);
            /* dW[Cout, K] += dY[:, chunk] @ cols^T */
            lt_sgemm_serial(false, true, s.cout, s.k, cols_n, 1.0f, gc, ldo, cbuf, cols_n, 1.0f, gwt, s.k);
            if (dinp) {
                /* dcols[K, chunk] = W^T @ dY[:, chunk], then into the chunk's input planes */
                lt_sgemm_serial(true, false, s.k, cols_n, s.cout, 1.0f, weight, s.k, gc, ldo, 0.0f, dc, cols_n);
                lt_col2im_cpu(dinp, dc, &s, b0, cnt);
            }
        }
    }
    for (int t = 0; threads > 1 && t < threads; t++) {  /* in thread order: the same sums every run */
        const float *part = scratch + t * per_thread + chunk + (dinp ? chunk : 0);
        for (int64_t i = 0; i < wsize; i++) dweight[i] += part[i];
    }
    return 0;
}

const lt_conv2d_impl lt_conv2d_cpu = {
    .base = {.name = "cpu", .supports = lt_supports_fp32},
    .forward_scratch = forward_scratch,
    .backward_scratch = backward_scratch,
    .forward = conv2d_forward_cpu,
    .backward = conv2d_backward_cpu,
};
