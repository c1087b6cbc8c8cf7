/* cuda_fp16.h's conversions as the emulated backend uses them, with the core's rounding (fp16.h, which
 * the hardware's __float2half_rn matches: to nearest, ties to even). */
#ifndef LTC_EMU_CUDA_FP16_H
#define LTC_EMU_CUDA_FP16_H

#include "../../../core/base/fp16.h"

struct __half {
    uint16_t bits;
};
inline __half __float2half_rn(float f) { return __half{lt_f32_to_f16(f)}; }
inline float __half2float(__half h) { return lt_f16_to_f32(h.bits); }
inline unsigned short __half_as_ushort(__half h) { return h.bits; }
inline __half __ushort_as_half(unsigned short u) { return __half{u}; }

#endif
