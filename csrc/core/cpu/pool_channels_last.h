/* Max-pooling over channels-last activations (float32 or bfloat16 rows, see rows.h). */
#ifndef LT_CPU_POOL_CHANNELS_LAST_H
#define LT_CPU_POOL_CHANNELS_LAST_H

#include <stdint.h>

#include "batchnorm_channels_last.h"

typedef struct lt_pool_shape {
    lt_channels_last_dims in;                   /* the input */
    int64_t out_h, out_w;
    int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;  /* kernel_h * kernel_w < 255 */
    bool relu;                    /* ReLU before the pooling: relu(max(x)) = max(relu(x)) */
} lt_pool_shape;

/* out = the maximum of each window (the first maximum; NaN wins, as PyTorch's); codes (one byte per
 * output element) the maximum's place in its window, row-major, or 255 where relu let nothing pass. */
void lt_cpu_maxpool_channels_last_forward(lt_rows out, uint8_t *codes, lt_rows input, lt_pool_shape s);
/* grad_input = 0 but at each window's maximum, which receives the window's gradient (summed where
 * windows overlap). */
void lt_cpu_maxpool_channels_last_backward(lt_rows grad_input, lt_rows grad_output, const uint8_t *codes, lt_pool_shape s);

#endif
