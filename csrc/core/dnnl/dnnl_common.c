#include "dnnl_common.h"

#include <oneapi/dnnl/dnnl_config.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static dnnl_status_t init_status = dnnl_success;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* oneDNN's own cache of primitives (process-wide, keyed by shape) holds 1024 by default, each with its
 * generated code and buffers: over many input sizes it grew to half of the resident memory (issue 24).
 * The layers keep the primitives of their last few shapes themselves (lt_dnnl_lru), so the cache only
 * saves their making again after an eviction or for another layer of the same shape: a few dozen do.
 * ONEDNN_PRIMITIVE_CACHE_CAPACITY (or DNNL_...) in the environment is the user's choice and wins. */
#define PRIMITIVE_CACHE_CAPACITY 64

static void init(void) {
    if (!getenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY") && !getenv("DNNL_PRIMITIVE_CACHE_CAPACITY"))
        dnnl_set_primitive_cache_capacity(PRIMITIVE_CACHE_CAPACITY);
#if DNNL_CPU_RUNTIME == DNNL_RUNTIME_SYCL && defined(LT_DNNL_OPENCL_CPU)
    /* PyPI's oneDNN is built for SYCL: its CPU engine is the OpenCL CPU device of Intel's runtime beside
     * it (the intel-opencl-rt wheel), which the OpenCL loader finds only when told where (its .icd file
     * names a path of Intel's build machine). CMake found it; the user's own setting wins. */
    setenv("OCL_ICD_FILENAMES", LT_DNNL_OPENCL_CPU, 0);
#endif
    init_status = dnnl_engine_create(&engine, dnnl_cpu, 0);
    if (init_status == dnnl_success) init_status = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
}

dnnl_engine_t lt_dnnl_engine(lt_error *err) {
    pthread_once(&init_once, init);
    if (lt_dnnl_check(init_status, "creating the CPU engine", err)) return NULL;
    return engine;
}

dnnl_stream_t lt_dnnl_stream(void) { return stream; }

int lt_dnnl_check(dnnl_status_t st, const char *what, lt_error *err) {
    if (st == dnnl_success) return 0;
    return lt_fail(err, "oneDNN: %s: %s", what, dnnl_status2str(st));
}

/* ---- what oneDNN 2.x and 3.x spell differently (see dnnl_common.h) ---- */

#if DNNL_VERSION_MAJOR >= 3

int lt_dnnl_md_tag(lt_dnnl_md *md, int ndims, const int64_t *dims, dnnl_data_type_t t, dnnl_format_tag_t tag,
                   const char *what, lt_error *err) {
    *md = NULL;
    return lt_dnnl_check(dnnl_memory_desc_create_with_tag(md, ndims, dims, t, tag), what, err);
}

int lt_dnnl_md_strides(lt_dnnl_md *md, int ndims, const int64_t *dims, dnnl_data_type_t t, const int64_t *strides,
                       const char *what, lt_error *err) {
    *md = NULL;
    return lt_dnnl_check(dnnl_memory_desc_create_with_strides(md, ndims, dims, t, strides), what, err);
}

int lt_dnnl_md_clone(lt_dnnl_md *md, lt_dnnl_cmd from, lt_error *err) {
    *md = NULL;
    return lt_dnnl_check(dnnl_memory_desc_clone(md, from), "copying a memory descriptor", err);
}

void lt_dnnl_md_free(lt_dnnl_md md) {
    if (md) dnnl_memory_desc_destroy(md);
}

static const dnnl_dims_t no_dilation = {0};

int lt_dnnl_conv_fwd_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd src, lt_dnnl_cmd w, lt_dnnl_cmd bias, lt_dnnl_cmd dst,
                        const lt_dnnl_geometry *g, const_dnnl_primitive_attr_t attr, lt_error *err) {
    dnnl_engine_t eng = lt_dnnl_engine(err);
    if (!eng) return -1;
    return lt_dnnl_check(dnnl_convolution_forward_primitive_desc_create(
                             pd, eng, dnnl_forward_training, dnnl_convolution_direct, src, w, bias, dst,
                             g->strides, no_dilation, g->pad_l, g->pad_r, attr),
                         "choosing a convolution", err);
}

