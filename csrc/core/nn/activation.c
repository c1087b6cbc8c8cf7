/* Elementwise layers: (leaky) ReLU and dropout. Outputs take their input's layout; dense tensors are
 * processed as one flat run. */
#include "../iter.h"
#include "../parallel.h"
#include "../rng.h"
#include "../simd.h"
#include "nn.h"

LT_SIMD_CLONES
static void leaky_relu_run(float *y, int64_t sy, const float *x, int64_t sx, int64_t n, float slope) {
    if (sy == 1 && sx == 1)
        for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : slope * x[i];
    else
        for (int64_t i = 0; i < n; i++) y[i * sy] = x[i * sx] > 0 ? x[i * sx] : slope * x[i * sx];
}

LT_SIMD_CLONES
static void leaky_relu_grad_run(float *d, int64_t sd, const float *g, int64_t sg, const float *r, int64_t sr,
                                int64_t n, float slope) {
    if (sd == 1 && sg == 1 && sr == 1)
        for (int64_t i = 0; i < n; i++) d[i] = r[i] > 0 ? g[i] : slope * g[i];
    else
        for (int64_t i = 0; i < n; i++) d[i * sd] = r[i * sr] > 0 ? g[i * sg] : slope * g[i * sg];
}

LT_SIMD_CLONES
static void mul_run(float *y, int64_t sy, const float *a, int64_t sa, const float *b, int64_t sb, int64_t n) {
    if (sy == 1 && sa == 1 && sb == 1)
        for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
    else
        for (int64_t i = 0; i < n; i++) y[i * sy] = a[i * sa] * b[i * sb];
}

#define RUN 16384  /* elements per parallel work item */

/* Calls the run function over the rows of an iterator, split into pieces of RUN for the threads.
 * kind: 0 leaky relu (2 tensors), 1 leaky relu grad (3 tensors), 2 multiply (3 tensors). */
static void run_rows(const lt_iter *it, int kind, float slope) {
    if (it->rows == 0) return;
    int64_t per_row = (it->row_len + RUN - 1) / RUN, units = it->rows * per_row, st[3] = {0, 0, 0};
    for (int k = 0; k < it->ntensors; k++) st[k] = it->stride[k][it->ndim - 1];
    int threads = lt_threads_for(it->rows * it->row_len, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t u = 0; u < units; u++) {
        float *p[3];
        int64_t start = (u % per_row) * RUN, n = it->row_len - start < RUN ? it->row_len - start : RUN;
        lt_iter_row(it, u / per_row, p);
        for (int k = 0; k < it->ntensors; k++) p[k] += start * st[k];
        if (kind == 0) leaky_relu_run(p[0], st[0], p[1], st[1], n, slope);
        else if (kind == 1) leaky_relu_grad_run(p[0], st[0], p[1], st[1], p[2], st[2], n, slope);
        else mul_run(p[0], st[0], p[1], st[1], p[2], st[2], n);
    }
}

static int check_same_shape(const char *what, const lt_tensor *t, const lt_tensor *ref, lt_error *err) {
    char a[160], b[160];
    if (!lt_same_shape(t, ref))
        return lt_fail(err, "%s %s must have the shape %s", what, lt_shape_str(t, a, sizeof a), lt_shape_str(ref, b, sizeof b));
    return 0;
}

int lt_leaky_relu_forward(lt_tensor *out, const lt_tensor *input, float slope, lt_error *err) {
    if (out != input && lt_resize_like(out, input, err)) return -1;
    const lt_tensor *ts[2] = {out, input};
    lt_iter it;
    lt_iter_init(&it, 2, ts);
    run_rows(&it, 0, slope);
    return 0;
}

int lt_leaky_relu_backward(lt_tensor *grad_input, const lt_tensor *grad_output, const lt_tensor *output,
                           float slope, lt_error *err) {
    if (check_same_shape("grad_output", grad_output, output, err)) return -1;
    if (grad_input != grad_output && lt_resize_like(grad_input, output, err)) return -1;
    const lt_tensor *ts[3] = {grad_input, grad_output, output};
    lt_iter it;
    lt_iter_init(&it, 3, ts);
    run_rows(&it, 1, slope);
    return 0;
}

int lt_dropout_forward(lt_tensor *out, lt_tensor *mask, const lt_tensor *input, double p, lt_error *err) {
    if (!(p >= 0 && p <= 1)) return lt_fail(err, "dropout probability must be between 0 and 1, got %g", p);
    if (lt_resize_like(mask, input, err) || lt_resize_like(out, input, err)) return -1;
    int64_t n = lt_numel(mask);
    if (n == 0) return 0;
    /* mask is dense: fill its storage in memory order from the global generator */
    float *m = lt_data(mask), keep = p < 1 ? (float)(1.0 / (1.0 - p)) : 0.0f;
    lt_rng *rng = lt_rng_global();
    for (int64_t i = 0; i < n; i++) m[i] = lt_rng_uniform(rng) >= p ? keep : 0.0f;
    const lt_tensor *ts[3] = {out, input, mask};
    lt_iter it;
    lt_iter_init(&it, 3, ts);
    run_rows(&it, 2, 0);
    return 0;
}

int lt_dropout_backward(lt_tensor *grad_input, const lt_tensor *grad_output, const lt_tensor *mask, lt_error *err) {
    if (check_same_shape("grad_output", grad_output, mask, err)) return -1;
    if (lt_resize_like(grad_input, mask, err)) return -1;
    const lt_tensor *ts[3] = {grad_input, grad_output, mask};
    lt_iter it;
    lt_iter_init(&it, 3, ts);
    run_rows(&it, 2, 0);
    return 0;
}
