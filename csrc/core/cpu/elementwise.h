/* Internal to the CPU's elementwise kernels (activation.c, dropout.c): one loop over flat arrays, split
 * into pieces for the threads. */
#ifndef LT_CPU_ELEMENTWISE_H
#define LT_CPU_ELEMENTWISE_H

#include <stdint.h>

/* out[i] = f(a[i], b[i]) for i in [0, n); b may be unused (NULL), param is the function's constant. */
typedef void (*lt_map_fn)(float *out, const float *a, const float *b, int64_t n, float param);

/* Runs fn over [0, n) in pieces of a fixed size, on the library's threads when n is large. */
void lt_cpu_map(lt_map_fn fn, float *out, const float *a, const float *b, int64_t n, float param);

#endif
