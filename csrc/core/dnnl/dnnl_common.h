/* What every oneDNN implementation shares: one CPU engine and one in-order stream for the process,
 * error messages, memory descriptors of our layouts, and reorders. Compiled only when CMake finds
 * oneDNN (LIGHTNING_WITH_DNNL); nothing outside csrc/core/dnnl/ includes oneDNN's headers. */
#ifndef LT_DNNL_COMMON_H
#define LT_DNNL_COMMON_H

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_version.h>
#include <stdbool.h>
#include <stdint.h>

#include "../base/bf16.h"
#include "../base/dtype.h"
#include "../base/error.h"

/* The engine and stream, made on first use; NULL after a failure described in err. */
dnnl_engine_t lt_dnnl_engine(lt_error *err);
dnnl_stream_t lt_dnnl_stream(void);

/* -1 with "oneDNN: <what>: <status>" in err when st is not success, else 0. */
int lt_dnnl_check(dnnl_status_t st, const char *what, lt_error *err);

static inline dnnl_data_type_t lt_dnnl_type(lt_dtype t) { return t == LT_BFLOAT16 ? dnnl_bf16 : dnnl_f32; }

/* oneDNN 2.x (Debian 12) and 3.x differ in their C API: 3.x makes memory descriptors opaque handles
 * and primitive descriptors directly, without the operation descriptors of 2.x. The differences stay
 * in dnnl_common.c (the one place with #if DNNL_VERSION_MAJOR): the rest of csrc/core/dnnl/ holds a
 * memory descriptor as an lt_dnnl_md (made by lt_dnnl_md_*, freed with lt_dnnl_md_free), passes it and
 * the descriptors that oneDNN's queries (dnnl_primitive_desc_query_md) return as lt_dnnl_cmd, and
 * makes its primitive descriptors with lt_dnnl_*_pd below. Both are pointers, which oneDNN's functions
 * take in either version. */
#if DNNL_VERSION_MAJOR >= 3
typedef dnnl_memory_desc_t lt_dnnl_md;
typedef const_dnnl_memory_desc_t lt_dnnl_cmd;
#else
typedef dnnl_memory_desc_t *lt_dnnl_md;
typedef const dnnl_memory_desc_t *lt_dnnl_cmd;
#endif

/* *md described by a format tag (dnnl_nhwc, dnnl_format_tag_any, ...) or by strides; NULL after a
 * failure. what names it in errors. */
int lt_dnnl_md_tag(lt_dnnl_md *md, int ndims, const int64_t *dims, dnnl_data_type_t t, dnnl_format_tag_t tag,
                   const char *what, lt_error *err);
int lt_dnnl_md_strides(lt_dnnl_md *md, int ndims, const int64_t *dims, dnnl_data_type_t t, const int64_t *strides,
                       const char *what, lt_error *err);
/* A copy of md that outlives the primitive descriptor it was queried from. */
int lt_dnnl_md_clone(lt_dnnl_md *md, lt_dnnl_cmd from, lt_error *err);
void lt_dnnl_md_free(lt_dnnl_md md);  /* NULL is ignored */
/* Frees the non-NULL descriptors of an array (an entry's) and sets them to NULL. */
void lt_dnnl_md_free_all(lt_dnnl_md *mds, size_t n);

/* A 4-D activation (n, c, h, w) stored channels-last (nhwc) or planar (nchw), or with any strides. */
int lt_dnnl_md_4d(lt_dnnl_md *md, int64_t n, int64_t c, int64_t h, int64_t w, lt_dtype t, bool nhwc, lt_error *err);
int lt_dnnl_md_strided(lt_dnnl_md *md, int64_t n, int64_t c, int64_t h, int64_t w, lt_dtype t, const int64_t *strides,
                       lt_error *err);

/* The primitive descriptors of a direct convolution (forward training, backward data, backward weights)
 * and of an inner product; hint is the forward pass's descriptor or NULL, attr may be NULL. The
 * convolution's geometry: strides, padding before and after, no dilation. */
typedef struct lt_dnnl_geometry {
    dnnl_dims_t strides, pad_l, pad_r;
} lt_dnnl_geometry;
int lt_dnnl_conv_fwd_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd src, lt_dnnl_cmd w, lt_dnnl_cmd bias, lt_dnnl_cmd dst,
                        const lt_dnnl_geometry *g, const_dnnl_primitive_attr_t attr, lt_error *err);
