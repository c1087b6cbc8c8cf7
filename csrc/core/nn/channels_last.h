/* Mixed precision's layout: channels-last activations.
 *
 * A convolution that an implementation here computes (oneDNN's on the host, in bf16 and, on the CPUs
 * where it was checked, in float32: dnnl/conv2d_impl.c; cuDNN's on a GPU, in bf16:
 * csrc/cuda/conv2d_channels_last.cu) runs on channels-last (N, H, W, C) tensors: both libraries'
 * convolutions want that layout (their fast kernels block channels), and per-pixel rows of C channels
 * suit the BatchNorm, pooling and activation kernels (csrc/core/cpu/ files named _channels_last) that
 * sit between convolutions. So such a convolution writes a dense channels-last output (bf16 or
 * float32), and BatchNorm, the fused BatchNorm+ReLU+pool, max-pooling and the activations keep a
 * channels-last input's layout (writing bf16 when their handle asks for bf16, float32 otherwise);
 * gradients take their tensor's layout and type. The first layer whose input is not
 * channels-last (the network's head after Flatten, a float32 layer) converts.
 *
 * These functions are the channels-last branches of the fronts in this folder: each front calls its
 * branch when the input or the handle asks for it. */
#ifndef LT_NN_CHANNELS_LAST_H
#define LT_NN_CHANNELS_LAST_H

#include "ops.h"

/* The element type a handle's layer writes: bf16 or fp16 when it asks for them, float32 otherwise. */
static inline lt_dtype lt_channels_last_dtype(const lt_kernel_handle *h) {
    return h ? lt_precision_dtype(h->precision) : LT_FLOAT32;
}

/* An activation's description for an implementation. */
lt_act_desc lt_act_desc_of(const lt_tensor *t);

/* Convolution: true when a channels-last implementation on device d computes shape s at h's precision. */
bool lt_conv2d_goes_channels_last(const lt_kernel_handle *h, const lt_conv2d_shape *s, lt_device d);
int lt_conv2d_channels_last_forward(const lt_conv2d_args *a, lt_conv2d_shape s, lt_error *err);
int lt_conv2d_channels_last_backward(const lt_conv2d_args *a, lt_conv2d_shape s, lt_error *err);

/* BatchNorm and the fused BatchNorm+ReLU+pool: true for a channels-last input of either type, on the
 * host or on a GPU whose backend has the table (the planar kernels read each channel's planes as
 * contiguous runs). */
bool lt_bn_goes_channels_last(const lt_batchnorm_args *a);
int lt_batchnorm_channels_last_forward(const lt_batchnorm_args *a, lt_error *err);
int lt_batchnorm_channels_last_backward(const lt_batchnorm_args *a, lt_error *err);
int lt_bn_relu_pool_channels_last_forward(const lt_bn_relu_pool_args *a, lt_error *err);
int lt_bn_relu_pool_channels_last_backward(const lt_bn_relu_pool_args *a, lt_error *err);

/* Max pooling, likewise. */
bool lt_maxpool2d_goes_channels_last(const lt_pool2d_args *a);
int lt_maxpool2d_channels_last_forward(const lt_pool2d_args *a, int64_t ho, int64_t wo, lt_error *err);
int lt_maxpool2d_channels_last_backward(const lt_pool2d_args *a, int64_t ho, int64_t wo, lt_error *err);

#endif
