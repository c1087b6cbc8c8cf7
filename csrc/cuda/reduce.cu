/* The last step of the multi-block reductions (the losses' sums, the gradient norm): one block combines
 * the blocks' partial results in a fixed order, into a float on the device (a loss) or back to the host
 * where the contract's `double *` outputs ask for it (a synchronising copy: the gradient norm). */
#include "parts.cuh"
#include "reduce.cuh"

namespace ltc {

/* The total into *out (double; combined with what *out holds when combine) or, scaled by mult, *out_f
 * (float). */
__global__ void finish_kernel(double *out, float *out_f, double mult, const double *partials, int64_t count,
                              bool max_mode, bool combine = false) {
    double acc = 0.0; /* the empty sum, and the maximum of absolute values' floor */
    for (int64_t i = threadIdx.x; i < count; i += blockDim.x)
        acc = max_mode ? nan_max(acc, partials[i]) : acc + partials[i];
    acc = max_mode ? block_max(acc) : block_sum(acc);
    if (threadIdx.x != 0) return;
    if (out) *out = !combine ? acc : max_mode ? nan_max(*out, acc) : *out + acc;
    if (out_f) *out_f = (float)(acc * mult);
}

int finish_on_device(lt_error *err, float *out, double mult, const double *partials, int64_t count) {
    finish_kernel<<<1, 1024, 0, state().stream>>>(nullptr, out, mult, partials, count, false);
    return launch_check(err, "finish_kernel");
}

int combine_on_device(lt_error *err, double *acc, const double *partials, int64_t count, bool max_mode) {
    finish_kernel<<<1, 1024, 0, state().stream>>>(acc, nullptr, 1.0, partials, count, max_mode, true);
    return launch_check(err, "finish_kernel");
}

int finish_to_host(lt_error *err, double *host, const double *partials, int64_t count, bool max_mode) {
    double *result = (double *)device_alloc(sizeof(double), err);
    if (!result) return -1;
    finish_kernel<<<1, 1024, 0, state().stream>>>(result, nullptr, 1.0, partials, count, max_mode);
    int rc = launch_check(err, "finish_kernel");
    if (!rc) {
        cudaError_t e = cudaMemcpyAsync(host, result, sizeof(double), cudaMemcpyDeviceToHost, state().stream);
        rc = e != cudaSuccess ? cuda_fail(err, e, "cudaMemcpyAsync") : 0;
    }
    if (!rc) rc = wait_for_stream(err);
    device_free(result);
    return rc;
}

}  // namespace ltc
