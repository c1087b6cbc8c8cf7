/* The leaky ReLU and its gradient for one element, shared by the float32 kernels (activation.c), the
 * mixed-precision ones (activation_rows.c) and the fused BatchNorm (batchnorm_channels_last.c). ReLU is slope 0.
 * NaN in gives NaN out (a NaN input, or a NaN incoming gradient); the flat side times an infinity is
 * 0, not IEEE's NaN: ReLU(-inf) = -0 (as ReLU of any negative number here), and an infinite gradient
 * reaching the flat side gives 0. Selects, no branches: the loops around them vectorise. */
#ifndef LT_RELU_MATH_H
#define LT_RELU_MATH_H

#include "element_fn.h"

LT_ELEMENT_FN float lt_leaky_relu(float x, float slope) {
    float v = slope * x;
    v = v == v || x != x ? v : -0.0f;  /* 0 * -inf */
    return x > 0 ? x : v;
}

/* g (the incoming gradient) times the slope at x */
LT_ELEMENT_FN float lt_leaky_relu_grad(float x, float g, float slope) {
    float v = slope * g;
    v = v == v || g != g ? v : 0.0f;  /* 0 * +-inf */
    return x > 0 ? g : (x != x ? x : v);
}

#endif
