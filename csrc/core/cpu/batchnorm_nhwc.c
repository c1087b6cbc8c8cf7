/* BatchNorm over channels-last rows (see batchnorm_nhwc.h). Each pass reads a row's channels in chunks
 * (rows.h) and runs a vectorised chunk function; the statistics passes sum LT_BN_PARTS fixed parts of
 * the rows in parallel and add the parts in order. */
#include "batchnorm_nhwc.h"

#include <math.h>
#include <string.h>

#include "../parallel.h"
#include "../simd.h"
#include "gelu_math.h"

/* Float partial sums are flushed into double every FLUSH rows, so they never sum many values. */
#define FLUSH 64


/* ---- chunk functions: n channels of one row ---- */

LT_SIMD_CLONES
static void moments_chunk(float *restrict s, float *restrict q, const float *restrict x,
                          const float *restrict shift, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float d = x[i] - shift[i];
        s[i] += d;
        q[i] += d * d;
    }
}

static inline float activate(float z, lt_bn_act act) {
    switch (act) {
    case LT_BN_ACT_RELU: return z < 0 ? 0.0f : z;  /* NaN passes, as torch.relu */
    case LT_BN_ACT_GELU: return lt_gelu(z);
    default: return z;
    }
}

static inline float activation_grad(float z, float dy, lt_bn_act act) {
    switch (act) {
    case LT_BN_ACT_RELU: return z > 0 ? dy : 0.0f;
    case LT_BN_ACT_GELU: return dy * lt_gelu_grad(z);
    default: return dy;
    }
}

/* The activation is a constant at each call site below, so the switch folds away in each clone. */
static inline __attribute__((always_inline)) void apply_impl(float *restrict y, const float *restrict x,
                                                              const float *restrict scale,
                                                              const float *restrict shift, int64_t n,
                                                              lt_bn_act act) {
    for (int64_t i = 0; i < n; i++) y[i] = activate(fmaf(x[i], scale[i], shift[i]), act);
}

LT_SIMD_CLONES static void apply_none(float *y, const float *x, const float *sc, const float *sh, int64_t n) {
    apply_impl(y, x, sc, sh, n, LT_BN_ACT_NONE);
}
LT_SIMD_CLONES static void apply_relu(float *y, const float *x, const float *sc, const float *sh, int64_t n) {
    apply_impl(y, x, sc, sh, n, LT_BN_ACT_RELU);
}
LT_SIMD_CLONES static void apply_gelu(float *y, const float *x, const float *sc, const float *sh, int64_t n) {
    apply_impl(y, x, sc, sh, n, LT_BN_ACT_GELU);
}

typedef void (*apply_fn)(float *, const float *, const float *, const float *, int64_t);
static apply_fn apply_for(lt_bn_act act) {
    return act == LT_BN_ACT_RELU ? apply_relu : act == LT_BN_ACT_GELU ? apply_gelu : apply_none;
}

/* g = dy * act'(x * scale + shift) */
static inline __attribute__((always_inline)) void grad_impl(float *restrict g, const float *restrict dy,
                                                             const float *restrict x, const float *restrict scale,
                                                             const float *restrict shift, int64_t n,
                                                             lt_bn_act act) {
    for (int64_t i = 0; i < n; i++) g[i] = activation_grad(fmaf(x[i], scale[i], shift[i]), dy[i], act);
}

LT_SIMD_CLONES static void grad_relu(float *g, const float *dy, const float *x, const float *sc, const float *sh,
                                     int64_t n) {
    grad_impl(g, dy, x, sc, sh, n, LT_BN_ACT_RELU);
}
LT_SIMD_CLONES static void grad_gelu(float *g, const float *dy, const float *x, const float *sc, const float *sh,
                                     int64_t n) {
    grad_impl(g, dy, x, sc, sh, n, LT_BN_ACT_GELU);
}

/* s += g, q += g * (x - mean) */
LT_SIMD_CLONES
static void grad_moments_chunk(float *restrict s, float *restrict q, const float *restrict g,
                               const float *restrict x, const float *restrict mean, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        s[i] += g[i];
        q[i] += g[i] * (x[i] - mean[i]);
    }
}

