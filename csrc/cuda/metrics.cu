/* The confusion matrix's counts of a batch (backend_api.h's confusion_update), added on the device: a
 * thread per sample takes the argmax of its logits (the host's rule in csrc/core/metrics/metrics.c: the first
 * maximum, a NaN the largest) and adds one to counts[target * classes + prediction]; a target that is
 * not a class index adds one to the last count instead, which the core reports when it reads the
 * counts back (no synchronisation per batch). */
#include <math.h>

#include "parts.cuh"

namespace ltc {

__global__ void confusion_kernel(unsigned long long *counts, const float *logits, const float *target,
                                 lt_confusion_shape s) {
    LTC_FOR(i, s.batch) {
        const float *row = logits + i * s.logit_stride[0];
        int64_t best = 0;
        float best_value = row[0];
        for (int64_t k = 1; k < s.classes && best_value == best_value; k++) {
            float v = row[k * s.logit_stride[1]];
            if (v != v || v > best_value) {
                best = k;
                best_value = v;
            }
        }
        float label = target[i * s.target_stride];
        double c = (double)label - (s.one_based ? 1.0 : 0.0);
        bool valid = label == floorf(label) && c >= 0 && c < (double)s.classes;
        int64_t slot = valid ? (int64_t)c * s.classes + best : s.classes * s.classes;
        atomicAdd(&counts[slot], 1ULL);
    }
}

int confusion_update(uint64_t *counts, const float *logits, const float *target, const lt_confusion_shape *s,
                     lt_error *err) {
    if (s->batch == 0) return 0;
    if (s->classes < 1) return fail(err, "confusion_update: %lld classes", (long long)s->classes);
    static_assert(sizeof(unsigned long long) == sizeof(uint64_t), "atomicAdd's 64-bit counter");
    confusion_kernel<<<grid_for(s->batch), 256, 0, state().stream>>>((unsigned long long *)counts, logits, target, *s);
    LTC_LAUNCHED(err, "confusion_kernel");
    return 0;
}

}  // namespace ltc
