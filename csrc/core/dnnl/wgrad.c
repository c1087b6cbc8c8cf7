#include "wgrad.h"

#include <omp.h>
#include <stdlib.h>

#include "../base/parallel.h"

/* Each part holds a whole weight gradient (AirNet's 256 -> 256 3x3: 2.4 MB): at most this many. */
#define MAX_PARTS 8

typedef struct part {
    int64_t row0, rows;
    dnnl_primitive_t prim;  /* w->prims[0] or [1], not owned */
    dnnl_stream_t stream;   /* its own: parts run at once on different threads */
    dnnl_memory_t src, diff_dst, diff_w, diff_b, scratch;
    void *dw, *scratch_buf;
    float *db;
    dnnl_status_t status;
} part;

struct lt_dnnl_wgrad {
    int parts;
    bool deterministic;
    dnnl_primitive_t prims[2];     /* for the parts' two sizes (nearly equal ranges) */
    lt_dnnl_md dw_md;              /* a copy of the first size's choice, which the second size takes too */
    size_t dw_bytes, db_count, src_row_bytes, dst_row_bytes;
    part p[LT_MAX_PARTS];
};

void lt_dnnl_wgrad_free(lt_dnnl_wgrad *w) {
    if (!w) return;
    for (int i = 0; i < w->parts; i++) {
        part *p = &w->p[i];
        dnnl_memory_t mems[] = {p->src, p->diff_dst, p->diff_w, p->diff_b, p->scratch};
        lt_dnnl_destroy(NULL, 0, mems, sizeof mems / sizeof *mems);
        if (p->stream) dnnl_stream_destroy(p->stream);
        free(p->dw);
        free(p->db);
        free(p->scratch_buf);
    }
    lt_dnnl_destroy(w->prims, 2, NULL, 0);
    lt_dnnl_md_free(w->dw_md);
    free(w);
}

lt_dnnl_cmd lt_dnnl_wgrad_md(const lt_dnnl_wgrad *w) { return w->dw_md; }

/* Part i's memory objects and buffers, for a primitive descriptor of its row count. */
static int make_part(lt_dnnl_wgrad *w, part *p, dnnl_primitive_desc_t pd, lt_error *err) {
    dnnl_engine_t eng = lt_dnnl_engine(err);
    if (!eng) return -1;
    lt_dnnl_cmd src = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
                dst = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_dst_md, 0),
                db = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 1),
                scratch = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t scratch_bytes = scratch ? dnnl_memory_desc_get_size(scratch) : 0;
    p->dw = lt_dnnl_alloc(w->dw_bytes);
    p->db = lt_dnnl_alloc(w->db_count * sizeof(float));
    if (scratch_bytes) p->scratch_buf = lt_dnnl_alloc(scratch_bytes);
    if (!p->dw || !p->db || (scratch_bytes && !p->scratch_buf)) return lt_fail(err, "out of memory");
    if (lt_dnnl_check(dnnl_stream_create(&p->stream, eng, dnnl_stream_default_flags), "creating a stream", err) ||
        lt_dnnl_memory(&p->src, src, err) || lt_dnnl_memory(&p->diff_dst, dst, err) ||
        lt_dnnl_memory(&p->diff_w, w->dw_md, err) || lt_dnnl_memory(&p->diff_b, db, err) ||
        (scratch_bytes && lt_dnnl_memory(&p->scratch, scratch, err)) ||
        lt_dnnl_bind(p->diff_w, p->dw, err) || lt_dnnl_bind(p->diff_b, p->db, err) ||
        (p->scratch && lt_dnnl_bind(p->scratch, p->scratch_buf, err)))
        return -1;
    return 0;
}

/* The primitive for `rows` rows (slot k), made for one thread when deterministic, and the parts of
 * that size. */
static int make_size(lt_dnnl_wgrad *w, int k, int64_t rows, bool deterministic, lt_dnnl_wgrad_pd_fn make,
                     const void *ctx, lt_error *err) {
    dnnl_primitive_desc_t pd = NULL;
    int saved = omp_get_max_threads(), rc = -1;
    if (deterministic) omp_set_num_threads(1);
    if (make(ctx, rows, k ? w->dw_md : NULL, &pd, err) ||
        lt_dnnl_check(dnnl_primitive_create(&w->prims[k], pd), "creating a weight gradient", err))
        goto done;
    if (k == 0) {
        if (lt_dnnl_md_clone(&w->dw_md, dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 0), err)) goto done;
        w->dw_bytes = dnnl_memory_desc_get_size(w->dw_md);
        w->db_count = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 1)) /
                      sizeof(float);
        w->src_row_bytes = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0)) / rows;
        w->dst_row_bytes = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_diff_dst_md, 0)) / rows;
    }
    for (int i = 0; i < w->parts; i++)
        if (w->p[i].rows == rows) {
            w->p[i].prim = w->prims[k];
            if (make_part(w, &w->p[i], pd, err)) goto done;
        }
    rc = 0;
