/* Run-time dispatch for hot loops: GCC and clang compile a function marked LT_SIMD_CLONES once per
 * instruction set and pick the best at load time (an ifunc), so the library runs on any x86-64 CPU and
 * uses AVX-512 or AVX2 where they exist. Mark small leaf functions (a row, a channel), not functions
 * with OpenMP regions. */
#ifndef LT_SIMD_H
#define LT_SIMD_H

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(LT_NO_SIMD_CLONES) && \
    defined(__ELF__)
#define LT_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LT_SIMD_CLONES
#endif

#endif
