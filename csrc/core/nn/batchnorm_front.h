/* Internal to the BatchNorm fronts (batchnorm.c, bn_relu_pool.c): the checks of the per-channel
 * vectors both make. */
#ifndef LT_NN_BATCHNORM_FRONT_H
#define LT_NN_BATCHNORM_FRONT_H

#include "ops.h"

/* weight, bias and running statistics have C elements. */
int lt_bn_check_vectors(const lt_batchnorm_args *a, int64_t C, lt_error *err);
/* The vectors' checks; eval mode has running statistics; training has more than one value per channel. */
int lt_bn_check_forward(const lt_batchnorm_args *a, int64_t C, lt_error *err);
/* weight, bias, their gradients and the saved statistics have C elements. */
int lt_bn_check_backward(const lt_batchnorm_args *a, int64_t C, lt_error *err);
/* The vectors' data for an implementation. */
lt_bn_vectors lt_bn_vectors_of(const lt_batchnorm_args *a);
/* Every tensor an implementation touches, for lt_kernel_pick's device check: x and g are the input and
 * grad_output as the front prepared them (g NULL in a forward pass). Fills o, returns the count. */
#define LT_BN_OPERANDS 12
int lt_bn_operands(const lt_batchnorm_args *a, const lt_tensor *x, const lt_tensor *g, lt_named o[LT_BN_OPERANDS]);

#endif
