#include "blas.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"
#include "parallel.h"

/* CBLAS constants (cblas.h), declared here because the library is loaded at run time. */
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };
typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);

static struct {
    int state;  /* 0 not tried, 1 loaded, -1 failed */
    char error[512];
    void *handle;
    sgemm_fn sgemm;
    void (*set_threads)(int);
    char *(*get_corename)(void);
    char *(*get_config)(void);
    const char *chosen_by;
    const char *library;
} blas;

static const char *const candidates[] = {"libopenblas.so.0", "libopenblas.so", "libopenblas.dylib", "libopenblas.0.dylib"};

int lt_blas_load(lt_error *err) {
    if (blas.state == 1) return 0;
    if (blas.state == -1) return lt_fail(err, "%s", blas.error);

    const char *user = getenv("OPENBLAS_CORETYPE");
    const char *ours = getenv("LIGHTNING_BLAS_CORETYPE");
    const char *set_core = NULL;
    if (user && *user) {
        blas.chosen_by = "OPENBLAS_CORETYPE";
    } else if (ours && *ours && strcmp(ours, "openblas") != 0) {
        set_core = ours;
        blas.chosen_by = "LIGHTNING_BLAS_CORETYPE";
    } else if (ours && !strcmp(ours, "openblas")) {
        blas.chosen_by = "openblas";
    } else {
        set_core = lt_cpu_blas_core(lt_cpu());
        blas.chosen_by = set_core ? "lightning (cpu features)" : "openblas";
    }
    /* OpenBLAS reads the variables in its load-time constructor; unset them afterwards so that child
     * processes (a benchmark's PyTorch peer, say) see the environment the user gave them. It runs on one
     * thread inside ours (lt_blas_set_threads(1) below): with OPENBLAS_NUM_THREADS=1 at load, its
     * pthreads build starts no server threads, which would only wait (spinning at first) for work that
     * never comes. A user's OPENBLAS_NUM_THREADS is left alone. */
    bool set_one = !getenv("OPENBLAS_NUM_THREADS");
    if (set_core) setenv("OPENBLAS_CORETYPE", set_core, 1);
    if (set_one) setenv("OPENBLAS_NUM_THREADS", "1", 1);
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates && !blas.handle; i++) {
        blas.handle = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (blas.handle) blas.library = candidates[i];
    }
    if (set_core) unsetenv("OPENBLAS_CORETYPE");
    if (set_one) unsetenv("OPENBLAS_NUM_THREADS");

    if (blas.handle) {
        blas.sgemm = (sgemm_fn)dlsym(blas.handle, "cblas_sgemm");
        blas.set_threads = (void (*)(int))dlsym(blas.handle, "openblas_set_num_threads");
        blas.get_corename = (char *(*)(void))dlsym(blas.handle, "openblas_get_corename");
        blas.get_config = (char *(*)(void))dlsym(blas.handle, "openblas_get_config");
    }
    if (!blas.handle || !blas.sgemm) {
        blas.state = -1;
        lt_fail(err, "cannot load OpenBLAS (tried libopenblas.so.0): %s; install OpenBLAS (Debian: libopenblas0)",
                blas.handle ? "cblas_sgemm missing" : dlerror());
        strcpy(blas.error, err ? err->msg : "cannot load OpenBLAS");
        return -1;
    }
    blas.state = 1;
    lt_blas_set_threads(1);
    return 0;
}

lt_blas_info lt_blas_get_info(void) {
    lt_blas_info info = {"unknown", "unknown", "none", "unknown"};
    if (blas.state != 1) return info;
    if (blas.get_corename) info.core = blas.get_corename();
    if (blas.get_config) info.config = blas.get_config();
    info.chosen_by = blas.chosen_by;
    info.library = blas.library;
    return info;
}

void lt_blas_set_threads(int n) {
    if (blas.state == 1 && blas.set_threads) blas.set_threads(n);
}

void lt_sgemm_serial(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                     int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    blas.sgemm(CBLAS_ROW_MAJOR, trans_a ? CBLAS_TRANS : CBLAS_NO_TRANS, trans_b ? CBLAS_TRANS : CBLAS_NO_TRANS,
               (int)M, (int)N, (int)K, alpha, A, (int)(lda > 0 ? lda : 1), B, (int)(ldb > 0 ? ldb : 1), beta, C,
               (int)(ldc > 0 ? ldc : 1));
}

/* Below this many multiply-adds a team of threads costs more than it saves. */
#define GEMM_GRAIN (64 * 64 * 64)
/* A block's side at least: each block's call packs the other operand again, which costs about as much as
 * one block of this many columns (or rows) of C. */
#define MIN_BLOCK_SIDE 256

/* C's longer side is cut into blocks fixed by the sizes (parallel.h; OpenBLAS rounds an element
 * differently in calls of different shapes): two blocks from GEMM_GRAIN multiply-adds on, so that two
 * threads share any product worth sharing, more for long sides; whole SIMD panels of 16 each. The
 * blocks run on the threads, or one after another on one thread (or inside a parallel region). */
void lt_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    int64_t work = M * N * K;
    bool split_n = N >= M;
    int64_t len = split_n ? N : M, panels = (len + 15) / 16;
    int64_t blocks = work < GEMM_GRAIN ? 1 : lt_parts_for(len, MIN_BLOCK_SIDE);
    if (work >= GEMM_GRAIN && blocks < 2) blocks = 2;
    if (blocks > panels) blocks = panels;
    int threads = lt_threads_for_parts(blocks, work, GEMM_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t p0, p1;
        lt_split_range(panels, blocks, b, &p0, &p1);
        int64_t lo = p0 * 16, hi = p1 * 16 < len ? p1 * 16 : len;
        if (split_n) {
            const float *bb = trans_b ? B + lo * ldb : B + lo;
            lt_sgemm_serial(trans_a, trans_b, M, hi - lo, K, alpha, A, lda, bb, ldb, beta, C + lo, ldc);
        } else {
            const float *ab = trans_a ? A + lo : A + lo * lda;
            lt_sgemm_serial(trans_a, trans_b, hi - lo, N, K, alpha, ab, lda, B, ldb, beta, C + lo * ldc, ldc);
        }
    }
}
