/* oneDNN convolutions (see conv.h).
 *
 * Each shape gets an entry: the forward, backward-data and backward-weights primitives (the last two
 * made on the first backward pass), the reorders between the layer's float32 weights and oneDNN's
 * blocked ones, and the buffers those need. Activations are passed as they are (nhwc), so a training
 * step moves no activation through a reorder except the first layer's float32 image batch.
 *
 * Thread counts: oneDNN fixes a primitive's partition of the work when it is made, from OpenMP's
 * thread count then. Forward and backward-data results do not depend on it (each output is summed by
 * one thread), the weight gradient does (the batch is split between threads and their sums added).
 * Entries are made again when the thread count changes; with types.deterministic the weight
 * gradient is summed over parts of the batch fixed by its size (wgrad.h), so it is the same at any
 * thread count. (Checked at 1 to 4 threads, float32 and bf16, by spec/nn_fp32_onednn_spec.lua,
 * spec/nn_bf16_spec.lua and spec/determinism_spec.lua; float32 layers always ask for it.) */
#include "conv.h"

#include <stdlib.h>
#include <string.h>

#include "../base/parallel.h"
#include "dnnl_common.h"
#include "wgrad.h"

#define ENTRIES 4

/* What an entry was made for, as numbers (compared bytewise, so no struct padding takes part). */
#define KEY_LEN 22
typedef struct key {
    int64_t v[KEY_LEN];
} key;

static key key_of(lt_dnnl_conv_shape s, lt_dnnl_conv_types t, int threads) {
    key k = {{s.n, s.in_c, s.in_h, s.in_w, s.out_c, s.out_h, s.out_w, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w,
              s.pad_h, s.pad_w, t.compute, t.src, t.dst, t.src_strides[0], t.src_strides[1], t.src_strides[2],
              t.src_strides[3], t.deterministic, threads}};
    return k;
}

/* The layer's float32 (oihw) weights as a pass's weight reorder reads them: themselves, or copied
 * into a zeroed buffer of more channels (see padded_shape). */
typedef struct padded_weights {
    lt_dnnl_md md, view;          /* the padded weights, and the layer's channels in them */
    lt_dnnl_reorder in;           /* the layer's weights -> view; none without padding */
    void *buf;
} padded_weights;

typedef struct entry {
    lt_dnnl_conv_shape s;
    lt_dnnl_conv_types t;
    lt_dnnl_conv_shape cs, bs;  /* the primitives' shapes (see padded_shape): forward and weight gradient, backward data */

    lt_dnnl_md src_md, user_src_md, dst_md, bias_md, user_w_md;
    lt_dnnl_md src_view_md;  /* the input's channels in the primitives' input (src_md) */
    lt_dnnl_md bd_dst_md, bd_dst_view_md;  /* backward data's output gradient, the layer's channels in it */
    padded_weights w_fwd_f32, w_bwd_f32;
    dnnl_primitive_desc_t fwd_pd;
    dnnl_primitive_t fwd, bwd_data;
    dnnl_memory_t m_src, m_w, m_bias, m_dst, m_scratch;        /* forward */
    dnnl_memory_t m_bd_w, m_bd_diff_dst, m_bd_diff_src, m_bd_scratch; /* backward data */
    lt_dnnl_wgrad *wgrad;                                      /* backward weights */

    bool convert_src;                 /* the input is not what the primitives take: convert it */
    lt_dnnl_reorder src_to_compute, compute_to_src, w_for_fwd, w_for_bwd, dw_to_user, dw_to_padded, dst_to_padded;
    void *src_buf, *w_fwd_buf, *w_bwd_buf, *diff_src_buf, *dw_padded, *diff_dst_padded;
    float *zero_bias;
    lt_dnnl_scratch scratch;
} entry;

struct lt_dnnl_conv {
    key keys[ENTRIES];
    entry e[ENTRIES];
    lt_dnnl_lru lru;
};

/* Strides and padding of the three passes' descriptors; the right/bottom padding is whatever makes
 * the output size come out as given. */
static lt_dnnl_geometry geometry_of(lt_dnnl_conv_shape s) {
    return (lt_dnnl_geometry){.strides = {s.stride_h, s.stride_w}, .pad_l = {s.pad_h, s.pad_w},
                      .pad_r = {(s.out_h - 1) * s.stride_h + s.kernel_h - s.in_h - s.pad_h,
                                (s.out_w - 1) * s.stride_w + s.kernel_w - s.in_w - s.pad_w}};
}

