/* Device memory and the copies of the API: a stream-ordered pool (cudaMallocAsync on the backend's stream
 * from the device's default pool, which keeps freed memory cached), its statistics, page-locked host
 * memory, copies between host and device, the strided copy of device views, fill and the conversions
 * between float32, bfloat16 and float16. */
#include <stdint.h>

#include "parts.cuh"
#include "mixed.cuh"

namespace ltc {

int memory_init(lt_error *err) {
    backend_state &s = state();
    LTC_CUDA(err, cudaDeviceGetDefaultMemPool(&s.pool, s.device));
    /* keep every freed byte cached (PyTorch's caching allocator does too): empty_cache gives it back */
    uint64_t threshold = UINT64_MAX;
    LTC_CUDA(err, cudaMemPoolSetAttribute(s.pool, cudaMemPoolAttrReleaseThreshold, &threshold));
    return 0;
}

void *device_alloc(size_t bytes, lt_error *err) {
    backend_state &s = state();
    if (s.device < 0) {
        fail(err, "the CUDA backend is not initialised (call init first)");
        return nullptr;
    }
    void *p = nullptr;
    /* during a capture, memory the graph owns, at an address its launches keep (cudaMallocAsync would
     * become an allocation of each launch) */
    cudaError_t e = s.capturing ? cudaMalloc(&p, bytes ? bytes : 1) : cudaMallocAsync(&p, bytes ? bytes : 1, s.stream);
    if (e == cudaSuccess) {
        note_allocated(p, bytes ? bytes : 1);
        return p;
    }
    cudaGetLastError();
    if (e == cudaErrorMemoryAllocation) {
        size_t free_bytes = 0, total = 0;
        cudaMemGetInfo(&free_bytes, &total);
        cudaGetLastError();
        fail(err, "out of memory on cuda:%d allocating %zu bytes (%zu bytes free of %zu)", s.device, bytes, free_bytes,
             total);
    } else {
        cuda_fail(err, e, s.capturing ? "cudaMalloc" : "cudaMallocAsync");
    }
    return nullptr;
}

void device_free(void *p) {
    if (!p || keep_for_graphs(p) == 0) return;
    if (take_graph_owned(p))
        cudaFree(p);
    else
        cudaFreeAsync(p, state().stream);
}

void *alloc(size_t bytes, lt_error *err) { return device_alloc(bytes, err); }
void free_device(void *p) { device_free(p); }

/* One buffer, grown when a call needs more: the previous one is freed in stream order, after the work
 * queued on it (or once no CUDA graph lives, device_free's rule: a graph's launches use the buffer it was
 * captured with). */
void *scratch(size_t bytes, lt_error *err) {
    static void *buffer = nullptr;
    static size_t capacity = 0;
    if (bytes <= capacity) return buffer;
    void *grown = device_alloc(bytes, err);
    if (!grown) return nullptr;
    device_free(buffer);
    buffer = grown;
    capacity = bytes;
    return buffer;
}

int memory(lt_device_memory *out, lt_error *err) {
    backend_state &s = state();
    if (s.device < 0) return fail(err, "the CUDA backend is not initialised (call init first)");
    uint64_t used = 0, reserved = 0, peak = 0; /* the attributes are cuuint64_t: 64 bits */
    LTC_CUDA(err, cudaMemPoolGetAttribute(s.pool, cudaMemPoolAttrUsedMemCurrent, &used));
    LTC_CUDA(err, cudaMemPoolGetAttribute(s.pool, cudaMemPoolAttrReservedMemCurrent, &reserved));
    LTC_CUDA(err, cudaMemPoolGetAttribute(s.pool, cudaMemPoolAttrUsedMemHigh, &peak));
    size_t graphs = 0, graphs_peak = 0; /* CUDA graphs' memory, outside the pool */
    graph_memory(&graphs, &graphs_peak);
    out->in_use = used + graphs;
    out->reserved = reserved + graphs;
    out->peak_in_use = peak + graphs_peak;
    return 0;
}

int empty_cache(lt_error *err) {
    backend_state &s = state();
    if (s.device < 0) return 0;
    /* what was freed on the stream becomes the pool's once the stream reaches the frees */
    LTC_CUDA(err, cudaStreamSynchronize(s.stream));
    LTC_CUDA(err, cudaMemPoolTrimTo(s.pool, 0));
    return 0;
}

void *host_alloc(size_t bytes, lt_error *err) {
    void *p = nullptr;
    cudaError_t e = cudaMallocHost(&p, bytes ? bytes : 1);
    if (e == cudaSuccess) return p;
    cuda_fail(err, e, "cudaMallocHost");
    return nullptr;
}

void host_free(void *p) {
    if (p) cudaFreeHost(p);
}

/* ---- copies ---- */

int to_device(void *dst, const void *src, size_t bytes, lt_error *err) {
    if (not_in_capture("to_device", err)) return -1;
    if (bytes == 0) return 0;
    LTC_CUDA(err, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, state().stream));
    return 0;
}