/* dx = ka * g + kb * (x - mean) + kc */
LT_SIMD_CLONES
static void grad_input_chunk(float *restrict dx, const float *restrict g, const float *restrict x,
                             const float *restrict mean, const float *restrict ka, const float *restrict kb,
                             const float *restrict kc, int64_t n) {
    for (int64_t i = 0; i < n; i++) dx[i] = ka[i] * g[i] + kb[i] * (x[i] - mean[i]) + kc[i];
}

/* ---- per-channel tables carved from the scratch ---- */

typedef struct channel_tables {
    double *sum, *sumsq;                 /* LT_BN_PARTS x C each: the parts' sums */
    float *first;                        /* each channel's first value: the sums are of x - first */
    float *mean, *scale, *shift;         /* the affine map y = x * scale + shift */
    float *ka, *kb, *kc;                 /* the input gradient's coefficients */
} channel_tables;

static channel_tables tables_of(double *scratch, int64_t c) {
    channel_tables t;
    t.sum = scratch;
    t.sumsq = scratch + (int64_t)LT_BN_PARTS * c;
    float *f = (float *)(scratch + 2 * (int64_t)LT_BN_PARTS * c);
    t.first = f;
    t.mean = f + c;
    t.scale = f + 2 * c;
    t.shift = f + 3 * c;
    t.ka = f + 4 * c;
    t.kb = f + 5 * c;
    t.kc = f + 6 * c;
    return t;
}

static int64_t parts_for(int64_t rows) { return rows < LT_BN_PARTS ? rows : LT_BN_PARTS; }

/* ---- the statistics ---- */

/* Row sums of x - shift and its square for part p, into sum[p], sumsq[p] (C each). */
static void part_moments(lt_rows x, int64_t r0, int64_t r1, int64_t C, const float *shift, double *sum,
                         double *sumsq) {
    float tmp[LT_ROW_CHUNK];
    for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
        int64_t n = C - c0 < LT_ROW_CHUNK ? C - c0 : LT_ROW_CHUNK;
        float s[LT_ROW_CHUNK] = {0}, q[LT_ROW_CHUNK] = {0};
        double S[LT_ROW_CHUNK] = {0}, Q[LT_ROW_CHUNK] = {0};
        for (int64_t r = r0; r < r1; r++) {
            moments_chunk(s, q, lt_rows_load(x, r, c0, n, tmp), shift + c0, n);
            if ((r - r0) % FLUSH == FLUSH - 1 || r == r1 - 1)
                for (int64_t i = 0; i < n; i++) {
                    S[i] += s[i];
                    Q[i] += q[i];
                    s[i] = q[i] = 0;
                }
        }
        memcpy(sum + c0, S, (size_t)n * sizeof *S);
        memcpy(sumsq + c0, Q, (size_t)n * sizeof *Q);
    }
}

/* mean, invstd and the running statistics of each channel, then scale and shift of its affine map
 * (computed as batchnorm.c computes them, so that both layouts give the same numbers). */
static void finish_statistics(const lt_bn_nhwc_forward_args *a, channel_tables t, int64_t rows) {
    int64_t C = a->shape.c, parts = parts_for(rows);
    for (int64_t c = 0; c < C; c++) {
        double mean, var;
        if (a->p.training) {
            double s = 0, q = 0;
            for (int64_t p = 0; p < parts; p++) {
                s += t.sum[p * C + c];
                q += t.sumsq[p * C + c];
            }
            double dmean = s / (double)rows;
            mean = t.first[c] + dmean;
            var = q / (double)rows - dmean * dmean;
            if (var < 0) var = 0;
            if (a->running_mean) {
                const lt_batchnorm_params *p = &a->p;
                double f = p->momentum >= 0 ? p->momentum
                                            : 1.0 / (double)(p->num_batches_tracked > 0 ? p->num_batches_tracked : 1);
                a->running_mean[c] = (float)((1 - f) * a->running_mean[c] + f * mean);
                a->running_var[c] = (float)((1 - f) * a->running_var[c] + f * var * (double)rows / (double)(rows - 1));
            }
        } else {
            mean = a->running_mean[c];
            var = a->running_var[c];
        }
        float m = (float)mean, invstd = (float)(1.0 / sqrt(var + a->p.eps));
        double scale = (a->weight ? a->weight[c] : 1.0) * (double)invstd;
        a->save_mean[c] = m;
        a->save_invstd[c] = invstd;
        t.mean[c] = m;
        t.scale[c] = (float)scale;
        t.shift[c] = (float)((a->bias ? a->bias[c] : 0.0) - (double)m * scale);
    }
}

