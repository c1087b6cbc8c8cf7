/* Convolution through oneDNN, for mixed precision (bf16 compute, float32 accumulation and weights) and
 * float32. Activations are channels-last (nhwc) in float32 or bf16; the first layer's input may be a
 * planar float32 image batch. Weights and their gradients are the layer's float32 (Cout, Cin, kh, kw)
 * tensors: they are converted (reordered) into oneDNN's blocked layout once per pass, and the weight
 * gradient is reordered back and added into the layer's gradient. The primitives take nhwc
 * activations in the compute type; an input of another layout or type (a planar image batch, the
 * batch-folded output of a float32 layer) is converted first, and its gradient converted back.
 *
 * A layer owns one lt_dnnl_conv: the primitives and buffers made for the shapes it has seen (a few,
 * most recently used first), so that a training step creates and allocates nothing once warm. */
#ifndef LT_DNNL_CONV_H
#define LT_DNNL_CONV_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/dtype.h"
#include "../base/error.h"

typedef struct lt_dnnl_conv lt_dnnl_conv;

typedef struct lt_dnnl_conv_shape {
    int64_t n, in_c, in_h, in_w, out_c, out_h, out_w;
    int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
} lt_dnnl_conv_shape;

typedef struct lt_dnnl_conv_types {
    lt_dtype compute;          /* LT_BFLOAT16 (float32 accumulation) or LT_FLOAT32 */
    lt_dtype src, dst;         /* of the input and the output (the gradients have the same types) */
    int64_t src_strides[4];    /* of the input (and its gradient), in elements, dimensions n, c, h, w */
    bool deterministic;        /* weight gradients the same at any thread count (see conv.c) */
} lt_dnnl_conv_types;

lt_dnnl_conv *lt_dnnl_conv_new(lt_error *err);
void lt_dnnl_conv_free(lt_dnnl_conv *c);

/* out (dense nhwc, types.dst) = conv(input, weight) + bias (Cout, or NULL) */
int lt_dnnl_conv_forward(lt_dnnl_conv *c, void *out, const void *input, const float *weight, const float *bias,
                         lt_dnnl_conv_shape s, lt_dnnl_conv_types t, lt_error *err);
/* grad_input (like the input; NULL to skip) = dL/dx; grad_weight += dL/dW; grad_bias += dL/db (NULL to
 * skip), from grad_output (nhwc, types.dst). */
int lt_dnnl_conv_backward(lt_dnnl_conv *c, void *grad_input, float *grad_weight, float *grad_bias,
                          const void *grad_output, const void *input, const float *weight, lt_dnnl_conv_shape s,
                          lt_dnnl_conv_types t, lt_error *err);

#endif
