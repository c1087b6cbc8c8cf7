/* GELU, the exact (erf) form PyTorch uses by default: gelu(z) = z * Phi(z) = 0.5 z (1 + erf(z / sqrt 2)),
 * gelu'(z) = Phi(z) + z phi(z). erf and exp are written out so that loops over them vectorise (libm's
 * are calls); erf is Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7), exp a degree-6
 * polynomial after range reduction (about 1 ulp). */
#ifndef LT_GELU_MATH_H
#define LT_GELU_MATH_H

#include <stdint.h>
#include <string.h>

static inline float lt_exp_approx(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float n = __builtin_rintf(x * 1.44269504088896341f);
    float r = x - n * 0.693145751953125f - n * 1.42860682030941723e-6f;  /* ln 2 in two parts */
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float lt_erf_approx(float x) {
    float a = x < 0 ? -x : x;
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
    float y = 1.0f - poly * lt_exp_approx(-a * a);
    return x < 0 ? -y : y;
}

static inline float lt_gelu(float z) { return 0.5f * z * (1.0f + lt_erf_approx(z * 0.70710678118654752f)); }

static inline float lt_gelu_grad(float z) {
    float cdf = 0.5f * (1.0f + lt_erf_approx(z * 0.70710678118654752f));
    return cdf + z * 0.39894228040143268f * lt_exp_approx(-0.5f * z * z);
}

#endif
