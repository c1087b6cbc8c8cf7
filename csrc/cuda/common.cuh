/* What every file of the CUDA backend shares: the core's headers (for their types only; the module calls
 * no core function), the backend's state (device, stream, library handles), error reporting into the
 * caller's lt_error, and launch helpers. llm.c style: raw device pointers, one stream. */
#ifndef LTC_COMMON_CUH
#define LTC_COMMON_CUH

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdint.h>

extern "C" {
#include "device/backend_api.h"
#include "nn/ops.h"
#include "optim/optim_ops.h"
}

namespace ltc {

/* The backend of one process: set up by init (backend.cu), read by every operation. */
struct backend_state {
    int device = -1;               /* -1 before init */
    cudaStream_t stream = nullptr; /* every call is ordered on it */
    cudaMemPool_t pool = nullptr;  /* the device's default pool, caching freed memory */
    cublasLtHandle_t blaslt = nullptr;
    void *blaslt_workspace = nullptr;
    size_t blaslt_workspace_bytes = 0;
    cudnnHandle_t dnn = nullptr;
    bool tf32 = true;                      /* TF32 allowed in matrix products and convolutions (PyTorch's default) */
    uint64_t seed = 0x2545F4914F6CDD1DULL; /* dropout's counter-based generator: seed, and the next counter */
    uint64_t offset = 0;
    /* CUDA graphs (graph.cu): whether the stream is being captured, how many dropout numbers the capture
     * has drawn so far, and the device words from which a launch's dropout reads {counter, seed} */
    bool capturing = false;
    uint64_t captured_draws = 0;
    uint64_t *graph_rng = nullptr;
    struct deferred_error *deferred = nullptr;     /* page-locked host memory, mapped into the device */
    struct deferred_error *deferred_dev = nullptr; /* the same, as kernels address it */
};
backend_state &state();

/* An error that a kernel finds and the host learns of at its next wait for the stream (wait_for_stream):
 * a loss's target that is not a class index, now that a loss's forward pass does not wait. The first
 * one is kept until it is reported. */
enum deferred_kind { DEFERRED_NONE, DEFERRED_BAD_TARGET };
enum deferred_op { DEFERRED_CROSS_ENTROPY, DEFERRED_NLL_LOSS }; /* named on the host */
struct deferred_error {
    int kind; /* a deferred_kind: set first (atomically), then the rest */
    int op;   /* a deferred_op */
    long long position; /* 0-based */
    float value;
    long long classes;
};
/* The record as kernels address it. */
inline deferred_error *deferred_on_device() { return state().deferred_dev; }

__device__ __forceinline__ void defer_bad_target(deferred_error *d, int op, long long position, float value,
                                                 long long classes) {
    if (atomicCAS(&d->kind, DEFERRED_NONE, DEFERRED_BAD_TARGET) != DEFERRED_NONE) return;
    d->op = op;
    d->position = position;
    d->value = value;
    d->classes = classes;
}

/* Waits until the stream has done everything queued on it, then reports a deferred error (clearing it). */
int wait_for_stream(lt_error *err);

/* Writes the message into err (when not NULL) and returns -1. */
int fail(lt_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "<call>: <CUDA's message>" where call is the text of the call up to its '(' */
int cuda_fail(lt_error *err, cudaError_t e, const char *call);
int cudnn_fail(lt_error *err, cudnnStatus_t e, const char *call);
int cublas_fail(lt_error *err, cublasStatus_t e, const char *call);
/* A kernel launch's error, if any ("<kernel> launch: ..."). */
int launch_check(lt_error *err, const char *kernel);

/* Memory from the backend's pool, ordered on its stream (memory.cu): NULL with err set when out of it. */
void *device_alloc(size_t bytes, lt_error *err);
void device_free(void *p);
/* Memory that a live CUDA graph may still use is freed once no graph lives (graph.cu): 0 (kept), or -1
 * when p can be freed now. */
int keep_for_graphs(void *p);
/* Every allocation is noted (graph.cu keeps what it needs to know); one made during a capture is the
 * graph's (cudaMalloc's), freed with cudaFree: take_graph_owned says so, and forgets it. */
void note_allocated(void *p, size_t bytes);
bool take_graph_owned(void *p);
/* The bytes CUDA graphs own now (outside the pool), and the most they owned. */
void graph_memory(size_t *bytes, size_t *peak);
/* Refuses (with err) what cannot happen while the stream is captured: a host copy, a wait. */
int not_in_capture(const char *call, lt_error *err);

/* A buffer of at least `bytes` the module keeps for libraries' workspaces (cuDNN's): valid until the next
 * call of scratch on this stream, which is all one operation needs. */
void *scratch(size_t bytes, lt_error *err);

/* Whether TF32 may run float32 matrix products and convolutions; the module's switch (backend.cu). */
bool tf32_allowed();

/* supports() of the CUDA entries: every shape at fp32 (the core asks only when the tensors are on the
 * GPU). */
bool supports_fp32(const lt_impl *self, const void *shape, lt_precision p);

/* Blocks for a grid-stride loop over n items: enough to fill the device, never more than the items need. */
static inline unsigned grid_for(int64_t n, int threads = 256) {
    int64_t blocks = (n + threads - 1) / threads;
    const int64_t most = 132 * 32; /* an H100's 132 SMs, 32 blocks each: the loops stride past it */
    if (blocks > most) blocks = most;
    return (unsigned)(blocks < 1 ? 1 : blocks);
}

}  // namespace ltc

/* Return -1 from the enclosing function (after writing err) when a call fails. */
#define LTC_CUDA(err, call)                                                     \
    do {                                                                        \
        cudaError_t ltc_e_ = (call);                                            \
        if (ltc_e_ != cudaSuccess) return ltc::cuda_fail((err), ltc_e_, #call); \
    } while (0)
#define LTC_CUDNN(err, call)                                                              \
    do {                                                                                  \
        cudnnStatus_t ltc_e_ = (call);                                                    \
        if (ltc_e_ != CUDNN_STATUS_SUCCESS) return ltc::cudnn_fail((err), ltc_e_, #call); \
    } while (0)
#define LTC_CUBLAS(err, call)                                                               \
    do {                                                                                    \
        cublasStatus_t ltc_e_ = (call);                                                     \
        if (ltc_e_ != CUBLAS_STATUS_SUCCESS) return ltc::cublas_fail((err), ltc_e_, #call); \
    } while (0)
/* After a <<<...>>> launch. */
#define LTC_LAUNCHED(err, kernel)                        \
    do {                                                 \
        if (ltc::launch_check((err), kernel)) return -1; \
    } while (0)

/* Grid-stride loop over [0, n) with a 64-bit index. */
#define LTC_FOR(i, n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

#endif
