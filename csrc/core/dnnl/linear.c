/* The fully connected layer in bf16 through oneDNN's inner product (an entry of nn/linear.c's table):
 * its float32 input, weights and gradient of the output are converted to bf16 (the weights into
 * oneDNN's blocked layout), the products accumulate in float32, and the output, the input gradient and
 * the weight gradient come back float32. The layer's state keeps the primitives and buffers for the
 * batch sizes it has seen (training, evaluation, a last smaller batch).
 *
 * Determinism, as the convolution's (conv.c): with lt_deterministic the weight gradient is summed over
 * parts of the batch fixed by its size (wgrad.h). */
#include <stdlib.h>
#include <string.h>

#include "../nn/ops.h"
#include "../base/parallel.h"
#include "dnnl_common.h"
#include "wgrad.h"

#define ENTRIES 3
/* Rows per part of a deterministic weight gradient (a batch of 256 in 2 parts). The batch is the sum's
 * only dimension and each part writes a whole weight gradient: measured on a 1024 -> 512 layer at batch
 * 256, forward and backward, deterministic against not (fastest of each run, 3-5 pairs), parts of 64
 * rows cost 1.20x at one thread and 1.22x at two, of 128 rows 1.06x and 1.08x. */
#define WGRAD_MIN_ROWS 128

typedef struct key {
    int64_t v[5];  /* batch, in, out, threads, deterministic */
} key;

typedef struct entry {
    dnnl_primitive_desc_t fwd_pd;
    dnnl_primitive_t fwd, bwd_data;
    lt_dnnl_wgrad *wgrad;
    int64_t batch, in, out;
    lt_dnnl_md src_md, dst_md, bias_md, user_w_md;
    dnnl_memory_t m_src, m_w, m_bias, m_dst, m_scratch;
    dnnl_memory_t m_bd_w, m_bd_diff_dst, m_bd_diff_src, m_bd_scratch;
    lt_dnnl_reorder w_for_fwd, w_for_bwd, dw_to_user;
    void *src_bf16, *dout_bf16, *w_fwd, *w_bwd;
    float *zero_bias;
    lt_dnnl_scratch scratch;
} entry;

typedef struct state {
    key keys[ENTRIES];
    entry e[ENTRIES];
    lt_dnnl_lru lru;
} state;

static void entry_free(entry *e) {
    dnnl_primitive_t prims[] = {e->fwd, e->bwd_data};
    if (e->fwd_pd) dnnl_primitive_desc_destroy(e->fwd_pd);
    lt_dnnl_wgrad_free(e->wgrad);
    dnnl_memory_t mems[] = {e->m_src, e->m_w, e->m_bias, e->m_dst, e->m_scratch, e->m_bd_w, e->m_bd_diff_dst,
                            e->m_bd_diff_src, e->m_bd_scratch};
    lt_dnnl_destroy(prims, sizeof prims / sizeof *prims, mems, sizeof mems / sizeof *mems);
    lt_dnnl_reorder_free(&e->w_for_fwd);
    lt_dnnl_reorder_free(&e->w_for_bwd);
    lt_dnnl_reorder_free(&e->dw_to_user);
    lt_dnnl_md mds[] = {e->src_md, e->dst_md, e->bias_md, e->user_w_md};
    lt_dnnl_md_free_all(mds, sizeof mds / sizeof *mds);
    void *bufs[] = {e->src_bf16, e->dout_bf16, e->w_fwd, e->w_bwd, e->zero_bias, e->scratch.data};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    *e = (entry){0};
}

static void release(void *p) {
    state *st = p;
    if (!st) return;
    for (int i = 0; i < ENTRIES; i++) entry_free(&st->e[i]);
    free(st);
}

static int md2(lt_dnnl_md *md, int64_t a, int64_t b, dnnl_data_type_t t, dnnl_format_tag_t tag, lt_error *err) {
    dnnl_dims_t d = {a, b};
    return lt_dnnl_md_tag(md, 2, d, t, tag, "describing a matrix", err);
}

static int buffer(void **p, size_t bytes, lt_error *err) {
    *p = lt_dnnl_alloc(bytes);
    return *p ? 0 : lt_fail(err, "out of memory (%zu bytes)", bytes);
}