static void entry_free(entry *e) {
    dnnl_primitive_t prims[] = {e->fwd, e->bwd_data};
    if (e->fwd_pd) dnnl_primitive_desc_destroy(e->fwd_pd);
    lt_dnnl_wgrad_free(e->wgrad);
    dnnl_memory_t mems[] = {e->m_src, e->m_w, e->m_bias, e->m_dst, e->m_scratch, e->m_bd_w, e->m_bd_diff_dst,
                            e->m_bd_diff_src, e->m_bd_scratch};
    lt_dnnl_destroy(prims, sizeof prims / sizeof *prims, mems, sizeof mems / sizeof *mems);
    lt_dnnl_reorder *rs[] = {&e->src_to_compute, &e->compute_to_src, &e->w_for_fwd, &e->w_for_bwd, &e->dw_to_user,
                             &e->w_fwd_f32.in, &e->w_bwd_f32.in, &e->dw_to_padded, &e->dst_to_padded};
    for (size_t i = 0; i < sizeof rs / sizeof *rs; i++) lt_dnnl_reorder_free(rs[i]);
    lt_dnnl_md mds[] = {e->src_md, e->user_src_md, e->dst_md, e->bias_md, e->user_w_md, e->src_view_md,
                        e->bd_dst_md, e->bd_dst_view_md, e->w_fwd_f32.md, e->w_fwd_f32.view, e->w_bwd_f32.md,
                        e->w_bwd_f32.view};
    lt_dnnl_md_free_all(mds, sizeof mds / sizeof *mds);
    free(e->src_buf);
    free(e->w_fwd_buf);
    free(e->w_bwd_buf);
    free(e->diff_src_buf);
    free(e->w_fwd_f32.buf);
    free(e->w_bwd_f32.buf);
    free(e->dw_padded);
    free(e->diff_dst_padded);
    free(e->zero_bias);
    free(e->scratch.data);
    *e = (entry){0};
}

lt_dnnl_conv *lt_dnnl_conv_new(lt_error *err) {
    if (!lt_dnnl_engine(err)) return NULL;
    lt_dnnl_conv *c = calloc(1, sizeof *c);
    if (!c) lt_fail(err, "out of memory");
    return c;
}

void lt_dnnl_conv_free(lt_dnnl_conv *c) {
    if (!c) return;
    for (int i = 0; i < ENTRIES; i++) entry_free(&c->e[i]);
    free(c);
}

static int weights_md(lt_dnnl_md *md, lt_dnnl_conv_shape s, dnnl_data_type_t t, dnnl_format_tag_t tag, lt_error *err) {
    dnnl_dims_t dims = {s.out_c, s.in_c, s.kernel_h, s.kernel_w};
    return lt_dnnl_md_tag(md, 4, dims, t, tag, "describing weights", err);
}

/* A buffer for a memory descriptor, and a reorder into it from src_md. */
static int converted(lt_dnnl_reorder *r, void **buf, lt_dnnl_cmd from, lt_dnnl_cmd to, lt_error *err) {
    *buf = lt_dnnl_alloc(dnnl_memory_desc_get_size(to));
    if (!*buf) return lt_fail(err, "out of memory");
    return lt_dnnl_reorder_make(r, from, to, false, err);
}

/* oneDNN 2.6's bf16 kernels take the channels they sum over in pairs: with an odd count, the last
 * channel's pair is the next pixel's first channel times a zero weight, so a NaN or an inf there
 * spreads to outputs whose window does not hold it (0 * inf is NaN; an all-+inf input gave NaN, not
 * +inf). Its 1x1 backward-data kernel also gets the input gradient wrong by 100-1000 % with an odd
 * number of output channels when the output has a multiple of 30 pixels (5x6, 3x10, 30x31). So the
 * primitives get even counts, whatever the CPU: the forward pass and the weight gradient an input
 * with a zero channel more (converted into a buffer of that layout; the first layer's image batch is
 * converted anyway), backward data also an output gradient with a zero channel more; the weights are
 * copied beside zeros. */