int lt_dnnl_conv_bwd_data_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd diff_src, lt_dnnl_cmd w, lt_dnnl_cmd diff_dst,
                             const lt_dnnl_geometry *g, const_dnnl_primitive_desc_t hint,
                             const_dnnl_primitive_attr_t attr, lt_error *err) {
    dnnl_engine_t eng = lt_dnnl_engine(err);
    if (!eng) return -1;
    return lt_dnnl_check(dnnl_convolution_backward_data_primitive_desc_create(
                             pd, eng, dnnl_convolution_direct, diff_src, w, diff_dst, g->strides,
                             no_dilation, g->pad_l, g->pad_r, hint, attr),
                         "choosing a backward convolution", err);
}

int lt_dnnl_conv_bwd_weights_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd src, lt_dnnl_cmd diff_w, lt_dnnl_cmd diff_bias,
                                lt_dnnl_cmd diff_dst, const lt_dnnl_geometry *g, const_dnnl_primitive_desc_t hint,
                                const_dnnl_primitive_attr_t attr, lt_error *err) {
    dnnl_engine_t eng = lt_dnnl_engine(err);
    if (!eng) return -1;
    return lt_dnnl_check(dnnl_convolution_backward_weights_primitive_desc_create(
                             pd, eng, dnnl_convolution_direct, src, diff_w, diff_bias, diff_dst,
                             g->strides, no_dilation, g->pad_l, g->pad_r, hint, attr),
                         "choosing a weight gradient", err);
}

int lt_dnnl_ip_fwd_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd src, lt_dnnl_cmd w, lt_dnnl_cmd bias, lt_dnnl_cmd dst,
                      const_dnnl_primitive_attr_t attr, lt_error *err) {
    dnnl_engine_t eng = lt_dnnl_engine(err);
    if (!eng) return -1;
    return lt_dnnl_check(dnnl_inner_product_forward_primitive_desc_create(pd, eng, dnnl_forward_training,
                                                                          src, w, bias, dst, attr),
                         "choosing a linear layer", err);
}

int lt_dnnl_ip_bwd_data_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd diff_src, lt_dnnl_cmd w, lt_dnnl_cmd diff_dst,
                           const_dnnl_primitive_desc_t hint, const_dnnl_primitive_attr_t attr, lt_error *err) {
    dnnl_engine_t eng = lt_dnnl_engine(err);
    if (!eng) return -1;
    return lt_dnnl_check(dnnl_inner_product_backward_data_primitive_desc_create(pd, eng, diff_src, w,
                                                                                diff_dst, hint, attr),
                         "choosing a backward linear layer", err);
}

int lt_dnnl_ip_bwd_weights_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd src, lt_dnnl_cmd diff_w, lt_dnnl_cmd diff_bias,
                              lt_dnnl_cmd diff_dst, const_dnnl_primitive_desc_t hint, const_dnnl_primitive_attr_t attr,
                              lt_error *err) {
    dnnl_engine_t eng = lt_dnnl_engine(err);
    if (!eng) return -1;
    return lt_dnnl_check(dnnl_inner_product_backward_weights_primitive_desc_create(
                             pd, eng, src, diff_w, diff_bias, diff_dst, hint, attr),
                         "choosing a linear layer's weight gradient", err);
}

static dnnl_status_t append_sum(dnnl_post_ops_t ops) {
    return dnnl_post_ops_append_sum(ops, 1.0f, 0, dnnl_data_type_undef);  /* (no zero point, dst's type) */
}

#else  /* oneDNN 2.x: descriptors are structs (here on the heap, so that both versions pass pointers) */

static int md_new(lt_dnnl_md *md, lt_error *err) {
    *md = calloc(1, sizeof **md);
    return *md ? 0 : lt_fail(err, "out of memory");
}

/* *md made, or NULL and -1 when st (its initialisation) failed. */
static int md_made(lt_dnnl_md *md, dnnl_status_t st, const char *what, lt_error *err) {
    if (!lt_dnnl_check(st, what, err)) return 0;
    free(*md);
    *md = NULL;
    return -1;
}

int lt_dnnl_md_tag(lt_dnnl_md *md, int ndims, const int64_t *dims, dnnl_data_type_t t, dnnl_format_tag_t tag,
                   const char *what, lt_error *err) {
    if (md_new(md, err)) return -1;
    return md_made(md, dnnl_memory_desc_init_by_tag(*md, ndims, dims, t, tag), what, err);
}

