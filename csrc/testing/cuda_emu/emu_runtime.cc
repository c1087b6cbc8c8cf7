/* The emulated CUDA runtime (csrc/testing/cuda_emu/README.md): device memory is host memory, a stream runs
 * what it is given at once (or records it while it is captured into a graph), and a kernel's blocks run
 * one after another on the calling thread. A cooperative kernel's threads are fibers that a
 * scheduler switches at barriers: __syncthreads releases when every live thread of the block waits there,
 * a warp shuffle when every live lane of the warp has given its value. A barrier no thread can pass (one
 * inside a branch some threads skip) stops the process with the kernel's name: the GPU would hang or
 * compute garbage there. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <vector>

#include "include/cuda_runtime.h"

dim3 threadIdx, blockIdx, blockDim, gridDim;

/* What a captured stream recorded: its launches and copies, run again at each launch of the graph. */
struct ltc_emu_graph {
    std::vector<std::function<void()>> steps;
};

namespace {

[[noreturn]] void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cuda_emu: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

/* ---- memory ---- */

size_t in_use, peak, total_bytes = (size_t)8 << 30;

void *device_malloc(size_t bytes) {
    size_t *p = (size_t *)malloc(bytes + 16);
    if (!p) return nullptr;
    p[0] = bytes;
    in_use += bytes;
    if (in_use > peak) peak = in_use;
    memset(p + 2, 0xA5, bytes);  /* fresh device memory is garbage, as on a GPU: never zero by chance */
    return p + 2;
}

void device_release(void *q) {
    if (!q) return;
    size_t *p = (size_t *)q - 2;
    in_use -= p[0];
    free(p);
}

/* ---- streams and graphs: work runs now, or goes into the graph being captured ---- */

ltc_emu_graph *capturing;  /* the graph being captured, or NULL */

void submit(std::function<void()> step) {
    if (capturing) capturing->steps.push_back(std::move(step));
    else step();
}

/* ---- kernels ---- */

const char *kernel_name;
bool in_cooperative;

/* Switching between a block's threads. On x86-64 a few instructions save the callee-saved registers on
 * the running stack and load the other's (swapcontext would also save the signal mask: a system call
 * at each switch, which made cooperative kernels 20 times slower); elsewhere ucontext. */
#if defined(__x86_64__)
extern "C" void ltc_emu_switch(void **save_sp, void *load_sp);
asm(R"(
    .text
    .globl ltc_emu_switch
    .type ltc_emu_switch, @function
ltc_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size ltc_emu_switch, .-ltc_emu_switch
)");
struct context {
    void *sp = nullptr;
};
void fiber_main();
/* A new thread's context on `stack`: its first switch "returns" into fiber_main, 16-byte aligned as
 * after a call. */
void make_context(context &c, void *stack, size_t bytes) {
    uintptr_t top = ((uintptr_t)stack + bytes) & ~(uintptr_t)15;
    void **sp = (void **)(top - 16);
    *sp = (void *)fiber_main;
    sp -= 6;  /* the six registers ltc_emu_switch pops */
    memset(sp, 0, 6 * sizeof *sp);
    c.sp = sp;
}
void switch_to(context &from, context &to) { ltc_emu_switch(&from.sp, to.sp); }
#else
struct context {
    ucontext_t uc;
};
void fiber_main();
void make_context(context &c, void *stack, size_t bytes) {
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = bytes;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, fiber_main, 0);
}
void switch_to(context &from, context &to) { swapcontext(&from.uc, &to.uc); }
#endif

struct fiber {
    context ctx;
    void *stack = nullptr;
    dim3 idx;
    enum { READY, AT_BARRIER, AT_WARP, DONE } state = READY;
    double slot = 0;  /* what it gives a warp shuffle */
};

const size_t STACK_BYTES = (size_t)256 << 10;
std::vector<fiber> fibers;
context scheduler;
int current;
const std::function<void()> *running_body;

/* A thread's life: the kernel's body, then back to the scheduler for good. */
void fiber_main() {
    (*running_body)();
    fibers[current].state = fiber::DONE;
    switch_to(fibers[current].ctx, scheduler);
    abort();  /* (never resumed) */
}

void wait_as(int state) {
    fiber &f = fibers[current];
    f.state = (decltype(f.state))state;
    switch_to(f.ctx, scheduler);
    threadIdx = f.idx;  /* (resumed) */
}

int lane_count() { return (int)(blockDim.x * blockDim.y * blockDim.z); }

