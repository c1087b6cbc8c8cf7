/* The 2-D convolution through cuDNN 9's convolution API, float32 in the core's layouts (nn.h): the input
 * (N, C, H, W) with contiguous planes and free batch and channel strides, the output and grad_output
 * batch-folded (C, N, H, W) dense, grad_input with its own strides. cuDNN's strided tensor descriptors
 * take these layouts as they are, so nothing is copied.
 *
 * Descriptors and algorithms are kept per shape in the layer's plans (conv_plan.cuh). When cuDNN takes
 * none of its algorithms for the strided layouts, the plan falls back to packed NCHW descriptors and the
 * data goes through copies (correct, slower). The workspace is the module's scratch buffer (scratch
 * functions return 0).
 * TF32 runs when the module allows it (CUDNN_DEFAULT_MATH), exact float32 otherwise (CUDNN_FMA_MATH).
 * The bias and its gradient are kernels of their own: each channel is a contiguous run of the output. */
#include <limits.h>

#include "conv_plan.cuh"
#include "parts.cuh"

namespace ltc {

/* A size-1 dimension's stride does not address anything, but cuDNN checks it: give it the packed value. */
static void tidy_strides(int64_t n, int64_t c, int64_t plane, int64_t *sn, int64_t *sc) {
    if (c == 1) *sc = plane;
    if (n == 1) *sn = c * *sc;
}

static int set_planes(lt_error *err, cudnnTensorDescriptor_t d, int64_t n, int64_t c, int64_t h, int64_t w, int64_t sn,
                      int64_t sc) {
    tidy_strides(n, c, h * w, &sn, &sc);
    LTC_CUDNN(err, cudnnSetTensor4dDescriptorEx(d, CUDNN_DATA_FLOAT, (int)n, (int)c, (int)h, (int)w, (int)sn, (int)sc,
                                                (int)w, 1));
    return 0;
}

/* x and y strided as the core lays them out (dx is set when bwd_data is ranked), the filter dense KCRS. */
static int describe(lt_error *err, conv_plan &p, const lt_conv2d_shape &s) {
    if (set_planes(err, p.x, s.n, s.cin, s.h, s.w, s.x.sn, s.x.sc)) return -1;
    int64_t plane = s.ho * s.wo;
    if (set_planes(err, p.y, s.n, s.cout, s.ho, s.wo, plane, s.n * plane)) return -1; /* batch-folded */
    LTC_CUDNN(err, cudnnSetFilter4dDescriptor(p.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, (int)s.cout, (int)s.cin,
                                              (int)s.p.kernel_h, (int)s.p.kernel_w));
    return 0;
}

static conv_plan *plan_of(lt_kernel_ctx *ctx, const lt_conv2d_shape &s, conv_state **transient) {
    const int64_t in_stride[4] = {s.x.sn, s.x.sc, s.w, 1};
    conv_key key = conv_key_of(s, LT_FLOAT32, in_stride, CUDNN_DATA_FLOAT,
                               tf32_allowed() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH);
    return plan_for(ctx, "conv2d on cuda", s, key, transient,
                    [&](lt_error *err, conv_plan &p) { return describe(err, p, s); });
}

/* out[c, i] += bias[c] over the batch-folded output: channel c is the run [c * per_channel, (c+1) * ...). */
__global__ void add_channel_bias_kernel(float *out, const float *bias, int64_t channels, int64_t per_channel) {
    LTC_FOR(i, channels * per_channel) out[i] += bias[i / per_channel];
}

/* db[c] += sum of the run of channel c: one block per channel, summed in double. */
__global__ void add_channel_sums_kernel(float *db, const float *dy, int64_t per_channel) {
    __shared__ double part[256];
    const float *run = dy + (int64_t)blockIdx.x * per_channel;
    double acc = 0;
    for (int64_t i = threadIdx.x; i < per_channel; i += blockDim.x) acc += run[i];
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) db[blockIdx.x] += (float)part[0];
}

/* ---- the packed fallback: when cuDNN takes none of its algorithms for the core's strided layouts, the
 * plan describes x, y and dx packed NCHW and the data goes through copies (memory.cu's strided copy) ---- */