int lt_dnnl_md_strides(lt_dnnl_md *md, int ndims, const int64_t *dims, dnnl_data_type_t t, const int64_t *strides,
                       const char *what, lt_error *err) {
    if (md_new(md, err)) return -1;
    return md_made(md, dnnl_memory_desc_init_by_strides(*md, ndims, dims, t, strides), what, err);
}

int lt_dnnl_md_clone(lt_dnnl_md *md, lt_dnnl_cmd from, lt_error *err) {
    if (md_new(md, err)) return -1;
    **md = *from;
    return 0;
}

void lt_dnnl_md_free(lt_dnnl_md md) { free(md); }

/* The primitive descriptor of the operation descriptor d, which a dnnl_*_desc_init call returning st made. */
static int pd_of(dnnl_primitive_desc_t *pd, dnnl_status_t st, const_dnnl_op_desc_t d, const_dnnl_primitive_attr_t attr,
                 const_dnnl_primitive_desc_t hint, const char *what, lt_error *err) {
    dnnl_engine_t eng = lt_dnnl_engine(err);
    if (!eng || lt_dnnl_check(st, what, err)) return -1;
    return lt_dnnl_check(dnnl_primitive_desc_create(pd, d, attr, eng, hint), what, err);
}

int lt_dnnl_conv_fwd_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd src, lt_dnnl_cmd w, lt_dnnl_cmd bias, lt_dnnl_cmd dst,
                        const lt_dnnl_geometry *g, const_dnnl_primitive_attr_t attr, lt_error *err) {
    dnnl_convolution_desc_t d;
    dnnl_status_t st = dnnl_convolution_forward_desc_init(&d, dnnl_forward_training, dnnl_convolution_direct, src, w,
                                                          bias, dst, g->strides, g->pad_l, g->pad_r);
    return pd_of(pd, st, &d, attr, NULL, "choosing a convolution", err);
}

int lt_dnnl_conv_bwd_data_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd diff_src, lt_dnnl_cmd w, lt_dnnl_cmd diff_dst,
                             const lt_dnnl_geometry *g, const_dnnl_primitive_desc_t hint,
                             const_dnnl_primitive_attr_t attr, lt_error *err) {
    dnnl_convolution_desc_t d;
    dnnl_status_t st = dnnl_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, diff_src, w, diff_dst,
                                                                g->strides, g->pad_l, g->pad_r);
    return pd_of(pd, st, &d, attr, hint, "choosing a backward convolution", err);
}

int lt_dnnl_conv_bwd_weights_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd src, lt_dnnl_cmd diff_w, lt_dnnl_cmd diff_bias,
                                lt_dnnl_cmd diff_dst, const lt_dnnl_geometry *g, const_dnnl_primitive_desc_t hint,
                                const_dnnl_primitive_attr_t attr, lt_error *err) {
    dnnl_convolution_desc_t d;
    dnnl_status_t st = dnnl_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct, src, diff_w, diff_bias,
                                                                   diff_dst, g->strides, g->pad_l, g->pad_r);
    return pd_of(pd, st, &d, attr, hint, "choosing a weight gradient", err);
}

int lt_dnnl_ip_fwd_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd src, lt_dnnl_cmd w, lt_dnnl_cmd bias, lt_dnnl_cmd dst,
                      const_dnnl_primitive_attr_t attr, lt_error *err) {
    dnnl_inner_product_desc_t d;
    dnnl_status_t st = dnnl_inner_product_forward_desc_init(&d, dnnl_forward_training, src, w, bias, dst);
    return pd_of(pd, st, &d, attr, NULL, "choosing a linear layer", err);
}

int lt_dnnl_ip_bwd_data_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd diff_src, lt_dnnl_cmd w, lt_dnnl_cmd diff_dst,
                           const_dnnl_primitive_desc_t hint, const_dnnl_primitive_attr_t attr, lt_error *err) {
    dnnl_inner_product_desc_t d;
    dnnl_status_t st = dnnl_inner_product_backward_data_desc_init(&d, diff_src, w, diff_dst);
    return pd_of(pd, st, &d, attr, hint, "choosing a backward linear layer", err);
}

