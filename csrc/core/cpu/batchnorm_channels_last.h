/* BatchNorm over channels-last activations (rows x C, float32 or bfloat16), with an activation fused
 * after it, and BatchNorm -> ReLU -> 2x2 max-pooling fused (the reference network's block tail). The
 * statistics are float32 (accumulated in float lanes, flushed to double), whatever the element type.
 *
 * Determinism: the per-channel sums split the rows into LT_BN_PARTS fixed parts (a function of the
 * row count alone), each summed by one thread, and the parts are added in order; so the results are
 * the same bits at any thread count. */
#ifndef LT_CPU_BATCHNORM_CHANNELS_LAST_H
#define LT_CPU_BATCHNORM_CHANNELS_LAST_H

#include <stdbool.h>
#include <stdint.h>

#include "../nn/ops.h"
#include "rows.h"

#define LT_BN_PARTS 64

typedef struct lt_channels_last_dims {
    int64_t n, h, w, c;
} lt_channels_last_dims;

/* Doubles of scratch a forward or backward pass needs for C channels. */
static inline int64_t lt_cpu_bn_channels_last_scratch_size(int64_t c) { return 2 * (int64_t)LT_BN_PARTS * c + 4 * c; }

typedef struct lt_cpu_bn_channels_last_forward_args {
    lt_rows out, input;
    lt_channels_last_dims shape;                      /* of the input */
    const float *weight, *bias;         /* C each, or NULL (1 and 0) */
    float *running_mean, *running_var;  /* C each, or NULL */
    float *save_mean, *save_invstd;     /* C each: what the backward pass needs */
    double *scratch;                    /* lt_cpu_bn_channels_last_scratch_size(C) */
    lt_batchnorm_params p;
    lt_bn_act act;
} lt_cpu_bn_channels_last_forward_args;

typedef struct lt_cpu_bn_channels_last_backward_args {
    lt_rows grad_input;                 /* data NULL: not wanted */
    lt_rows grad_output, input;
    lt_channels_last_dims shape;
    const float *weight, *bias;
    const float *save_mean, *save_invstd;
    float *grad_weight, *grad_bias;     /* accumulated (+=), or NULL */
    double *scratch;
    bool training;
    lt_bn_act act;
} lt_cpu_bn_channels_last_backward_args;

/* out = act(BatchNorm(input)) */
void lt_cpu_bn_channels_last_forward(const lt_cpu_bn_channels_last_forward_args *a);
void lt_cpu_bn_channels_last_backward(const lt_cpu_bn_channels_last_backward_args *a);

/* out (N, H/2, W/2, C) = MaxPool2d(2)(ReLU(BatchNorm(input))); codes (one byte per output element)
 * record which element of its window passed (0..3, the first maximum), or 255 when none did.
 * In the backward pass grad_output and codes are (N, H/2, W/2, C) and act is ignored. */
void lt_cpu_bn_relu_pool_channels_last_forward(const lt_cpu_bn_channels_last_forward_args *a, uint8_t *codes);
void lt_cpu_bn_relu_pool_channels_last_backward(const lt_cpu_bn_channels_last_backward_args *a, const uint8_t *codes);

#endif
