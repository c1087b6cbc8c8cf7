/* tensor_math.c's functions for tensors on a device: the same arguments, prepared by tensor_math.c
 * (inputs broadcast to the output's shape, an overlapping input copied, devices checked), handed to
 * the device's backend (backend_api.h's binary, scalar, unary, addcmul, reduce). Nothing here reads
 * device memory or waits for the device. */
#ifndef LT_TENSOR_MATH_DEVICE_H
#define LT_TENSOR_MATH_DEVICE_H

#include "tensor.h"

/* Elementwise, out and the inputs (already broadcast to out's shape; b may be NULL) on out's device. */
typedef enum { LT_DEVICE_BINARY, LT_DEVICE_UNARY, LT_DEVICE_ADDCMUL } lt_device_kind;
int lt_device_elementwise(lt_device_kind kind, lt_tensor *out, const lt_tensor *a, const lt_tensor *b, int op,
                          float alpha, float p1, float p2, lt_error *err);
/* out = a op value (value op a when reversed), a broadcast to out's shape. */
int lt_device_scalar(lt_tensor *out, const lt_tensor *a, float value, int op, bool reversed, lt_error *err);
/* values (and indices, when not NULL) = the reduction of in over dimension dim, or over all of it when
 * dim is -1; the outputs are allocated already (on in's device) and n, the length reduced, is >= 1. */
int lt_device_reduce(lt_tensor *values, lt_tensor *indices, const lt_tensor *in, int dim, int op, bool unbiased,
                     double p, lt_error *err);

#endif
