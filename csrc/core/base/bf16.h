/* bfloat16: the upper 16 bits of a float32 (same exponent range, 8 bits of significand). Mixed
 * precision keeps activations and their gradients in bf16 between layers and computes in float32;
 * these are the conversions. Rounding is to nearest, ties to even (as PyTorch and oneDNN round);
 * NaN stays NaN (quiet). */
#ifndef LT_BF16_H
#define LT_BF16_H

#include <stdint.h>
#include <string.h>

typedef uint16_t lt_bf16;

static inline float lt_bf16_to_f32(lt_bf16 h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline lt_bf16 lt_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (lt_bf16)((u >> 16) | 0x0040u);  /* NaN: keep it quiet */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (lt_bf16)(u >> 16);
}

/* n elements; vectorised (run-time dispatch), no threads of their own. */
void lt_bf16_from_f32_n(lt_bf16 *dst, const float *src, int64_t n);
void lt_bf16_to_f32_n(float *dst, const lt_bf16 *src, int64_t n);

#endif
