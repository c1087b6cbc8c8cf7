/* The library's own compute threads (OpenMP). OpenBLAS runs single-threaded inside them (blas.c sets
 * it so when it loads the library): one pool governs all compute, so BLAS and our loops never fight
 * over the cores. This file depends on nothing else in the core. */
#ifndef LT_PARALLEL_H
#define LT_PARALLEL_H

#include <stdint.h>

/* Loops shorter than this many elements stay on one thread: starting a team costs microseconds. */
#define LT_PARALLEL_GRAIN 32768

int lt_get_num_threads(void);
void lt_set_num_threads(int n);

/* The one rule for how many threads a loop gets: the whole team when it has at least `grain` units
 * of work (elements, multiply-adds) and does not already run inside a parallel region (teams are not
 * nested), one thread otherwise. Kernels whose results depend on the partition of a sum call it
 * with the same grain every time, so that a given thread count always gives the same result. */
int lt_threads_for(int64_t n, int64_t grain);

/* Splits [0, n) into `parts` nearly equal ranges; range p is [*begin, *end). */
static inline void lt_split_range(int64_t n, int parts, int p, int64_t *begin, int64_t *end) {
    int64_t base = n / parts, extra = n % parts;
    *begin = p * base + (p < extra ? p : extra);
    *end = *begin + base + (p < extra ? 1 : 0);
}

#endif
