#include "parallel.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#include "blas.h"

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
    lt_blas_set_threads(1);  /* parallelism comes from our threads, see parallel.h */
}

int lt_in_parallel(void) {
#ifdef _OPENMP
    return omp_in_parallel();
#else
    return 0;
#endif
}
