/* Mixed precision's element types on the device: float32 and bf16 activations (ops.h's channels-last
 * tables say which a tensor is), read as float and written back rounded, with the core's rounding
 * (bf16.h: to nearest, ties to even; a NaN stays a quiet NaN) so the GPU's bf16 bits are the CPU's. */
#ifndef LTC_MIXED_CUH
#define LTC_MIXED_CUH

#include "common.cuh"

namespace ltc {

__device__ __forceinline__ uint16_t f32_to_bf16(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

__device__ __forceinline__ float bf16_to_f32(uint16_t b) { return __uint_as_float((uint32_t)b << 16); }

/* Element i of an array of type t (LT_FLOAT32 or LT_BFLOAT16). */
__device__ __forceinline__ float load_as_float(const void *p, lt_dtype t, int64_t i) {
    return t == LT_BFLOAT16 ? bf16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

__device__ __forceinline__ void store_float(void *p, lt_dtype t, int64_t i, float v) {
    if (t == LT_BFLOAT16)
        ((uint16_t *)p)[i] = f32_to_bf16(v);
    else
        ((float *)p)[i] = v;
}

/* An element type these take: what the mixed-precision entries' supports() ask of every tensor. */
static inline bool mixed_dtype(lt_dtype t) { return t == LT_FLOAT32 || t == LT_BFLOAT16; }

}  // namespace ltc

#endif
