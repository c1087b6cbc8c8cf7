/* A kernel launch in the emulated backend: launches.lua rewrites `k<<<grid, block, shared, stream>>>(args)`
 * into ltc_emu_launch<cooperative>("k", grid, block, shared, stream, [](auto... a) { k(a...); }, args): the
 * arguments are evaluated once, at the launch, as CUDA's are. The launch runs its blocks
 * one after another on the calling thread (or records them while a stream is captured into a graph):
 * a kernel that never waits at a barrier runs its threads as plain calls; a cooperative one (it calls
 * __syncthreads or a warp shuffle, directly or through a device function: launches.lua decides) runs
 * them as fibers that switch at each barrier (emu_runtime.cc). */
#ifndef LTC_EMU_LAUNCH_H
#define LTC_EMU_LAUNCH_H

#include <functional>

void ltc_emu_run(const char *name, bool cooperative, dim3 grid, dim3 block, cudaStream_t stream,
                 std::function<void()> thread_body);
/* Work on the stream that is not a kernel (the host's stand-ins for cuDNN and cuBLASLt: emu_ops.cc): now,
 * or into the graph being captured. */
void ltc_emu_submit(std::function<void()> work);
bool ltc_emu_capturing();

template <bool Cooperative, class Kernel, class... Args>
void ltc_emu_launch(const char *name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream, Kernel kernel,
                    Args... args) {
    (void)shared_bytes;  /* (the backend's kernels declare their shared memory statically) */
    ltc_emu_run(name, Cooperative, grid, block, stream, [=] { kernel(args...); });
}

#endif