static void batch_statistics(const lt_bn_nhwc_forward_args *a, channel_tables t, int64_t rows) {
    int64_t C = a->shape.c, parts = parts_for(rows);
    if (a->p.training) {
        float tmp[LT_ROW_CHUNK];
        for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
            int64_t n = C - c0 < LT_ROW_CHUNK ? C - c0 : LT_ROW_CHUNK;
            memcpy(t.first + c0, lt_rows_load(a->input, 0, c0, n, tmp), (size_t)n * sizeof(float));
        }
        int threads = lt_threads_for(rows * C, LT_PARALLEL_GRAIN);
        #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int64_t p = 0; p < parts; p++) {
            int64_t r0, r1;
            lt_split_range(rows, (int)parts, (int)p, &r0, &r1);
            part_moments(a->input, r0, r1, C, t.first, t.sum + p * C, t.sumsq + p * C);
        }
    }
    finish_statistics(a, t, rows);
}

/* ---- forward ---- */

void lt_bn_nhwc_forward(const lt_bn_nhwc_forward_args *a) {
    int64_t C = a->shape.c, rows = a->shape.n * a->shape.h * a->shape.w;
    if (rows == 0 || C == 0) return;
    channel_tables t = tables_of(a->scratch, C);
    batch_statistics(a, t, rows);
    apply_fn apply = apply_for(a->act);
    int threads = lt_threads_for(rows * C, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t r = 0; r < rows; r++) {
        float tin[LT_ROW_CHUNK], tout[LT_ROW_CHUNK];
        for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
            int64_t n = C - c0 < LT_ROW_CHUNK ? C - c0 : LT_ROW_CHUNK;
            float *y = lt_rows_target(a->out, r, c0, tout);
            apply(y, lt_rows_load(a->input, r, c0, n, tin), t.scale + c0, t.shift + c0, n);
            lt_rows_store(a->out, r, c0, y, n);
        }
    }
}

/* The window of a 2x2 max-pool: m = the first maximum of v[0..3] letting NaN through, code its index;
 * out = ReLU(m), and code 255 when nothing passed the ReLU (m <= 0 or NaN), as bn_relu_pool.c. */
LT_SIMD_CLONES
static void pool_chunk(float *restrict out, uint8_t *restrict code, const float *restrict x0,
                       const float *restrict x1, const float *restrict x2, const float *restrict x3,
                       const float *restrict scale, const float *restrict shift, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v0 = fmaf(x0[i], scale[i], shift[i]), v1 = fmaf(x1[i], scale[i], shift[i]);
        float v2 = fmaf(x2[i], scale[i], shift[i]), v3 = fmaf(x3[i], scale[i], shift[i]);
        float m = v0;
        int k = 0;
        if (m == m && (v1 > m || v1 != v1)) { m = v1; k = 1; }
        if (m == m && (v2 > m || v2 != v2)) { m = v2; k = 2; }
        if (m == m && (v3 > m || v3 != v3)) { m = v3; k = 3; }
        out[i] = m < 0 ? 0.0f : m;
        code[i] = m > 0 ? (uint8_t)k : 255;
    }
}