done:
    if (deterministic) omp_set_num_threads(saved);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return rc;
}

lt_dnnl_wgrad *lt_dnnl_wgrad_new(int64_t rows, int64_t min_rows, bool deterministic, lt_dnnl_wgrad_pd_fn make,
                                 const void *ctx, lt_error *err) {
    lt_dnnl_wgrad *w = calloc(1, sizeof *w);
    if (!w) return lt_fail(err, "out of memory"), NULL;
    w->deterministic = deterministic;
    w->parts = deterministic ? lt_parts_for(rows, min_rows) : 1;
    if (w->parts > MAX_PARTS) w->parts = MAX_PARTS;
    for (int i = 0; i < w->parts; i++) {
        int64_t end;
        lt_split_range(rows, w->parts, i, &w->p[i].row0, &end);
        w->p[i].rows = end - w->p[i].row0;
    }
    int64_t big = w->p[0].rows, small = w->p[w->parts - 1].rows;  /* the first ranges are the longer */
    if (make_size(w, 0, big, deterministic, make, ctx, err) ||
        (small != big && make_size(w, 1, small, deterministic, make, ctx, err))) {
        lt_dnnl_wgrad_free(w);
        return NULL;
    }
    return w;
}

static dnnl_status_t run_part(const lt_dnnl_wgrad *w, const part *p, const char *src, const char *diff_dst) {
    dnnl_status_t st = dnnl_memory_set_data_handle(p->src, (void *)(src + p->row0 * w->src_row_bytes));
    if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->diff_dst, (void *)(diff_dst + p->row0 * w->dst_row_bytes));
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, p->src}, {DNNL_ARG_DIFF_DST, p->diff_dst},
                               {DNNL_ARG_DIFF_WEIGHTS, p->diff_w}, {DNNL_ARG_DIFF_BIAS, p->diff_b},
                               {DNNL_ARG_SCRATCHPAD, p->scratch}};
    if (st == dnnl_success) st = dnnl_primitive_execute(p->prim, p->stream, p->scratch ? 5 : 4, args);
    if (st == dnnl_success) st = dnnl_stream_wait(p->stream);
    return st;
}

int lt_dnnl_wgrad_run(lt_dnnl_wgrad *w, const void *src, const void *diff_dst, const void **diff_w,
                      const float **diff_b, lt_error *err) {
    int parts = w->parts;
    if (parts == 1) {
        /* a one-thread primitive; but some (oneDNN's own gemm) take the thread count when they run */
        int saved = omp_get_max_threads();
        if (w->deterministic) omp_set_num_threads(1);
        w->p[0].status = run_part(w, &w->p[0], src, diff_dst);
        if (w->deterministic) omp_set_num_threads(saved);
    } else {  /* inside the team (or at one thread), oneDNN runs each part on one thread */
        int threads = lt_threads_for_parts(parts, LT_PARALLEL_GRAIN, LT_PARALLEL_GRAIN);
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int i = 0; i < parts; i++) w->p[i].status = run_part(w, &w->p[i], src, diff_dst);
    }
    for (int i = 0; i < parts; i++)
        if (lt_dnnl_check(w->p[i].status, "running a weight gradient", err)) return -1;
    /* the parts' sums, added in part order whatever thread computed them */
    if (parts > 1) {
        float *dw = w->p[0].dw, *db = w->p[0].db;
        int64_t n = (int64_t)(w->dw_bytes / sizeof(float));
        int threads = lt_threads_for(n, LT_PARALLEL_GRAIN);
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t j = 0; j < n; j++)
            for (int i = 1; i < parts; i++) dw[j] += ((const float *)w->p[i].dw)[j];
        for (size_t k = 0; k < w->db_count; k++)
            for (int i = 1; i < parts; i++) db[k] += w->p[i].db[k];
    }
    *diff_w = w->p[0].dw;
    *diff_b = w->p[0].db;
    return 0;
}
