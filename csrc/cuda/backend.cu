/* The module's one export, lt_backend_entry, and the device functions of the API: how many devices,
 * init (device, stream, pool, cuBLASLt and cuDNN handles), what a device is, synchronize, the seed. The
 * operations' tables are assembled here from the files that implement them (parts.cuh). */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "parts.cuh"

namespace ltc {

backend_state &state() {
    static backend_state s;
    return s;
}

int fail(lt_error *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* The call's name: its text up to the '(' (LTC_CUDA passes the whole call). */
static int call_name_length(const char *call) {
    const char *paren = strchr(call, '(');
    return paren ? (int)(paren - call) : (int)strlen(call);
}

int cuda_fail(lt_error *err, cudaError_t e, const char *call) {
    cudaGetLastError(); /* clear a non-sticky error so that the next call does not report it again */
    return fail(err, "%.*s: %s (%s)", call_name_length(call), call, cudaGetErrorString(e), cudaGetErrorName(e));
}

int cudnn_fail(lt_error *err, cudnnStatus_t e, const char *call) {
    return fail(err, "%.*s: %s", call_name_length(call), call, cudnnGetErrorString(e));
}

static const char *cublas_status_name(cublasStatus_t e) {
    switch (e) {
        case CUBLAS_STATUS_NOT_INITIALIZED:
            return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED:
            return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE:
            return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH:
            return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR:
            return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED:
            return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR:
            return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED:
            return "CUBLAS_STATUS_NOT_SUPPORTED";
        default:
            return "cuBLAS error";
    }
}

int cublas_fail(lt_error *err, cublasStatus_t e, const char *call) {
    return fail(err, "%.*s: %s (%d)", call_name_length(call), call, cublas_status_name(e), (int)e);
}

int launch_check(lt_error *err, const char *kernel) {
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return 0;
    return fail(err, "%s launch: %s (%s)", kernel, cudaGetErrorString(e), cudaGetErrorName(e));
}

bool tf32_allowed() { return state().tf32; }

bool supports_fp32(const lt_impl *self, const void *shape, lt_precision p) { return p == LT_FP32; }

/* ---- the API's device functions ---- */

static int device_count(int *count, lt_error *err) {
    *count = 0;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaSuccess) {
        *count = n;
        if (n == 0) fail(err, "no CUDA device (cudaGetDeviceCount found none)");
        return 0;
    }
    cudaGetLastError();
    if (e == cudaErrorNoDevice) {
        fail(err, "no CUDA device (cudaGetDeviceCount: %s)", cudaGetErrorString(e));
        return 0;
    }
    if (e == cudaErrorInsufficientDriver) {
        /* the runtime says so both without a driver and with one too old: it has tried to load it, so
         * whether libcuda is loaded now tells which */
        void *driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
        if (driver) dlclose(driver);
        int runtime = CUDART_VERSION;
        if (driver)
            fail(err,
                 "the CUDA driver is older than CUDA %d.%d, which this module was built with (cudaGetDeviceCount: %s)",
                 runtime / 1000, runtime % 1000 / 10, cudaGetErrorString(e));
        else
            fail(err, "no CUDA driver (libcuda.so.1 is not installed; cudaGetDeviceCount: %s)", cudaGetErrorString(e));
        return 0;
    }
    return fail(err, "cannot count CUDA devices (cudaGetDeviceCount: %s, %s)", cudaGetErrorString(e),
                cudaGetErrorName(e));
}

/* What init made, undone in reverse (after a failed init, or never: the process keeps the backend). */
static void teardown() {
    backend_state &s = state();
    if (s.deferred) cudaFreeHost(s.deferred);
    if (s.graph_rng) cudaFree(s.graph_rng);
    s.graph_rng = nullptr;
    s.deferred = s.deferred_dev = nullptr;
    if (s.dnn) cudnnDestroy(s.dnn);
    if (s.blaslt_workspace) cudaFree(s.blaslt_workspace);
    if (s.blaslt) cublasLtDestroy(s.blaslt);
    if (s.stream) cudaStreamDestroy(s.stream);
    s.dnn = nullptr;
    s.blaslt_workspace = nullptr;
    s.blaslt = nullptr;
    s.stream = nullptr;
    s.pool = nullptr;
    s.device = -1;
}

static int init_steps(int index, lt_error *err) {
    backend_state &s = state();
    LTC_CUDA(err, cudaSetDevice(index));
    LTC_CUDA(err, cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
    s.device = index;
    if (memory_init(err)) return -1;
    LTC_CUBLAS(err, cublasLtCreate(&s.blaslt));
    /* cuBLASLt's workspace, as llm.c: 32 MiB lets it pick its fast kernels (Hopper's want it) */
    s.blaslt_workspace_bytes = (size_t)32 << 20;
    LTC_CUDA(err, cudaMalloc(&s.blaslt_workspace, s.blaslt_workspace_bytes));
    LTC_CUDNN(err, cudnnCreate(&s.dnn));
    LTC_CUDNN(err, cudnnSetStream(s.dnn, s.stream));
    LTC_CUDA(err, cudaHostAlloc((void **)&s.deferred, sizeof(deferred_error), cudaHostAllocMapped));
    memset(s.deferred, 0, sizeof(deferred_error));
    LTC_CUDA(err, cudaHostGetDevicePointer((void **)&s.deferred_dev, s.deferred, 0));
    return 0;
}

int wait_for_stream(lt_error *err) {
    if (not_in_capture("waiting for the GPU", err)) return -1;
    LTC_CUDA(err, cudaStreamSynchronize(state().stream));
    volatile deferred_error *d = state().deferred;
    if (!d || d->kind == DEFERRED_NONE) return 0;
    deferred_error seen = {d->kind, d->op, d->position, d->value, d->classes};
    d->kind = DEFERRED_NONE;
    return fail(err, "%s, queued earlier on the GPU: target %g at position %lld is not a class index in 1..%lld",
                seen.op == DEFERRED_NLL_LOSS ? "nll_loss" : "cross_entropy", seen.value, seen.position + 1,
                seen.classes);
}

static int init(int index, lt_error *err) {
    backend_state &s = state();
    if (s.device >= 0) {
        if (s.device == index) return 0;
        return fail(err, "the CUDA backend runs on cuda:%d already; cuda:%d cannot be used in the same process",
                    s.device, index);
    }
    int count = 0;
    if (device_count(&count, err)) return -1;
    if (index < 0 || index >= count)
        return count == 0 ? -1 : fail(err, "no device cuda:%d (%d CUDA device%s)", index, count, count == 1 ? "" : "s");
    if (init_steps(index, err)) {
        teardown();
        return -1;
    }
    return 0;
}

static int props(int index, lt_device_props *out, lt_error *err) {
    memset(out, 0, sizeof *out);
    cudaDeviceProp p;
    LTC_CUDA(err, cudaGetDeviceProperties(&p, index));
    snprintf(out->name, sizeof out->name, "%s", p.name);
    out->index = index;
    out->cc_major = p.major;
    out->cc_minor = p.minor;
    out->multiprocessors = p.multiProcessorCount;
    out->total_bytes = p.totalGlobalMem;
    /* free memory is the current device's: look at `index`, then go back */
    int current = -1;
    LTC_CUDA(err, cudaGetDevice(&current));
    if (current != index) LTC_CUDA(err, cudaSetDevice(index));
    size_t free_bytes = 0, total = 0;
    cudaError_t e = cudaMemGetInfo(&free_bytes, &total);
    if (current != index) LTC_CUDA(err, cudaSetDevice(current));
    if (e != cudaSuccess) return cuda_fail(err, e, "cudaMemGetInfo");
    out->free_bytes = free_bytes;
    LTC_CUDA(err, cudaDriverGetVersion(&out->driver_version));
    LTC_CUDA(err, cudaRuntimeGetVersion(&out->runtime_version));
    out->cudnn_version = (int)cudnnGetVersion();
    out->cublaslt_version = (int)cublasLtGetVersion();
    return 0;
}

static int not_initialised(lt_error *err) { return fail(err, "the CUDA backend is not initialised (call init first)"); }

static int synchronize(lt_error *err) {
    if (state().device < 0) return not_initialised(err);
    return wait_for_stream(err);
}

static void set_allow_tf32(int allowed) { state().tf32 = allowed != 0; }
static int allow_tf32() { return state().tf32; }

static void manual_seed(uint64_t seed) {
    state().seed = seed;
    state().offset = 0;
}

/* Dropout's generator is its seed and the count of numbers drawn since (dropout.cu). */
static const char RNG_FORMAT[] = "cuda-dropout seed %016llx counter %016llx";

static void get_rng_state(char *out) {
    snprintf(out, LT_BACKEND_RNG_STATE_LEN, RNG_FORMAT, (unsigned long long)state().seed,
             (unsigned long long)state().offset);
}

static int set_rng_state(const char *text, lt_error *err) {
    if (not_in_capture("set_rng_state", err)) return -1;
    unsigned long long seed, counter;
    int end = 0;
    if (sscanf(text, "cuda-dropout seed %16llx counter %16llx%n", &seed, &counter, &end) != 2 || text[end] != '\0')
        return fail(err, "not a state of the CUDA backend's generator (\"cuda-dropout seed <16 hex digits> counter "
                         "<16 hex digits>\"): \"%.60s\"", text);
    state().seed = seed;
    state().offset = counter;
    return 0;
}

/* ---- the operations' tables, by the names the core's fronts pick with ---- */

#define IMPLS(name, ...) static const void *const name[] = {__VA_ARGS__, nullptr}
IMPLS(activation_impls, &relu_cuda, &leaky_relu_cuda, &gelu_cuda);
IMPLS(activation_mixed_impls, &activation_mixed_cuda);
IMPLS(batchnorm_channels_last_impls, &batchnorm_channels_last_cuda); /* and the fused pool's */
IMPLS(conv2d_channels_last_impls, &conv2d_channels_last_cuda);
IMPLS(maxpool2d_channels_last_impls, &maxpool2d_channels_last_cuda);
IMPLS(adam_impls, &adam_cuda);
IMPLS(adaptive_avgpool2d_impls, &adaptive_avgpool2d_cuda);
IMPLS(amp_unscale_impls, &amp_unscale_cuda);
IMPLS(amp_update_scale_impls, &amp_update_cuda);
IMPLS(avgpool2d_impls, &avgpool2d_cuda);
IMPLS(batchnorm_impls, &batchnorm_cuda);
IMPLS(bn_relu_pool_impls, &bn_relu_pool_cuda);
IMPLS(conv2d_impls, &conv2d_cuda);
IMPLS(cross_entropy_impls, &cross_entropy_cuda);
IMPLS(dropout_impls, &dropout_cuda);
IMPLS(grad_norm_impls, &grad_norm_cuda);
IMPLS(linear_impls, &linear_cuda);
IMPLS(maxpool2d_impls, &maxpool2d_cuda);
IMPLS(mse_loss_impls, &mse_loss_cuda);
IMPLS(nll_loss_impls, &nll_loss_cuda);
IMPLS(sgd_impls, &sgd_cuda);
IMPLS(softmax_impls, &softmax_cuda);
#undef IMPLS

static const lt_backend_op ops[] = {
    {"activation", activation_impls},
    {"activation.mixed", activation_mixed_impls},
    {"adam", adam_impls},
    {"adaptive_avgpool2d", adaptive_avgpool2d_impls},
    {"amp_unscale", amp_unscale_impls},
    {"amp_update_scale", amp_update_scale_impls},
    {"avgpool2d", avgpool2d_impls},
    {"batchnorm", batchnorm_impls},
    {"batchnorm.channels_last", batchnorm_channels_last_impls},
    {"bn_relu_pool", bn_relu_pool_impls},
    {"bn_relu_pool.channels_last", batchnorm_channels_last_impls},
    {"conv2d", conv2d_impls},
    {"conv2d.channels_last", conv2d_channels_last_impls},
    {"cross_entropy", cross_entropy_impls},
    {"dropout", dropout_impls},
    {"grad_norm", grad_norm_impls},
    {"linear", linear_impls},
    {"maxpool2d", maxpool2d_impls},
    {"maxpool2d.channels_last", maxpool2d_channels_last_impls},
    {"mse_loss", mse_loss_impls},
    {"nll_loss", nll_loss_impls},
    {"sgd", sgd_impls},
    {"softmax", softmax_impls},
    {nullptr, nullptr},
};

static lt_backend_api make_api() {
    lt_backend_api a;
    memset(&a, 0, sizeof a);
    a.version = LT_BACKEND_API_VERSION;
    a.name = "cuda";
    a.device_count = device_count;
    a.init = init;
    a.props = props;
    a.alloc = alloc;
    a.free = free_device;
    a.memory = memory;
    a.empty_cache = empty_cache;
    a.host_alloc = host_alloc;
    a.host_free = host_free;
    a.to_device = to_device;
    a.to_host = to_host;
    a.on_device = on_device;
    a.strided_copy = strided_copy;
    a.fill = fill;
    a.convert = convert;
    a.binary = binary;
    a.scalar = scalar;
    a.unary = unary;
    a.addcmul = addcmul;
    a.reduce = reduce;
    a.confusion_update = confusion_update;
    a.image_batch = image_batch;
    a.synchronize = synchronize;
    a.manual_seed = manual_seed;
    a.get_rng_state = get_rng_state;
    a.set_rng_state = set_rng_state;
    a.set_allow_tf32 = set_allow_tf32;
    a.allow_tf32 = allow_tf32;
    a.capture_begin = capture_begin;
    a.capture_end = capture_end;
    a.graph_launch = graph_launch;
    a.graph_destroy = graph_destroy;
    a.ops = ops;
    a.comm = collectives();
    return a;
}

}  // namespace ltc

extern "C" __attribute__((visibility("default"))) const lt_backend_api *lt_backend_entry(int version, lt_error *err) {
    static const lt_backend_api api = ltc::make_api();
    if (version != LT_BACKEND_API_VERSION) {
        ltc::fail(err,
                  "lightning/cuda.so implements backend interface version %d, the core asks for version %d: "
                  "rebuild the library and its CUDA module together",
                  LT_BACKEND_API_VERSION, version);
        return nullptr;
    }
    return &api;
}
