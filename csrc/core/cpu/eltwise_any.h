/* Elementwise activations over n contiguous elements of float32 or bfloat16 (input and output types
 * may differ): GELU (exact, erf form) forward and backward. */
#ifndef LT_CPU_ELTWISE_ANY_H
#define LT_CPU_ELTWISE_ANY_H

#include <stdint.h>

#include "rows.h"

/* y = gelu(x) */
void lt_gelu_forward_any(lt_rows y, lt_rows x, int64_t n);
/* dx = dy * gelu'(x) */
void lt_gelu_backward_any(lt_rows dx, lt_rows dy, lt_rows x, int64_t n);

#endif
