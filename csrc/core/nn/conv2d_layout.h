/* What the two convolution fronts (conv2d.c and its channels-last branch, conv2d_channels_last.c)
 * share: the layout each writes its output in, the output's allocation, and the start of a backward
 * pass. Below both, so that the plain front, which calls the branch, is not called back. */
#ifndef LT_NN_CONV2D_LAYOUT_H
#define LT_NN_CONV2D_LAYOUT_H

#include "ops.h"

/* The plain front's batch-folded float32 (C, N, H, W), or the branch's channels-last (N, H, W, C) of
 * the pass's type. */
typedef struct lt_conv2d_layout {
    bool channels_last;
    lt_dtype dtype;  /* float32 in the batch-folded layout */
} lt_conv2d_layout;

/* The output resized to shape s in layout l. */
int lt_conv2d_resize_output(lt_tensor *out, const lt_conv2d_shape *s, lt_conv2d_layout l, lt_error *err);

/* The start of a backward pass whose arguments are checked: *go is grad_output as the forward pass
 * wrote the output (itself, or a copy into a->dy), grad_input (when asked for) is resized like the input
 * `in` the implementation reads, in its type, and zero where grad_output has no element. */
int lt_conv2d_backward_operands(const lt_conv2d_args *a, const lt_conv2d_shape *s, lt_conv2d_layout l,
                                const lt_tensor *in, const lt_tensor **go, lt_error *err);

#endif
