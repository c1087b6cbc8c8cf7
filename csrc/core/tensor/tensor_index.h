/* Indexing by tensors of indices and selection by masks: what an autograd needs for the gradients of
 * lookups (gather/scatter_add and index_select/index_add are each other's backward passes). Indices are float32 tensors holding 1-based integers, as class targets are in this library;
 * an index that is not an integer or out of range is an error naming it and the size. Dimensions are
 * 0-based here; the bindings convert. The accumulating functions (scatter_add, index_add) add in the
 * row-major order of the index, on one thread: their sums do not depend on the thread count. */
#ifndef LT_TENSOR_INDEX_H
#define LT_TENSOR_INDEX_H

#include "tensor.h"

/* out[i][j][k] = in[i][index[i][j][k]][k] for dim 1 (torch.gather): out has index's shape. */
int lt_gather(lt_tensor *out, const lt_tensor *in, int dim, const lt_tensor *index, lt_error *err);
/* self[i][index[i][j][k]][k] += src[i][j][k] for dim 1, in place (torch.Tensor.scatter_add_). */
int lt_scatter_add(lt_tensor *self, int dim, const lt_tensor *index, const lt_tensor *src, lt_error *err);
/* out = in with dimension dim picked by the 1-D index (torch.index_select). */
int lt_index_select(lt_tensor *out, const lt_tensor *in, int dim, const lt_tensor *index, lt_error *err);
/* self.select(dim, index[j]) += src.select(dim, j) for each j, in place (torch.Tensor.index_add_). */
int lt_index_add(lt_tensor *self, int dim, const lt_tensor *index, const lt_tensor *src, lt_error *err);

/* out = a where cond != 0, b elsewhere (a new tensor of the three broadcast together). a or b may be
 * NULL: then the number a_value or b_value stands for it. */
int lt_where(lt_tensor *out, const lt_tensor *cond, const lt_tensor *a, float a_value, const lt_tensor *b,
             float b_value, lt_error *err);
/* out = in with value where mask != 0 (a new tensor of in's shape; mask broadcasts to it). */
int lt_masked_fill(lt_tensor *out, const lt_tensor *in, const lt_tensor *mask, float value, lt_error *err);

#endif
