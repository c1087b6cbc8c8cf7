/* BatchNorm over channels-last activations (dense (N, H, W, C): rows of C contiguous values, float32,
 * bf16 or fp16) with an activation after it, and BatchNorm -> ReLU -> 2x2 max pooling fused, with the CPU's
 * semantics (csrc/core/cpu/batchnorm_channels_last.c): the moments about each channel's first element,
 * the running statistics and save_mean / save_invstd as the planar BatchNorm's (bn_math.cuh),
 * y = act(fmaf(x, scale, shift)); the pool's first maximum (NaN wins), code 255 where nothing passed the
 * ReLU; in the backward passes the activation's gradient recomputed from x, dweight and dbias
 * accumulated. One entry serves both tables (batchnorm.channels_last, bn_relu_pool.channels_last).
 *
 * Every kernel but the thread per channel works in tiles: a block of 32 channels (a warp reads 32
 * consecutive values of a row) by 8 row-threads, each thread keeping its channel. The sums take a part
 * of the rows (of the windows, for the pool's gradient) per block, a fixed split of the shape, and
 * write it where bn_stats.cu's finalize kernels read it. */
#include "bn_math.cuh"
#include "mixed.cuh"
#include "parts.cuh"
#include "pool_math.cuh"
#include "cpu/gelu_math.h"
#include "cpu/relu_math.h"

