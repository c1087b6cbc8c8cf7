/* The two 16-bit float types as one: code that reads or writes "a 16-bit float of type t" (rows of
 * mixed-precision activations, printing, conversions) calls these instead of choosing between bf16.h
 * and fp16.h itself. t is LT_BFLOAT16 or LT_FLOAT16. */
#ifndef LT_HALF_H
#define LT_HALF_H

#include "bf16.h"
#include "dtype.h"
#include "fp16.h"

static inline __attribute__((always_inline)) float lt_half_to_f32(uint16_t h, lt_dtype t) {
    return t == LT_FLOAT16 ? lt_f16_to_f32(h) : lt_bf16_to_f32(h);
}

static inline __attribute__((always_inline)) uint16_t lt_f32_to_half(float f, lt_dtype t) {
    return t == LT_FLOAT16 ? lt_f32_to_f16(f) : lt_f32_to_bf16(f);
}

/* Element i of an array of float type t (float32 or either 16-bit type) as a float, and v stored there
 * rounded to t. */
static inline float lt_load_float(const void *p, lt_dtype t, int64_t i) {
    return lt_dtype_is_half(t) ? lt_half_to_f32(((const uint16_t *)p)[i], t) : ((const float *)p)[i];
}
static inline void lt_store_float(void *p, lt_dtype t, int64_t i, float v) {
    if (lt_dtype_is_half(t)) ((uint16_t *)p)[i] = lt_f32_to_half(v, t);
    else ((float *)p)[i] = v;
}

#endif