void lt_bn_relu_pool_nhwc_forward(const lt_bn_nhwc_forward_args *a, uint8_t *codes) {
    lt_nhwc s = a->shape;
    int64_t C = s.c, rows = s.n * s.h * s.w, ho = s.h / 2, wo = s.w / 2;
    if (rows == 0 || C == 0) return;
    channel_tables t = tables_of(a->scratch, C);
    batch_statistics(a, t, rows);
    int64_t out_rows = s.n * ho * wo;
    int threads = lt_threads_for(rows * C, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t o = 0; o < out_rows; o++) {
        int64_t b = o / (ho * wo), oy = o / wo % ho, ox = o % wo;
        int64_t r = (b * s.h + 2 * oy) * s.w + 2 * ox;  /* the window's top-left input row */
        float t0[LT_ROW_CHUNK], t1[LT_ROW_CHUNK], t2[LT_ROW_CHUNK], t3[LT_ROW_CHUNK], tout[LT_ROW_CHUNK];
        for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
            int64_t n = C - c0 < LT_ROW_CHUNK ? C - c0 : LT_ROW_CHUNK;
            float *y = lt_rows_target(a->out, o, c0, tout);
            pool_chunk(y, codes + o * C + c0, lt_rows_load(a->input, r, c0, n, t0),
                       lt_rows_load(a->input, r + 1, c0, n, t1), lt_rows_load(a->input, r + s.w, c0, n, t2),
                       lt_rows_load(a->input, r + s.w + 1, c0, n, t3), t.scale + c0, t.shift + c0, n);
            lt_rows_store(a->out, o, c0, y, n);
        }
    }
}

/* ---- backward ---- */

/* g = dy where code == k, else 0 */
LT_SIMD_CLONES
static void unpool_chunk(float *restrict g, const float *restrict dy, const uint8_t *restrict code, int k,
                         int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = code[i] == k ? dy[i] : 0.0f;
}

/* The gradient that reaches BatchNorm's output for n channels of input row r: grad_output through the
 * activation. */
static const float *grad_at(const lt_bn_nhwc_backward_args *a, channel_tables t, int64_t r, int64_t c0, int64_t n,
                            const float *x, float *tmp, float *g) {
    const float *dy = lt_rows_load(a->grad_output, r, c0, n, tmp);
    switch (a->act) {
    case LT_BN_ACT_RELU: grad_relu(g, dy, x, t.scale + c0, t.shift + c0, n); return g;
    case LT_BN_ACT_GELU: grad_gelu(g, dy, x, t.scale + c0, t.shift + c0, n); return g;
    default: return dy;
    }
}

/* The forward pass's affine map, recomputed from the saved floats. */
static void affine_tables(const lt_bn_nhwc_backward_args *a, channel_tables t) {
    for (int64_t c = 0; c < a->shape.c; c++) {
        double scale = (a->weight ? a->weight[c] : 1.0) * (double)a->save_invstd[c];
        t.mean[c] = a->save_mean[c];
        t.scale[c] = (float)scale;
        t.shift[c] = (float)((a->bias ? a->bias[c] : 0.0) - (double)a->save_mean[c] * scale);
    }
}

/* Adds the float lanes into the double sums and clears them. */
static void flush(double *S, double *Q, float *s, float *q, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        S[i] += s[i];
        Q[i] += q[i];
        s[i] = q[i] = 0;
    }
}

/* From the parts' sum(g) and sum(g * (x - mean)): the parameter gradients and the coefficients of
 * dx = ka * g + kb * (x - mean) + kc, per channel. */
static void finish_coefficients(const lt_bn_nhwc_backward_args *a, channel_tables t, int64_t parts, int64_t rows) {
    int64_t C = a->shape.c;
    for (int64_t c = 0; c < C; c++) {
        double s = 0, q = 0;
        for (int64_t p = 0; p < parts; p++) {
            s += t.sum[p * C + c];
            q += t.sumsq[p * C + c];
        }
        float invstd = a->save_invstd[c];
        if (a->grad_weight) a->grad_weight[c] += (float)(q * invstd);
        if (a->grad_bias) a->grad_bias[c] += (float)s;
        /* dx = gamma * invstd * (g - mean(g) - xhat * mean(g * xhat)); eval mode: gamma * invstd * g */
        double k = (double)(a->weight ? a->weight[c] : 1.0f) * invstd;
        double dmean = s / (double)rows, dvar = q / (double)rows * invstd * invstd;
        t.ka[c] = (float)k;
        t.kb[c] = a->training ? (float)(-k * dvar) : 0.0f;
        t.kc[c] = a->training ? (float)(-k * dmean) : 0.0f;
    }
}