namespace ltc {

enum { TILE_C = 32, TILE_R = 8, TILE_THREADS = TILE_C * TILE_R };

static inline int64_t tiles_of(int64_t channels) { return (channels + TILE_C - 1) / TILE_C; }

/* Parts of n rows (windows) per tile of channels: bn_parts's rule, a tile's 32 channels counted as one. */
static inline int tile_parts(int64_t channels, int64_t n) { return bn_parts(tiles_of(channels), n * TILE_C); }

/* An elementwise pass over n rows: the tiles of channels by blocks of rows, about grid_for's blocks in all. */
static inline dim3 tile_grid(int64_t channels, int64_t n) {
    int64_t tiles = tiles_of(channels), most = 132 * 32 / tiles, blocks = (n + TILE_R - 1) / TILE_R;
    if (most < 1) most = 1;
    if (blocks > most) blocks = most;
    if (blocks > 65535) blocks = 65535;
    return dim3((unsigned)tiles, (unsigned)(blocks < 1 ? 1 : blocks));
}

/* The thread's channel: its lane in the block's tile. */
__device__ __forceinline__ int64_t tile_channel() { return (int64_t)blockIdx.x * TILE_C + threadIdx.x % TILE_C; }

/* The thread's rows of [0, n) in an elementwise pass (grid-stride along blockIdx.y), or of part
 * [begin, end) in a sum. */
#define TILE_ROWS(r, n) \
    for (int64_t r = (int64_t)blockIdx.y * TILE_R + threadIdx.x / TILE_C; r < (n); r += (int64_t)gridDim.y * TILE_R)
#define PART_ROWS(r, begin, end) for (int64_t r = (begin) + threadIdx.x / TILE_C; r < (end); r += TILE_R)

/* The block's sums a and b added over its row-threads in order, as part blockIdx.y of channel c in the
 * layout add_parts reads (2 doubles a part, `parts` per channel). Every thread of the block calls it. */
__device__ __forceinline__ void store_part(double *part_sums, int64_t c, int64_t channels, int parts, double a,
                                           double b) {
    __shared__ double sa[TILE_R][TILE_C], sb[TILE_R][TILE_C];
    int lane = threadIdx.x % TILE_C, row = threadIdx.x / TILE_C;
    sa[row][lane] = a;
    sb[row][lane] = b;
    __syncthreads();
    if (row == 0 && c < channels) {
        for (int k = 1; k < TILE_R; k++) {
            a += sa[k][lane];
            b += sb[k][lane];
        }
        part_sums[2 * (c * parts + blockIdx.y)] = a;
        part_sums[2 * (c * parts + blockIdx.y) + 1] = b;
    }
}

/* The fused activation and its gradient at z = x * scale + shift, as the CPU's: this ReLU gives +0 below
 * 0 (not the activation table's slope-0 leaky ReLU, -0) and lets NaN through. */
__device__ __forceinline__ float act_of(float z, lt_bn_act act) {
    return act == LT_BN_ACT_RELU ? (z < 0 ? 0.0f : z) : act == LT_BN_ACT_GELU ? lt_gelu(z) : z;
}

__device__ __forceinline__ float act_grad(float z, float dy, lt_bn_act act) {
    return act == LT_BN_ACT_RELU ? lt_leaky_relu_grad(z, dy, 0.0f) : act == LT_BN_ACT_GELU ? dy * lt_gelu_grad(z) : dy;
}

/* ---- forward ---- */

/* Block (tile, q): sum and sum of squares of each channel's deviations from its first value (row 0),
 * over part q of the rows. */
__global__ void bn_cl_moments_kernel(double *part_sums, const void *in, lt_bn_channels_last_shape s, int parts) {
    int64_t c = tile_channel(), begin, end;
    part_range(s.n * s.h * s.w, parts, (int)blockIdx.y, &begin, &end);
    double sum = 0, sumsq = 0;
    if (c < s.c) {
        double first = load_as_float(in, s.x, c);
        PART_ROWS(r, begin, end) {
            double d = (double)load_as_float(in, s.x, r * s.c + c) - first;
            sum += d;
            sumsq += d * d;
        }
    }
    store_part(part_sums, c, s.c, parts, sum, sumsq);
}

__global__ void bn_cl_apply_kernel(void *out, const void *in, const bn_affine *aff, lt_bn_channels_last_shape s) {
    int64_t c = tile_channel();
    if (c >= s.c) return;
    bn_affine t = aff[c];
    TILE_ROWS(r, s.n * s.h * s.w) {
        int64_t i = r * s.c + c;
        store_float(out, s.y, i, act_of(fmaf(load_as_float(in, s.x, i), t.scale, t.shift), s.act));
    }
}

/* Window o (b, oy, ox) of channel c: its four normalised values (each rounded once: fmaf), their first
 * maximum through the ReLU, and its code (0..3, or 255 where the maximum is <= 0 or NaN). */
__global__ void bn_cl_pool_kernel(void *out, uint8_t *codes, const void *in, const bn_affine *aff,
                                  lt_bn_channels_last_shape s) {
    int64_t c = tile_channel(), C = s.c, ho = s.h / 2, wo = s.w / 2;
    if (c >= C) return;
    bn_affine t = aff[c];
    TILE_ROWS(o, s.n * ho * wo) {
        int64_t q = o / wo, ox = o - q * wo, b = q / ho, oy = q - b * ho;
        int64_t at = ((b * s.h + 2 * oy) * s.w + 2 * ox) * C + c, below = s.w * C; /* the top-left value */
        float v0 = fmaf(load_as_float(in, s.x, at), t.scale, t.shift);
        float v1 = fmaf(load_as_float(in, s.x, at + C), t.scale, t.shift);
        float v2 = fmaf(load_as_float(in, s.x, at + below), t.scale, t.shift);
        float v3 = fmaf(load_as_float(in, s.x, at + below + C), t.scale, t.shift);
        int place;
        float m = window_max(v0, v1, v2, v3, place);
        store_float(out, s.y, o * C + c, m < 0 ? 0.0f : m);
        codes[o * C + c] = m > 0 ? (uint8_t)place : (uint8_t)255;
    }
}

/* ---- backward ---- */

/* The transform the forward pass applied, from save_mean and save_invstd (the CPU's affine_tables). */
__global__ void bn_cl_saved_affine_kernel(bn_affine *aff, lt_bn_vectors v, int64_t channels) {
    LTC_FOR(c, channels) aff[c] = bn_affine_of(v.save_mean[c], v.save_invstd[c], v.weight, v.bias, c);
}

/* Block (tile, q): sum(g) and sum(g * (x - mean)) over part q of the rows, g = act'(x * scale + shift) dy
 * (the normalised values' gradient). */
__global__ void bn_cl_grad_parts_kernel(double *part_sums, const void *dout, const void *in, const bn_affine *aff,
                                        lt_bn_channels_last_shape s, int parts) {
    int64_t c = tile_channel(), begin, end;
    part_range(s.n * s.h * s.w, parts, (int)blockIdx.y, &begin, &end);
    double sum = 0, sum_xc = 0;
    if (c < s.c) {
        bn_affine t = aff[c];
        PART_ROWS(r, begin, end) {
            int64_t i = r * s.c + c;
            float x = load_as_float(in, s.x, i);
            float g = act_grad(fmaf(x, t.scale, t.shift), load_as_float(dout, s.dy, i), s.act);
            sum += g;
            sum_xc += (double)g * (double)(x - t.mean);
        }
    }
    store_part(part_sums, c, s.c, parts, sum, sum_xc);
}

__global__ void bn_cl_grad_input_kernel(void *dinp, const void *dout, const void *in, const bn_affine *aff,
                                        const bn_grad *coefficients, lt_bn_channels_last_shape s) {
    int64_t c = tile_channel();
    if (c >= s.c) return;
    bn_affine t = aff[c];
    bn_grad k = coefficients[c];
    TILE_ROWS(r, s.n * s.h * s.w) {
        int64_t i = r * s.c + c;
        float x = load_as_float(in, s.x, i);
        float g = act_grad(fmaf(x, t.scale, t.shift), load_as_float(dout, s.dy, i), s.act);
        store_float(dinp, s.dx, i, bn_dx(k, g, x, t.mean));
    }
}

/* Block (tile, q): sum(g) and sum(g * (x - mean)) over part q of the windows, g being the output's
 * gradient at the value its code names and 0 at the other three. All four take part, as on the CPU:
 * 0 * (x - mean) is NaN for an infinite x. */
__global__ void bn_cl_pool_grad_parts_kernel(double *part_sums, const void *dout, const uint8_t *codes, const void *in,
                                             const float *save_mean, lt_bn_channels_last_shape s, int parts) {
    int64_t c = tile_channel(), C = s.c, ho = s.h / 2, wo = s.w / 2, begin, end;
    part_range(s.n * ho * wo, parts, (int)blockIdx.y, &begin, &end);
    double sum = 0, sum_xc = 0;
    if (c < C) {
        float mean = save_mean[c];
        PART_ROWS(o, begin, end) {
            int64_t q = o / wo, ox = o - q * wo, b = q / ho, oy = q - b * ho;
            int64_t at = ((b * s.h + 2 * oy) * s.w + 2 * ox) * C + c, below = s.w * C;
            int code = codes[o * C + c];
            float dy = load_as_float(dout, s.dy, o * C + c);
            for (int k = 0; k < 4; k++) {
                float g = code == k ? dy : 0.0f;
                float x = load_as_float(in, s.x, at + (k / 2) * below + (k % 2) * C);
                sum += g;
                sum_xc += (double)g * (double)(x - mean);
            }
        }
    }
    store_part(part_sums, c, C, parts, sum, sum_xc);
}

/* Input element (b, y, x) of channel c: a * g + b * (x - mean) + c, g the gradient of its window's output
 * where the code names it (0 elsewhere); b * (x - mean) + c alone in the last row or column of an odd
 * size, which lies in no window. */
__global__ void bn_cl_pool_grad_input_kernel(void *dinp, const void *dout, const uint8_t *codes, const void *in,
                                             const bn_grad *coefficients, const float *save_mean,
                                             lt_bn_channels_last_shape s) {
    int64_t c = tile_channel(), C = s.c, ho = s.h / 2, wo = s.w / 2;
    if (c >= C) return;
    bn_grad k = coefficients[c];
    float mean = save_mean[c];
    TILE_ROWS(r, s.n * s.h * s.w) {
        int64_t q = r / s.w, x = r - q * s.w, b = q / s.h, y = q - b * s.h, i = r * C + c;
        float xv = load_as_float(in, s.x, i), d;
        if (y < 2 * ho && x < 2 * wo) {
            int64_t o = ((b * ho + y / 2) * wo + x / 2) * C + c;
            float g = codes[o] == (y % 2) * 2 + x % 2 ? load_as_float(dout, s.dy, o) : 0.0f;
            d = bn_dx(k, g, xv, mean);
        } else {
            d = (k.b == 0.0f ? 0.0f : k.b * (xv - mean)) + k.c;
        }
        store_float(dinp, s.dx, i, d);
    }
}

/* ---- host side ---- */

static bool empty(const lt_bn_channels_last_shape &s) { return s.n * s.h * s.w * s.c == 0; }

/* Each channel's transform into aff (device, C): in training the moments in tiles, then bn_stats.cu's
 * thread per channel (the running statistics' update, save_mean, save_invstd). */
static int forward_stats(lt_error *err, bn_affine *aff, const void *in, lt_bn_vectors v, lt_bn_channels_last_shape s,
                         lt_batchnorm_params p) {
    int64_t rows = s.n * s.h * s.w;
    int parts = p.training ? tile_parts(s.c, rows) : 0;
    double *part_sums = nullptr;
    if (parts) {
        part_sums = (double *)device_alloc(sizeof(double) * 2 * (size_t)(s.c * parts), err);
        if (!part_sums) return -1;
        bn_cl_moments_kernel<<<dim3((unsigned)tiles_of(s.c), (unsigned)parts), TILE_THREADS, 0, state().stream>>>(
            part_sums, in, s, parts);
        if (launch_check(err, "bn_cl_moments_kernel")) {
            device_free(part_sums);
            return -1;
        }
    }
    /* the first value of channel c is element c of row 0 */
    int rc = bn_forward_finalize(err, aff, chan_first{in, s.x, 1}, s.c, v, p, part_sums, parts, nullptr, rows);
    device_free(part_sums);
    return rc;
}

static int bn_cl_forward(lt_kernel_ctx *ctx, void *out, const void *in, lt_bn_vectors v, lt_bn_channels_last_shape s,
                         lt_batchnorm_params p) {
    if (empty(s)) return 0; /* the front passes none */
    bn_affine *aff = (bn_affine *)device_alloc(sizeof(bn_affine) * (size_t)s.c, ctx->err);
    if (!aff) return -1;
    int rc = forward_stats(ctx->err, aff, in, v, s, p);
    if (!rc) {
        bn_cl_apply_kernel<<<tile_grid(s.c, s.n * s.h * s.w), TILE_THREADS, 0, state().stream>>>(out, in, aff, s);
        rc = launch_check(ctx->err, "bn_cl_apply_kernel");
    }
    device_free(aff);
    return rc;
}

static int bn_cl_pool_forward(lt_kernel_ctx *ctx, void *out, uint8_t *codes, const void *in, lt_bn_vectors v,
                              lt_bn_channels_last_shape s, lt_batchnorm_params p) {
    if (empty(s)) return 0;
    int64_t windows = s.n * (s.h / 2) * (s.w / 2);
    bn_affine *aff = (bn_affine *)device_alloc(sizeof(bn_affine) * (size_t)s.c, ctx->err);
    if (!aff) return -1;
    int rc = forward_stats(ctx->err, aff, in, v, s, p); /* over every row, those in no window too */
    if (!rc && windows > 0) {
        bn_cl_pool_kernel<<<tile_grid(s.c, windows), TILE_THREADS, 0, state().stream>>>(out, codes, in, aff, s);
        rc = launch_check(ctx->err, "bn_cl_pool_kernel");
    }
    device_free(aff);
    return rc;
}

static int bn_cl_backward(lt_kernel_ctx *ctx, void *dinp, float *dweight, float *dbias, const void *dout,
                          const void *in, lt_bn_vectors v, lt_bn_channels_last_shape s) {
    if (empty(s)) return 0;
    lt_error *err = ctx->err;
    int64_t rows = s.n * s.h * s.w;
    int parts = tile_parts(s.c, rows);
    bn_grad_scratch scratch;
    if (scratch.make(err, s.c, parts, true)) return -1;
    bn_grad *k = scratch.k;
    bn_affine *aff = scratch.aff;
    double *part_sums = scratch.part_sums;
    bn_cl_saved_affine_kernel<<<grid_for(s.c), 256, 0, state().stream>>>(aff, v, s.c);
    int rc = launch_check(err, "bn_cl_saved_affine_kernel");
    if (!rc) {
        bn_cl_grad_parts_kernel<<<dim3((unsigned)tiles_of(s.c), (unsigned)parts), TILE_THREADS, 0, state().stream>>>(
            part_sums, dout, in, aff, s, parts);
        rc = launch_check(err, "bn_cl_grad_parts_kernel");
    }
    if (!rc)
        rc = bn_backward_coefficients(err, k, part_sums, parts, nullptr, rows, s.c, dweight, dbias, nullptr, v,
                                      s.training);
    if (!rc && dinp) {
        bn_cl_grad_input_kernel<<<tile_grid(s.c, rows), TILE_THREADS, 0, state().stream>>>(dinp, dout, in, aff, k, s);
        rc = launch_check(err, "bn_cl_grad_input_kernel");
    }
    return rc;
}

/* The fused pool's backward pass: the sums over the windows (none when H or W is 1), the coefficients over
 * every input row (the CPU's count), the gradient of every input element. */
static int bn_cl_pool_backward(lt_kernel_ctx *ctx, void *dinp, float *dweight, float *dbias, const void *dout,
                               const uint8_t *codes, const void *in, lt_bn_vectors v, lt_bn_channels_last_shape s) {
    if (empty(s)) return 0;
    lt_error *err = ctx->err;
    int64_t rows = s.n * s.h * s.w, windows = s.n * (s.h / 2) * (s.w / 2);
    int parts = windows > 0 ? tile_parts(s.c, windows) : 0;
    bn_grad_scratch scratch;
    if (scratch.make(err, s.c, parts, false)) return -1;
    bn_grad *k = scratch.k;
    double *part_sums = scratch.part_sums;
    int rc = 0;
    if (parts) {
        bn_cl_pool_grad_parts_kernel<<<dim3((unsigned)tiles_of(s.c), (unsigned)parts), TILE_THREADS, 0,
                                       state().stream>>>(part_sums, dout, codes, in, v.save_mean, s, parts);
        rc = launch_check(err, "bn_cl_pool_grad_parts_kernel");
    }
    if (!rc)
        rc = bn_backward_coefficients(err, k, part_sums, parts, nullptr, rows, s.c, dweight, dbias, nullptr, v,
                                      s.training);
    if (!rc && dinp) {
        bn_cl_pool_grad_input_kernel<<<tile_grid(s.c, rows), TILE_THREADS, 0, state().stream>>>(dinp, dout, codes, in,
                                                                                                k, v.save_mean, s);
        rc = launch_check(err, "bn_cl_pool_grad_input_kernel");
    }
    return rc;
}

/* any precision, as the CPU's entry; float32, bf16 or fp16 tensors (the fields a pass does not use are 0,
 * float32) */
static bool bn_cl_supports(const lt_impl *self, const void *shape, lt_precision p) {
    const lt_bn_channels_last_shape *s = (const lt_bn_channels_last_shape *)shape;
    return mixed_dtype(s->x) && mixed_dtype(s->y) && mixed_dtype(s->dy) && mixed_dtype(s->dx);
}

const lt_batchnorm_channels_last_impl batchnorm_channels_last_cuda = {
    {"cuda", bn_cl_supports, nullptr},
    bn_cl_forward,
    bn_cl_backward,
    bn_cl_pool_forward,
    bn_cl_pool_backward,
};

}  // namespace ltc
