/* The CPU softmax over contiguous tensors, for the softmax layer and the cross entropy (loss.c). */
#ifndef LT_CPU_SOFTMAX_H
#define LT_CPU_SOFTMAX_H

#include "../nn/ops.h"

void lt_softmax_forward_cpu(float *out, const float *in, lt_softmax_shape s);

#endif
