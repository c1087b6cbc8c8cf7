/* The weight gradient of a oneDNN convolution or inner product, in either of two ways:
 *
 * - as fast as may be: one primitive over the whole batch, made for the current thread count (oneDNN
 *   fixes a primitive's partition of the work when it is made; where it splits the batch between
 *   threads, their partial sums are added, so the result follows the thread count);
 * - the same bits at any thread count (lt_deterministic): the batch is cut into parts fixed by its
 *   size alone (parallel.h's rule), each part's gradient is computed by a primitive made for one
 *   thread, the parts run on the library's threads (each thread whole parts) and their gradients are
 *   added in part order. At one thread that is a few smaller calls in a row, not the two-thread
 *   primitive's team started from one thread (which cost 10-25x on a loaded machine).
 *
 * Rows are the batch: the first dimension of the source and of the output's gradient, dense, so a
 * part is a pointer offset into both. */
#ifndef LT_DNNL_WGRAD_H
#define LT_DNNL_WGRAD_H

#include "dnnl_common.h"

/* Makes the weight-gradient primitive descriptor for `rows` rows, with its diff weights described by
 * dw_md (NULL: format any). */
typedef int (*lt_dnnl_wgrad_pd_fn)(const void *ctx, int64_t rows, lt_dnnl_cmd dw_md, dnnl_primitive_desc_t *pd,
                                   lt_error *err);

typedef struct lt_dnnl_wgrad lt_dnnl_wgrad;

/* min_rows: the fewest rows a part gets when deterministic (more parts run on more threads; fewer and
 * larger ones waste less of each call). */
lt_dnnl_wgrad *lt_dnnl_wgrad_new(int64_t rows, int64_t min_rows, bool deterministic, lt_dnnl_wgrad_pd_fn make,
                                 const void *ctx, lt_error *err);
void lt_dnnl_wgrad_free(lt_dnnl_wgrad *w);

/* The layout of the gradient lt_dnnl_wgrad_run returns (reorder it into the caller's). */
lt_dnnl_cmd lt_dnnl_wgrad_md(const lt_dnnl_wgrad *w);

/* Computes the weight gradient (oneDNN's layout, *diff_w) and the bias gradient (out floats,
 * *diff_b) of src and diff_dst; the buffers are w's, valid until the next run. */
int lt_dnnl_wgrad_run(lt_dnnl_wgrad *w, const void *src, const void *diff_dst, const void **diff_w,
                      const float **diff_b, lt_error *err);

#endif