int lt_dnnl_ip_bwd_weights_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd src, lt_dnnl_cmd diff_w, lt_dnnl_cmd diff_bias,
                              lt_dnnl_cmd diff_dst, const_dnnl_primitive_desc_t hint, const_dnnl_primitive_attr_t attr,
                              lt_error *err) {
    dnnl_inner_product_desc_t d;
    dnnl_status_t st = dnnl_inner_product_backward_weights_desc_init(&d, src, diff_w, diff_bias, diff_dst);
    return pd_of(pd, st, &d, attr, hint, "choosing a linear layer's weight gradient", err);
}

static dnnl_status_t append_sum(dnnl_post_ops_t ops) { return dnnl_post_ops_append_sum(ops, 1.0f); }

#endif

void lt_dnnl_md_free_all(lt_dnnl_md *mds, size_t n) {
    for (size_t i = 0; i < n; i++) {
        lt_dnnl_md_free(mds[i]);
        mds[i] = NULL;
    }
}

int lt_dnnl_md_4d(lt_dnnl_md *md, int64_t n, int64_t c, int64_t h, int64_t w, lt_dtype t, bool nhwc, lt_error *err) {
    dnnl_dims_t dims = {n, c, h, w};
    return lt_dnnl_md_tag(md, 4, dims, lt_dnnl_type(t), nhwc ? dnnl_nhwc : dnnl_nchw, "describing an activation", err);
}

int lt_dnnl_md_strided(lt_dnnl_md *md, int64_t n, int64_t c, int64_t h, int64_t w, lt_dtype t, const int64_t *strides,
                       lt_error *err) {
    dnnl_dims_t dims = {n, c, h, w};
    return lt_dnnl_md_strides(md, 4, dims, lt_dnnl_type(t), strides, "describing an activation", err);
}

int lt_dnnl_memory(dnnl_memory_t *m, lt_dnnl_cmd md, lt_error *err) {
    dnnl_engine_t e = lt_dnnl_engine(err);
    if (!e) return -1;
    return lt_dnnl_check(dnnl_memory_create(m, md, e, DNNL_MEMORY_NONE), "creating a memory object", err);
}

int lt_dnnl_bind(dnnl_memory_t m, const void *p, lt_error *err) {
    return lt_dnnl_check(dnnl_memory_set_data_handle(m, (void *)p), "binding a buffer", err);
}

int lt_dnnl_run(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args, const char *what, lt_error *err) {
    if (lt_dnnl_check(dnnl_primitive_execute(p, lt_dnnl_stream(), nargs, args), what, err)) return -1;
    return lt_dnnl_check(dnnl_stream_wait(lt_dnnl_stream()), what, err);
}

void *lt_dnnl_alloc(size_t bytes) {
    void *p = NULL;
    return posix_memalign(&p, 64, bytes ? bytes : 64) ? NULL : p;
}

int lt_dnnl_attr(dnnl_primitive_attr_t *attr, lt_error *err) {
    return lt_dnnl_check(dnnl_primitive_attr_create(attr), "primitive attributes", err) ||
           lt_dnnl_check(dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user),
                         "scratchpad mode", err);
}

int lt_dnnl_want_scratch(lt_dnnl_scratch *s, dnnl_primitive_desc_t pd, dnnl_memory_t *m, lt_error *err) {
    lt_dnnl_cmd md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = md ? dnnl_memory_desc_get_size(md) : 0;
    if (bytes > s->size) {
        void *p = lt_dnnl_alloc(bytes);
        if (!p) return lt_fail(err, "out of memory (%zu bytes of oneDNN scratch)", bytes);
        free(s->data);
        s->data = p;
        s->size = bytes;
    }
    *m = NULL;
    return bytes ? lt_dnnl_memory(m, md, err) : 0;
}

int lt_dnnl_lru_slot(lt_dnnl_lru *lru, int n, const void *keys, size_t key_size, const void *key, bool *fresh) {
    int victim = 0;
    for (int i = 0; i < n; i++) {
        if (lru->used[i] && !memcmp((const char *)keys + (size_t)i * key_size, key, key_size)) {
            lru->last_use[i] = ++lru->clock;
            *fresh = false;
            return i;
        }
        if (!lru->used[i] || (lru->used[victim] && lru->last_use[i] < lru->last_use[victim])) victim = i;
    }
    lru->used[victim] = true;
    lru->last_use[victim] = ++lru->clock;
    *fresh = true;
    return victim;
}

