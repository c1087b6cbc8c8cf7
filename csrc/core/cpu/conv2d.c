/* The CPU convolution: im2col + GEMM (OpenBLAS), in the batch-folded layout (nn.h).
 *   forward:  out[Cout, N*Ho*Wo]   = W[Cout, K] @ cols[K, N*Ho*Wo] (+ bias), K = Cin*kh*kw
 *   backward: dW[Cout, K]         += dY[Cout, N*Ho*Wo] @ cols^T
 *             dcols[K, N*Ho*Wo]    = W^T @ dY, then col2im adds dcols into dX
 * The batch goes a chunk of images at a time, each thread with its own im2col buffer small enough to
 * stay in the core's L2 cache (CHUNK_FLOATS): the im2col matrix is written, packed by the GEMM and
 * read back without a trip to memory, and no GEMM waits for another thread.
 * Every part of the work is fixed by the shape alone, never by the thread count (parallel.h), so that
 * every GEMM has the same shape and every sum the same order at any thread count:
 *   - the chunks: a power of two of them (threads share them evenly), or one per image;
 *   - backward, blocks of input channels: block b's rows of cols, its columns of dW and its channels of
 *     dX belong to it alone, so blocks need no sum;
 *   - backward, groups of consecutive chunks, making up the parts the blocks do not (most parts are
 *     groups in layers with few weights next to their output positions, the first ones): group g adds
 *     its chunks into dW (g = 0) or into a partial gradient of its own, and the partial gradients are
 *     added into dW in group order.
 * A thread takes whole chunks (forward) or whole (group, block) parts (backward). */
#include <string.h>

#include "../base/blas.h"
#include "../base/parallel.h"
#include "../base/sums.h"
#include "im2col.h"

#define CHUNK_FLOATS ((int64_t)192 << 10)  /* 768 KB of im2col per thread: within a 2 MB L2 with the rest */
#define MIN_BLOCK_ROWS 64                  /* a channel block's rows at least: the GEMMs' narrow side */
#define MIN_GROUP_COLUMNS 256              /* a group's output positions at least: its partial gradient is
                                              read once per that many multiply-adds of each weight */

typedef struct conv_split {
    int64_t chunks;  /* chunk c is images lt_split_range(n, chunks, c) */
    int blocks;      /* block b is input channels lt_split_range(cin, blocks, b) */
    int groups;      /* group g is chunks lt_split_range(chunks, groups, g) */
    int64_t rows;    /* im2col rows of the largest block */
    int64_t cols;    /* im2col columns of the largest chunk */
} conv_split;

/* Chunks of at most CHUNK_FLOATS of im2col for `rows` rows: a power of two, or one per image. */
static int64_t chunks_for(const lt_conv2d_shape *s, int64_t rows) {
    int64_t per_image = rows * s->ho * s->wo, nb = per_image > 0 ? CHUNK_FLOATS / per_image : s->n;
    if (nb < 1) nb = 1;
    int64_t least = (s->n + nb - 1) / nb, chunks = 1;
    while (chunks < least) chunks *= 2;
    return chunks < s->n ? chunks : (s->n > 0 ? s->n : 1);
}

static void size_chunks(conv_split *sp, const lt_conv2d_shape *s) {
    sp->chunks = chunks_for(s, sp->rows);
    sp->cols = (s->n + sp->chunks - 1) / sp->chunks * s->ho * s->wo;
}

static conv_split forward_split(const lt_conv2d_shape *s) {
    conv_split sp = {.blocks = 1, .groups = 1, .rows = s->k};
    size_chunks(&sp, s);
    return sp;
}

/* Blocks and groups both cost something: each block packs dY again for its GEMMs (N*Ho*Wo*Cout floats),
 * each group writes and reads a partial gradient (Cout*K). Of LT_MAX_PARTS parts, the blocks are the
 * power of two nearest sqrt(LT_MAX_PARTS * K / (N*Ho*Wo)), which balances the two, within the blocks
 * of at least MIN_BLOCK_ROWS rows the channels allow; groups make up the rest, as far as the chunks
 * and MIN_GROUP_COLUMNS allow. */
