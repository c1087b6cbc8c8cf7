#include "iter.h"

#include "../base/checked.h"
#include "../base/parallel.h"

void lt_iter_init(lt_iter *it, int ntensors, const lt_tensor *const *ts) {
    const lt_tensor *shape = ts[0];
    it->ntensors = ntensors;
    bool empty = false;
    for (int d = 0; d < shape->ndim; d++)
        if (shape->size[d] == 0) empty = true;
    /* Drop size-1 dimensions, then merge neighbours that are contiguous in every tensor. */
    int n = 0;
    for (int d = 0; d < shape->ndim && !empty; d++) {
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
        for (int k = 0; k < ntensors; k++) {
            int64_t span;
            if (!lt_mul_ok(it->stride[k][d], it->size[d], &span) || it->stride[k][m] != span) mergeable = false;
        }
        if (mergeable) {
            it->size[m] *= it->size[d];  /* at most numel */
            for (int k = 0; k < ntensors; k++) it->stride[k][m] = it->stride[k][d];
        } else {
            m++;
            it->size[m] = it->size[d];
            for (int k = 0; k < ntensors; k++) it->stride[k][m] = it->stride[k][d];
        }
    }
    it->ndim = m + 1;
    it->row_len = empty ? 0 : it->size[m];
    it->rows = 1;
    for (int d = 0; d < m; d++) it->rows *= it->size[d];
    if (empty) it->rows = 0;
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

#define ROW_CHUNK 16384

void lt_iter_run(const lt_iter *it, lt_row_fn fn, const void *args) {
    if (it->rows == 0 || it->row_len == 0) return;
    int64_t st[LT_ITER_MAX];
    for (int k = 0; k < it->ntensors; k++) st[k] = it->stride[k][it->ndim - 1];
    int64_t chunk = it->row_len > ROW_CHUNK ? ROW_CHUNK : it->row_len;
    int64_t per_row = (it->row_len + chunk - 1) / chunk;
    int64_t units = it->rows * per_row;
    int threads = lt_threads_for(it->rows * it->row_len, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t u = 0; u < units; u++) {
        int64_t r = u / per_row, start = (u % per_row) * chunk;
        int64_t len = it->row_len - start < chunk ? it->row_len - start : chunk;
        float *p[LT_ITER_MAX];
        lt_iter_row(it, r, p);
        for (int k = 0; k < it->ntensors; k++) p[k] += start * st[k];
        fn(len, p, st, args);
    }
}
