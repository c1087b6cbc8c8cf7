/* Element types of tensor storage. Users see float32; bfloat16 holds activations and their gradients
 * between layers under mixed precision (see bf16.h). */
#ifndef LT_DTYPE_H
#define LT_DTYPE_H

#include <stddef.h>

typedef enum lt_dtype { LT_FLOAT32 = 0, LT_BFLOAT16 = 1 } lt_dtype;

static inline size_t lt_dtype_size(lt_dtype t) { return t == LT_BFLOAT16 ? 2 : 4; }
static inline const char *lt_dtype_name(lt_dtype t) { return t == LT_BFLOAT16 ? "bfloat16" : "float32"; }

#endif