static int make_forward(entry *e, lt_linear_shape s, lt_error *err) {
    lt_dnnl_md w_any = NULL;
    dnnl_dims_t bias_dims = {s.out};
    dnnl_primitive_attr_t attr = NULL;
    int rc = -1;
    if (md2(&e->src_md, s.batch, s.in, dnnl_bf16, dnnl_ab, err) ||
        md2(&e->dst_md, s.batch, s.out, dnnl_f32, dnnl_ab, err) ||
        md2(&w_any, s.out, s.in, dnnl_bf16, dnnl_format_tag_any, err) ||
        md2(&e->user_w_md, s.out, s.in, dnnl_f32, dnnl_ab, err) ||
        lt_dnnl_md_tag(&e->bias_md, 1, bias_dims, dnnl_f32, dnnl_x, "bias", err) || lt_dnnl_attr(&attr, err) ||
        lt_dnnl_ip_fwd_pd(&e->fwd_pd, e->src_md, w_any, e->bias_md, e->dst_md, attr, err) ||
        lt_dnnl_check(dnnl_primitive_create(&e->fwd, e->fwd_pd), "creating a linear layer", err))
        goto done;
    lt_dnnl_cmd w_md = dnnl_primitive_desc_query_md(e->fwd_pd, dnnl_query_weights_md, 0);
    if (buffer(&e->w_fwd, dnnl_memory_desc_get_size(w_md), err) ||
        buffer(&e->src_bf16, (size_t)(s.batch * s.in) * sizeof(lt_bf16), err) ||
        lt_dnnl_reorder_make(&e->w_for_fwd, e->user_w_md, w_md, false, err) || lt_dnnl_memory(&e->m_src, e->src_md, err) ||
        lt_dnnl_memory(&e->m_w, w_md, err) || lt_dnnl_memory(&e->m_bias, e->bias_md, err) ||
        lt_dnnl_memory(&e->m_dst, e->dst_md, err) || lt_dnnl_want_scratch(&e->scratch, e->fwd_pd, &e->m_scratch, err))
        goto done;
    if (!(e->zero_bias = calloc((size_t)s.out, sizeof(float)))) {
        lt_fail(err, "out of memory");
        goto done;
    }
    rc = 0;
done:
    lt_dnnl_md_free(w_any);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* The weight gradient's primitive descriptor for `rows` rows (wgrad.h). */
static int wgrad_pd(const void *ctx, int64_t rows, lt_dnnl_cmd dw_md, dnnl_primitive_desc_t *pd, lt_error *err) {
    const entry *e = ctx;
    lt_dnnl_md src_md = NULL, diff_dst_md = NULL, dw_any = NULL;
    dnnl_primitive_attr_t attr = NULL;
    int rc = md2(&src_md, rows, e->in, dnnl_bf16, dnnl_ab, err) ||
                     md2(&diff_dst_md, rows, e->out, dnnl_bf16, dnnl_ab, err) ||
                     (!dw_md && md2(&dw_any, e->out, e->in, dnnl_f32, dnnl_format_tag_any, err)) ||
                     lt_dnnl_attr(&attr, err) ||
                     lt_dnnl_ip_bwd_weights_pd(pd, src_md, dw_md ? dw_md : dw_any, e->bias_md, diff_dst_md,
                                               rows == e->batch ? e->fwd_pd : NULL, attr, err)
                 ? -1 : 0;
    lt_dnnl_md mds[] = {src_md, diff_dst_md, dw_any};
    lt_dnnl_md_free_all(mds, 3);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

static int make_backward(entry *e, lt_linear_shape s, lt_error *err) {
    lt_dnnl_md w_any = NULL, diff_dst_md = NULL, diff_src_md = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t bd_pd = NULL;
    int rc = -1;
    if (md2(&w_any, s.out, s.in, dnnl_bf16, dnnl_format_tag_any, err) ||
        md2(&diff_dst_md, s.batch, s.out, dnnl_bf16, dnnl_ab, err) || md2(&diff_src_md, s.batch, s.in, dnnl_f32, dnnl_ab, err) ||
        lt_dnnl_attr(&attr, err) ||
        lt_dnnl_ip_bwd_data_pd(&bd_pd, diff_src_md, w_any, diff_dst_md, e->fwd_pd, attr, err) ||
        lt_dnnl_check(dnnl_primitive_create(&e->bwd_data, bd_pd), "creating a backward linear layer", err))
        goto done;
    e->wgrad = lt_dnnl_wgrad_new(s.batch, WGRAD_MIN_ROWS, lt_deterministic(), wgrad_pd, e, err);
    if (!e->wgrad) goto done;
    lt_dnnl_cmd bw_md = dnnl_primitive_desc_query_md(bd_pd, dnnl_query_weights_md, 0);
    if (buffer(&e->w_bwd, dnnl_memory_desc_get_size(bw_md), err) ||
        buffer(&e->dout_bf16, (size_t)(s.batch * s.out) * sizeof(lt_bf16), err) ||
        lt_dnnl_reorder_make(&e->w_for_bwd, e->user_w_md, bw_md, false, err) ||
        lt_dnnl_reorder_make(&e->dw_to_user, lt_dnnl_wgrad_md(e->wgrad), e->user_w_md, true, err) ||
        lt_dnnl_memory(&e->m_bd_w, bw_md, err) || lt_dnnl_memory(&e->m_bd_diff_dst, diff_dst_md, err) ||
        lt_dnnl_memory(&e->m_bd_diff_src, diff_src_md, err) ||
        lt_dnnl_want_scratch(&e->scratch, bd_pd, &e->m_bd_scratch, err))
        goto done;
    rc = 0;
done:
    lt_dnnl_md_free(w_any);
    lt_dnnl_md_free(diff_dst_md);
    lt_dnnl_md_free(diff_src_md);
    if (bd_pd) dnnl_primitive_desc_destroy(bd_pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

static entry *entry_for(lt_kernel_ctx *ctx, lt_linear_shape s) {
    if (!ctx->state) return lt_fail(ctx->err, "a oneDNN linear layer needs its layer's kernel handle"), NULL;
    state *st = *ctx->state;
    if (!st && !(st = *ctx->state = calloc(1, sizeof *st))) return lt_fail(ctx->err, "out of memory"), NULL;
    key k = {{s.batch, s.in, s.out, lt_threads_now(), lt_deterministic()}};
    bool fresh;
    int i = lt_dnnl_lru_slot(&st->lru, ENTRIES, st->keys, sizeof k, &k, &fresh);
    entry *e = &st->e[i];
    if (!fresh) return e;
    entry_free(e);
    st->keys[i] = k;
    e->batch = s.batch;
    e->in = s.in;
    e->out = s.out;
    if (make_forward(e, s, ctx->err)) {
        entry_free(e);
        st->lru.used[i] = false;
        return NULL;
    }
    return e;
}

/* From this many rows on. Each pass converts the float32 weights into bf16 (and the weight gradient
 * back), work that grows with the weights, not the batch; below it that costs more than bf16 saves.
 * Measured on one core of the development machine, forward and backward, fp32 / bf16 time: 1024 -> 512
 * 0.72 at batch 64, 1.07 at 128, 1.44 at 256, 2.0 at 1024; 512 -> 256 1.04 at 64, 1.42 at 128. */
#define MIN_BF16_BATCH 128

static bool supports(const lt_impl *self, const void *shape, lt_precision p) {
    (void)self;
    return p == LT_BF16 && lt_dnnl_bf16_available() && ((const lt_linear_shape *)shape)->batch >= MIN_BF16_BATCH;
}

static int forward(lt_kernel_ctx *ctx, float *out, const float *in, const float *weight, const float *bias,
                   lt_linear_shape s) {
    entry *e = entry_for(ctx, s);
    if (!e) return -1;
    lt_bf16_from_f32_n(e->src_bf16, in, s.batch * s.in);
    if (lt_dnnl_reorder_run(&e->w_for_fwd, weight, e->w_fwd, ctx->err) || lt_dnnl_bind(e->m_src, e->src_bf16, ctx->err) ||
        lt_dnnl_bind(e->m_w, e->w_fwd, ctx->err) || lt_dnnl_bind(e->m_bias, bias ? bias : e->zero_bias, ctx->err) ||
        lt_dnnl_bind(e->m_dst, out, ctx->err) || (e->m_scratch && lt_dnnl_bind(e->m_scratch, e->scratch.data, ctx->err)))
        return -1;
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, e->m_src}, {DNNL_ARG_WEIGHTS, e->m_w}, {DNNL_ARG_BIAS, e->m_bias},
                               {DNNL_ARG_DST, e->m_dst}, {DNNL_ARG_SCRATCHPAD, e->m_scratch}};
    return lt_dnnl_run(e->fwd, e->m_scratch ? 5 : 4, args, "running a linear layer", ctx->err);
}

static int backward(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout, const float *in,
                    const float *weight, lt_linear_shape s) {
    entry *e = entry_for(ctx, s);
    if (!e || (!e->bwd_data && make_backward(e, s, ctx->err))) return -1;
    lt_bf16_from_f32_n(e->dout_bf16, dout, s.batch * s.out);
    lt_bf16_from_f32_n(e->src_bf16, in, s.batch * s.in);  /* the forward pass's, converted again: it may be gone */
    lt_error *err = ctx->err;
    if (dinp) {
        if (lt_dnnl_reorder_run(&e->w_for_bwd, weight, e->w_bwd, err) || lt_dnnl_bind(e->m_bd_w, e->w_bwd, err) ||
            lt_dnnl_bind(e->m_bd_diff_dst, e->dout_bf16, err) || lt_dnnl_bind(e->m_bd_diff_src, dinp, err) ||
            (e->m_bd_scratch && lt_dnnl_bind(e->m_bd_scratch, e->scratch.data, err)))
            return -1;
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_WEIGHTS, e->m_bd_w}, {DNNL_ARG_DIFF_DST, e->m_bd_diff_dst},
                                   {DNNL_ARG_DIFF_SRC, e->m_bd_diff_src}, {DNNL_ARG_SCRATCHPAD, e->m_bd_scratch}};
        if (lt_dnnl_run(e->bwd_data, e->m_bd_scratch ? 4 : 3, args, "running a linear layer's backward pass", err))
            return -1;
    }
    const void *dw;
    const float *db;
    if (lt_dnnl_wgrad_run(e->wgrad, e->src_bf16, e->dout_bf16, &dw, &db, err) ||
        lt_dnnl_reorder_run(&e->dw_to_user, dw, dweight, err))
        return -1;
    if (dbias)
        for (int64_t o = 0; o < s.out; o++) dbias[o] += db[o];
    return 0;
}

const lt_linear_impl lt_linear_dnnl = {
    .base = {.name = "dnnl", .supports = supports, .release = release},
    .forward = forward,
    .backward = backward,
};
