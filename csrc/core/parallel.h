/* The library's own compute threads (OpenMP). OpenBLAS runs single-threaded inside them: one pool
 * governs all compute, so BLAS and our loops never fight over the cores. */
#ifndef LT_PARALLEL_H
#define LT_PARALLEL_H

#include <stdint.h>

/* Loops shorter than this many elements stay on one thread: starting a team costs microseconds. */
#define LT_PARALLEL_GRAIN 32768

int lt_get_num_threads(void);
void lt_set_num_threads(int n);
/* True inside an OpenMP parallel region (nested parallelism is not used). */
int lt_in_parallel(void);

/* Splits [0, n) into `parts` nearly equal ranges; range p is [*begin, *end). */
static inline void lt_split_range(int64_t n, int parts, int p, int64_t *begin, int64_t *end) {
    int64_t base = n / parts, extra = n % parts;
    *begin = p * base + (p < extra ? p : extra);
    *end = *begin + base + (p < extra ? 1 : 0);
}

#endif
