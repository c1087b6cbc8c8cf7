/* Walks up to three tensors of one shape row by row: dimensions that are contiguous in every tensor
 * are merged, so contiguous tensors become a single long row that the compiler can vectorise. */
#ifndef LT_ITER_H
#define LT_ITER_H

#include "tensor.h"

#define LT_ITER_MAX 3

typedef struct lt_iter {
    int ntensors;
    int ndim;                           /* after merging; the last dimension is the row */
    int64_t size[LT_MAX_DIMS];
    int64_t stride[LT_ITER_MAX][LT_MAX_DIMS];
    float *base[LT_ITER_MAX];
    int64_t rows;                       /* product of all sizes but the last */
    int64_t row_len;
} lt_iter;

/* All tensors must have the shape of ts[0]. */
void lt_iter_init(lt_iter *it, int ntensors, const lt_tensor *const *ts);
/* Pointers to the start of row r in each tensor. */
void lt_iter_row(const lt_iter *it, int64_t r, float **ptrs);

#endif
