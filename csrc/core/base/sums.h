/* Sums of float arrays that vectorise: partial sums in independent lanes (a float reduction the compiler
 * cannot vectorise as written without -ffast-math), added up in double. The result depends only on n,
 * not on the thread count. */
#ifndef LT_SUMS_H
#define LT_SUMS_H

#include <stdint.h>

double lt_sum_f32(const float *x, int64_t n);

#endif
