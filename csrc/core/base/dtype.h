/* Element types of tensor storage. Users see float32; bfloat16 holds activations and their gradients
 * between layers under mixed precision (see bf16.h); uint8 holds layers' own small records (which
 * element of a pooling window won). */
#ifndef LT_DTYPE_H
#define LT_DTYPE_H

#include <stddef.h>

typedef enum lt_dtype { LT_FLOAT32 = 0, LT_BFLOAT16 = 1, LT_UINT8 = 2 } lt_dtype;

static inline size_t lt_dtype_size(lt_dtype t) { return t == LT_BFLOAT16 ? 2 : t == LT_UINT8 ? 1 : 4; }
static inline const char *lt_dtype_name(lt_dtype t) {
    return t == LT_BFLOAT16 ? "bfloat16" : t == LT_UINT8 ? "uint8" : "float32";
}

#endif