static conv_split backward_split(const lt_conv2d_shape *s) {
    int64_t kk = s->p.kernel_h * s->p.kernel_w, positions = s->n * s->ho * s->wo;
    int most_blocks = lt_parts_for(s->cin, (MIN_BLOCK_ROWS + kk - 1) / kk);
    double ratio = positions > 0 ? (double)LT_MAX_PARTS * (double)s->k / (double)positions : 0;
    conv_split sp = {.blocks = 1};
    while (sp.blocks < most_blocks && 2.0 * sp.blocks * sp.blocks <= ratio) sp.blocks *= 2;
    sp.rows = (s->cin + sp.blocks - 1) / sp.blocks * kk;
    size_chunks(&sp, s);
    int groups = lt_parts_for(sp.chunks, 1), by_columns = lt_parts_for(positions, MIN_GROUP_COLUMNS);
    if (groups > by_columns) groups = by_columns;
    if (groups > LT_MAX_PARTS / sp.blocks) groups = LT_MAX_PARTS / sp.blocks;
    sp.groups = groups;
    return sp;
}

static int64_t work_of(const lt_conv2d_shape *s) { return s->n * s->k * s->ho * s->wo; }

static int forward_threads(const lt_conv2d_shape *s, const conv_split *sp) {
    return lt_threads_for_parts(sp->chunks, work_of(s), LT_PARALLEL_GRAIN);
}

static int backward_threads(const lt_conv2d_shape *s, const conv_split *sp) {
    return lt_threads_for_parts(sp->groups * sp->blocks, work_of(s), LT_PARALLEL_GRAIN);
}

static int64_t forward_scratch(const lt_conv2d_shape *s) {
    conv_split sp = forward_split(s);
    return forward_threads(s, &sp) * sp.rows * sp.cols;
}

/* Per thread: an im2col chunk and, with grad_input, a dcols chunk. */
static int64_t backward_per_thread(const conv_split *sp, bool grad_input) {
    return sp->rows * sp->cols * (grad_input ? 2 : 1);
}

/* The threads' buffers, then a partial weight gradient for each group after the first. */
static int64_t backward_scratch(const lt_conv2d_shape *s, bool grad_input) {
    conv_split sp = backward_split(s);
    return backward_threads(s, &sp) * backward_per_thread(&sp, grad_input) + (sp.groups - 1) * s->cout * s->k;
}

static int conv2d_forward_cpu(lt_kernel_ctx *ctx, float *out, const float *in, const float *weight, const float *bias,
                              float *cols, lt_conv2d_shape s) {
    conv_split sp = forward_split(&s);
    int threads = forward_threads(&s, &sp);
    int64_t plane_out = s.ho * s.wo, ldo = s.n * plane_out;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t c = 0; c < sp.chunks; c++) {
        int64_t first, last;
        lt_split_range(s.n, sp.chunks, c, &first, &last);
        int64_t cols_n = (last - first) * plane_out;
        float *cbuf = cols + lt_thread_num() * sp.rows * sp.cols, *yc = out + first * plane_out;
        lt_im2col_cpu(cbuf, in, &s, first, last - first);
        if (bias)  /* start from the bias and let the GEMM accumulate (beta = 1): one pass fewer */
            for (int64_t o = 0; o < s.cout; o++)
                for (int64_t i = 0; i < cols_n; i++) yc[o * ldo + i] = bias[o];
        /* out[:, the chunk's images] (Cout x cols_n, row stride ldo) (+)= W @ cols */
        lt_sgemm_serial(false, false, s.cout, cols_n, s.k, 1.0f, weight, s.k, cbuf, cols_n, bias ? 1.0f : 0.0f, yc, ldo);
    }
    return 0;
}

/* Channels [c0, c1) of s as a convolution of their own: its im2col is rows [c0*kk, c1*kk) of s's. */
static lt_conv2d_shape channel_block(const lt_conv2d_shape *s, int64_t c0, int64_t c1) {
    lt_conv2d_shape b = *s;
    b.cin = c1 - c0;
    b.k = b.cin * s->p.kernel_h * s->p.kernel_w;
    return b;
}