static lt_dnnl_conv_shape padded_shape(lt_dnnl_conv_shape s, lt_dnnl_conv_types t, bool pad_out) {
    if (t.compute == LT_BFLOAT16) {
        s.in_c += s.in_c % 2;
        if (pad_out) s.out_c += s.out_c % 2;
    }
    return s;
}

/* A descriptor of a dense nhwc activation's first c channels of p, in type t. */
static int channels_view(lt_dnnl_md *md, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, lt_dtype t,
                         lt_error *err) {
    int64_t strides[4] = {p * h * w, 1, w * p, p};
    return lt_dnnl_md_strided(md, n, c, h, w, t, strides, err);
}

/* A zeroed buffer of a descriptor's size, and a reorder into it from `from` to `to` (a view of it). */
static int zeroed_view(lt_dnnl_reorder *r, void **buf, lt_dnnl_cmd whole, lt_dnnl_cmd from, lt_dnnl_cmd to,
                       lt_error *err) {
    size_t bytes = dnnl_memory_desc_get_size(whole);
    *buf = lt_dnnl_alloc(bytes);
    if (!*buf) return lt_fail(err, "out of memory");
    memset(*buf, 0, bytes);
    return lt_dnnl_reorder_make(r, from, to, false, err);
}

/* The float32 weights of shape p for a layer of shape s. */
static int padded_weights_make(padded_weights *w, const entry *e, lt_dnnl_conv_shape p, lt_error *err) {
    lt_dnnl_conv_shape s = e->s;
    if (weights_md(&w->md, p, dnnl_f32, dnnl_oihw, err)) return -1;
    if (p.in_c == s.in_c && p.out_c == s.out_c) return 0;
    dnnl_dims_t dims = {s.out_c, s.in_c, s.kernel_h, s.kernel_w};
    dnnl_dims_t strides = {p.in_c * s.kernel_h * s.kernel_w, s.kernel_h * s.kernel_w, s.kernel_w, 1};
    return lt_dnnl_md_strides(&w->view, 4, dims, dnnl_f32, strides, "describing weights", err) ||
           zeroed_view(&w->in, &w->buf, w->md, e->user_w_md, w->view, err);
}

static const float *padded_weights_of(padded_weights *w, const float *weight, lt_error *err) {
    if (!w->buf) return weight;
    return lt_dnnl_reorder_run(&w->in, weight, w->buf, err) ? NULL : w->buf;
}

static bool is_padded(const entry *e) { return e->cs.in_c != e->s.in_c; }

