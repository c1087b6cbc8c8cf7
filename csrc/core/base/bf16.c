#include "bf16.h"

#include "simd.h"

LT_SIMD_CLONES
void lt_bf16_from_f32_n(lt_bf16 *restrict dst, const float *restrict src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = lt_f32_to_bf16(src[i]);
}

LT_SIMD_CLONES
void lt_bf16_to_f32_n(float *restrict dst, const lt_bf16 *restrict src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = lt_bf16_to_f32(src[i]);
}