int lt_dnnl_conv_bwd_data_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd diff_src, lt_dnnl_cmd w, lt_dnnl_cmd diff_dst,
                             const lt_dnnl_geometry *g, const_dnnl_primitive_desc_t hint,
                             const_dnnl_primitive_attr_t attr, lt_error *err);
int lt_dnnl_conv_bwd_weights_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd src, lt_dnnl_cmd diff_w, lt_dnnl_cmd diff_bias,
                                lt_dnnl_cmd diff_dst, const lt_dnnl_geometry *g, const_dnnl_primitive_desc_t hint,
                                const_dnnl_primitive_attr_t attr, lt_error *err);
int lt_dnnl_ip_fwd_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd src, lt_dnnl_cmd w, lt_dnnl_cmd bias, lt_dnnl_cmd dst,
                      const_dnnl_primitive_attr_t attr, lt_error *err);
int lt_dnnl_ip_bwd_data_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd diff_src, lt_dnnl_cmd w, lt_dnnl_cmd diff_dst,
                           const_dnnl_primitive_desc_t hint, const_dnnl_primitive_attr_t attr, lt_error *err);
int lt_dnnl_ip_bwd_weights_pd(dnnl_primitive_desc_t *pd, lt_dnnl_cmd src, lt_dnnl_cmd diff_w, lt_dnnl_cmd diff_bias,
                              lt_dnnl_cmd diff_dst, const_dnnl_primitive_desc_t hint, const_dnnl_primitive_attr_t attr,
                              lt_error *err);

/* A reorder from src to dst (made once), optionally adding into dst (sum post-op) instead of
 * overwriting it; executed with lt_dnnl_reorder_run. */
typedef struct lt_dnnl_reorder {
    dnnl_primitive_t prim;
    dnnl_memory_t src, dst;
} lt_dnnl_reorder;

int lt_dnnl_reorder_make(lt_dnnl_reorder *r, lt_dnnl_cmd src, lt_dnnl_cmd dst, bool accumulate, lt_error *err);
int lt_dnnl_reorder_run(lt_dnnl_reorder *r, const void *src, void *dst, lt_error *err);
void lt_dnnl_reorder_free(lt_dnnl_reorder *r);

/* Destroys the primitives and memory objects of a cache entry that are not NULL (the convolution's
 * and the inner product's entries hold one of each per pass). */
void lt_dnnl_destroy(dnnl_primitive_t *prims, size_t nprims, dnnl_memory_t *mems, size_t nmems);

/* A memory object bound to user data at each execution (made once with no data). */
int lt_dnnl_memory(dnnl_memory_t *m, lt_dnnl_cmd md, lt_error *err);
/* Points m at p for the next execution. */
int lt_dnnl_bind(dnnl_memory_t m, const void *p, lt_error *err);
/* Runs a primitive on the stream and waits for it; what names it in errors. */
int lt_dnnl_run(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args, const char *what, lt_error *err);

/* 64-byte aligned memory (free with free); NULL when bytes cannot be had. */
void *lt_dnnl_alloc(size_t bytes);

/* Attributes with a user-provided scratchpad: a layer's primitives share one buffer (lt_dnnl_scratch)
 * that it allocates once, instead of oneDNN allocating at every execution. */
int lt_dnnl_attr(dnnl_primitive_attr_t *attr, lt_error *err);

typedef struct lt_dnnl_scratch {
    void *data;
    size_t size;
} lt_dnnl_scratch;

/* Grows s to what pd's scratchpad needs, and makes *m (NULL when it needs none) a memory object for it. */
int lt_dnnl_want_scratch(lt_dnnl_scratch *s, dnnl_primitive_desc_t pd, dnnl_memory_t *m, lt_error *err);

/* A layer keeps its primitives for the last few shapes it has seen, each under a key (a struct
 * compared bytewise, zero-initialised). Returns the slot holding key, or the slot to refill (the first
 * unused one, else the least recently used; *fresh is then true and the caller frees and refills it). */
typedef struct lt_dnnl_lru {
    bool used[8];
    uint64_t last_use[8];
    uint64_t clock;
} lt_dnnl_lru;
int lt_dnnl_lru_slot(lt_dnnl_lru *lru, int n, const void *keys, size_t key_size, const void *key, bool *fresh);

#include "dnnl_info.h"

#endif
