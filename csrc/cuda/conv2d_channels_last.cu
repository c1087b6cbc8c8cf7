/* The 2-D convolution of mixed precision (ops.h's conv2d.channels_last table; bf16 or fp16, the 16-bit
 * type of the layer's precision, ctx->precision) through cuDNN 9's convolution API, with PyTorch
 * autocast's arithmetic: x and w rounded to the 16-bit type, cuDNN's PSEUDO_BFLOAT16_CONFIG or
 * PSEUDO_HALF_CONFIG (16-bit tensors, float32 compute type: float accumulation, as under autocast in
 * either type), y rounded to the 16-bit type; the bias added in float and rounded once more; dW computed
 * by cuDNN in the 16-bit type (as autocast's is; in fp16 a scaled gradient may overflow to inf, which the
 * loss scaler's unscale then finds) and added into the float32 gradient; db summed from dY in double, in
 * parts fixed by the shape.
 *
 * cuDNN sees every tensor dense NHWC of the 16-bit type (its preferred layout; the filter KRSC): the
 * input, grad_output, output and grad_input as they are when they are so and 16-byte aligned (its NHWC
 * kernels load 16 bytes at a time), else through a buffer a kernel converts from or into their type and
 * strides (the network's first layer gets a float32 NCHW batch). The weight is converted on every call: it
 * changes between steps. grad_input has the input's type and strides (lt_conv2d_backward_operands resizes
 * it like the dense input the front hands over, so every dimension but size-1 ones has the input's stride).
 *
 * Plans and algorithms: conv_plan.cuh; a plan's key holds cuDNN's data type, so bf16 and fp16 plans are
 * apart. The directions are ranked under CUDNN_TENSOR_OP_MATH: cuDNN's legacy API runs its tensor-core
 * kernels only under that math type (or _ALLOW_CONVERSION, which would down-convert float data: there is
 * none), and its heuristics weigh them only then; each algorithm then runs with the math type the ranking
 * paired with it. */
#include <limits.h>
#include <stdint.h>

#include "conv_plan.cuh"
#include "mixed.cuh"
#include "parts.cuh"

