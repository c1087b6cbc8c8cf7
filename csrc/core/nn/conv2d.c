/* 2-D convolution as im2col + GEMM, in the batch-folded layout (nn.h).
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
#include "../simd.h"
#include "../sums.h"
#include "../tensor_math.h"
#include "nn.h"

#define CHUNK_FLOATS ((int64_t)192 << 10)  /* 768 KB of im2col per thread: within a 2 MB L2 with the rest */

typedef struct conv_shape {
    int64_t n, cin, h, w, cout, ho, wo, k;  /* k = cin * kh * kw */
    int64_t in_sn, in_sc;                   /* input strides of batch and channel */
} conv_shape;

static int64_t out_extent(int64_t in, int64_t kernel, int64_t stride, int64_t pad) {
    return (in + 2 * pad - kernel) / stride + 1;
}

static int check_shapes(conv_shape *s, const lt_tensor *input, const lt_tensor *weight, const lt_tensor *bias,
                        lt_conv2d_params p, lt_error *err) {
    char a[160], b[160];
    if (input->ndim != 4)
        return lt_fail(err, "expected a 4-D input (batch x channels x height x width), got %s", lt_shape_str(input, a, sizeof a));
    if (weight->ndim != 4 || weight->size[2] != p.kernel_h || weight->size[3] != p.kernel_w)
        return lt_fail(err, "weight must be out x in x %lld x %lld, got %s", (long long)p.kernel_h, (long long)p.kernel_w,
                       lt_shape_str(weight, a, sizeof a));
    if (input->size[1] != weight->size[1])
        return lt_fail(err, "input has %lld channels but the layer expects %lld (input %s, weight %s)",
                       (long long)input->size[1], (long long)weight->size[1], lt_shape_str(input, a, sizeof a),
                       lt_shape_str(weight, b, sizeof b));
    if (bias && (bias->ndim != 1 || bias->size[0] != weight->size[0]))
        return lt_fail(err, "bias must have %lld elements, got %s", (long long)weight->size[0], lt_shape_str(bias, a, sizeof a));
    if (p.stride_h < 1 || p.stride_w < 1 || p.pad_h < 0 || p.pad_w < 0)
        return lt_fail(err, "stride must be positive and padding non-negative");
    s->n = input->size[0];
    s->cin = input->size[1];
    s->h = input->size[2];
    s->w = input->size[3];
    s->cout = weight->size[0];
    s->k = s->cin * p.kernel_h * p.kernel_w;
    if (s->h + 2 * p.pad_h < p.kernel_h || s->w + 2 * p.pad_w < p.kernel_w)
        return lt_fail(err, "input %lldx%lld (padding %lldx%lld) is smaller than the kernel %lldx%lld", (long long)s->h,
                       (long long)s->w, (long long)p.pad_h, (long long)p.pad_w, (long long)p.kernel_h, (long long)p.kernel_w);
    s->ho = out_extent(s->h, p.kernel_h, p.stride_h, p.pad_h);
    s->wo = out_extent(s->w, p.kernel_w, p.stride_w, p.pad_w);
    s->in_sn = input->stride[0];
    s->in_sc = input->stride[1];
    return 0;
}

/* Images per chunk: as many as fit CHUNK_FLOATS of im2col, at least one. */
static int64_t images_per_chunk(const conv_shape *s) {
    int64_t per_image = s->k * s->ho * s->wo;
    int64_t nb = per_image > 0 ? CHUNK_FLOATS / per_image : s->n;
    if (nb < 1) nb = 1;
    return nb < s->n ? nb : s->n;
}

/* The threads of a convolution and thread t's images [*b0, *b1): the batch split evenly. */
static int conv_threads(const conv_shape *s) {
    int threads = lt_threads_for(s->n * s->k * s->ho * s->wo, LT_PARALLEL_GRAIN);
    if (threads > s->n) threads = (int)(s->n > 0 ? s->n : 1);
    return threads;
}

