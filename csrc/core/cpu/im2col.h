/* im2col and its adjoint col2im for the CPU convolution (conv2d.c), on the calling thread. */
#ifndef LT_CPU_IM2COL_H
#define LT_CPU_IM2COL_H

#include "../nn/ops.h"

/* cols[K, nb*Ho*Wo] for images b0 .. b0+nb-1: row (c, i, j), element (b, oy, ox) is
 * input[b][c][oy*sh - ph + i][ox*sw - pw + j], zero outside the image. */
void lt_im2col_cpu(float *cols, const float *in, const lt_conv2d_shape *s, int64_t b0, int64_t nb);

/* The grad_input planes of images b0 .. b0+nb-1 (strides s->dx) = col2im(dcols). dcols is scratch: its
 * border columns may be zeroed on the way. */
void lt_col2im_cpu(float *dx, float *dcols, const lt_conv2d_shape *s, int64_t b0, int64_t nb);

#endif
