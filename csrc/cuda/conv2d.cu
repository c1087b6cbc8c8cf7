/* The 2-D convolution through cuDNN 9's convolution API, float32 in the core's layouts (nn.h): the input
 * (N, C, H, W) with contiguous planes and free batch and channel strides, the output and grad_output
 * batch-folded (C, N, H, W) dense, grad_input with its own strides. cuDNN's strided tensor descriptors
 * take these layouts as they are, so nothing is copied.
 *
 * A layer's state (ctx->state) keeps a plan per shape it has seen (the last batch of an epoch is often
 * smaller): the descriptors and, for each direction, the algorithms cuDNN's heuristics rank for the
 * shape (cudnnGet*Algorithm_v7), chosen once; an algorithm that turns out unsupported at its first run
 * gives way to the next; a call outside a layer (no state slot) makes a plan for itself. When cuDNN takes
 * none of its algorithms for the strided layouts, the plan falls back to packed NCHW descriptors and the
 * data goes through copies (correct, slower). The workspace is the module's scratch buffer (scratch
 * functions return 0).
 * TF32 runs when the module allows it (CUDNN_DEFAULT_MATH), exact float32 otherwise (CUDNN_FMA_MATH).
 * The bias and its gradient are kernels of their own: each channel is a contiguous run of the output. */
#include <limits.h>

#include <new>

#include "parts.cuh"

