/* The CPU convolution: im2col + GEMM (OpenBLAS), in the batch-folded layout (nn.h).
 *   forward:  out[Cout, N*Ho*Wo]   = W[Cout, K] @ cols[K, N*Ho*Wo] (+ bias), K = Cin*kh*kw
 *   backward: dW[Cout, K]         += dY[Cout, N*Ho*Wo] @ cols^T
 *             dcols[K, N*Ho*Wo]    = W^T @ dY, then col2im adds dcols into dX
 * The batch is cut into parts fixed by the shape (parallel.h), each part into chunks of images whose
 * im2col matrix stays in a core's L2 cache (CHUNK_FLOATS): the matrix is written, packed by the GEMM
 * and read back without a trip to memory. A thread takes whole parts, with its own im2col buffer, and
 * no GEMM waits for another thread. Part p's weight gradient goes into dW (p = 0) or into a partial
 * sum of its own, and the partial sums are added into dW in part order: every GEMM has the same shape
 * and every sum the same order at any thread count. */
#include <string.h>

#include "../blas.h"
#include "../parallel.h"
#include "../sums.h"
#include "im2col.h"

#define CHUNK_FLOATS ((int64_t)192 << 10)  /* 768 KB of im2col per thread: within a 2 MB L2 with the rest */

/* Parts of the batch: a power of two, no more than images. */
static int conv_parts(const lt_conv2d_shape *s) { return lt_parts_for(s->n, 1); }

/* Images per chunk: as many as fit CHUNK_FLOATS of im2col, at least one, at most a part's. */
static int64_t images_per_chunk(const lt_conv2d_shape *s) {
    int64_t per_image = s->k * s->ho * s->wo, parts = conv_parts(s), largest_part = (s->n + parts - 1) / parts;
    int64_t nb = per_image > 0 ? CHUNK_FLOATS / per_image : largest_part;
    if (nb < 1) nb = 1;
    return nb < largest_part ? nb : largest_part;
}

static int conv_threads(const lt_conv2d_shape *s) {
    return lt_threads_for_parts(conv_parts(s), s->n * s->k * s->ho * s->wo, LT_PARALLEL_GRAIN);
}

static int64_t chunk_floats(const lt_conv2d_shape *s) { return s->k * images_per_chunk(s) * s->ho * s->wo; }

static int64_t forward_scratch(const lt_conv2d_shape *s) { return conv_threads(s) * chunk_floats(s); }

/* Per thread: an im2col chunk and, with grad_input, a dcols chunk. */
static int64_t backward_per_thread(const lt_conv2d_shape *s, bool grad_input) {
    return chunk_floats(s) * (grad_input ? 2 : 1);
}

/* The threads' buffers, then a partial weight gradient for each part after the first. */
static int64_t backward_scratch(const lt_conv2d_shape *s, bool grad_input) {
    return conv_threads(s) * backward_per_thread(s, grad_input) + (conv_parts(s) - 1) * s->cout * s->k;
}

static int conv2d_forward_cpu(lt_kernel_ctx *ctx, float *out, const float *in, const float *weight, const float *bias,
                              float *cols, lt_conv2d_shape s) {
    (void)ctx;
    int parts = conv_parts(&s), threads = conv_threads(&s);
    int64_t nb = images_per_chunk(&s), plane_out = s.ho * s.wo, ldo = s.n * plane_out, chunk = chunk_floats(&s);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int p = 0; p < parts; p++) {
        int64_t first, last;
        lt_split_range(s.n, parts, p, &first, &last);
        float *cbuf = cols + lt_thread_num() * chunk;
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

/* dW += the parts' partial gradients, in part order (each element on its own: any split of the
 * elements gives the same sums). */
static void add_partials(float *dweight, const float *partials, int count, int64_t wsize) {
    int threads = lt_threads_for(count * wsize, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t i = 0; i < wsize; i++) {
        float acc = dweight[i];
        for (int q = 0; q < count; q++) acc += partials[q * wsize + i];
        dweight[i] = acc;
    }
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
    int parts = conv_parts(&s), threads = conv_threads(&s);
    int64_t chunk = chunk_floats(&s), wsize = s.cout * s.k, per_thread = backward_per_thread(&s, dinp != NULL);
    float *partials = scratch + threads * per_thread;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int p = 0; p < parts; p++) {
        int64_t first, last;
        lt_split_range(s.n, parts, p, &first, &last);
        float *cbuf = scratch + lt_thread_num() * per_thread, *dc = cbuf + chunk;
        float *gw = p == 0 ? dweight : partials + (p - 1) * wsize;
        float beta = p == 0 ? 1.0f : 0.0f;  /* a partial sum starts at its part's first chunk */
        if (first == last && p > 0) memset(gw, 0, sizeof(float) * (size_t)wsize);
        for (int64_t b0 = first; b0 < last; b0 += nb) {
            int64_t cnt = last - b0 < nb ? last - b0 : nb, cols_n = cnt * plane_out;
            const float *gc = dout + b0 * plane_out;
            lt_im2col_cpu(cbuf, in, &s, b0, cnt);
            /* dW[Cout, K] (+)= dY[:, chunk] @ cols^T */
            lt_sgemm_serial(false, true, s.cout, s.k, cols_n, 1.0f, gc, ldo, cbuf, cols_n, beta, gw, s.k);
            beta = 1.0f;
            if (dinp) {
                /* dcols[K, chunk] = W^T @ dY[:, chunk], then into the chunk's input planes */
                lt_sgemm_serial(true, false, s.k, cols_n, s.cout, 1.0f, weight, s.k, gc, ldo, 0.0f, dc, cols_n);
                lt_col2im_cpu(dinp, dc, &s, b0, cnt);
            }
        }
    }
    add_partials(dweight, partials, parts - 1, wsize);
    return 0;
}

const lt_conv2d_impl lt_conv2d_cpu = {
    .base = {.name = "cpu", .supports = lt_supports_fp32},
    .forward_scratch = forward_scratch,
    .backward_scratch = backward_scratch,
    .forward = conv2d_forward_cpu,
    .backward = conv2d_backward_cpu,
};
