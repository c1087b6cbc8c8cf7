/* The CPU's arithmetic peak, measured: bf16 dot products (AVX512_BF16's vdpbf16ps, what oneDNN's bf16
 * convolutions run on CPUs without AMX) and float32 FMA (AVX-512), on 1 thread and on every core. A
 * bound for any convolution on this machine: no kernel computes faster than this, so a step's
 * convolutions, counted in FLOPs, take at least FLOPs / peak (bench/airbench_bound.lua uses it).
 *   cc -O2 -pthread bench/cpu_peak.c -o /tmp/cpu_peak && /tmp/cpu_peak [seconds per run] [runs]
 * Prints one line per unit and thread count: the best of the runs, in GFLOP/s (a FLOP is a multiply
 * or an add: vdpbf16ps on a 512-bit register is 32 products and 32 sums). Each run keeps 16
 * independent accumulators per thread, more than latency x throughput on current cores. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <immintrin.h>

#define CHAINS 16
#define INNER 1000

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* INNER x CHAINS instructions of one unit on the accumulators acc[CHAINS]; returns the FLOPs of one. */
typedef double (*unit_block)(float *acc);

__attribute__((target("avx512f,avx512bf16"))) static double bf16_block(float *acc_out) {
    __m512 acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_loadu_ps(acc_out + 16 * c);
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3c00); /* 1, 2^-7 */
    for (int i = 0; i < INNER; i++)
#pragma GCC unroll 16 /* (the accumulators stay in registers) */
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_dpbf16_ps(acc[c], a, b);
    for (int c = 0; c < CHAINS; c++) _mm512_storeu_ps(acc_out + 16 * c, acc[c]);
    return 64;
}

__attribute__((target("avx512f"))) static double fp32_block(float *acc_out) {
    __m512 acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_loadu_ps(acc_out + 16 * c);
    __m512 a = _mm512_set1_ps(1.0f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < INNER; i++)
#pragma GCC unroll 16
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(a, b, acc[c]);
    for (int c = 0; c < CHAINS; c++) _mm512_storeu_ps(acc_out + 16 * c, acc[c]);
    return 32;
}

typedef struct job {
    unit_block block;
    double seconds;
    double flops;             /* out: FLOP/s */
    float acc[16 * CHAINS];   /* the accumulators between blocks (read back: the work is kept) */
} job;

static void *run(void *arg) {
    job *j = arg;
    double start = now(), per = 0, blocks = 0;
    while (now() - start < j->seconds) {
        per = j->block(j->acc);
        blocks++;
    }
    j->flops = blocks * INNER * CHAINS * per / (now() - start);
    return NULL;
}

/* GFLOP/s of `threads` threads running one unit at once. */
static double measure(int bf16, int threads, double seconds) {
    pthread_t tid[256];
    static job jobs[256];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){.block = bf16 ? bf16_block : fp32_block, .seconds = seconds};
        pthread_create(&tid[t], NULL, run, &jobs[t]);
    }
    double total = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        total += jobs[t].flops;
    }
    return total / 1e9;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 0.5;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > 256) cores = 256;
    __builtin_cpu_init();
    int has_bf16 = __builtin_cpu_supports("avx512bf16"), has_512 = __builtin_cpu_supports("avx512f");
    if (!has_512) {
        printf("no AVX-512 on this CPU: nothing to measure here\n");
        return 0;
    }
    for (int bf16 = has_bf16 ? 1 : 0; bf16 >= 0; bf16--) {
        int counts[2] = {1, cores};
        for (int k = 0; k < (cores > 1 ? 2 : 1); k++) {
            double best = 0;
            for (int r = 0; r < runs; r++) {
                double g = measure(bf16, counts[k], seconds);
                if (g > best) best = g;
            }
            printf("%s %d thread%s: %.1f GFLOP/s (%.1f per thread), best of %d runs of %.2f s\n",
                   bf16 ? "bf16 vdpbf16ps" : "fp32 fma      ", counts[k], counts[k] > 1 ? "s" : " ", best,
                   best / counts[k], runs, seconds);
        }
    }
    if (!has_bf16) printf("no AVX512_BF16 on this CPU: bf16 not measured\n");
    return 0;
}