namespace ltc {

enum { MAX_ALGOS = 16, PLANS = 4 };
enum { NONE_USABLE = 1 }; /* cuDNN takes none of its algorithms for these descriptors (err written) */
static const size_t MAX_WORKSPACE = (size_t)1 << 30; /* algorithms wanting more are passed over */

/* The algorithms of one direction in cuDNN's order of preference, with their workspace sizes. */
struct algo_list {
    bool ranked = false;
    int count = 0, chosen = 0;
    int algo[MAX_ALGOS];
    size_t bytes[MAX_ALGOS];
};

/* What identifies a plan: the shape but the grad_input's strides (bwd_data_dx records those). */
struct conv_key {
    int64_t n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, sn, sc;
    bool tf32;
    bool operator==(const conv_key &o) const {
        return n == o.n && cin == o.cin && h == o.h && w == o.w && cout == o.cout && kh == o.kh && kw == o.kw &&
               sh == o.sh && sw == o.sw && ph == o.ph && pw == o.pw && sn == o.sn && sc == o.sc && tf32 == o.tf32;
    }
};

struct conv_plan {
    bool used = false;
    conv_key key;
    cudnnTensorDescriptor_t x = nullptr, y = nullptr, dx = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t conv = nullptr;
    algo_list fwd, bwd_data, bwd_filter;
    int64_t dx_sn = -1, dx_sc = -1; /* the strides bwd_data was ranked for */
    bool packed = false;            /* x, y, dx described packed NCHW: the data goes through copies */
};

struct conv_state {
    conv_plan plans[PLANS];
    int next = 0; /* the plan a new shape replaces */
};

static void destroy_plan(conv_plan &p) {
    if (p.x) cudnnDestroyTensorDescriptor(p.x);
    if (p.y) cudnnDestroyTensorDescriptor(p.y);
    if (p.dx) cudnnDestroyTensorDescriptor(p.dx);
    if (p.w) cudnnDestroyFilterDescriptor(p.w);
    if (p.conv) cudnnDestroyConvolutionDescriptor(p.conv);
    p = conv_plan();
}

static void conv_release(void *state) {
    conv_state *st = (conv_state *)state;
    if (!st) return;
    for (conv_plan &p : st->plans) destroy_plan(p);
    delete st;
}

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

static int make_plan(lt_error *err, conv_plan &p, const lt_conv2d_shape &s, const conv_key &key) {
    p.used = true;
    p.key = key;
    LTC_CUDNN(err, cudnnCreateTensorDescriptor(&p.x));
    LTC_CUDNN(err, cudnnCreateTensorDescriptor(&p.y));
    LTC_CUDNN(err, cudnnCreateTensorDescriptor(&p.dx));
    LTC_CUDNN(err, cudnnCreateFilterDescriptor(&p.w));
    LTC_CUDNN(err, cudnnCreateConvolutionDescriptor(&p.conv));
    if (set_planes(err, p.x, s.n, s.cin, s.h, s.w, s.x.sn, s.x.sc)) return -1;
    int64_t plane = s.ho * s.wo;
    if (set_planes(err, p.y, s.n, s.cout, s.ho, s.wo, plane, s.n * plane)) return -1; /* batch-folded */
    LTC_CUDNN(err, cudnnSetFilter4dDescriptor(p.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, (int)s.cout, (int)s.cin,
                                              (int)s.p.kernel_h, (int)s.p.kernel_w));
    LTC_CUDNN(err, cudnnSetConvolution2dDescriptor(p.conv, (int)s.p.pad_h, (int)s.p.pad_w, (int)s.p.stride_h,
                                                   (int)s.p.stride_w, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    LTC_CUDNN(err, cudnnSetConvolutionMathType(p.conv, key.tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    return 0;
}

/* The layer's plan for shape s, made when new. Outside a layer (no state slot) the plans live in
 * *transient, which the caller releases when the call has queued its work (descriptors are host memory:
 * the queued kernels do not need them). */
static conv_plan *plan_for(lt_kernel_ctx *ctx, const lt_conv2d_shape &s, conv_state **transient) {
    conv_state *st = ctx->state ? (conv_state *)*ctx->state : nullptr;
    if (!st) {
        st = new (std::nothrow) conv_state(); /* no exception may cross into the core's C */
        if (!st) {
            fail(ctx->err, "conv2d on cuda: out of host memory for the layer's state");
            return nullptr;
        }
        if (ctx->state)
            *ctx->state = st;
        else
            *transient = st;
    }
    conv_key key = {s.n,          s.cin,        s.h,       s.w,       s.cout, s.p.kernel_h, s.p.kernel_w,
                    s.p.stride_h, s.p.stride_w, s.p.pad_h, s.p.pad_w, s.x.sn, s.x.sc,       tf32_allowed()};
    for (conv_plan &p : st->plans)
        if (p.used && p.key == key) return &p;
    conv_plan &p = st->plans[st->next];
    st->next = (st->next + 1) % PLANS;
    destroy_plan(p);
    if (make_plan(ctx->err, p, s, key)) {
        destroy_plan(p);
        return nullptr;
    }
    return &p;
}

/* Fills l from cuDNN's ranking (perf results of any direction), keeping the algorithms that ran the
 * query successfully and whose workspace (asked of cuDNN, which also says whether it supports the
 * algorithm for these descriptors) fits. */
template <typename Perf, typename WorkspaceOf>
static int rank(lt_error *err, algo_list &l, const Perf *perf, int returned, WorkspaceOf workspace_of) {
    l = algo_list();
    for (int i = 0; i < returned && l.count < MAX_ALGOS; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
        size_t bytes = 0;
        if (workspace_of(perf[i].algo, &bytes) != CUDNN_STATUS_SUCCESS || bytes > MAX_WORKSPACE) continue;
        l.algo[l.count] = (int)perf[i].algo;
        l.bytes[l.count] = bytes;
        l.count++;
    }
    l.ranked = true;
    if (l.count == 0) {
        fail(err, "cuDNN has no algorithm for this convolution (its heuristics found none usable)");
        return NONE_USABLE;
    }
    return 0;
}

/* cuDNN 9's statuses come in families of a thousand: 3000-3999 say "not supported" (a layout, a shape, a
 * padding ... this algorithm does not take). */
static bool not_supported(cudnnStatus_t e) { return (int)e / 1000 == (int)CUDNN_STATUS_NOT_SUPPORTED / 1000; }

/* Runs the ranked algorithms from the chosen one on: the first that cuDNN does not refuse as unsupported
 * stays chosen. Returns 0, -1, or NONE_USABLE. */
template <typename Run>
static int run_ranked(lt_error *err, algo_list &l, const char *call, Run run) {
    cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
    for (; l.chosen < l.count; l.chosen++) {
        void *ws = l.bytes[l.chosen] ? scratch(l.bytes[l.chosen], err) : nullptr;
        if (l.bytes[l.chosen] && !ws) return -1;
        last = run(l.algo[l.chosen], ws, l.bytes[l.chosen]);
        if (last == CUDNN_STATUS_SUCCESS) return 0;
        if (!not_supported(last)) return cudnn_fail(err, last, call);
    }
    fail(err, "%s: cuDNN supports none of the %d algorithms its heuristics ranked for this convolution (the last: %s)",
         call, l.count, cudnnGetErrorString(last));
    return NONE_USABLE;
}

/* A ranking query that failed: NONE_USABLE when cuDNN says the descriptors are not supported. */
static int ranking_failed(lt_error *err, cudnnStatus_t e, const char *call) {
    cudnn_fail(err, e, call);
    return not_supported(e) ? NONE_USABLE : -1;
}

static int rank_forward(lt_error *err, conv_plan &p) {
    cudnnHandle_t h = state().dnn;
    cudnnConvolutionFwdAlgoPerf_t perf[MAX_ALGOS];
    int returned = 0;
    cudnnStatus_t e = cudnnGetConvolutionForwardAlgorithm_v7(h, p.x, p.w, p.conv, p.y, MAX_ALGOS, &returned, perf);
    if (e != CUDNN_STATUS_SUCCESS) return ranking_failed(err, e, "cudnnGetConvolutionForwardAlgorithm_v7");
    return rank(err, p.fwd, perf, returned, [&](cudnnConvolutionFwdAlgo_t a, size_t *bytes) {
        return cudnnGetConvolutionForwardWorkspaceSize(h, p.x, p.w, p.conv, p.y, a, bytes);
    });
}

static int rank_backward_data(lt_error *err, conv_plan &p) {
    cudnnHandle_t h = state().dnn;
    cudnnConvolutionBwdDataAlgoPerf_t perf[MAX_ALGOS];
    int returned = 0;
    cudnnStatus_t e =
        cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w, p.y, p.conv, p.dx, MAX_ALGOS, &returned, perf);
    if (e != CUDNN_STATUS_SUCCESS) return ranking_failed(err, e, "cudnnGetConvolutionBackwardDataAlgorithm_v7");
    return rank(err, p.bwd_data, perf, returned, [&](cudnnConvolutionBwdDataAlgo_t a, size_t *bytes) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.w, p.y, p.conv, p.dx, a, bytes);
    });
}

static int rank_backward_filter(lt_error *err, conv_plan &p) {
    cudnnHandle_t h = state().dnn;
    cudnnConvolutionBwdFilterAlgoPerf_t perf[MAX_ALGOS];
    int returned = 0;
    cudnnStatus_t e =
        cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x, p.y, p.conv, p.w, MAX_ALGOS, &returned, perf);
    if (e != CUDNN_STATUS_SUCCESS) return ranking_failed(err, e, "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
    return rank(err, p.bwd_filter, perf, returned, [&](cudnnConvolutionBwdFilterAlgo_t a, size_t *bytes) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.x, p.y, p.conv, p.w, a, bytes);
    });
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

/* A device buffer the call owns: freed (in stream order) when it goes. */
struct owned_buffer {
    float *p = nullptr;
    ~owned_buffer() { device_free(p); }
};

/* src packed: itself when it is already, else a packed copy in *buf. NULL (err written) on failure. */
static const float *packed_view(lt_error *err, owned_buffer &buf, const float *src, int64_t n, int64_t c, int64_t h,
                                int64_t w, int64_t sn, int64_t sc) {
    if ((n == 1 || sn == c * h * w) && (c == 1 || sc == h * w)) return src;
    if (!(buf.p = (float *)device_alloc(sizeof(float) * (size_t)(n * c * h * w), err))) return nullptr;
    return repack(err, buf.p, src, n, c, h, w, sn, sc, true) ? nullptr : buf.p;
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
        if (!(y = yp.p = (float *)device_alloc(sizeof(float) * (size_t)(s.n * s.cout * plane), err))) return -1;
    }
    if (!p.fwd.ranked) {
        int rc = rank_forward(err, p);
        if (rc) return rc;
    }
    cudnnHandle_t h = state().dnn;
    const float one = 1.0f, zero = 0.0f;
    int rc = run_ranked(err, p.fwd, "cudnnConvolutionForward", [&](int algo, void *ws, size_t bytes) {
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
    return run_ranked(err, p.bwd_filter, "cudnnConvolutionBackwardFilter", [&](int algo, void *ws, size_t bytes) {
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
        if (!(dx = dxp.p = (float *)device_alloc(sizeof(float) * (size_t)(s.n * s.cin * s.h * s.w), err))) return -1;
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
    int rc = run_ranked(err, p.bwd_data, "cudnnConvolutionBackwardData", [&](int algo, void *ws, size_t bytes) {
        return cudnnConvolutionBackwardData(h, &one, p.w, weight, p.y, dy, p.conv, (cudnnConvolutionBwdDataAlgo_t)algo,
                                            ws, bytes, &zero, p.dx, dx);
    });
    if (rc || !p.packed) return rc;
    return repack(err, dinp, dx, s.n, s.cin, s.h, s.w, s.dx.sn, s.dx.sc, false);
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
    if (in_some_mode(ctx->err, *p, s, [&] { return forward_in_mode(ctx->err, *p, s, out, in, weight); })) return -1;
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
    if (in_some_mode(ctx->err, *p, s, [&] { return filter_in_mode(ctx->err, *p, s, dweight, dout, in); })) return -1;
    if (!dinp) return 0;
    return in_some_mode(ctx->err, *p, s, [&] { return data_in_mode(ctx->err, *p, s, dinp, dout, weight); });
}

static int conv2d_forward(lt_kernel_ctx *ctx, float *out, const float *in, const float *weight, const float *bias,
                          float *cols, lt_conv2d_shape s) {
    conv_state *transient = nullptr;
    int rc = conv2d_forward_with(ctx, plan_for(ctx, s, &transient), out, in, weight, bias, s);
    conv_release(transient);
    return rc;
}

static int conv2d_backward(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *in, const float *weight, float *scratch_unused, lt_conv2d_shape s) {
    conv_state *transient = nullptr;
    int rc = conv2d_backward_with(ctx, plan_for(ctx, s, &transient), dinp, dweight, dbias, dout, in, weight, s);
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