static int go_packed(lt_error *err, conv_plan &p, const lt_conv2d_shape &s) {
    p.packed = true;
    p.fwd = p.bwd_data = p.bwd_filter = algo_list();
    if (set_planes(err, p.x, s.n, s.cin, s.h, s.w, s.cin * s.h * s.w, s.h * s.w) ||
        set_planes(err, p.dx, s.n, s.cin, s.h, s.w, s.cin * s.h * s.w, s.h * s.w))
        return -1;
    return set_planes(err, p.y, s.n, s.cout, s.ho, s.wo, s.cout * s.ho * s.wo, s.ho * s.wo);
}

/* Copies between an (n, c, h, w) tensor with contiguous planes at strides (sn, sc) and a packed one. */
static int repack(lt_error *err, float *dst, const float *src, int64_t n, int64_t c, int64_t h, int64_t w, int64_t sn,
                  int64_t sc, bool to_packed) {
    lt_strided_copy cp = {4, 4, {n, c, h, w}, {c * h * w, h * w, w, 1}, {sn, sc, w, 1}};
    if (!to_packed)
        for (int k = 0; k < 2; k++) {
            int64_t t = cp.dst_stride[k];
            cp.dst_stride[k] = cp.src_stride[k];
            cp.src_stride[k] = t;
        }
    return strided_copy(dst, src, &cp, err);
}

/* src packed: itself when it is already, else a packed copy in *buf. NULL (err written) on failure. */
static const float *packed_view(lt_error *err, owned_buffer &buf, const float *src, int64_t n, int64_t c, int64_t h,
                                int64_t w, int64_t sn, int64_t sc) {
    if ((n == 1 || sn == c * h * w) && (c == 1 || sc == h * w)) return src;
    if (!(buf.p = device_alloc(sizeof(float) * (size_t)(n * c * h * w), err))) return nullptr;
    return repack(err, (float *)buf.p, src, n, c, h, w, sn, sc, true) ? nullptr : (const float *)buf.p;
}

/* ---- the three directions, each in the plan's current mode (0, -1, or NONE_USABLE) ---- */

static int forward_in_mode(lt_error *err, conv_plan &p, const lt_conv2d_shape &s, float *out, const float *in,
                           const float *weight) {
    int64_t plane = s.ho * s.wo;
    owned_buffer xp, yp;
    const float *x = in;
    float *y = out;
    if (p.packed) {
        if (!(x = packed_view(err, xp, in, s.n, s.cin, s.h, s.w, s.x.sn, s.x.sc))) return -1;
        if (!(y = (float *)(yp.p = device_alloc(sizeof(float) * (size_t)(s.n * s.cout * plane), err)))) return -1;
    }
    if (!p.fwd.ranked) {
        int rc = rank_forward(err, p);
        if (rc) return rc;
    }
    cudnnHandle_t h = state().dnn;
    const float one = 1.0f, zero = 0.0f;
    int rc = run_ranked(err, p, p.fwd, "cudnnConvolutionForward", [&](int algo, void *ws, size_t bytes) {
        return cudnnConvolutionForward(h, &one, p.x, x, p.w, weight, p.conv, (cudnnConvolutionFwdAlgo_t)algo, ws, bytes,
                                       &zero, p.y, y);
    });
    if (rc || !p.packed) return rc;
    return repack(err, out, y, s.n, s.cout, s.ho, s.wo, plane, s.n * plane, false); /* into the batch-folded output */
}

/* dW += dL/dW (beta = 1) */
static int filter_in_mode(lt_error *err, conv_plan &p, const lt_conv2d_shape &s, float *dweight, const float *dout,
                          const float *in) {
    int64_t plane = s.ho * s.wo;
    owned_buffer xp, dyp;
    const float *x = in, *dy = dout;
    if (p.packed && (!(x = packed_view(err, xp, in, s.n, s.cin, s.h, s.w, s.x.sn, s.x.sc)) ||
                     !(dy = packed_view(err, dyp, dout, s.n, s.cout, s.ho, s.wo, plane, s.n * plane))))
        return -1;
    if (!p.bwd_filter.ranked) {
        int rc = rank_backward_filter(err, p);
        if (rc) return rc;
    }
    cudnnHandle_t h = state().dnn;
    const float one = 1.0f;
    return run_ranked(err, p, p.bwd_filter, "cudnnConvolutionBackwardFilter", [&](int algo, void *ws, size_t bytes) {
        return cudnnConvolutionBackwardFilter(h, &one, p.x, x, p.y, dy, p.conv, (cudnnConvolutionBwdFilterAlgo_t)algo,
                                              ws, bytes, &one, p.w, dweight);
    });
}

