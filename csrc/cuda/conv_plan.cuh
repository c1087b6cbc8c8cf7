/* What the convolutions through cuDNN's convolution API share (conv2d.cu: float32 in the core's planar
 * layouts; conv2d_channels_last.cu: bf16 or fp16 channels-last). A layer's state (ctx->state) keeps a plan per
 * shape it has seen (the last batch of an epoch is often smaller): the descriptors and, for each direction,
 * the algorithms cuDNN's heuristics rank for them (cudnnGet*Algorithm_v7), ranked once; an algorithm that
 * turns out unsupported at its first run gives way to the next; a call outside a layer (no state slot)
 * makes a plan for itself. The workspace is the module's scratch buffer. */
#ifndef LTC_CONV_PLAN_CUH
#define LTC_CONV_PLAN_CUH

#include <new>

#include "common.cuh"

namespace ltc {

enum { MAX_ALGOS = 16, PLANS = 4 };
enum { NONE_USABLE = 1 }; /* cuDNN takes none of its algorithms for these descriptors (err written) */
constexpr size_t MAX_WORKSPACE = (size_t)1 << 30; /* algorithms wanting more are passed over */

/* The algorithms of one direction in cuDNN's order of preference, with the math type each runs with and
 * its workspace size. */
struct algo_list {
    bool ranked = false;
    int count = 0, chosen = 0;
    int algo[MAX_ALGOS];
    cudnnMathType_t math[MAX_ALGOS];
    size_t bytes[MAX_ALGOS];
};

/* What identifies a plan: the shape, the input as the call hands it over (element type, (n, c, h, w)
 * strides), the descriptors' element type and the math type the directions are ranked with. (conv2d.cu's
 * grad_input strides are not part of it: the plan records those bwd_data was ranked for.) */
struct conv_key {
    int64_t n, cin, h, w, cout, kh, kw, sh, sw, ph, pw;
    int64_t in_stride[4];
    lt_dtype in_dtype;
    cudnnDataType_t data;
    cudnnMathType_t math;
    bool operator==(const conv_key &o) const {
        for (int d = 0; d < 4; d++)
            if (in_stride[d] != o.in_stride[d]) return false;
        return n == o.n && cin == o.cin && h == o.h && w == o.w && cout == o.cout && kh == o.kh && kw == o.kw &&
               sh == o.sh && sw == o.sw && ph == o.ph && pw == o.pw && in_dtype == o.in_dtype && data == o.data &&
               math == o.math;
    }
};

inline conv_key conv_key_of(const lt_conv2d_shape &s, lt_dtype in_dtype, const int64_t in_stride[4],
                            cudnnDataType_t data, cudnnMathType_t math) {
    return {s.n, s.cin, s.h, s.w, s.cout, s.p.kernel_h, s.p.kernel_w, s.p.stride_h, s.p.stride_w, s.p.pad_h, s.p.pad_w,
            {in_stride[0], in_stride[1], in_stride[2], in_stride[3]}, in_dtype, data, math};
}

struct conv_plan {
    bool used = false;
    conv_key key;
    cudnnTensorDescriptor_t x = nullptr, y = nullptr, dx = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t conv = nullptr;
    algo_list fwd, bwd_data, bwd_filter;
    /* conv2d.cu's: the grad_input strides bwd_data was ranked for, and whether x, y, dx are described
     * packed NCHW (the data going through copies) */
    int64_t dx_sn = -1, dx_sc = -1;
    bool packed = false;
};

struct conv_state {
    conv_plan plans[PLANS];
    int next = 0; /* the plan a new shape replaces */
};

inline void destroy_plan(conv_plan &p) {
    if (p.x) cudnnDestroyTensorDescriptor(p.x);
    if (p.y) cudnnDestroyTensorDescriptor(p.y);
    if (p.dx) cudnnDestroyTensorDescriptor(p.dx);
    if (p.w) cudnnDestroyFilterDescriptor(p.w);
    if (p.conv) cudnnDestroyConvolutionDescriptor(p.conv);
    p = conv_plan();
}

/* The entries' release: frees a layer's state. */
inline void conv_release(void *state) {
    conv_state *st = (conv_state *)state;
    if (!st) return;
    for (conv_plan &p : st->plans) destroy_plan(p);
    delete st;
}

/* The descriptors created and the convolution's set: cross-correlation, no dilation, float32 compute type
 * (cuDNN's FLOAT_CONFIG for float32 data, PSEUDO_BFLOAT16_CONFIG for bf16, PSEUDO_HALF_CONFIG for fp16),
 * the key's math type. */
inline int make_plan(lt_error *err, conv_plan &p, const lt_conv2d_shape &s, const conv_key &key) {
    p.used = true;
    p.key = key;
    LTC_CUDNN(err, cudnnCreateTensorDescriptor(&p.x));
    LTC_CUDNN(err, cudnnCreateTensorDescriptor(&p.y));
    LTC_CUDNN(err, cudnnCreateTensorDescriptor(&p.dx));
    LTC_CUDNN(err, cudnnCreateFilterDescriptor(&p.w));
    LTC_CUDNN(err, cudnnCreateConvolutionDescriptor(&p.conv));
    LTC_CUDNN(err, cudnnSetConvolution2dDescriptor(p.conv, (int)s.p.pad_h, (int)s.p.pad_w, (int)s.p.stride_h,
                                                   (int)s.p.stride_w, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    LTC_CUDNN(err, cudnnSetConvolutionMathType(p.conv, key.math));
    return 0;
}

/* The layer's plan for key, made when new (describe(err, plan) then sets its tensor and filter
 * descriptors). Outside a layer (no state slot) the plans live in *transient, which the caller releases
 * when the call has queued its work (descriptors are host memory: the queued kernels do not need them).
 * op names the operation in a message. */
template <typename Describe>
conv_plan *plan_for(lt_kernel_ctx *ctx, const char *op, const lt_conv2d_shape &s, const conv_key &key,
                    conv_state **transient, Describe describe) {
    conv_state *st = ctx->state ? (conv_state *)*ctx->state : nullptr;
    if (!st) {
        st = new (std::nothrow) conv_state(); /* no exception may cross into the core's C */
        if (!st) {
            fail(ctx->err, "%s: out of host memory for the layer's state", op);
            return nullptr;
        }
        if (ctx->state)
            *ctx->state = st;
        else
            *transient = st;
    }
    for (conv_plan &p : st->plans)
        if (p.used && p.key == key) return &p;
    conv_plan &p = st->plans[st->next];
    st->next = (st->next + 1) % PLANS;
    destroy_plan(p);
    if (make_plan(ctx->err, p, s, key) || describe(ctx->err, p)) {
        destroy_plan(p);
        return nullptr;
    }
    return &p;
}

/* cuDNN's heuristics rank (algorithm, math type) pairs, and an algorithm runs with the descriptor's math
 * type, so a bf16 or fp16 plan runs each algorithm with its pair's (as PyTorch's Conv_v7.cpp does); a
 * float32 plan keeps its own, which the module's TF32 switch chose. */
inline cudnnMathType_t math_to_run(const conv_plan &p, cudnnMathType_t paired) {
    return p.key.data != CUDNN_DATA_FLOAT ? paired : p.key.math;
}

/* Fills l from cuDNN's ranking (perf results of any direction, from the query `call`), keeping the
 * algorithms that ran the query successfully and whose workspace (asked of cuDNN, which also says whether it
 * supports the algorithm for these descriptors) fits. */
template <typename Perf, typename WorkspaceOf>
int rank(lt_error *err, conv_plan &p, algo_list &l, const char *call, const Perf *perf, int returned,
         WorkspaceOf workspace_of) {
    l = algo_list();
    for (int i = 0; i < returned && l.count < MAX_ALGOS; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
        cudnnMathType_t math = math_to_run(p, perf[i].mathType);
        size_t bytes = 0;
        if (cudnnSetConvolutionMathType(p.conv, math) != CUDNN_STATUS_SUCCESS ||
            workspace_of(perf[i].algo, &bytes) != CUDNN_STATUS_SUCCESS || bytes > MAX_WORKSPACE)
            continue;
        l.algo[l.count] = (int)perf[i].algo;
        l.math[l.count] = math;
        l.bytes[l.count] = bytes;
        l.count++;
    }
    l.ranked = true;
    if (l.count == 0) {
        fail(err, "%s: cuDNN has no algorithm for this convolution (its heuristics found none usable)", call);
        return NONE_USABLE;
    }
    return 0;
}

/* cuDNN 9's statuses come in families of a thousand: 3000-3999 say "not supported" (a layout, a shape, a
 * padding ... this algorithm does not take). */
inline bool not_supported(cudnnStatus_t e) {
    /* (a pointer off the alignment an algorithm loads at is that algorithm's refusal too: the next, or
     * the packed copies, may take it) */
    return (int)e / 1000 == (int)CUDNN_STATUS_NOT_SUPPORTED / 1000 || e == CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER;
}

/* Runs the ranked algorithms from the chosen one on, each with its math type: the first that cuDNN does not
 * refuse as unsupported stays chosen. Returns 0, -1, or NONE_USABLE. */
template <typename Run>
int run_ranked(lt_error *err, conv_plan &p, algo_list &l, const char *call, Run run) {
    cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
    for (; l.chosen < l.count; l.chosen++) {
        void *ws = l.bytes[l.chosen] ? scratch(l.bytes[l.chosen], err) : nullptr;
        if (l.bytes[l.chosen] && !ws) return -1;
        LTC_CUDNN(err, cudnnSetConvolutionMathType(p.conv, l.math[l.chosen]));
        last = run(l.algo[l.chosen], ws, l.bytes[l.chosen]);
        if (last == CUDNN_STATUS_SUCCESS) return 0;
        if (!not_supported(last)) return cudnn_fail(err, last, call);
    }
    fail(err, "%s: cuDNN supports none of the %d algorithms its heuristics ranked for this convolution (the last: %s)",
         call, l.count, cudnnGetErrorString(last));
    return NONE_USABLE;
}

/* A ranking query that failed: NONE_USABLE when cuDNN says the descriptors are not supported. */
inline int ranking_failed(lt_error *err, cudnnStatus_t e, const char *call) {
    cudnn_fail(err, e, call);
    return not_supported(e) ? NONE_USABLE : -1;
}

/* The three rankings (0, -1, or NONE_USABLE), each queried with the key's math type (a run before may have
 * left another on the descriptor). */
inline int rank_forward(lt_error *err, conv_plan &p) {
    cudnnHandle_t h = state().dnn;
    cudnnConvolutionFwdAlgoPerf_t perf[MAX_ALGOS];
    int returned = 0;
    const char *call = "cudnnGetConvolutionForwardAlgorithm_v7";
    LTC_CUDNN(err, cudnnSetConvolutionMathType(p.conv, p.key.math));
    cudnnStatus_t e = cudnnGetConvolutionForwardAlgorithm_v7(h, p.x, p.w, p.conv, p.y, MAX_ALGOS, &returned, perf);
    if (e != CUDNN_STATUS_SUCCESS) return ranking_failed(err, e, call);
    return rank(err, p, p.fwd, call, perf, returned, [&](cudnnConvolutionFwdAlgo_t a, size_t *bytes) {
        return cudnnGetConvolutionForwardWorkspaceSize(h, p.x, p.w, p.conv, p.y, a, bytes);
    });
}

inline int rank_backward_data(lt_error *err, conv_plan &p) {
    cudnnHandle_t h = state().dnn;
    cudnnConvolutionBwdDataAlgoPerf_t perf[MAX_ALGOS];
    int returned = 0;
    const char *call = "cudnnGetConvolutionBackwardDataAlgorithm_v7";
    LTC_CUDNN(err, cudnnSetConvolutionMathType(p.conv, p.key.math));
    cudnnStatus_t e =
        cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w, p.y, p.conv, p.dx, MAX_ALGOS, &returned, perf);
    if (e != CUDNN_STATUS_SUCCESS) return ranking_failed(err, e, call);
    return rank(err, p, p.bwd_data, call, perf, returned, [&](cudnnConvolutionBwdDataAlgo_t a, size_t *bytes) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.w, p.y, p.conv, p.dx, a, bytes);
    });
}

inline int rank_backward_filter(lt_error *err, conv_plan &p) {
    cudnnHandle_t h = state().dnn;
    cudnnConvolutionBwdFilterAlgoPerf_t perf[MAX_ALGOS];
    int returned = 0;
    const char *call = "cudnnGetConvolutionBackwardFilterAlgorithm_v7";
    LTC_CUDNN(err, cudnnSetConvolutionMathType(p.conv, p.key.math));
    cudnnStatus_t e =
        cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x, p.y, p.conv, p.w, MAX_ALGOS, &returned, perf);
    if (e != CUDNN_STATUS_SUCCESS) return ranking_failed(err, e, call);
    return rank(err, p, p.bwd_filter, call, perf, returned, [&](cudnnConvolutionBwdFilterAlgo_t a, size_t *bytes) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.x, p.y, p.conv, p.w, a, bytes);
    });
}

/* A device buffer the call owns: freed (in stream order, or as graph.cu's rule says during a capture) when
 * it goes. */
struct owned_buffer {
    void *p = nullptr;
    owned_buffer() = default;
    owned_buffer(const owned_buffer &) = delete;
    owned_buffer &operator=(const owned_buffer &) = delete;
    ~owned_buffer() { device_free(p); }
};

}  // namespace ltc

#endif
