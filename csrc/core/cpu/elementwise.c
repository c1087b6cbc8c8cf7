#include "elementwise.h"

#include <stddef.h>

#include "../base/parallel.h"

#define RUN 16384  /* elements per parallel work item */

void lt_cpu_map(lt_map_fn fn, float *out, const float *a, const float *b, int64_t n, float param) {
    int64_t units = (n + RUN - 1) / RUN;
    int threads = lt_threads_for(n, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t u = 0; u < units; u++) {
        int64_t start = u * RUN, len = n - start < RUN ? n - start : RUN;
        fn(out + start, a + start, b ? b + start : NULL, len, param);
    }
}
