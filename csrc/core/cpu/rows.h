/* Channels-last (NHWC) activations seen as a matrix of rows x C, one row per pixel, in float32,
 * bfloat16 or float16. Kernels work on a row's channels in chunks of LT_ROW_CHUNK floats: a 16-bit
 * chunk is converted into a float buffer on the stack, a float32 chunk is used in place, so one kernel
 * body serves every element type (the host computes no fp16 layer itself: float16 rows serve a
 * stand-in backend's specs of "16-mixed", csrc/testing/). The helpers are inline: called from a function compiled for each SIMD
 * level (simd.h), the conversions vectorise with the arithmetic around them. */
#ifndef LT_CPU_ROWS_H
#define LT_CPU_ROWS_H

#include <stdint.h>

#include "../base/half.h"

#define LT_ROW_CHUNK 256

/* The pointers of a chunk loop (a row of a tensor, or a stack buffer) never overlap its output: tell
 * the vectoriser, which otherwise keeps a scalar copy for the overlap it cannot rule out. */
#define LT_VECTOR_LOOP _Pragma("GCC ivdep")

typedef struct lt_rows {
    void *data;
    lt_dtype dtype;
    int64_t ld;  /* elements from one row to the next */
} lt_rows;

static inline lt_rows lt_rows_of(void *data, lt_dtype dtype, int64_t ld) { return (lt_rows){data, dtype, ld}; }

/* n values of row r from channel c0, as floats: in place for float32, else converted into tmp. */
static inline __attribute__((always_inline)) const float *lt_rows_load(lt_rows m, int64_t r, int64_t c0, int64_t n,
                                                                        float *restrict tmp) {
    int64_t at = r * m.ld + c0;
    if (m.dtype == LT_FLOAT32) return (const float *)m.data + at;
    if (m.dtype == LT_FLOAT16) {  /* (not vectorised: no hot path) */
        const lt_f16 *src = (const lt_f16 *)m.data + at;
        for (int64_t i = 0; i < n; i++) tmp[i] = lt_f16_to_f32(src[i]);
        return tmp;
    }
    const lt_bf16 *restrict src = (const lt_bf16 *)m.data + at;
    _Pragma("GCC ivdep") for (int64_t i = 0; i < n; i++) tmp[i] = lt_bf16_to_f32(src[i]);
    return tmp;
}

/* Where a kernel writes n floats of row r from c0: the row itself for float32, else tmp (then
 * lt_rows_store converts it). */
static inline __attribute__((always_inline)) float *lt_rows_target(lt_rows m, int64_t r, int64_t c0, float *tmp) {
    return m.dtype == LT_FLOAT32 ? (float *)m.data + r * m.ld + c0 : tmp;
}

static inline __attribute__((always_inline)) void lt_rows_store(lt_rows m, int64_t r, int64_t c0,
                                                                 const float *restrict tmp, int64_t n) {
    if (m.dtype == LT_FLOAT16) {
        lt_f16 *dst = (lt_f16 *)m.data + r * m.ld + c0;
        for (int64_t i = 0; i < n; i++) dst[i] = lt_f32_to_f16(tmp[i]);
        return;
    }
    if (m.dtype != LT_BFLOAT16) return;
    lt_bf16 *restrict dst = (lt_bf16 *)m.data + r * m.ld + c0;
    _Pragma("GCC ivdep") for (int64_t i = 0; i < n; i++) dst[i] = lt_f32_to_bf16(tmp[i]);
}

#endif
