/* Mixed precision's element types on the device: float32, bf16 and fp16 activations (ops.h's
 * channels-last tables say which a tensor is), read as float and written back rounded, with the core's
 * rounding (bf16.h, fp16.h: to nearest, ties to even; a NaN stays a quiet NaN; fp16 past 65504 is an
 * infinity) so the GPU's bits are the CPU's. */
#ifndef LTC_MIXED_CUH
#define LTC_MIXED_CUH

#include <cuda_fp16.h>

#include "common.cuh"

namespace ltc {

__device__ __forceinline__ uint16_t f32_to_bf16(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

__device__ __forceinline__ float bf16_to_f32(uint16_t b) { return __uint_as_float((uint32_t)b << 16); }

/* fp16 through the hardware's conversions, which round as fp16.h does (to nearest even, NaN kept). */
__device__ __forceinline__ uint16_t f32_to_f16(float f) { return __half_as_ushort(__float2half_rn(f)); }
__device__ __forceinline__ float f16_to_f32(uint16_t h) { return __half2float(__ushort_as_half(h)); }

/* Element i of an array of type t (LT_FLOAT32, LT_BFLOAT16 or LT_FLOAT16). */
__device__ __forceinline__ float load_as_float(const void *p, lt_dtype t, int64_t i) {
    if (t == LT_BFLOAT16) return bf16_to_f32(((const uint16_t *)p)[i]);
    if (t == LT_FLOAT16) return f16_to_f32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

__device__ __forceinline__ void store_float(void *p, lt_dtype t, int64_t i, float v) {
    if (t == LT_BFLOAT16)
        ((uint16_t *)p)[i] = f32_to_bf16(v);
    else if (t == LT_FLOAT16)
        ((uint16_t *)p)[i] = f32_to_f16(v);
    else
        ((float *)p)[i] = v;
}

/* An element type these take: what the mixed-precision entries' supports() ask of every tensor. */
static inline bool mixed_dtype(lt_dtype t) { return t == LT_FLOAT32 || t == LT_BFLOAT16 || t == LT_FLOAT16; }

}  // namespace ltc

#endif
