/* float16 (IEEE binary16: 5 exponent bits, 10 of significand, largest finite 65504). Under "16-mixed"
 * a GPU keeps activations and their gradients in fp16 between layers and computes in float32; the host
 * converts at the boundaries (Tensor:half(), printing, a stand-in backend's rows). Rounding is to
 * nearest, ties to even, as the hardware's conversions round; values past 65504 become infinities (a
 * loss scaler looks for them); NaN stays NaN (quiet). Plain integer code: no F16C needed. */
#ifndef LT_FP16_H
#define LT_FP16_H

#include <stdint.h>
#include <string.h>

typedef uint16_t lt_f16;

static inline float lt_f16_to_f32(lt_f16 h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13) | (man ? 0x00400000u : 0);  /* inf, or a quiet NaN */
    } else if (exp) {
        u = sign | ((exp + 112u) << 23) | (man << 13);  /* rebias 15 -> 127 */
    } else if (man) {  /* subnormal: man * 2^-24, exact in float32 */
        float f = (float)man * 0x1p-24f;
        memcpy(&u, &f, sizeof u);
        u |= sign;
    } else {
        u = sign;
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline lt_f16 lt_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (lt_f16)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  /* NaN: quiet */
    if (a >= 0x477ff000u) return (lt_f16)(sign | 0x7c00u);  /* rounds past 65504 (or is inf): inf */
    if (a < 0x38800000u) {  /* below fp16's smallest normal, 2^-14: a multiple of 2^-24, rounded */
        float m;
        memcpy(&m, &a, sizeof m);
        float scaled = m * 0x1p24f;  /* exact; then round to an integer, ties to even */
        uint32_t q = (uint32_t)scaled;
        float rest = scaled - (float)q;
        if (rest > 0.5f || (rest == 0.5f && (q & 1u))) q++;
        return (lt_f16)(sign | q);  /* q == 0x400 is the smallest normal, as it should be */
    }
    /* normal: drop 13 significand bits, rounding to nearest even; a carry moves into the exponent */
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u);
    return (lt_f16)(sign | (((r >> 13) - (112u << 10)) & 0x7fffu));
}

#endif
