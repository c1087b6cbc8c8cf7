/* What the oneDNN build offers, without oneDNN's headers (for kernel.c and the bindings). */
#ifndef LT_DNNL_INFO_H
#define LT_DNNL_INFO_H

#include <stdbool.h>

const char *lt_dnnl_isa(void);    /* the instruction set oneDNN's kernels use: "avx512_core_bf16", ... */
bool lt_dnnl_bf16_native(void);   /* bf16 dot products in hardware (avx512_bf16 or AMX) */
bool lt_dnnl_bf16_available(void); /* bf16 convolutions at all: native, or emulated on AVX-512 (not on AVX2) */
bool lt_dnnl_fp32_available(void); /* the float32 convolutions the library takes: AVX-512's on OpenMP (checked there) */
bool lt_dnnl_amx_native(void);
const char *lt_dnnl_version(void);
/* The threading runtime oneDNN was built with: "OpenMP" (Debian's: our thread count is its), "SYCL" or
 * "TBB" (PyPI's 3.x: a thread pool of its own, whatever lightning's thread count), "sequential", ... */
const char *lt_dnnl_runtime(void);

#endif
