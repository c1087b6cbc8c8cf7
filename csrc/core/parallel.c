#include "parallel.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static int num_threads;  /* 0 until first asked: then OpenMP's default (OMP_NUM_THREADS or the CPUs) */

int lt_get_num_threads(void) {
#ifdef _OPENMP
    if (num_threads == 0) num_threads = omp_get_max_threads();
#else
    if (num_threads == 0) num_threads = 1;
#endif
    return num_threads;
}

void lt_set_num_threads(int n) {
    if (n < 1) n = 1;
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    n = 1;
#endif
    num_threads = n;
}

int lt_threads_for(int64_t n, int64_t grain) {
#ifdef _OPENMP
    if (n < grain || omp_in_parallel()) return 1;
    return lt_get_num_threads();
#else
    (void)n;
    (void)grain;
    return 1;
#endif
}

int lt_thread_num(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
