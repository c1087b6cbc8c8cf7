/* Max pooling's element rules, the CPU's (csrc/core/cpu/maxpool.c, bn_relu_pool.c, pool_channels_last.c,
 * batchnorm_channels_last.c): the first maximum of a window, a NaN winning as in PyTorch's pooling. */
#ifndef LTC_POOL_MATH_CUH
#define LTC_POOL_MATH_CUH

namespace ltc {

/* Whether v takes the place of the window's best so far: a greater v, or a NaN v, unless best is NaN. */
__device__ __forceinline__ bool nan_takes(float best, float v) { return best == best && (v > best || v != v); }

__device__ __forceinline__ float nan_max_f(float best, float v) { return nan_takes(best, v) ? v : best; }

/* The first maximum of a 2x2 window (v0 v1 above v2 v3) and its place 0..3 (3 for a NaN maximum, which
 * passes no ReLU: the callers' codes then say that nothing passed). */
__device__ __forceinline__ float window_max(float v0, float v1, float v2, float v3, int &place) {
    float m = nan_max_f(nan_max_f(nan_max_f(v0, v1), v2), v3);
    place = v0 == m ? 0 : v1 == m ? 1 : v2 == m ? 2 : 3;
    return m;
}

}  // namespace ltc

#endif
