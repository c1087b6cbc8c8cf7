/* Mixed precision's convolution played on the host, for the backends that stand in for a GPU
 * (fake_mixed.c behind the fake device's pointers, cuda_emu/emu_ops.cc on plain host memory): cuDNN's bf16
 * and fp16 convolutions computed with the host's float32 kernel (lt_conv2d_cpu): input and weight rounded
 * to the layer's 16-bit type (ctx->precision), float32 sums, the output rounded before and after the
 * bias; the weight's gradient rounded before it is added, as the CUDA entry's goes through a 16-bit
 * buffer; the bias gradient summed in double. The entries of ops.h's conv2d.channels_last table, on host
 * pointers. */
#ifndef LT_HOST_MIXED_CONV_H
#define LT_HOST_MIXED_CONV_H

#include "../core/nn/ops.h"

int host_mixed_conv_forward(lt_kernel_ctx *c, uint16_t *out, const void *in, const float *weight, const float *bias,
                            lt_conv2d_shape s, lt_act_desc d);
int host_mixed_conv_backward(lt_kernel_ctx *c, void *dinp, float *dweight, float *dbias, const uint16_t *dout,
                             const void *in, const float *weight, lt_conv2d_shape s, lt_act_desc d);

#endif
