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

#endif
