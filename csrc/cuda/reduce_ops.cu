/* Tensor reductions (backend_api.h's reduce): a dense (outer, n, inner) array reduced over n into
 * (outer, inner) values and, for max and min, 0-based indices, both left on the device. One block per
 * result (a grid-stride loop over them): its threads take the n elements in turn, in double as the
 * host sums, then combine through the block (reduce.cuh). The host's rules: mean = sum / n; var and std
 * two passes around the mean, divided by n - 1 when unbiased; the max norm ignores NaN (fmax); max and
 * min take the first extreme element, a NaN beating every number (the first NaN). */
#include <math.h>

#include "parts.cuh"
#include "reduce.cuh"

extern "C" {
#include "tensor/tensor_math.h"
}

namespace ltc {

static const int REDUCE_THREADS = 256;

/* fmax over the block in double: NaN loses, as the host's max norm. */
__device__ double block_fmax_double(double a) {
    __shared__ double sm[32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    for (int offset = 16; offset > 0; offset /= 2) a = fmax(a, __shfl_xor_sync(0xffffffffu, a, offset));
    __syncthreads();
    if (lane == 0) sm[warp] = a;
    __syncthreads();
    a = lane < warps ? sm[lane] : 0.0;
    for (int offset = 16; offset > 0; offset /= 2) a = fmax(a, __shfl_xor_sync(0xffffffffu, a, offset));
    return a;
}

/* The candidate (value, index) that the host's scan would keep of two; index -1: none. */
__device__ __forceinline__ bool better(float v, int64_t i, float best, int64_t at, bool want_max) {
    if (i < 0) return false;
    if (at < 0) return true;
    bool v_nan = v != v, best_nan = best != best;
    if (v_nan || best_nan) return v_nan && (!best_nan || i < at);
    if (v == best) return i < at;
    return want_max ? v > best : v < best;
}

/* One block: the extreme of the n elements x[k * step] and its index k. */
__device__ void block_extreme(const float *x, int64_t n, int64_t step, bool want_max, float &value, int64_t &index) {
    __shared__ float sv[REDUCE_THREADS];
    __shared__ int64_t si[REDUCE_THREADS];
    float best = 0.0f;
    int64_t at = -1;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {  /* k increasing: ties keep the first */
        float v = x[k * step];
        if (better(v, k, best, at, want_max)) {
            best = v;
            at = k;
        }
    }
    sv[threadIdx.x] = best;
    si[threadIdx.x] = at;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half && better(sv[threadIdx.x + half], si[threadIdx.x + half], sv[threadIdx.x],
                                         si[threadIdx.x], want_max)) {
            sv[threadIdx.x] = sv[threadIdx.x + half];
            si[threadIdx.x] = si[threadIdx.x + half];
        }
        __syncthreads();
    }
    value = sv[0];
    index = si[0];
    __syncthreads(); /* sv, si are read before the block's next result overwrites them */
}

/* Sum over the block of f(x[k * step]) in double. */
template <typename F>
__device__ double block_sum_of(const float *x, int64_t n, int64_t step, F f) {
    double acc = 0.0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) acc += f((double)x[k * step]);
    return block_sum(acc);
}

__device__ double reduce_one(const float *x, int64_t n, int64_t step, const lt_reduce_shape &s) {
    switch (s.op) {
        case LT_RSUM:
        case LT_RMEAN: {
            double acc = block_sum_of(x, n, step, [](double v) { return v; });
            return s.op == LT_RMEAN ? acc / (double)n : acc;
        }
        case LT_RVAR:
        case LT_RSTD: {
            double mean = block_sum_of(x, n, step, [](double v) { return v; }) / (double)n;
            double acc = block_sum_of(x, n, step, [mean](double v) { return (v - mean) * (v - mean); });
            double var = acc / (double)(s.unbiased ? n - 1 : n);
            return s.op == LT_RSTD ? sqrt(var) : var;
        }
        default: { /* LT_RNORM */
            double p = s.p;
            if (isinf(p)) {
                double acc = 0.0;
                for (int64_t k = threadIdx.x; k < n; k += blockDim.x) acc = fmax(acc, fabs((double)x[k * step]));
                return block_fmax_double(acc);
            }
            if (p == 2) return sqrt(block_sum_of(x, n, step, [](double v) { return v * v; }));
            if (p == 1) return block_sum_of(x, n, step, [](double v) { return fabs(v); });
            return pow(block_sum_of(x, n, step, [p](double v) { return pow(fabs(v), p); }), 1.0 / p);
        }
    }
}

__global__ void reduce_kernel(float *values, float *indices, const float *in, lt_reduce_shape s) {
    int64_t results = s.outer * s.inner;
    bool extreme = s.op == LT_RMAX || s.op == LT_RMIN;
    for (int64_t r = blockIdx.x; r < results; r += gridDim.x) {
        int64_t o = r / s.inner, j = r % s.inner;
        const float *x = in + o * s.n * s.inner + j; /* element k at x[k * inner] */
        if (extreme) {
            float v;
            int64_t at;
            block_extreme(x, s.n, s.inner, s.op == LT_RMAX, v, at);
            if (threadIdx.x == 0) {
                values[r] = v;
                if (indices) indices[r] = (float)at;
            }
        } else {
            double v = reduce_one(x, s.n, s.inner, s);
            if (threadIdx.x == 0) values[r] = (float)v;
        }
    }
}

int reduce(float *values, float *indices, const float *in, const lt_reduce_shape *s, lt_error *err) {
    if (s->n < 1 || s->outer < 0 || s->inner < 0) return fail(err, "reduce: %lld elements to reduce (1 or more expected)",
                                                               (long long)s->n);
    if (s->op < LT_RSUM || s->op > LT_RNORM) return fail(err, "reduce: unknown operation %d", s->op);
    int64_t results = s->outer * s->inner;
    if (results == 0) return 0;
    unsigned blocks = (unsigned)(results < 65535 ? results : 65535);
    reduce_kernel<<<blocks, REDUCE_THREADS, 0, state().stream>>>(values, indices, in, *s);
    LTC_LAUNCHED(err, "reduce_kernel");
    return 0;
}

}  // namespace ltc