namespace ltc {

/* An activation: its (n, c, h, w) sizes, element type and strides. */
struct act {
    int64_t n, c, h, w;
    lt_act_desc d;
};

/* The 16-bit type cuDNN computes with at precision p (the core's lt_precision_dtype, which the module
 * cannot call): fp16 at LT_FP16, bf16 at LT_BF16 (supports() takes no other); and its cuDNN name. */
static lt_dtype half_type(lt_precision p) { return p == LT_FP16 ? LT_FLOAT16 : LT_BFLOAT16; }
static cudnnDataType_t cudnn_type(lt_dtype t) { return t == LT_FLOAT16 ? CUDNN_DATA_HALF : CUDNN_DATA_BFLOAT16; }

/* Below, t is that type (LT_BFLOAT16 or LT_FLOAT16), and a uint16_t array holds elements of it. */
static act nhwc(lt_dtype t, int64_t n, int64_t c, int64_t h, int64_t w) {
    return {n, c, h, w, {t, {h * w * c, 1, w * c, c}}};
}

static int64_t count(const act &a) { return a.n * a.c * a.h * a.w; }

/* Whether cuDNN takes a's data at p as it is: dense NHWC of type t (size-1 dimensions' strides aside),
 * 16-byte aligned. */
static bool as_is(const void *p, const act &a, lt_dtype t) {
    const int64_t *st = a.d.stride;
    return a.d.dtype == t && (uintptr_t)p % 16 == 0 && (a.c <= 1 || st[1] == 1) &&
           (a.w <= 1 || st[3] == a.c) && (a.h <= 1 || st[2] == a.w * a.c) && (a.n <= 1 || st[0] == a.h * a.w * a.c);
}

/* Where element i of the dense NHWC array of a's sizes is in a. */
static __device__ __forceinline__ int64_t offset_of(const act &a, int64_t i) {
    int64_t c = i % a.c, r = i / a.c;
    int64_t x = r % a.w;
    r /= a.w;
    int64_t y = r % a.h, n = r / a.h;
    return n * a.d.stride[0] + c * a.d.stride[1] + y * a.d.stride[2] + x * a.d.stride[3];
}

/* dst (dense NHWC of type t) = src (as a describes it), rounded. */
static __global__ void gather_nhwc_kernel(uint16_t *dst, lt_dtype t, const void *src, act a, int64_t total) {
    LTC_FOR(i, total) store_float(dst, t, i, load_as_float(src, a.d.dtype, offset_of(a, i)));
}

/* dst (as a describes it) = src (dense NHWC of type t) + the channel's bias (NULL: none), rounded to dst's
 * type; in place when dst is src. */
static __global__ void scatter_nhwc_kernel(void *dst, act a, const uint16_t *src, lt_dtype t, const float *bias,
                                           int64_t total) {
    LTC_FOR(i, total) {
        float v = load_as_float(src, t, i);
        if (bias) v += bias[i % a.c];
        store_float(dst, a.d.dtype, offset_of(a, i), v);
    }
}

/* The data of a at p as cuDNN takes it (type t): itself, or a converted copy in buf. NULL (err written) on
 * failure. */
static const uint16_t *operand(lt_error *err, owned_buffer &buf, const void *p, const act &a, lt_dtype t) {
    if (as_is(p, a, t)) return (const uint16_t *)p;
    int64_t total = count(a);
    if (!(buf.p = device_alloc(sizeof(uint16_t) * (size_t)total, err))) return nullptr;
    gather_nhwc_kernel<<<grid_for(total), 256, 0, state().stream>>>((uint16_t *)buf.p, t, p, a, total);
    return launch_check(err, "gather_nhwc_kernel") ? nullptr : (const uint16_t *)buf.p;
}

/* Where cuDNN writes a result (type t) that goes to p as a describes: p itself, or buf (then finish copies
 * it). */
static uint16_t *result(lt_error *err, owned_buffer &buf, void *p, const act &a, lt_dtype t) {
    if (as_is(p, a, t)) return (uint16_t *)p;
    return (uint16_t *)(buf.p = device_alloc(sizeof(uint16_t) * (size_t)count(a), err));
}

/* The result r (type t) into p, plus the bias (NULL: none). */
static int finish(lt_error *err, void *p, const act &a, const uint16_t *r, lt_dtype t, const float *bias) {
    if (r == p && !bias) return 0;
    int64_t total = count(a);
    scatter_nhwc_kernel<<<grid_for(total), 256, 0, state().stream>>>(p, a, r, t, bias, total);
    LTC_LAUNCHED(err, "scatter_nhwc_kernel");
    return 0;
}

/* The float32 weight (Cout, Cin, kh, kw) in type t in cuDNN's NHWC filter layout (Cout, kh, kw, Cin). */
static __global__ void weight_to_krsc_kernel(uint16_t *dst, lt_dtype t, const float *w, int64_t cin, int64_t taps,
                                             int64_t total) {
    LTC_FOR(i, total) {
        int64_t ci = i % cin, r = i / cin;
        int64_t tap = r % taps, o = r / taps;
        store_float(dst, t, i, w[(o * cin + ci) * taps + tap]);
    }
}

/* dweight (Cout, Cin, kh, kw) += g (Cout, kh, kw, Cin) in type t */
static __global__ void add_krsc_grad_kernel(float *dweight, const uint16_t *g, lt_dtype t, int64_t cin, int64_t taps,
                                            int64_t total) {
    LTC_FOR(i, total) {
        int64_t tap = i % taps, r = i / taps;
        int64_t ci = r % cin, o = r / cin;
        dweight[i] += load_as_float(g, t, (o * taps + tap) * cin + ci);
    }
}

static const uint16_t *krsc_weight(lt_error *err, owned_buffer &buf, const float *weight, const lt_conv2d_shape &s,
                                   lt_dtype t) {
    int64_t total = s.cout * s.k;
    if (!(buf.p = device_alloc(sizeof(uint16_t) * (size_t)total, err))) return nullptr;
    weight_to_krsc_kernel<<<grid_for(total), 256, 0, state().stream>>>((uint16_t *)buf.p, t, weight, s.cin,
                                                                         s.p.kernel_h * s.p.kernel_w, total);
    return launch_check(err, "weight_to_krsc_kernel") ? nullptr : (const uint16_t *)buf.p;
}

/* ---- the bias's gradient: the pixels cut into parts (a function of their number alone), a block per
 * part and 32 channels (a warp reads 32 adjacent channels), each part's sums in double, then a thread per
 * channel adding the parts in order: no atomics, the same bits at every call ---- */

enum { DB_CHANNELS = 32, DB_LANES = 8, DB_PIXELS = 1024, DB_MAX_PARTS = 1024 };

static __global__ void bias_grad_parts_kernel(double *part, const uint16_t *dy, lt_dtype t, int64_t pixels,
                                              int64_t channels, int64_t chunk) {
    __shared__ double lane[DB_LANES][DB_CHANNELS];
    int64_t c = (int64_t)blockIdx.x * DB_CHANNELS + threadIdx.x;
    int64_t begin = (int64_t)blockIdx.y * chunk, end = begin + chunk < pixels ? begin + chunk : pixels;
    double acc = 0;
    if (c < channels)
        for (int64_t q = begin + threadIdx.y; q < end; q += DB_LANES) acc += load_as_float(dy, t, q * channels + c);
    lane[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < channels) {
        double total = 0;
        for (int l = 0; l < DB_LANES; l++) total += lane[l][threadIdx.x];
        part[(int64_t)blockIdx.y * channels + c] = total;
    }
}

static __global__ void bias_grad_add_kernel(float *db, const double *part, int64_t parts, int64_t channels) {
    LTC_FOR(c, channels) {
        double total = 0;
        for (int64_t k = 0; k < parts; k++) total += part[k * channels + c];
        db[c] += (float)total;
    }
}

static int bias_grad(lt_error *err, float *db, const uint16_t *dy, lt_dtype t, const lt_conv2d_shape &s) {
    int64_t pixels = s.n * s.ho * s.wo, channels = s.cout;
    int64_t parts = (pixels + DB_PIXELS - 1) / DB_PIXELS;
    if (parts > DB_MAX_PARTS) parts = DB_MAX_PARTS;
    int64_t chunk = (pixels + parts - 1) / parts;
    owned_buffer part;
    if (!(part.p = device_alloc(sizeof(double) * (size_t)(parts * channels), err))) return -1;
    dim3 grid((unsigned)((channels + DB_CHANNELS - 1) / DB_CHANNELS), (unsigned)parts), block(DB_CHANNELS, DB_LANES);
    bias_grad_parts_kernel<<<grid, block, 0, state().stream>>>((double *)part.p, dy, t, pixels, channels, chunk);
    LTC_LAUNCHED(err, "bias_grad_parts_kernel");
    bias_grad_add_kernel<<<grid_for(channels), 256, 0, state().stream>>>(db, (const double *)part.p, parts, channels);
    LTC_LAUNCHED(err, "bias_grad_add_kernel");
    return 0;
}

/* ---- plans and the two passes ---- */

/* x, dx (Cin channels) and y (Cout) packed NHWC, the filter KRSC; all of cuDNN's type `data`. */
static int describe(lt_error *err, conv_plan &p, const lt_conv2d_shape &s, cudnnDataType_t data) {
    LTC_CUDNN(err, cudnnSetTensor4dDescriptor(p.x, CUDNN_TENSOR_NHWC, data, (int)s.n, (int)s.cin, (int)s.h, (int)s.w));
    LTC_CUDNN(err, cudnnSetTensor4dDescriptor(p.dx, CUDNN_TENSOR_NHWC, data, (int)s.n, (int)s.cin, (int)s.h, (int)s.w));
    LTC_CUDNN(err, cudnnSetTensor4dDescriptor(p.y, CUDNN_TENSOR_NHWC, data, (int)s.n, (int)s.cout, (int)s.ho,
                                              (int)s.wo));
    LTC_CUDNN(err, cudnnSetFilter4dDescriptor(p.w, data, CUDNN_TENSOR_NHWC, (int)s.cout, (int)s.cin, (int)s.p.kernel_h,
                                              (int)s.p.kernel_w));
    return 0;
}

static conv_plan *plan_of(lt_kernel_ctx *ctx, const lt_conv2d_shape &s, const lt_act_desc &in, lt_dtype t,
                          conv_state **transient) {
    cudnnDataType_t data = cudnn_type(t);
    conv_key key = conv_key_of(s, in.dtype, in.stride, data, CUDNN_TENSOR_OP_MATH);
    return plan_for(ctx, "conv2d (channels-last) on cuda", s, key, transient,
                    [&](lt_error *err, conv_plan &p) { return describe(err, p, s, data); });
}

static int forward_with(lt_error *err, conv_plan *p, lt_dtype t, void *out, const void *in, const float *weight,
                        const float *bias, const lt_conv2d_shape &s, const lt_act_desc &in_desc) {
    if (!p) return -1;
    act xa = {s.n, s.cin, s.h, s.w, in_desc}, ya = nhwc(t, s.n, s.cout, s.ho, s.wo);
    owned_buffer xb, wb, yb;
    const uint16_t *x = operand(err, xb, in, xa, t);
    const uint16_t *w = x ? krsc_weight(err, wb, weight, s, t) : nullptr;
    uint16_t *y = w ? result(err, yb, out, ya, t) : nullptr;
    if (!y) return -1;
    if (!p->fwd.ranked && rank_forward(err, *p)) return -1;
    cudnnHandle_t h = state().dnn;
    const float one = 1.0f, zero = 0.0f;
    if (run_ranked(err, *p, p->fwd, "cudnnConvolutionForward", [&](int algo, void *ws, size_t bytes) {
            return cudnnConvolutionForward(h, &one, p->x, x, p->w, w, p->conv, (cudnnConvolutionFwdAlgo_t)algo, ws,
                                           bytes, &zero, p->y, y);
        }))
        return -1;
    return finish(err, out, ya, y, t, bias);
}

/* dW through a buffer of type t (beta = 0) added into dweight, then dX when asked for. */
static int backward_with(lt_error *err, conv_plan *p, lt_dtype t, void *dinp, float *dweight, float *dbias,
                         const void *dout, const void *in, const float *weight, const lt_conv2d_shape &s,
                         const lt_act_desc &in_desc) {
    if (!p) return -1;
    act xa = {s.n, s.cin, s.h, s.w, in_desc}, ya = nhwc(t, s.n, s.cout, s.ho, s.wo);
    owned_buffer dyb, xb, gb, wb, dxb;
    const uint16_t *dy = operand(err, dyb, dout, ya, t);
    if (!dy || (dbias && bias_grad(err, dbias, dy, t, s))) return -1;
    const uint16_t *x = operand(err, xb, in, xa, t);
    int64_t wcount = s.cout * s.k;
    if (!x || !(gb.p = device_alloc(sizeof(uint16_t) * (size_t)wcount, err))) return -1;
    if (!p->bwd_filter.ranked && rank_backward_filter(err, *p)) return -1;
    cudnnHandle_t h = state().dnn;
    const float one = 1.0f, zero = 0.0f;
    if (run_ranked(err, *p, p->bwd_filter, "cudnnConvolutionBackwardFilter", [&](int algo, void *ws, size_t bytes) {
            return cudnnConvolutionBackwardFilter(h, &one, p->x, x, p->y, dy, p->conv,
                                                  (cudnnConvolutionBwdFilterAlgo_t)algo, ws, bytes, &zero, p->w, gb.p);
        }))
        return -1;
    add_krsc_grad_kernel<<<grid_for(wcount), 256, 0, state().stream>>>(dweight, (const uint16_t *)gb.p, t, s.cin,
                                                                        s.p.kernel_h * s.p.kernel_w, wcount);
    LTC_LAUNCHED(err, "add_krsc_grad_kernel");
    if (!dinp) return 0;
    const uint16_t *w = krsc_weight(err, wb, weight, s, t);
    uint16_t *dx = w ? result(err, dxb, dinp, xa, t) : nullptr;
    if (!dx) return -1;
    if (!p->bwd_data.ranked && rank_backward_data(err, *p)) return -1;
    if (run_ranked(err, *p, p->bwd_data, "cudnnConvolutionBackwardData", [&](int algo, void *ws, size_t bytes) {
            return cudnnConvolutionBackwardData(h, &one, p->w, w, p->y, dy, p->conv,
                                                (cudnnConvolutionBwdDataAlgo_t)algo, ws, bytes, &zero, p->dx, dx);
        }))
        return -1;
    return finish(err, dinp, xa, dx, t, nullptr);
}

static int conv2d_cl_forward(lt_kernel_ctx *ctx, void *out, const void *in, const float *weight, const float *bias,
                             lt_conv2d_shape s, lt_act_desc in_desc) {
    conv_state *transient = nullptr;
    lt_dtype t = half_type(ctx->precision);
    int rc = forward_with(ctx->err, plan_of(ctx, s, in_desc, t, &transient), t, out, in, weight, bias, s, in_desc);
    conv_release(transient);
    return rc;
}

static int conv2d_cl_backward(lt_kernel_ctx *ctx, void *dinp, float *dweight, float *dbias, const void *dout,
                              const void *in, const float *weight, lt_conv2d_shape s, lt_act_desc in_desc) {
    conv_state *transient = nullptr;
    lt_dtype t = half_type(ctx->precision);
    int rc = backward_with(ctx->err, plan_of(ctx, s, in_desc, t, &transient), t, dinp, dweight, dbias, dout, in,
                           weight, s, in_desc);
    conv_release(transient);
    return rc;
}

/* bf16 or fp16 only. cuDNN describes tensors with int sizes and strides: those it sees are packed NHWC, so their
 * element counts bound every stride (the input's own strides reach only this file's kernels, in 64 bits). */
static bool conv2d_cl_supports(const lt_impl *self, const void *shape, lt_precision prec) {
    const lt_conv2d_shape *s = (const lt_conv2d_shape *)shape;
    int64_t biggest[] = {s->n * s->cin * s->h * s->w, s->n * s->cout * s->ho * s->wo, s->cout * s->k,
                         s->p.kernel_h, s->p.kernel_w, s->p.pad_h, s->p.pad_w, s->p.stride_h, s->p.stride_w};
    for (int64_t v : biggest)
        if (v > INT_MAX) return false;
    return prec == LT_BF16 || prec == LT_FP16;
}

const lt_conv2d_channels_last_impl conv2d_channels_last_cuda = {
    {"cuda", conv2d_cl_supports, conv_release},
    conv2d_cl_forward,
    conv2d_cl_backward,
};

}  // namespace ltc
