/* OpenBLAS, loaded at run time. OpenBLAS picks its kernels (the "core type") in a constructor that
 * runs when the library is loaded, from OPENBLAS_CORETYPE or its own CPU table; Debian's 0.3.21 does not
 * know recent CPUs and falls back to slow generic kernels. Loading it ourselves with dlopen lets us set
 * OPENBLAS_CORETYPE from the CPU's features first (a user's own setting wins). */
#ifndef LT_BLAS_H
#define LT_BLAS_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

/* Loads OpenBLAS once; later calls return the first result. Environment:
 *   OPENBLAS_CORETYPE       the user's choice, used as is;
 *   LIGHTNING_BLAS_CORETYPE "openblas" leaves the choice to OpenBLAS (for comparisons), or names a core. */
int lt_blas_load(lt_error *err);

typedef struct lt_blas_info {
    const char *core;     /* what OpenBLAS reports using, e.g. "SkylakeX" */
    const char *chosen_by;/* "lightning (cpu features)", "OPENBLAS_CORETYPE", "LIGHTNING_BLAS_CORETYPE", "openblas" */
    const char *library;  /* the file name that was loaded */
    const char *config;   /* openblas_get_config() */
} lt_blas_info;
lt_blas_info lt_blas_get_info(void);
void lt_blas_set_threads(int n);

/* Row-major C = alpha * op(A) op(B) + beta * C with op(A) M x K, op(B) K x N, in blocks of C fixed by
 * the sizes, each a single-threaded OpenBLAS call, split over the library's threads when large: the
 * same bits at any thread count, inside a parallel region or not. */
void lt_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* One single-threaded OpenBLAS call on the calling thread (a kernel that cuts the work itself). */
void lt_sgemm_serial(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                     int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

#endif