void lt_bn_nhwc_backward(const lt_bn_nhwc_backward_args *a) {
    int64_t C = a->shape.c, rows = a->shape.n * a->shape.h * a->shape.w, parts = parts_for(rows);
    if (rows == 0 || C == 0) return;
    channel_tables t = tables_of(a->scratch, C);
    affine_tables(a, t);
    int threads = lt_threads_for(rows * C, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t p = 0; p < parts; p++) {
        int64_t r0, r1;
        lt_split_range(rows, (int)parts, (int)p, &r0, &r1);
        float tx[LT_ROW_CHUNK], tdy[LT_ROW_CHUNK], tg[LT_ROW_CHUNK];
        for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
            int64_t n = C - c0 < LT_ROW_CHUNK ? C - c0 : LT_ROW_CHUNK;
            float s[LT_ROW_CHUNK] = {0}, q[LT_ROW_CHUNK] = {0};
            double S[LT_ROW_CHUNK] = {0}, Q[LT_ROW_CHUNK] = {0};
            for (int64_t r = r0; r < r1; r++) {
                const float *x = lt_rows_load(a->input, r, c0, n, tx);
                grad_moments_chunk(s, q, grad_at(a, t, r, c0, n, x, tdy, tg), x, t.mean + c0, n);
                if ((r - r0) % FLUSH == FLUSH - 1 || r == r1 - 1) flush(S, Q, s, q, n);
            }
            memcpy(t.sum + p * C + c0, S, (size_t)n * sizeof *S);
            memcpy(t.sumsq + p * C + c0, Q, (size_t)n * sizeof *Q);
        }
    }
    finish_coefficients(a, t, parts, rows);
    if (!a->grad_input.data) return;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t r = 0; r < rows; r++) {
        float tx[LT_ROW_CHUNK], tdy[LT_ROW_CHUNK], tg[LT_ROW_CHUNK], tdx[LT_ROW_CHUNK];
        for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
            int64_t n = C - c0 < LT_ROW_CHUNK ? C - c0 : LT_ROW_CHUNK;
            const float *x = lt_rows_load(a->input, r, c0, n, tx);
            const float *g = grad_at(a, t, r, c0, n, x, tdy, tg);
            float *dx = lt_rows_target(a->grad_input, r, c0, tdx);
            grad_input_chunk(dx, g, x, t.mean + c0, t.ka + c0, t.kb + c0, t.kc + c0, n);
            lt_rows_store(a->grad_input, r, c0, dx, n);
        }
    }
}

/* The fused pool's backward pass goes window by window: each 2x2 window's gradient goes to the input
 * row its code names (0 to the others, and to the rows no window covers when H or W is odd, whose
 * dx is then kb * (x - mean) + kc). */
