/* Joining tensors: cat along an existing dimension, stack along a new one. Both make a new contiguous
 * tensor. Dimensions are 0-based here; the bindings convert. */
#ifndef LT_TENSOR_JOIN_H
#define LT_TENSOR_JOIN_H

#include "tensor.h"

/* out = the n parts joined along dim; sizes must match except along dim, where a part may have size 0.
 * A 1-D part of size 0 is skipped whatever the others' shape (PyTorch's rule for torch.cat). */
int lt_cat(lt_tensor *out, int n, const lt_tensor *const *parts, int dim, lt_error *err);
/* out = the n parts (all of one shape) along a new dimension dim (0..ndim). */
int lt_stack(lt_tensor *out, int n, const lt_tensor *const *parts, int dim, lt_error *err);

#endif
