#include "iter.h"

void lt_iter_init(lt_iter *it, int ntensors, const lt_tensor *const *ts) {
    const lt_tensor *shape = ts[0];
    it->ntensors = ntensors;
    /* Drop size-1 dimensions, then merge neighbours that are contiguous in every tensor. */
    int n = 0;
    for (int d = 0; d < shape->ndim; d++) {
        if (shape->size[d] == 1) continue;
        it->size[n] = shape->size[d];
        for (int k = 0; k < ntensors; k++) it->stride[k][n] = ts[k]->stride[d];
        n++;
    }
    if (n == 0) {
        it->size[0] = 1;
        for (int k = 0; k < ntensors; k++) it->stride[k][0] = 1;
        n = 1;
    }
    int m = 0;
    for (int d = 1; d < n; d++) {
        bool mergeable = true;
        for (int k = 0; k < ntensors; k++)
            if (it->stride[k][m] != it->stride[k][d] * it->size[d]) mergeable = false;
        if (mergeable) {
            it->size[m] *= it->size[d];
            for (int k = 0; k < ntensors; k++) it->stride[k][m] = it->stride[k][d];
        } else {
            m++;
            it->size[m] = it->size[d];
            for (int k = 0; k < ntensors; k++) it->stride[k][m] = it->stride[k][d];
        }
    }
    it->ndim = m + 1;
    it->row_len = it->size[m];
    it->rows = 1;
    for (int d = 0; d < m; d++) it->rows *= it->size[d];
    for (int d = 0; d < shape->ndim; d++)
        if (shape->size[d] == 0) { it->rows = 0; it->row_len = 0; }
    for (int k = 0; k < ntensors; k++) it->base[k] = it->rows ? lt_data(ts[k]) : NULL;
}

void lt_iter_row(const lt_iter *it, int64_t r, float **ptrs) {
    for (int k = 0; k < it->ntensors; k++) ptrs[k] = it->base[k];
    for (int d = it->ndim - 2; d >= 0; d--) {
        int64_t i = r % it->size[d];
        r /= it->size[d];
        for (int k = 0; k < it->ntensors; k++) ptrs[k] += i * it->stride[k][d];
    }
}