int lt_dnnl_reorder_make(lt_dnnl_reorder *r, lt_dnnl_cmd src, lt_dnnl_cmd dst, bool accumulate, lt_error *err) {
    dnnl_engine_t e = lt_dnnl_engine(err);
    if (!e) return -1;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int rc = -1;
    if (accumulate) {
        if (lt_dnnl_check(dnnl_primitive_attr_create(&attr), "reorder attributes", err) ||
            lt_dnnl_check(dnnl_post_ops_create(&ops), "reorder post-ops", err) ||
            lt_dnnl_check(append_sum(ops), "reorder sum", err) ||
            lt_dnnl_check(dnnl_primitive_attr_set_post_ops(attr, ops), "reorder post-ops", err))
            goto done;
    }
    if (lt_dnnl_check(dnnl_reorder_primitive_desc_create(&pd, src, e, dst, e, attr), "creating a reorder", err) ||
        lt_dnnl_check(dnnl_primitive_create(&r->prim, pd), "creating a reorder", err) ||
        lt_dnnl_memory(&r->src, src, err) || lt_dnnl_memory(&r->dst, dst, err))
        goto done;
    rc = 0;
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

int lt_dnnl_reorder_run(lt_dnnl_reorder *r, const void *src, void *dst, lt_error *err) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, r->src}, {DNNL_ARG_TO, r->dst}};
    if (lt_dnnl_check(dnnl_memory_set_data_handle(r->src, (void *)src), "binding a reorder's source", err) ||
        lt_dnnl_check(dnnl_memory_set_data_handle(r->dst, dst), "binding a reorder's destination", err) ||
        lt_dnnl_check(dnnl_primitive_execute(r->prim, lt_dnnl_stream(), 2, args), "running a reorder", err))
        return -1;
    return lt_dnnl_check(dnnl_stream_wait(lt_dnnl_stream()), "waiting for a reorder", err);
}

void lt_dnnl_reorder_free(lt_dnnl_reorder *r) {
    if (r->prim) dnnl_primitive_destroy(r->prim);
    if (r->src) dnnl_memory_destroy(r->src);
    if (r->dst) dnnl_memory_destroy(r->dst);
    *r = (lt_dnnl_reorder){0};
}

void lt_dnnl_destroy(dnnl_primitive_t *prims, size_t nprims, dnnl_memory_t *mems, size_t nmems) {
    for (size_t i = 0; i < nprims; i++)
        if (prims[i]) dnnl_primitive_destroy(prims[i]);
    for (size_t i = 0; i < nmems; i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
}

const char *lt_dnnl_isa(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}

/* Each instruction set's value holds the bits of those it extends (in 2.x and 3.x, whose AVX10 ones
 * extend avx512_core_bf16). */
static bool has_isa(dnnl_cpu_isa_t want) { return (dnnl_get_effective_cpu_isa() & want) == want; }

bool lt_dnnl_bf16_native(void) { return has_isa(dnnl_cpu_isa_avx512_core_bf16); }

bool lt_dnnl_bf16_available(void) { return has_isa(dnnl_cpu_isa_avx512_core); }

/* Where the float32 path was checked: AVX-512 kernels on OpenMP, whose threads are the library's (a
 * runtime with a pool of its own, as PyPI's SYCL build, is neither measured nor checked for the same
 * bits at any thread count). */
bool lt_dnnl_fp32_available(void) {
    return has_isa(dnnl_cpu_isa_avx512_core) && dnnl_version()->cpu_runtime == DNNL_RUNTIME_OMP;
}

bool lt_dnnl_amx_native(void) { return has_isa(dnnl_cpu_isa_avx512_core_amx); }

const char *lt_dnnl_runtime(void) {
    switch (dnnl_version()->cpu_runtime) {
    case DNNL_RUNTIME_OMP: return "OpenMP";
    case DNNL_RUNTIME_TBB: return "TBB";
    case DNNL_RUNTIME_SYCL: return "SYCL";
    case DNNL_RUNTIME_SEQ: return "sequential";
    case DNNL_RUNTIME_THREADPOOL: return "threadpool";
    default: return "other";
    }
}

const char *lt_dnnl_version(void) {
    static char text[32];
    const dnnl_version_t *v = dnnl_version();
    snprintf(text, sizeof text, "%d.%d.%d", v->major, v->minor, v->patch);
    return text;
}
