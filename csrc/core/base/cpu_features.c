#include "cpu_features.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static void detect(lt_cpu_info *c) {
    unsigned a, b, cx, d;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf == 0) return;
    __cpuid(0, a, b, cx, d);
    memcpy(c->vendor, &b, 4);
    memcpy(c->vendor + 4, &d, 4);
    memcpy(c->vendor + 8, &cx, 4);
    c->vendor[12] = '\0';

    __cpuid(1, a, b, cx, d);
    bool osxsave = cx & bit_OSXSAVE;
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    bool os_avx = (xcr0 & 0x6) == 0x6;              /* XMM and YMM state */
    bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0; /* opmask, ZMM_Hi256, Hi16_ZMM */
    c->sse42 = cx & bit_SSE4_2;
    c->avx = os_avx && (cx & bit_AVX);
    c->fma = c->avx && (cx & bit_FMA);
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, cx, d);
        c->avx2 = c->avx && (b & bit_AVX2);
        c->avx512f = os_avx512 && (b & bit_AVX512F);
        c->avx512dq = c->avx512f && (b & bit_AVX512DQ);
        c->avx512bw = c->avx512f && (b & bit_AVX512BW);
        c->avx512vl = c->avx512f && (b & bit_AVX512VL);
        c->avx512_vnni = c->avx512f && (cx & (1u << 11));
        c->amx = d & (1u << 24);
        __cpuid_count(7, 1, a, b, cx, d);
        c->avx512_bf16 = c->avx512f && (a & (1u << 5));
    }
    if (__get_cpuid_max(0x80000000, NULL) >= 0x80000004) {
        unsigned regs[12];
        for (unsigned i = 0; i < 3; i++)
            __cpuid(0x80000002 + i, regs[4 * i], regs[4 * i + 1], regs[4 * i + 2], regs[4 * i + 3]);
        char brand[49];
        memcpy(brand, regs, 48);
        brand[48] = '\0';
        const char *s = brand;
        while (*s == ' ') s++;
        strncpy(c->model, s, sizeof c->model - 1);
    }
}
#else
static void detect(lt_cpu_info *c) {}
#endif

const lt_cpu_info *lt_cpu(void) {
    static lt_cpu_info info;
    static bool done;
    if (!done) {
        memset(&info, 0, sizeof info);
        strcpy(info.vendor, "unknown");
        strcpy(info.model, "unknown");
        detect(&info);
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        info.logical_cpus = n > 0 ? (int)n : 1;
        done = true;
    }
    return &info;
}

const char *lt_cpu_simd_level(const lt_cpu_info *c) {
    if (c->avx512f && c->avx512bw && c->avx512dq && c->avx512vl) return "avx512";
    if (c->avx2 && c->fma) return "avx2";
    if (c->avx) return "avx";
    if (c->sse42) return "sse4.2";
    return "generic";
}

const char *lt_cpu_blas_core(const lt_cpu_info *c) {
    const char *level = lt_cpu_simd_level(c);
    if (!strcmp(level, "avx512")) return "SkylakeX";
    if (!strcmp(level, "avx2")) return "Haswell";
    if (!strcmp(level, "avx")) return "Sandybridge";
    return NULL;  /* leave older CPUs to OpenBLAS's own detection */
}
