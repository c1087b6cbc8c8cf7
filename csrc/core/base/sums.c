#include "sums.h"

#include "simd.h"

#define LANES 16

LT_SIMD_CLONES
double lt_sum_f32(const float *x, int64_t n) {
    float lanes[LANES] = {0};
    double total = 0;
    int64_t i = 0;
    /* blocks of 4096 in float lanes, then into double: float partial sums stay short */
    while (i + LANES <= n) {
        int64_t end = i + 4096 < n ? i + 4096 : n;
        for (; i + LANES <= end; i += LANES)
            for (int k = 0; k < LANES; k++) lanes[k] += x[i + k];
        for (int k = 0; k < LANES; k++) {
            total += lanes[k];
            lanes[k] = 0;
        }
    }
    for (; i < n; i++) total += x[i];
    return total;
}