static int data_in_mode(lt_error *err, conv_plan &p, const lt_conv2d_shape &s, float *dinp, const float *dout,
                        const float *weight) {
    int64_t plane = s.ho * s.wo;
    owned_buffer dyp, dxp;
    const float *dy = dout;
    float *dx = dinp;
    if (p.packed) {
        if (!(dy = packed_view(err, dyp, dout, s.n, s.cout, s.ho, s.wo, plane, s.n * plane))) return -1;
        if (!(dx = (float *)(dxp.p = device_alloc(sizeof(float) * (size_t)(s.n * s.cin * s.h * s.w), err)))) return -1;
    } else if (p.bwd_data.ranked && (p.dx_sn != s.dx.sn || p.dx_sc != s.dx.sc)) {
        p.bwd_data = algo_list(); /* ranked for another grad_input layout */
    }
    if (!p.bwd_data.ranked) {
        if (!p.packed) {
            if (set_planes(err, p.dx, s.n, s.cin, s.h, s.w, s.dx.sn, s.dx.sc)) return -1;
            p.dx_sn = s.dx.sn;
            p.dx_sc = s.dx.sc;
        }
        int rc = rank_backward_data(err, p);
        if (rc) return rc;
    }
    cudnnHandle_t h = state().dnn;
    const float one = 1.0f, zero = 0.0f;
    int rc = run_ranked(err, p, p.bwd_data, "cudnnConvolutionBackwardData", [&](int algo, void *ws, size_t bytes) {
        return cudnnConvolutionBackwardData(h, &one, p.w, weight, p.y, dy, p.conv, (cudnnConvolutionBwdDataAlgo_t)algo,
                                            ws, bytes, &zero, p.dx, dx);
    });
    if (rc || !p.packed) return rc;
    return repack(err, dinp, dx, s.n, s.cin, s.h, s.w, s.dx.sn, s.dx.sc, false);
}

/* cuDNN's kernels refuse a pointer off 16 bytes (BAD_PARAM_MISALIGNED_POINTER), and a weight that is a
 * view into a flat buffer (Module:flatten_parameters: a data-parallel run's) may be one. Such a weight is
 * read from an aligned copy, and its gradient accumulated in one that is copied back; activations off it
 * go through the packed copies (go_packed). */
static bool aligned16(const void *p) { return (uintptr_t)p % 16 == 0; }

static float *aligned_copy(lt_error *err, owned_buffer &buf, const float *src, int64_t n) {
    size_t bytes = sizeof(float) * (size_t)n;
    if (!(buf.p = device_alloc(bytes, err))) return nullptr;
    cudaError_t e = cudaMemcpyAsync(buf.p, src, bytes, cudaMemcpyDeviceToDevice, state().stream);
    if (e != cudaSuccess) {
        cuda_fail(err, e, "cudaMemcpyAsync");
        return nullptr;
    }
    return (float *)buf.p;
}

/* The weight as cuDNN takes it: itself, or an aligned copy in buf. */
static const float *weight_for_cudnn(lt_error *err, owned_buffer &buf, const float *weight, const lt_conv2d_shape &s) {
    return aligned16(weight) ? weight : aligned_copy(err, buf, weight, s.cout * s.k);
}

/* A direction in the plan's mode, and once more packed when cuDNN takes nothing in the strided one. */
template <typename Direction>
static int in_some_mode(lt_error *err, conv_plan &p, const lt_conv2d_shape &s, Direction direction) {
    int rc = direction();
    if (rc == NONE_USABLE && !p.packed) rc = go_packed(err, p, s) ? -1 : direction();
    return rc ? -1 : 0;
}