/* Releases the warps whose live lanes all wait at a shuffle; else the block's barrier when every live
 * thread waits there. Whether anything was released. */
bool release_waiters() {
    bool released = false;
    int n = lane_count();
    for (int w = 0; w < n; w += 32) {
        int waiting = 0, live = 0;
        for (int i = w; i < n && i < w + 32; i++) {
            if (fibers[i].state == fiber::DONE) continue;
            live++;
            if (fibers[i].state == fiber::AT_WARP) waiting++;
        }
        if (live && waiting == live) {
            for (int i = w; i < n && i < w + 32; i++)
                if (fibers[i].state == fiber::AT_WARP) fibers[i].state = fiber::READY;
            released = true;
        }
    }
    if (released) return true;
    int live = 0, waiting = 0;
    for (int i = 0; i < n; i++) {
        if (fibers[i].state == fiber::DONE) continue;
        live++;
        if (fibers[i].state == fiber::AT_BARRIER) waiting++;
    }
    if (live && waiting == live) {
        for (int i = 0; i < n; i++)
            if (fibers[i].state == fiber::AT_BARRIER) fibers[i].state = fiber::READY;
        return true;
    }
    return false;
}

void run_block_cooperatively(const std::function<void()> &body) {
    int n = lane_count();
    if ((int)fibers.size() < n) fibers.resize(n);
    running_body = &body;
    for (int i = 0; i < n; i++) {
        fiber &f = fibers[i];
        if (!f.stack) {
            f.stack = mmap(nullptr, STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (f.stack == MAP_FAILED) die("no memory for a fiber's stack");
        }
        f.idx = dim3(i % blockDim.x, i / blockDim.x % blockDim.y, i / (blockDim.x * blockDim.y));
        f.state = fiber::READY;
        make_context(f.ctx, f.stack, STACK_BYTES);
    }
    for (;;) {
        bool ran = false;
        for (int i = 0; i < n; i++) {
            if (fibers[i].state != fiber::READY) continue;
            current = i;
            threadIdx = fibers[i].idx;
            ran = true;
            switch_to(scheduler, fibers[i].ctx);
        }
        bool all_done = true;
        for (int i = 0; i < n; i++) all_done = all_done && fibers[i].state == fiber::DONE;
        if (all_done) return;
        if (!release_waiters() && !ran)
            die("kernel %s, block (%u, %u, %u): threads wait at a barrier that others never reach", kernel_name,
                blockIdx.x, blockIdx.y, blockIdx.z);
    }
}

void run_kernel(const char *name, bool cooperative, dim3 grid, dim3 block, const std::function<void()> &body) {
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || block.x == 0 || block.y == 0 || block.z == 0)
        die("kernel %s launched with an empty grid or block", name);
    if ((size_t)block.x * block.y * block.z > 1024) die("kernel %s: more than 1024 threads in a block", name);
    kernel_name = name;
    in_cooperative = cooperative;
    gridDim = grid;
    blockDim = block;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                blockIdx = dim3(bx, by, bz);
                if (cooperative) {
                    run_block_cooperatively(body);
                    continue;
                }
                for (unsigned tz = 0; tz < block.z; tz++)
                    for (unsigned ty = 0; ty < block.y; ty++)
                        for (unsigned tx = 0; tx < block.x; tx++) {
                            threadIdx = dim3(tx, ty, tz);
                            body();
                        }
            }
    in_cooperative = false;
}

}  // namespace

/* ---- what kernels call ---- */

void ltc_emu_syncthreads() {
    if (!in_cooperative) die("kernel %s waits at __syncthreads but was launched as not cooperative (launches.lua)", kernel_name);
    wait_as(fiber::AT_BARRIER);
}

double ltc_emu_shfl_xor(double v, int lane_mask) {
    if (!in_cooperative) die("kernel %s shuffles but was launched as not cooperative (launches.lua)", kernel_name);
    int me = current, partner = (me & ~31) | ((me & 31) ^ lane_mask);
    fibers[me].slot = v;
    wait_as(fiber::AT_WARP);
    double got = partner < lane_count() ? fibers[partner].slot : v;
    wait_as(fiber::AT_WARP);  /* (no lane overwrites its slot before every lane has read) */
    return got;
}

void ltc_emu_run(const char *name, bool cooperative, dim3 grid, dim3 block, cudaStream_t stream,
                 std::function<void()> thread_body) {
    (void)stream;
    submit([=] { run_kernel(name, cooperative, grid, block, thread_body); });
}

