/* The last step of the multi-block reductions (the losses' sums, the gradient norm): one block combines
 * the blocks' partial results in a fixed order and the result comes back to the host, which the
 * contract's `double *` outputs ask for (a synchronising copy). */
#include "parts.cuh"
#include "reduce.cuh"

namespace ltc {

__global__ void finish_kernel(double *out, const double *partials, int64_t count, bool max_mode) {
    double acc = 0.0; /* the empty sum, and the maximum of absolute values' floor */
    for (int64_t i = threadIdx.x; i < count; i += blockDim.x)
        acc = max_mode ? nan_max(acc, partials[i]) : acc + partials[i];
    acc = max_mode ? block_max(acc) : block_sum(acc);
    if (threadIdx.x == 0) *out = acc;
}

int finish_to_host(lt_error *err, double *host, const double *partials, int64_t count, bool max_mode) {
    double *result = (double *)device_alloc(sizeof(double), err);
    if (!result) return -1;
    finish_kernel<<<1, 1024, 0, state().stream>>>(result, partials, count, max_mode);
    int rc = launch_check(err, "finish_kernel");
    if (!rc) {
        cudaError_t e = cudaMemcpyAsync(host, result, sizeof(double), cudaMemcpyDeviceToHost, state().stream);
        rc = e != cudaSuccess ? cuda_fail(err, e, "cudaMemcpyAsync") : 0;
    }
    if (!rc) {
        cudaError_t e = cudaStreamSynchronize(state().stream);
        rc = e != cudaSuccess ? cuda_fail(err, e, "cudaStreamSynchronize") : 0;
    }
    device_free(result);
    return rc;
}

}  // namespace ltc
