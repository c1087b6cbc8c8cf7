/* Block-wide sums and maxima in double for the reduction kernels (BatchNorm's channels, losses, norms):
 * a warp's lanes by shuffles, then the warps through shared memory. Every thread of the block must
 * call them (they synchronise), and every thread gets the result. */
#ifndef LTC_REDUCE_CUH
#define LTC_REDUCE_CUH

#include "common.cuh"

namespace ltc {

__device__ __forceinline__ double warp_sum(double v) {
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

/* NaN wins, as the CPU's max norm. */
__device__ __forceinline__ double nan_max(double a, double b) { return a > b || a != a ? a : b; }

__device__ __forceinline__ double warp_max(double v) {
    for (int offset = 16; offset > 0; offset /= 2) v = nan_max(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

/* Sums of a and b over the block (blockDim.x a multiple of 32, at most 1024). */
__device__ __forceinline__ void block_sum2(double &a, double &b) {
    __shared__ double sa[32], sb[32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    a = warp_sum(a);
    b = warp_sum(b);
    __syncthreads(); /* a previous call's readers are done with sa, sb */
    if (lane == 0) {
        sa[warp] = a;
        sb[warp] = b;
    }
    __syncthreads();
    a = lane < warps ? sa[lane] : 0.0;
    b = lane < warps ? sb[lane] : 0.0;
    a = warp_sum(a);
    b = warp_sum(b);
}

__device__ __forceinline__ double block_sum(double a) {
    double unused = 0;
    block_sum2(a, unused);
    return a;
}

__device__ __forceinline__ double block_max(double a) {
    __shared__ double sm[32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    a = warp_max(a);
    __syncthreads();
    if (lane == 0) sm[warp] = a;
    __syncthreads();
    a = lane < warps ? sm[lane] : -INFINITY;
    return warp_max(a);
}

/* fmaxf over the block (NaN loses, as fmaxf: the CPU's softmax takes its row maximum so). */
__device__ __forceinline__ float block_fmax(float a) {
    __shared__ float sm[32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    for (int offset = 16; offset > 0; offset /= 2) a = fmaxf(a, __shfl_xor_sync(0xffffffffu, a, offset));
    __syncthreads();
    if (lane == 0) sm[warp] = a;
    __syncthreads();
    a = lane < warps ? sm[lane] : -INFINITY;
    for (int offset = 16; offset > 0; offset /= 2) a = fmaxf(a, __shfl_xor_sync(0xffffffffu, a, offset));
    return a;
}

/* The total (or, with max_mode, the NaN-propagating maximum) of count partial results on the device,
 * combined in a fixed order, copied to *host after the stream reaches it (reduce.cu). */
int finish_to_host(lt_error *err, double *host, const double *partials, int64_t count, bool max_mode);
/* The total (or NaN-propagating maximum) of count partials combined into the double *acc on the device:
 * added to it, or the larger kept (no waiting). */
int combine_on_device(lt_error *err, double *acc, const double *partials, int64_t count, bool max_mode);
/* The total of count partial sums times mult into the float *out on the device (no waiting). */
int finish_on_device(lt_error *err, float *out, double mult, const double *partials, int64_t count);

/* Blocks for a kernel that leaves one partial result per block: a function of n alone, so that the
 * partials, and their total, are the same at every call. */
static inline unsigned partial_blocks(int64_t n) { return grid_for(n, 256) < 1024 ? grid_for(n, 256) : 1024; }

}  // namespace ltc

#endif
