/* Where a padded position reads from: lt_img_crop's rule for its padding modes, also compiled by the
 * CUDA module (image_plan.h's kernel), hence a static inline qualified for both sides. */
#ifndef LT_DATA_PAD_INDEX_H
#define LT_DATA_PAD_INDEX_H

#include "image_ops.h"

#ifdef __CUDACC__
#define LT_PLAN_FN static inline __host__ __device__
#else
#define LT_PLAN_FN static inline
#endif

/* Where position i of a line of n reads from through a padding mode, or -1 for the constant fill. */
LT_PLAN_FN int lt_pad_source_index(int i, int n, int mode) {
    if (i >= 0 && i < n) return i;
    if (mode == LT_PAD_EDGE) return i < 0 ? 0 : n - 1;
    if (mode == LT_PAD_REFLECT) {  /* ... 2 1 | 0 1 2 3 | 2 1 ...: period 2(n-1) */
        if (n == 1) return 0;
        int period = 2 * (n - 1), k = i % period;
        if (k < 0) k += period;
        return k < n ? k : period - k;
    }
    if (mode == LT_PAD_SYMMETRIC) {  /* ... 1 0 | 0 1 2 3 | 3 2 ...: period 2n */
        int period = 2 * n, k = i % period;
        if (k < 0) k += period;
        return k < n ? k : period - 1 - k;
    }
    return -1;
}

#endif