void ltc_emu_submit(std::function<void()> work) { submit(std::move(work)); }
bool ltc_emu_capturing() { return capturing != nullptr; }

/* ---- the runtime API ---- */

static cudaError_t last_error = cudaSuccess;
static cudaError_t failed(cudaError_t e) { return last_error = e; }

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
        case cudaSuccess: return "no error";
        case cudaErrorMemoryAllocation: return "out of memory";
        case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
        default: return "emulated CUDA error";
    }
}
const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
        case cudaSuccess: return "cudaSuccess";
        case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
        case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
        default: return "cudaErrorUnknown";
    }
}
cudaError_t cudaGetLastError() {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

cudaError_t cudaGetDeviceCount(int *count) { *count = 1; return cudaSuccess; }
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : failed(cudaErrorInvalidDevice); }
cudaError_t cudaGetDevice(int *device) { *device = 0; return cudaSuccess; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int device) {
    if (device != 0) return failed(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "emulated CUDA device (host memory, for tests)");
    const char *bytes = getenv("LIGHTNING_CUDA_EMU_BYTES");
    if (bytes) total_bytes = (size_t)strtoull(bytes, nullptr, 10);
    p->totalGlobalMem = total_bytes;
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 132;
    return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int *v) { *v = CUDART_VERSION; return cudaSuccess; }
cudaError_t cudaRuntimeGetVersion(int *v) { *v = CUDART_VERSION; return cudaSuccess; }
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
    *total = total_bytes;
    *free_bytes = in_use < total_bytes ? total_bytes - in_use : 0;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes) {
    if (in_use + bytes > total_bytes || !(*p = device_malloc(bytes))) return failed(cudaErrorMemoryAllocation);
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) { device_release(p); return cudaSuccess; }
cudaError_t cudaMallocAsync(void **p, size_t bytes, cudaStream_t) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeAsync(void *p, cudaStream_t) {
    /* a graph may use memory freed during its capture when it is launched later: keep it */
    if (!capturing) device_release(p);
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t bytes) { return (*p = malloc(bytes ? bytes : 1)) ? cudaSuccess : failed(cudaErrorMemoryAllocation); }
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned) { return cudaMallocHost(p, bytes); }
cudaError_t cudaFreeHost(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaHostGetDevicePointer(void **device, void *host, unsigned) { *device = host; return cudaSuccess; }

struct ltc_emu_pool {
    size_t release_threshold;
};
static ltc_emu_pool the_pool;
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t *pool, int) { *pool = &the_pool; return cudaSuccess; }
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void *value) {
    if (attr == cudaMemPoolAttrReleaseThreshold) pool->release_threshold = *(uint64_t *)value;
    else if (attr == cudaMemPoolAttrUsedMemHigh || attr == cudaMemPoolAttrReservedMemHigh) peak = in_use;
    return cudaSuccess;
}
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t, cudaMemPoolAttr attr, void *value) {
    uint64_t v = 0;
    if (attr == cudaMemPoolAttrUsedMemCurrent || attr == cudaMemPoolAttrReservedMemCurrent) v = in_use;
    else if (attr == cudaMemPoolAttrUsedMemHigh || attr == cudaMemPoolAttrReservedMemHigh) v = peak;
    *(uint64_t *)value = v;
    return cudaSuccess;
}
cudaError_t cudaMemPoolTrimTo(cudaMemPool_t, size_t) { return cudaSuccess; }

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind, cudaStream_t) {
    submit([=] { memmove(dst, src, bytes); });
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t) {
    submit([=] { memset(dst, value, bytes); });
    return cudaSuccess;
}

struct ltc_emu_stream {
    int unused;
};
struct ltc_emu_event {
    int unused;
};
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { *s = new ltc_emu_stream(); return cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t s) { delete s; return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) {
    return capturing ? failed(cudaErrorStreamCaptureUnsupported) : cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) { *e = new ltc_emu_event(); return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t e) { delete e; return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventQuery(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }

cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode) {
    if (capturing) return failed(cudaErrorStreamCaptureUnsupported);
    capturing = new ltc_emu_graph();
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *graph) {
    if (!capturing) return failed(cudaErrorStreamCaptureInvalidated);
    *graph = capturing;
    capturing = nullptr;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long) {
    *exec = new ltc_emu_graph(*graph);
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t) {
    if (capturing) return failed(cudaErrorStreamCaptureUnsupported);
    for (auto &step : exec->steps) step();
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) { delete graph; return cudaSuccess; }
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) { delete exec; return cudaSuccess; }