/* The output columns ox whose input column ox*sw - pw + j lies inside the image: [lo, hi). */
static void valid_columns(const conv_shape *s, lt_conv2d_params p, int64_t j, int64_t *lo, int64_t *hi) {
    int64_t a = p.pad_w - j, b = s->w + p.pad_w - j;  /* lo * sw >= a, hi = first ox with ox * sw >= b */
    int64_t l = a <= 0 ? 0 : (a + p.stride_w - 1) / p.stride_w;
    int64_t h = b <= 0 ? 0 : (b + p.stride_w - 1) / p.stride_w;
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

static bool shifted_plane_of(shifted_plane *sp, const conv_shape *s, lt_conv2d_params p, int64_t i, int64_t j) {
    if (p.stride_h != 1 || p.stride_w != 1 || s->wo != s->w) return false;
    valid_columns(s, p, j, &sp->lo, &sp->hi);
    sp->oy_lo = p.pad_h - i > 0 ? p.pad_h - i : 0;
    sp->oy_hi = s->h + p.pad_h - i < s->ho ? s->h + p.pad_h - i : s->ho;
    sp->offset = (i - p.pad_h) * s->w + (j - p.pad_w);
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

/* Row (c, i, j) of cols for nb images: element (b, oy, ox) is input[b][c][oy*sh - ph + i][ox*sw - pw + j],
 * zero outside the image. Loops are written out (no memcpy per image row): rows are short for small
 * images, and the compiler vectorises the copies. */
LT_SIMD_CLONES
static void im2col_row(float *dst, const float *in, const conv_shape *s, lt_conv2d_params p, int64_t c, int64_t i,
                       int64_t j, int64_t b0, int64_t nb) {
    shifted_plane sp;
    if (shifted_plane_of(&sp, s, p, i, j)) {
        int64_t plane_out = s->ho * s->wo;
        for (int64_t b = 0; b < nb; b++, dst += plane_out) {
            const float *plane = in + (b0 + b) * s->in_sn + c * s->in_sc;
            for (int64_t e = 0; e < sp.start; e++) dst[e] = 0;
            for (int64_t e = sp.start; e < sp.end; e++) dst[e] = plane[e + sp.offset];
            for (int64_t e = sp.end; e < plane_out; e++) dst[e] = 0;
            zero_border_columns(dst, &sp, s->wo);
        }
        return;
    }
    int64_t lo, hi;
    valid_columns(s, p, j, &lo, &hi);
    int64_t shift = j - p.pad_w, sw = p.stride_w;
    for (int64_t b = 0; b < nb; b++) {
        const float *plane = in + (b0 + b) * s->in_sn + c * s->in_sc;
        for (int64_t oy = 0; oy < s->ho; oy++, dst += s->wo) {
            int64_t iy = oy * p.stride_h - p.pad_h + i;
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

/* cols[K, nb*Ho*Wo] for images b0 .. b0+nb-1, on the calling thread */
static void im2col(float *cols, const float *in, const conv_shape *s, lt_conv2d_params p, int64_t b0, int64_t nb) {
    int64_t ld = nb * s->ho * s->wo, kk = p.kernel_h * p.kernel_w;
    for (int64_t r = 0; r < s->k; r++)
        im2col_row(cols + r * ld, in, s, p, r / kk, (r % kk) / p.kernel_w, r % p.kernel_w, b0, nb);
}

/* Adds row (c, i, j) of dcols back into the input-gradient planes of channel c (im2col's adjoint). The row
 * is scratch: its border columns may be zeroed on the way. */
LT_SIMD_CLONES
static void col2im_row(float *dx, int64_t dx_sn, float *src, const conv_shape *s, lt_conv2d_params p, int64_t i,
                       int64_t j, int64_t b0, int64_t nb) {
    shifted_plane sp;
    if (shifted_plane_of(&sp, s, p, i, j)) {
        int64_t plane_out = s->ho * s->wo;
        for (int64_t b = 0; b < nb; b++, src += plane_out) {
            float *plane = dx + (b0 + b) * dx_sn;
            zero_border_columns(src, &sp, s->wo);  /* what they hold belongs to the padding */
            for (int64_t e = sp.start; e < sp.end; e++) plane[e + sp.offset] += src[e];
        }
        return;
    }
    int64_t lo, hi;
    valid_columns(s, p, j, &lo, &hi);
    int64_t shift = j - p.pad_w, sw = p.stride_w;
    for (int64_t b = 0; b < nb; b++) {
        float *plane = dx + (b0 + b) * dx_sn;
        for (int64_t oy = 0; oy < s->ho; oy++, src += s->wo) {
            int64_t iy = oy * p.stride_h - p.pad_h + i;
            if (iy < 0 || iy >= s->h) continue;
            float *d = plane + iy * s->w + shift;
            if (sw == 1)
                for (int64_t ox = lo; ox < hi; ox++) d[ox] += src[ox];
            else
                for (int64_t ox = lo; ox < hi; ox++) d[ox * sw] += src[ox];
        }
    }
}

/* dx planes of images b0 .. b0+nb-1 = col2im(dcols), on the calling thread */
static void col2im(float *dx, int64_t dx_sn, int64_t dx_sc, float *dcols, const conv_shape *s,
                   lt_conv2d_params p, int64_t b0, int64_t nb) {
    int64_t ld = nb * s->ho * s->wo, kk = p.kernel_h * p.kernel_w;
    for (int64_t c = 0; c < s->cin; c++) {
        float *channel = dx + c * dx_sc;
        for (int64_t b = 0; b < nb; b++) memset(channel + (b0 + b) * dx_sn, 0, sizeof(float) * (size_t)(s->h * s->w));
        for (int64_t r = c * kk; r < (c + 1) * kk; r++)
            col2im_row(channel, dx_sn, dcols + r * ld, s, p, (r % kk) / p.kernel_w, r % p.kernel_w, b0, nb);
    }
}

/* Makes a local view usable by the kernels: planes contiguous (copied if not). */
static int planar(lt_tensor *view, const lt_tensor *t, lt_error *err) {
    if (lt_planes_contiguous(t)) {
        lt_tensor_share(view, t);
        return 0;
    }
    return lt_contiguous(view, t, err);
}

int lt_conv2d_forward(lt_tensor *out, lt_tensor *cols, const lt_tensor *input, const lt_tensor *weight,
                      const lt_tensor *bias, lt_conv2d_params p, lt_error *err) {
    conv_shape s;
    if (check_shapes(&s, input, weight, bias, p, err)) return -1;
    lt_tensor in = {0}, w = {0};
    int rc = -1;
    if (planar(&in, input, err) || lt_contiguous(&w, weight, err)) goto done;
    s.in_sn = in.stride[0];
    s.in_sc = in.stride[1];
    int threads = conv_threads(&s);
    int64_t nb = images_per_chunk(&s), plane_out = s.ho * s.wo, ldo = s.n * plane_out, chunk = s.k * nb * plane_out;
    int64_t cols_size[1] = {threads * chunk};
    if (lt_resize_cnhw(out, s.n, s.cout, s.ho, s.wo, err) || lt_tensor_resize(cols, 1, cols_size, err)) goto done;
    if (lt_numel(out) == 0) { rc = 0; goto done; }
    float *y = lt_data(out), *cbase = lt_data(cols);
    const float *x = lt_data(&in), *wd = lt_data(&w), *bd = bias ? lt_data(bias) : NULL;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int t = 0; t < threads; t++) {
        int64_t first, last;
        lt_split_range(s.n, threads, t, &first, &last);
        float *cbuf = cbase + t * chunk;
        for (int64_t b0 = first; b0 < last; b0 += nb) {
            int64_t cnt = last - b0 < nb ? last - b0 : nb, cols_n = cnt * plane_out;
            float *yc = y + b0 * plane_out;
            im2col(cbuf, x, &s, p, b0, cnt);
            if (bd)  /* start from the bias and let the GEMM accumulate (beta = 1): one pass fewer */
                for (int64_t c = 0; c < s.cout; c++)
                    for (int64_t i = 0; i < cols_n; i++) yc[c * ldo + i] = bd[c];
            /* out[:, images b0..] (Cout x cols_n, row stride ldo) (+)= W @ cols */
            lt_sgemm_serial(false, false, s.cout, cols_n, s.k, 1.0f, wd, s.k, cbuf, cols_n, bd ? 1.0f : 0.0f, yc, ldo);
        }
    }
    rc = 0;
done:
    lt_tensor_release(&in);
    lt_tensor_release(&w);
    return rc;
}

int lt_conv2d_backward(lt_tensor *grad_input, lt_tensor *grad_weight, lt_tensor *grad_bias,
                       const lt_tensor *grad_output, const lt_tensor *input, const lt_tensor *weight,
                       lt_tensor *cols, lt_tensor *dy, lt_conv2d_params p, lt_error *err) {
    conv_shape s;
    char a[160];
    if (check_shapes(&s, input, weight, grad_bias, p, err)) return -1;
    if (grad_output->ndim != 4 || grad_output->size[0] != s.n || grad_output->size[1] != s.cout ||
        grad_output->size[2] != s.ho || grad_output->size[3] != s.wo)
        return lt_fail(err, "grad_output must be %lldx%lldx%lldx%lld, got %s", (long long)s.n, (long long)s.cout,
                       (long long)s.ho, (long long)s.wo, lt_shape_str(grad_output, a, sizeof a));
    if (!lt_same_shape(grad_weight, weight) || !lt_is_contiguous(grad_weight))
        return lt_fail(err, "grad_weight must be a contiguous tensor shaped like the weight");
    lt_tensor in = {0}, w = {0};
    int rc = -1;
    if (planar(&in, input, err) || lt_contiguous(&w, weight, err)) goto done;
    s.in_sn = in.stride[0];
    s.in_sc = in.stride[1];
    int64_t nb = images_per_chunk(&s), plane_out = s.ho * s.wo, ldo = s.n * plane_out;

    /* dY as [Cout, N*Ho*Wo] rows */
    const float *g;
    if (lt_is_cnhw(grad_output)) {
        g = lt_numel(grad_output) ? lt_data(grad_output) : NULL;
    } else {
        if (lt_resize_cnhw(dy, s.n, s.cout, s.ho, s.wo, err) || lt_copy(dy, grad_output, err)) goto done;
        g = lt_numel(dy) ? lt_data(dy) : NULL;
    }
    if (grad_input && lt_resize_like(grad_input, &in, err)) goto done;
    if (lt_numel(grad_output) == 0) {
        if (grad_input && lt_numel(grad_input)) lt_fill(grad_input, 0.0f, err);
        rc = 0;
        goto done;
    }
    if (grad_bias) {
        float *gb = lt_data(grad_bias);
        int threads = lt_threads_for(s.cout * ldo, LT_PARALLEL_GRAIN);
        #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int64_t c = 0; c < s.cout; c++) gb[c] += (float)lt_sum_f32(g + c * ldo, ldo);
    }
    /* per thread: an im2col chunk, a dcols chunk and (with several threads) a partial weight gradient */
    int threads = conv_threads(&s);
    int64_t chunk = s.k * nb * plane_out, wsize = s.cout * s.k;
    int64_t per_thread = chunk + (grad_input ? chunk : 0) + (threads > 1 ? wsize : 0);
    int64_t scratch_size[1] = {threads * per_thread};
    if (lt_tensor_resize(cols, 1, scratch_size, err)) goto done;
    float *gw = lt_data(grad_weight), *scratch = lt_data(cols);
    const float *x = lt_data(&in), *wd = lt_data(&w);
    float *dxd = grad_input ? lt_data(grad_input) : NULL;
    int64_t dx_sn = grad_input ? grad_input->stride[0] : 0, dx_sc = grad_input ? grad_input->stride[1] : 0;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int t = 0; t < threads; t++) {
        int64_t first, last;
        lt_split_range(s.n, threads, t, &first, &last);
        float *cbuf = scratch + t * per_thread, *dc = cbuf + chunk;
        float *gwt = threads > 1 ? cbuf + chunk + (grad_input ? chunk : 0) : gw;
        if (threads > 1) memset(gwt, 0, sizeof(float) * (size_t)wsize);
        for (int64_t b0 = first; b0 < last; b0 += nb) {
            int64_t cnt = last - b0 < nb ? last - b0 : nb, cols_n = cnt * plane_out;
            const float *gc = g + b0 * plane_out;
            im2col(cbuf, x, &s, p, b0, cnt);
            /* dW[Cout, K] += dY[:, chunk] @ cols^T */
            lt_sgemm_serial(false, true, s.cout, s.k, cols_n, 1.0f, gc, ldo, cbuf, cols_n, 1.0f, gwt, s.k);
            if (dxd) {
                /* dcols[K, chunk] = W^T @ dY[:, chunk], then into the chunk's input planes */
                lt_sgemm_serial(true, false, s.k, cols_n, s.cout, 1.0f, wd, s.k, gc, ldo, 0.0f, dc, cols_n);
                col2im(dxd, dx_sn, dx_sc, dc, &s, p, b0, cnt);
            }
        }
    }
    for (int t = 0; threads > 1 && t < threads; t++) {  /* in thread order: the same sums every run */
        const float *part = scratch + t * per_thread + chunk + (grad_input ? chunk : 0);
        for (int64_t i = 0; i < wsize; i++) gw[i] += part[i];
    }
    rc = 0;
done:
    lt_tensor_release(&in);
    lt_tensor_release(&w);
    return rc;
}
