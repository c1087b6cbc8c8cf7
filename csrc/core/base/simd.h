/* Run-time dispatch for hot loops: GCC compiles a function marked LT_SIMD_CLONES once per x86-64 level
 * (v4: AVX-512; v3: AVX2 with FMA; the baseline) and picks the best at load time (an ifunc), so the
 * library runs on any x86-64 CPU and uses AVX-512 or AVX2 where they exist. The levels, not single
 * features: "avx512f" alone does not include the scalar FMA that fmaf needs, which then becomes a libm
 * call. Mark small leaf functions (a row, a channel), not functions with OpenMP regions. Other
 * compilers get the baseline build. */
#ifndef LT_SIMD_H
#define LT_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && defined(__ELF__) && \
    !defined(LT_NO_SIMD_CLONES)
#define LT_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LT_SIMD_CLONES
#endif

#endif
