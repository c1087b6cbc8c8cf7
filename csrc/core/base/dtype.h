/* Element types of tensor storage. Users see float32; bfloat16 and float16 hold activations and their
 * gradients between layers under mixed precision (bf16.h, fp16.h); uint8 holds layers' own small
 * records (which element of a pooling window won). */
#ifndef LT_DTYPE_H
#define LT_DTYPE_H

#include <stddef.h>

typedef enum lt_dtype { LT_FLOAT32 = 0, LT_BFLOAT16 = 1, LT_UINT8 = 2, LT_FLOAT16 = 3 } lt_dtype;

static inline size_t lt_dtype_size(lt_dtype t) {
    return t == LT_BFLOAT16 || t == LT_FLOAT16 ? 2 : t == LT_UINT8 ? 1 : 4;
}
static inline const char *lt_dtype_name(lt_dtype t) {
    return t == LT_BFLOAT16 ? "bfloat16" : t == LT_FLOAT16 ? "float16" : t == LT_UINT8 ? "uint8" : "float32";
}
/* The 16-bit floats, which kernels read and write as float32 values. */
static inline int lt_dtype_is_half(lt_dtype t) { return t == LT_BFLOAT16 || t == LT_FLOAT16; }

#endif