void lt_bn_relu_pool_nhwc_backward(const lt_bn_nhwc_backward_args *a, const uint8_t *codes) {
    lt_nhwc sh = a->shape;
    int64_t C = sh.c, rows = sh.n * sh.h * sh.w, ho = sh.h / 2, wo = sh.w / 2, windows = sh.n * ho * wo;
    if (rows == 0 || C == 0) return;
    int64_t parts = windows ? parts_for(windows) : 0;
    channel_tables t = tables_of(a->scratch, C);
    affine_tables(a, t);
    for (int64_t p = 0; p < parts; p++) memset(t.sum + p * C, 0, (size_t)C * sizeof *t.sum);
    int threads = lt_threads_for(rows * C, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t p = 0; p < parts; p++) {
        int64_t o0, o1;
        lt_split_range(windows, (int)parts, (int)p, &o0, &o1);
        float tx[LT_ROW_CHUNK], tdy[LT_ROW_CHUNK], tg[LT_ROW_CHUNK];
        for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
            int64_t n = C - c0 < LT_ROW_CHUNK ? C - c0 : LT_ROW_CHUNK;
            float s[LT_ROW_CHUNK] = {0}, q[LT_ROW_CHUNK] = {0};
            double S[LT_ROW_CHUNK] = {0}, Q[LT_ROW_CHUNK] = {0};
            for (int64_t o = o0; o < o1; o++) {
                int64_t b = o / (ho * wo), oy = o / wo % ho, ox = o % wo;
                int64_t r = (b * sh.h + 2 * oy) * sh.w + 2 * ox, row[4] = {r, r + 1, r + sh.w, r + sh.w + 1};
                const float *dy = lt_rows_load(a->grad_output, o, c0, n, tdy);
                const uint8_t *code = codes + o * C + c0;
                for (int k = 0; k < 4; k++) {
                    const float *x = lt_rows_load(a->input, row[k], c0, n, tx);
                    unpool_chunk(tg, dy, code, k, n);
                    grad_moments_chunk(s, q, tg, x, t.mean + c0, n);
                }
                if ((o - o0) % FLUSH == FLUSH - 1 || o == o1 - 1) flush(S, Q, s, q, n);
            }
            memcpy(t.sum + p * C + c0, S, (size_t)n * sizeof *S);
            memcpy(t.sumsq + p * C + c0, Q, (size_t)n * sizeof *Q);
        }
    }
    finish_coefficients(a, t, parts, rows);
    if (!a->grad_input.data) return;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t o = 0; o < windows; o++) {
        int64_t b = o / (ho * wo), oy = o / wo % ho, ox = o % wo;
        int64_t r = (b * sh.h + 2 * oy) * sh.w + 2 * ox, row[4] = {r, r + 1, r + sh.w, r + sh.w + 1};
        float tx[LT_ROW_CHUNK], tdy[LT_ROW_CHUNK], tg[LT_ROW_CHUNK], tdx[LT_ROW_CHUNK];
        for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
            int64_t n = C - c0 < LT_ROW_CHUNK ? C - c0 : LT_ROW_CHUNK;
            const float *dy = lt_rows_load(a->grad_output, o, c0, n, tdy);
            const uint8_t *code = codes + o * C + c0;
            for (int k = 0; k < 4; k++) {
                const float *x = lt_rows_load(a->input, row[k], c0, n, tx);
                unpool_chunk(tg, dy, code, k, n);
                float *dx = lt_rows_target(a->grad_input, row[k], c0, tdx);
                grad_input_chunk(dx, tg, x, t.mean + c0, t.ka + c0, t.kb + c0, t.kc + c0, n);
                lt_rows_store(a->grad_input, row[k], c0, dx, n);
            }
        }
    }
    if (sh.h % 2 == 0 && sh.w % 2 == 0) return;
    /* rows outside every window (the last row or column of an odd size): g = 0 */
    for (int64_t r = 0; r < rows; r++) {
        int64_t y = r / sh.w % sh.h, x0 = r % sh.w;
        if (y < 2 * ho && x0 < 2 * wo) continue;
        float tx[LT_ROW_CHUNK], tdx[LT_ROW_CHUNK], zero[LT_ROW_CHUNK] = {0};
        for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
            int64_t n = C - c0 < LT_ROW_CHUNK ? C - c0 : LT_ROW_CHUNK;
            const float *x = lt_rows_load(a->input, r, c0, n, tx);
            float *dx = lt_rows_target(a->grad_input, r, c0, tdx);
            grad_input_chunk(dx, zero, x, t.mean + c0, t.ka + c0, t.kb + c0, t.kc + c0, n);
            lt_rows_store(a->grad_input, r, c0, dx, n);
        }
    }
}
