/* Elementwise activations over n contiguous elements of float32 or bfloat16 held as one row (rows.h;
 * input and output types may differ): the mixed-precision activations, and GELU at float32 too. The
 * float32-only activations are activation.c's, over flat float arrays (elementwise.c's loop). */
#ifndef LT_CPU_ACTIVATION_ROWS_H
#define LT_CPU_ACTIVATION_ROWS_H

#include <stdint.h>

#include "rows.h"

/* y = gelu(x), the exact (erf) form */
void lt_gelu_forward_rows(lt_rows y, lt_rows x, int64_t n);
/* dx = dy * gelu'(x) */
void lt_gelu_backward_rows(lt_rows dx, lt_rows dy, lt_rows x, int64_t n);
/* y = x > 0 ? x : slope * x (slope 0: ReLU) */
void lt_leaky_relu_forward_rows(lt_rows y, lt_rows x, int64_t n, float slope);
/* dx = x > 0 ? dy : slope * dy */
void lt_leaky_relu_backward_rows(lt_rows dx, lt_rows dy, lt_rows x, int64_t n, float slope);

#endif
