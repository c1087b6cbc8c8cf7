/* Walks up to three tensors of one shape row by row: dimensions that are contiguous in every tensor
 * are merged, so contiguous tensors become a single long row that the compiler can vectorise. Needs
 * only the tensor structs (tensor_storage.h), so that tensor.c can copy with it. */
#ifndef LT_ITER_H
#define LT_ITER_H

#include "../device/tensor_storage.h"

#define LT_ITER_MAX 3

typedef struct lt_iter {
    int ntensors;
    int ndim;                           /* after merging; the last dimension is the row */
    int64_t size[LT_MAX_DIMS];
    int64_t stride[LT_ITER_MAX][LT_MAX_DIMS];
    float *base[LT_ITER_MAX];
    int64_t rows;                       /* product of all sizes but the last; 0 for empty tensors */
    int64_t row_len;
} lt_iter;

/* All tensors must have the shape of ts[0]. */
void lt_iter_init(lt_iter *it, int ntensors, const lt_tensor *const *ts);
/* Pointers to the start of row r in each tensor. */
void lt_iter_row(const lt_iter *it, int64_t r, float **ptrs);

/* Processes n elements of (part of) one row: p[k] is tensor k's first element, st[k] its stride. */
typedef void (*lt_row_fn)(int64_t n, float *const *p, const int64_t *st, const void *args);
/* Calls fn over every row, long rows cut into chunks, on the compute threads when the tensors are
 * large enough. Each element is visited once; fn must not depend on the order. */
void lt_iter_run(const lt_iter *it, lt_row_fn fn, const void *args);

#endif