static int conv2d_forward_with(lt_kernel_ctx *ctx, conv_plan *p, float *out, const float *in, const float *weight,
                               const float *bias, const lt_conv2d_shape &s) {
    if (!p) return -1;
    owned_buffer wb;
    const float *w = weight_for_cudnn(ctx->err, wb, weight, s);
    if (!w || in_some_mode(ctx->err, *p, s, [&] { return forward_in_mode(ctx->err, *p, s, out, in, w); })) return -1;
    if (bias) {
        int64_t per_channel = s.n * s.ho * s.wo;
        add_channel_bias_kernel<<<grid_for(s.cout * per_channel), 256, 0, state().stream>>>(out, bias, s.cout,
                                                                                            per_channel);
        LTC_LAUNCHED(ctx->err, "add_channel_bias_kernel");
    }
    return 0;
}

static int conv2d_backward_with(lt_kernel_ctx *ctx, conv_plan *p, float *dinp, float *dweight, float *dbias,
                                const float *dout, const float *in, const float *weight, const lt_conv2d_shape &s) {
    if (!p) return -1;
    if (dbias) {
        int64_t per_channel = s.n * s.ho * s.wo;
        if (s.cout > INT_MAX) return fail(ctx->err, "conv2d on cuda: %lld output channels", (long long)s.cout);
        add_channel_sums_kernel<<<(unsigned)s.cout, 256, 0, state().stream>>>(dbias, dout, per_channel);
        LTC_LAUNCHED(ctx->err, "add_channel_sums_kernel");
    }
    /* each direction retried on its own: dW accumulates, so it must run exactly once */
    owned_buffer dwb, wb;
    float *dw = aligned16(dweight) ? dweight : aligned_copy(ctx->err, dwb, dweight, s.cout * s.k);
    if (!dw || in_some_mode(ctx->err, *p, s, [&] { return filter_in_mode(ctx->err, *p, s, dw, dout, in); })) return -1;
    if (dw != dweight)
        LTC_CUDA(ctx->err, cudaMemcpyAsync(dweight, dw, sizeof(float) * (size_t)(s.cout * s.k), cudaMemcpyDeviceToDevice,
                                           state().stream));
    if (!dinp) return 0;
    const float *w = weight_for_cudnn(ctx->err, wb, weight, s);
    return w ? in_some_mode(ctx->err, *p, s, [&] { return data_in_mode(ctx->err, *p, s, dinp, dout, w); }) : -1;
}

static int conv2d_forward(lt_kernel_ctx *ctx, float *out, const float *in, const float *weight, const float *bias,
                          float *cols, lt_conv2d_shape s) {
    conv_state *transient = nullptr;
    int rc = conv2d_forward_with(ctx, plan_of(ctx, s, &transient), out, in, weight, bias, s);
    conv_release(transient);
    return rc;
}

static int conv2d_backward(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *in, const float *weight, float *scratch_unused, lt_conv2d_shape s) {
    conv_state *transient = nullptr;
    int rc = conv2d_backward_with(ctx, plan_of(ctx, s, &transient), dinp, dweight, dbias, dout, in, weight, s);
    conv_release(transient);
    return rc;
}

/* cuDNN describes tensors with int sizes and strides. */
static bool conv2d_supports(const lt_impl *self, const void *shape, lt_precision prec) {
    const lt_conv2d_shape *s = (const lt_conv2d_shape *)shape;
    int64_t biggest[] = {s->n * s->cin * s->h * s->w,
                         s->n * s->cout * s->ho * s->wo,
                         s->cout * s->k,
                         s->x.sn * s->n,
                         s->x.sc * s->cin,
                         s->dx.sn * s->n,
                         s->dx.sc * s->cin};
    for (int64_t v : biggest)
        if (v > INT_MAX) return false;
    return prec == LT_FP32;
}

static int64_t no_scratch(const lt_conv2d_shape *s) { return 0; }
static int64_t no_backward_scratch(const lt_conv2d_shape *s, bool grad_input) { return 0; }

const lt_conv2d_impl conv2d_cuda = {
    {"cuda", conv2d_supports, conv_release}, no_scratch, no_backward_scratch, conv2d_forward, conv2d_backward,
};

}  // namespace ltc
