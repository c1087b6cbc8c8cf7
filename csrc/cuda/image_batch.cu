/* A batch of augmented images made on the device from the data set it holds as bytes, or float images
 * mirrored or shifted (backend_api.h's image_batch; csrc/core/data/image_plan.h): a thread per output
 * value walks the plan's steps back to the source pixel with the host's own function, so the batch
 * holds the host's bits. The plan goes by value as the kernel's parameter, the samples' draws through
 * a buffer of the stream-ordered pool. */
extern "C" {
#include "data/image_plan.h"
}

#include "parts.cuh"

namespace ltc {

__global__ void image_batch_kernel(float *out, const void *pixels, lt_image_plan plan, const lt_sample_draw *draws,
                                   int64_t n) {
    const int64_t plane = (int64_t)plan.h * plan.w, sample = plane * plan.c;
    LTC_FOR(i, n * sample) {
        int64_t s = i / sample, r = i % sample;
        int ch = (int)(r / plane);
        int64_t p = r % plane;
        out[i] = lt_image_plan_value(&plan, &draws[s], pixels, ch, (int)(p / plan.w), (int)(p % plan.w));
    }
}

int image_batch(float *out, const void *pixels, const lt_image_plan *plan, const lt_sample_draw *draws, int64_t n,
                lt_error *err) {
    if (not_in_capture("image_batch (its draws come from the host)", err)) return -1;
    if (n == 0) return 0;
    size_t bytes = sizeof *draws * (size_t)n;
    lt_sample_draw *on_device = (lt_sample_draw *)device_alloc(bytes, err);
    if (!on_device) return -1;
    cudaStream_t stream = state().stream;
    /* from pageable memory: staged before the call returns, so the caller may reuse draws at once */
    cudaError_t e = cudaMemcpyAsync(on_device, draws, bytes, cudaMemcpyHostToDevice, stream);
    if (e != cudaSuccess) {
        device_free(on_device);
        return cuda_fail(err, e, "cudaMemcpyAsync");
    }
    int64_t total = n * plan->c * plan->h * plan->w;
    image_batch_kernel<<<grid_for(total), 256, 0, stream>>>(out, pixels, *plan, on_device, n);
    device_free(on_device);  /* stream-ordered: reused only after the kernel */
    LTC_LAUNCHED(err, "image_batch_kernel");
    return 0;
}

}  // namespace ltc