static int make_forward(entry *e, lt_error *err) {
    lt_dnnl_conv_shape s = e->s, cs = e->cs;
    lt_dnnl_conv_types t = e->t;
    if (!lt_dnnl_engine(err)) return -1;
    if (lt_dnnl_md_4d(&e->src_md, s.n, cs.in_c, s.in_h, s.in_w, t.compute, true, err) ||
        channels_view(&e->src_view_md, s.n, s.in_c, s.in_h, s.in_w, cs.in_c, t.compute, err) ||
        lt_dnnl_md_strided(&e->user_src_md, s.n, s.in_c, s.in_h, s.in_w, t.src, t.src_strides, err) ||
        lt_dnnl_md_4d(&e->dst_md, s.n, s.out_c, s.out_h, s.out_w, t.dst, true, err) ||
        weights_md(&e->user_w_md, s, dnnl_f32, dnnl_oihw, err) || padded_weights_make(&e->w_fwd_f32, e, cs, err))
        return -1;
    /* the primitives take nhwc in the compute type (oneDNN's fast kernels want one layout throughout):
     * a planar image batch, a float32 input of a bf16 layer or one with padded channels is converted
     * first */
    e->convert_src = is_padded(e) || !dnnl_memory_desc_equal(e->src_md, e->user_src_md);
    dnnl_dims_t bias_dims = {s.out_c};
    lt_dnnl_md w_any = NULL;
    dnnl_primitive_attr_t attr = NULL;
    lt_dnnl_geometry g = geometry_of(s);
    int rc = -1;
    if (lt_dnnl_md_tag(&e->bias_md, 1, bias_dims, dnnl_f32, dnnl_x, "bias", err) ||
        weights_md(&w_any, cs, lt_dnnl_type(t.compute), dnnl_format_tag_any, err) || lt_dnnl_attr(&attr, err) ||
        lt_dnnl_conv_fwd_pd(&e->fwd_pd, e->src_md, w_any, e->bias_md, e->dst_md, &g, attr, err) ||
        lt_dnnl_check(dnnl_primitive_create(&e->fwd, e->fwd_pd), "creating a convolution", err))
        goto done;
    lt_dnnl_cmd w_md = dnnl_primitive_desc_query_md(e->fwd_pd, dnnl_query_weights_md, 0);
    if (converted(&e->w_for_fwd, &e->w_fwd_buf, e->w_fwd_f32.md, w_md, err) ||
        lt_dnnl_memory(&e->m_src, e->src_md, err) || lt_dnnl_memory(&e->m_w, w_md, err) ||
        lt_dnnl_memory(&e->m_bias, e->bias_md, err) || lt_dnnl_memory(&e->m_dst, e->dst_md, err) ||
        lt_dnnl_want_scratch(&e->scratch, e->fwd_pd, &e->m_scratch, err))
        goto done;
    if (e->convert_src && zeroed_view(&e->src_to_compute, &e->src_buf, e->src_md, e->user_src_md, e->src_view_md, err))
        goto done;
    e->zero_bias = calloc((size_t)s.out_c, sizeof(float));  /* for layers without a bias */
    if (!e->zero_bias) { lt_fail(err, "out of memory"); goto done; }
    rc = 0;
done:
    lt_dnnl_md_free(w_any);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* With an odd number of output channels (bf16), the output gradient is copied beside a zero channel
 * and the weights beside a zero output channel (see padded_shape). */
static int make_backward_data(entry *e, lt_error *err) {
    lt_dnnl_conv_shape s = e->bs;
    bool pad_out = s.out_c != e->s.out_c;
    lt_dnnl_md w_any = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    lt_dnnl_geometry g = geometry_of(s);
    int rc = -1;
    if (weights_md(&w_any, s, lt_dnnl_type(e->t.compute), dnnl_format_tag_any, err) ||
        lt_dnnl_md_4d(&e->bd_dst_md, s.n, s.out_c, s.out_h, s.out_w, e->t.dst, true, err) ||
        channels_view(&e->bd_dst_view_md, s.n, e->s.out_c, s.out_h, s.out_w, s.out_c, e->t.dst, err) ||
        padded_weights_make(&e->w_bwd_f32, e, s, err) ||
        (pad_out &&
         zeroed_view(&e->dst_to_padded, &e->diff_dst_padded, e->bd_dst_md, e->dst_md, e->bd_dst_view_md, err)) ||
        lt_dnnl_attr(&attr, err) ||
        lt_dnnl_conv_bwd_data_pd(&pd, e->src_md, w_any, e->bd_dst_md, &g, pad_out ? NULL : e->fwd_pd, attr, err) ||
        lt_dnnl_check(dnnl_primitive_create(&e->bwd_data, pd), "creating a backward convolution", err))
        goto done;
    lt_dnnl_cmd w_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (converted(&e->w_for_bwd, &e->w_bwd_buf, e->w_bwd_f32.md, w_md, err) || lt_dnnl_memory(&e->m_bd_w, w_md, err) ||
        lt_dnnl_memory(&e->m_bd_diff_dst, e->bd_dst_md, err) || lt_dnnl_memory(&e->m_bd_diff_src, e->src_md, err) ||
        lt_dnnl_want_scratch(&e->scratch, pd, &e->m_bd_scratch, err))
        goto done;
    if (e->convert_src) {  /* the gradient in the compute type, then reordered into the caller's */
        e->diff_src_buf = lt_dnnl_alloc(dnnl_memory_desc_get_size(e->src_md));
        if (!e->diff_src_buf) { lt_fail(err, "out of memory"); goto done; }
        if (lt_dnnl_reorder_make(&e->compute_to_src, e->src_view_md, e->user_src_md, false, err)) goto done;
    }
    rc = 0;
done:
    lt_dnnl_md_free(w_any);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* The weight gradient's primitive descriptor for `rows` images (wgrad.h). */
static int wgrad_pd(const void *ctx, int64_t rows, lt_dnnl_cmd dw_md, dnnl_primitive_desc_t *pd, lt_error *err) {
    const entry *e = ctx;
    lt_dnnl_conv_shape s = e->cs;
    lt_dnnl_md src_md = NULL, dst_md = NULL, dw_any = NULL;
    dnnl_primitive_attr_t attr = NULL;
    lt_dnnl_geometry g = geometry_of(s);
    int rc = lt_dnnl_md_4d(&src_md, rows, s.in_c, s.in_h, s.in_w, e->t.compute, true, err) ||
                     lt_dnnl_md_4d(&dst_md, rows, s.out_c, s.out_h, s.out_w, e->t.dst, true, err) ||
                     (!dw_md && weights_md(&dw_any, s, dnnl_f32, dnnl_format_tag_any, err)) ||
                     lt_dnnl_attr(&attr, err) ||
                     lt_dnnl_conv_bwd_weights_pd(pd, src_md, dw_md ? dw_md : dw_any, e->bias_md, dst_md, &g,
                                                 rows == s.n ? e->fwd_pd : NULL, attr, err)
                 ? -1 : 0;
    lt_dnnl_md mds[] = {src_md, dst_md, dw_any};
    lt_dnnl_md_free_all(mds, 3);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* A deterministic weight gradient's parts have at least this many images and output pixels: each
 * part writes a whole weight gradient, which the parts' sum reads again, so small images make larger
 * parts (the reference network's batch of 64: 4 parts of 16 images from 32x32 to 8x8, 2 at 4x4). */
#define WGRAD_MIN_IMAGES 16
#define WGRAD_MIN_PIXELS 512

static int make_backward_weights(entry *e, lt_error *err) {
    int64_t pixels = e->s.out_h * e->s.out_w, min_images = (WGRAD_MIN_PIXELS + pixels - 1) / pixels;
    if (min_images < WGRAD_MIN_IMAGES) min_images = WGRAD_MIN_IMAGES;
    e->wgrad = lt_dnnl_wgrad_new(e->s.n, min_images, e->t.deterministic, wgrad_pd, e, err);
    if (!e->wgrad) return -1;
    if (!is_padded(e)) return lt_dnnl_reorder_make(&e->dw_to_user, lt_dnnl_wgrad_md(e->wgrad), e->user_w_md, true, err);
    /* oneDNN's layout -> float32 oihw with the padding channel -> the layer's channels, added */
    e->dw_padded = lt_dnnl_alloc(dnnl_memory_desc_get_size(e->w_fwd_f32.md));
    if (!e->dw_padded) return lt_fail(err, "out of memory");
    return lt_dnnl_reorder_make(&e->dw_to_padded, lt_dnnl_wgrad_md(e->wgrad), e->w_fwd_f32.md, false, err) ||
                   lt_dnnl_reorder_make(&e->dw_to_user, e->w_fwd_f32.view, e->user_w_md, true, err)
               ? -1 : 0;
}

/* The weight gradient in oneDNN's layout added into the layer's. */
static int add_weight_grad(entry *e, const void *dw, float *grad_weight, lt_error *err) {
    if (is_padded(e)) {
        if (lt_dnnl_reorder_run(&e->dw_to_padded, dw, e->dw_padded, err)) return -1;
        dw = e->dw_padded;
    }
    return lt_dnnl_reorder_run(&e->dw_to_user, dw, grad_weight, err);
}

/* The entry for this shape, made (evicting the least recently used) when there is none. */
static entry *entry_for(lt_dnnl_conv *c, lt_dnnl_conv_shape s, lt_dnnl_conv_types t, lt_error *err) {
    key k = key_of(s, t, lt_threads_now());
    bool fresh;
    int i = lt_dnnl_lru_slot(&c->lru, ENTRIES, c->keys, sizeof k, &k, &fresh);
    entry *e = &c->e[i];
    if (!fresh) return e;
    entry_free(e);
    c->keys[i] = k;
    e->s = s;
    e->t = t;
    e->cs = padded_shape(s, t, false);
    e->bs = padded_shape(s, t, true);
    if (make_forward(e, err)) {
        entry_free(e);
        c->lru.used[i] = false;
        return NULL;
    }
    return e;
}

static int check_types(lt_dnnl_conv_types t, lt_error *err) {
    if (t.compute == LT_BFLOAT16 && t.dst != LT_BFLOAT16)
        return lt_fail(err, "a bf16 convolution writes bf16 outputs");
    if (t.compute == LT_FLOAT32 && t.src != LT_FLOAT32) return lt_fail(err, "a float32 convolution reads float32 inputs");
    return 0;
}

/* The input as the primitives take it: itself, or converted into the entry's buffer. */
static const void *compute_src(entry *e, const void *input, lt_error *err) {
    if (!e->convert_src) return input;
    return lt_dnnl_reorder_run(&e->src_to_compute, input, e->src_buf, err) ? NULL : e->src_buf;
}

int lt_dnnl_conv_forward(lt_dnnl_conv *c, void *out, const void *input, const float *weight, const float *bias,
                         lt_dnnl_conv_shape s, lt_dnnl_conv_types t, lt_error *err) {
    if (check_types(t, err)) return -1;
    entry *e = entry_for(c, s, t, err);
    if (!e) return -1;
    const void *src = compute_src(e, input, err);
    const float *w = padded_weights_of(&e->w_fwd_f32, weight, err);
    if (!src || !w || lt_dnnl_reorder_run(&e->w_for_fwd, w, e->w_fwd_buf, err)) return -1;
    if (!bias) bias = e->zero_bias;
    if (lt_dnnl_bind(e->m_src, src, err) || lt_dnnl_bind(e->m_w, e->w_fwd_buf, err) || lt_dnnl_bind(e->m_bias, bias, err) ||
        lt_dnnl_bind(e->m_dst, out, err) || (e->m_scratch && lt_dnnl_bind(e->m_scratch, e->scratch.data, err)))
        return -1;
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, e->m_src}, {DNNL_ARG_WEIGHTS, e->m_w}, {DNNL_ARG_BIAS, e->m_bias},
                               {DNNL_ARG_DST, e->m_dst}, {DNNL_ARG_SCRATCHPAD, e->m_scratch}};
    return lt_dnnl_run(e->fwd, e->m_scratch ? 5 : 4, args, "running a convolution", err);
}

int lt_dnnl_conv_backward(lt_dnnl_conv *c, void *grad_input, float *grad_weight, float *grad_bias,
                          const void *grad_output, const void *input, const float *weight, lt_dnnl_conv_shape s,
                          lt_dnnl_conv_types t, lt_error *err) {
    if (check_types(t, err)) return -1;
    entry *e = entry_for(c, s, t, err);
    if (!e) return -1;
    if (grad_input) {
        if (!e->bwd_data && make_backward_data(e, err)) return -1;
        void *diff_src = e->convert_src ? e->diff_src_buf : grad_input;
        const void *diff_dst = grad_output;
        if (e->diff_dst_padded) {
            if (lt_dnnl_reorder_run(&e->dst_to_padded, grad_output, e->diff_dst_padded, err)) return -1;
            diff_dst = e->diff_dst_padded;
        }
        const float *w = padded_weights_of(&e->w_bwd_f32, weight, err);
        if (!w || lt_dnnl_reorder_run(&e->w_for_bwd, w, e->w_bwd_buf, err) || lt_dnnl_bind(e->m_bd_w, e->w_bwd_buf, err) ||
            lt_dnnl_bind(e->m_bd_diff_dst, diff_dst, err) || lt_dnnl_bind(e->m_bd_diff_src, diff_src, err) ||
            (e->m_bd_scratch && lt_dnnl_bind(e->m_bd_scratch, e->scratch.data, err)))
            return -1;
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_WEIGHTS, e->m_bd_w}, {DNNL_ARG_DIFF_DST, e->m_bd_diff_dst},
                                   {DNNL_ARG_DIFF_SRC, e->m_bd_diff_src}, {DNNL_ARG_SCRATCHPAD, e->m_bd_scratch}};
        if (lt_dnnl_run(e->bwd_data, e->m_bd_scratch ? 4 : 3, args, "running a convolution's backward pass", err)) return -1;
        if (e->convert_src && lt_dnnl_reorder_run(&e->compute_to_src, diff_src, grad_input, err)) return -1;
    }
    if (!e->wgrad && make_backward_weights(e, err)) return -1;
    const void *src = compute_src(e, input, err), *dw;
    const float *db;
    if (!src || lt_dnnl_wgrad_run(e->wgrad, src, grad_output, &dw, &db, err) ||
        add_weight_grad(e, dw, grad_weight, err))
        return -1;
    if (grad_bias)
        for (int64_t k = 0; k < s.out_c; k++) grad_bias[k] += db[k];
    return 0;
}
