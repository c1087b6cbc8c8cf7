/* What the CPU can do, read with CPUID (and XGETBV for what the OS saves), to choose kernels and
 * OpenBLAS's core type at run time instead of at compile time. */
#ifndef LT_CPU_FEATURES_H
#define LT_CPU_FEATURES_H

#include <stdbool.h>

typedef struct lt_cpu_info {
    char vendor[16];
    char model[64];
    int logical_cpus;
    bool sse42, avx, avx2, fma, avx512f, avx512dq, avx512bw, avx512vl, avx512_vnni, avx512_bf16, amx;
} lt_cpu_info;

/* Detected once; later calls return the same struct. */
const lt_cpu_info *lt_cpu(void);
/* The widest SIMD level usable: "avx512", "avx2", "avx", "sse4.2" or "generic". */
const char *lt_cpu_simd_level(const lt_cpu_info *cpu);
/* The OpenBLAS core type whose kernels suit this CPU (OpenBLAS's own names), or NULL. */
const char *lt_cpu_blas_core(const lt_cpu_info *cpu);

#endif