int to_host(void *dst, const void *src, size_t bytes, lt_error *err) {
    if (not_in_capture("to_host", err)) return -1;
    if (bytes == 0) return 0;
    LTC_CUDA(err, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, state().stream));
    return wait_for_stream(err);
}

int on_device(void *dst, const void *src, size_t bytes, lt_error *err) {
    if (bytes == 0) return 0;
    LTC_CUDA(err, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, state().stream));
    return 0;
}

/* Element i of the view (last dimension fastest) to its offsets in dst and src. */
template <typename T>
__global__ void strided_copy_kernel(T *dst, const T *src, lt_strided_copy c, int64_t n) {
    LTC_FOR(i, n) {
        int64_t rest = i, d = 0, s = 0;
        for (int k = c.ndim - 1; k >= 0; k--) {
            int64_t idx = rest % c.size[k];
            rest /= c.size[k];
            d += idx * c.dst_stride[k];
            s += idx * c.src_stride[k];
        }
        dst[d] = src[s];
    }
}

/* The same copy in as few dimensions as it takes: size-1 dimensions dropped, and a dimension merged
 * into the next where both views step over it as over one longer dimension (each element then costs
 * the kernel fewer divisions). */
static lt_strided_copy coalesced(const lt_strided_copy *c) {
    lt_strided_copy o = *c;
    o.ndim = 0;
    for (int k = 0; k < c->ndim; k++) {
        if (c->size[k] == 1) continue;
        int last = o.ndim - 1;
        if (last >= 0 && o.dst_stride[last] == c->dst_stride[k] * c->size[k] &&
            o.src_stride[last] == c->src_stride[k] * c->size[k]) {
            o.size[last] *= c->size[k];
            o.dst_stride[last] = c->dst_stride[k];
            o.src_stride[last] = c->src_stride[k];
            continue;
        }
        o.size[o.ndim] = c->size[k];
        o.dst_stride[o.ndim] = c->dst_stride[k];
        o.src_stride[o.ndim] = c->src_stride[k];
        o.ndim++;
    }
    return o;
}

int strided_copy(void *dst, const void *src, const lt_strided_copy *c, lt_error *err) {
    if (c->ndim < 0 || c->ndim > 8) return fail(err, "strided_copy: %d dimensions (at most 8)", c->ndim);
    int64_t n = 1;
    for (int k = 0; k < c->ndim; k++) n *= c->size[k];
    if (n <= 0) return 0;
    lt_strided_copy v = coalesced(c);
    cudaStream_t st = state().stream;
    unsigned grid = grid_for(n);
    switch (c->elem_size) {
        case 1:
            strided_copy_kernel<uint8_t><<<grid, 256, 0, st>>>((uint8_t *)dst, (const uint8_t *)src, v, n);
            break;
        case 2:
            strided_copy_kernel<uint16_t><<<grid, 256, 0, st>>>((uint16_t *)dst, (const uint16_t *)src, v, n);
            break;
        case 4:
            strided_copy_kernel<uint32_t><<<grid, 256, 0, st>>>((uint32_t *)dst, (const uint32_t *)src, v, n);
            break;
        default:
            return fail(err, "strided_copy: elements of %d bytes (1, 2 or 4)", c->elem_size);
    }
    LTC_LAUNCHED(err, "strided_copy_kernel");
    return 0;
}

/* ---- elementwise ---- */

__global__ void fill_kernel(float *dst, int64_t n, float value) { LTC_FOR(i, n) dst[i] = value; }

int fill(float *dst, int64_t n, float value, lt_error *err) {
    if (n <= 0) return 0;
    fill_kernel<<<grid_for(n), 256, 0, state().stream>>>(dst, n, value);
    LTC_LAUNCHED(err, "fill_kernel");
    return 0;
}

__global__ void convert_kernel(void *dst, lt_dtype dt, const void *src, lt_dtype st, int64_t n) {
    LTC_FOR(i, n) store_float(dst, dt, i, load_as_float(src, st, i));
}

int convert(void *dst, lt_dtype dst_type, const void *src, lt_dtype src_type, int64_t n, lt_error *err) {
    if (n <= 0) return 0;
    if (!mixed_dtype(dst_type) || !mixed_dtype(src_type))
        return fail(err, "cannot convert %s to %s", lt_dtype_name(src_type), lt_dtype_name(dst_type));
    convert_kernel<<<grid_for(n), 256, 0, state().stream>>>(dst, dst_type, src, src_type, n);
    LTC_LAUNCHED(err, "convert_kernel");
    return 0;
}

}  // namespace ltc