/* Partial gradients this many floats in all are added on one thread: a team's start and end is a
 * moment every thread waits for, which costs more than the adds (on a loaded machine, a time slice). */
#define PARTIALS_GRAIN ((int64_t)1 << 20)

/* dW += the groups' partial gradients, in group order (each element on its own: any split of the
 * elements gives the same sums). */
static void add_partials(float *dweight, const float *partials, int count, int64_t wsize) {
    if (count == 0) return;
    int threads = lt_threads_for(count * wsize, PARTIALS_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t i = 0; i < wsize; i++) {
        float acc = dweight[i];
        for (int q = 0; q < count; q++) acc += partials[q * wsize + i];
        dweight[i] = acc;
    }
}

static int conv2d_backward_cpu(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *in, const float *weight, float *scratch, lt_conv2d_shape s) {
    int64_t plane_out = s.ho * s.wo, ldo = s.n * plane_out, kk = s.p.kernel_h * s.p.kernel_w;
    if (dbias) {  /* dY as [Cout, N*Ho*Wo] rows */
        int threads = lt_threads_for(s.cout * ldo, LT_PARALLEL_GRAIN);
        #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int64_t c = 0; c < s.cout; c++) dbias[c] += (float)lt_sum_f32(dout + c * ldo, ldo);
    }
    conv_split sp = backward_split(&s);
    int threads = backward_threads(&s, &sp), parts = sp.groups * sp.blocks;
    int64_t wsize = s.cout * s.k, per_thread = backward_per_thread(&sp, dinp != NULL);
    float *partials = scratch + threads * per_thread;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int q = 0; q < parts; q++) {
        int g = q / sp.blocks, b = q % sp.blocks;
        int64_t c_first, c_last, ch0, ch1;
        lt_split_range(sp.chunks, sp.groups, g, &c_first, &c_last);  /* groups <= chunks: never empty */
        lt_split_range(s.cin, sp.blocks, b, &ch0, &ch1);
        lt_conv2d_shape bs = channel_block(&s, ch0, ch1);
        const float *inb = in + ch0 * s.x.sc;
        float *dxb = dinp ? dinp + ch0 * s.dx.sc : NULL;
        float *cbuf = scratch + lt_thread_num() * per_thread, *dc = cbuf + sp.rows * sp.cols;
        float *gw = (g == 0 ? dweight : partials + (g - 1) * wsize) + ch0 * kk;  /* the block's columns */
        float beta = g == 0 ? 1.0f : 0.0f;  /* a partial gradient starts at its group's first chunk */
        for (int64_t c = c_first; c < c_last; c++) {
            int64_t first, last;
            lt_split_range(s.n, sp.chunks, c, &first, &last);
            int64_t cnt = last - first, cols_n = cnt * plane_out;
            const float *gc = dout + first * plane_out;
            lt_im2col_cpu(cbuf, inb, &bs, first, cnt);
            /* dW[:, the block's rows] (+)= dY[:, chunk] @ cols^T */
            lt_sgemm_serial(false, true, s.cout, bs.k, cols_n, 1.0f, gc, ldo, cbuf, cols_n, beta, gw, s.k);
            beta = 1.0f;
            if (dxb) {
                /* dcols[the block's rows, chunk] = W[:, the block's rows]^T @ dY[:, chunk], then into the
                 * chunk's planes of the block's channels */
                lt_sgemm_serial(true, false, bs.k, cols_n, s.cout, 1.0f, weight + ch0 * kk, s.k, gc, ldo, 0.0f, dc,
                                cols_n);
                lt_col2im_cpu(dxb, dc, &bs, first, cnt);
            }
        }
    }
    add_partials(dweight, partials, sp.groups - 1, wsize);
    return 0;
}

const lt_conv2d_impl lt_conv2d_cpu = {
    .base = {.name = "cpu", .supports = lt_supports_fp32},
    .forward_scratch = forward_scratch,
    .backward_scratch = backward_scratch,
    .forward = conv2d_forward_cpu,
    .backward = conv2d_backward_cpu,
};
