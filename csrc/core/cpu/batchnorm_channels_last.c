/* BatchNorm over channels-last rows (see batchnorm_channels_last.h). Each pass runs over ranges of rows (or of
 * pooling windows) in functions compiled for every SIMD level; within a row the channels go in chunks
 * (rows.h), converted from and to bf16 inline. The statistics passes sum LT_BN_PARTS fixed parts of the
 * rows in parallel and add the parts in order; the other passes are elementwise. */
#include "batchnorm_channels_last.h"

#include <math.h>
#include <string.h>

#include "../base/parallel.h"
#include "../base/simd.h"
#include "gelu_math.h"
#include "relu_math.h"

/* Float partial sums are flushed into double every FLUSH rows, so they never sum many values. */
#define FLUSH 64
#define INLINE static inline __attribute__((always_inline))

INLINE float activate(float z, lt_bn_act act) {
    switch (act) {
    case LT_BN_ACT_RELU: return z < 0 ? 0.0f : z;  /* NaN passes, as torch.relu */
    case LT_BN_ACT_GELU: return lt_gelu(z);
    default: return z;
    }
}

INLINE float activation_grad(float z, float dy, lt_bn_act act) {
    switch (act) {
    case LT_BN_ACT_RELU: return lt_leaky_relu_grad(z, dy, 0.0f);
    case LT_BN_ACT_GELU: return dy * lt_gelu_grad(z);
    default: return dy;
    }
}

/* kb * (x - mean) of the input gradient; 0 where kb is 0 (eval mode), where x takes no part: an
 * infinite x then gives no 0 * inf = NaN */
INLINE float lt_bn_centered(float kb, float x, float mean) { return kb == 0.0f ? 0.0f : kb * (x - mean); }

/* max that lets NaN through, as PyTorch's pooling */
INLINE float nan_max(float best, float v) { return best == best && (v > best || v != v) ? v : best; }

INLINE int64_t chunk_of(int64_t C, int64_t c0) { return C - c0 < LT_ROW_CHUNK ? C - c0 : LT_ROW_CHUNK; }

/* Adds the float lanes into the double sums and clears them. */
INLINE void flush(double *S, double *Q, float *s, float *q, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        S[i] += s[i];
        Q[i] += q[i];
        s[i] = q[i] = 0;
    }
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

/* Sums of x - first and its square over rows [r0, r1), into sum and sumsq (C each). */
LT_SIMD_CLONES
static void moments_rows(lt_rows x, int64_t r0, int64_t r1, int64_t C, const float *first, double *sum, double *sumsq) {
    float tmp[LT_ROW_CHUNK];
    for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
        int64_t n = chunk_of(C, c0);
        float s[LT_ROW_CHUNK] = {0}, q[LT_ROW_CHUNK] = {0};
        double S[LT_ROW_CHUNK] = {0}, Q[LT_ROW_CHUNK] = {0};
        const float *restrict f = first + c0;
        for (int64_t r = r0; r < r1; r++) {
            const float *restrict xv = lt_rows_load(x, r, c0, n, tmp);
            LT_VECTOR_LOOP
            for (int64_t i = 0; i < n; i++) {
                float d = xv[i] - f[i];
                s[i] += d;
                q[i] += d * d;
            }
            if ((r - r0) % FLUSH == FLUSH - 1 || r == r1 - 1) flush(S, Q, s, q, n);
        }
        memcpy(sum + c0, S, (size_t)n * sizeof *S);
        memcpy(sumsq + c0, Q, (size_t)n * sizeof *Q);
    }
}

static void finish_statistics(const lt_cpu_bn_channels_last_forward_args *a, channel_tables t, int64_t rows) {
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

static void batch_statistics(const lt_cpu_bn_channels_last_forward_args *a, channel_tables t, int64_t rows) {
    int64_t C = a->shape.c, parts = parts_for(rows);
    if (a->p.training) {
        float tmp[LT_ROW_CHUNK];
        for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
            int64_t n = chunk_of(C, c0);
            memcpy(t.first + c0, lt_rows_load(a->input, 0, c0, n, tmp), (size_t)n * sizeof(float));
        }
        int threads = lt_threads_for(rows * C, LT_PARALLEL_GRAIN);
        #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int64_t p = 0; p < parts; p++) {
            int64_t r0, r1;
            lt_split_range(rows, (int)parts, (int)p, &r0, &r1);
            moments_rows(a->input, r0, r1, C, t.first, t.sum + p * C, t.sumsq + p * C);
        }
    }
    finish_statistics(a, t, rows);
}

/* ---- forward ---- */

INLINE void apply_body(lt_rows y, lt_rows x, int64_t r0, int64_t r1, int64_t C, const float *scale,
                       const float *shift, lt_bn_act act) {
    float tin[LT_ROW_CHUNK], tout[LT_ROW_CHUNK];
    for (int64_t r = r0; r < r1; r++)
        for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
            int64_t n = chunk_of(C, c0);
            const float *restrict xv = lt_rows_load(x, r, c0, n, tin), *restrict sc = scale + c0, *restrict sh = shift + c0;
            float *restrict yv = lt_rows_target(y, r, c0, tout);
            LT_VECTOR_LOOP
            for (int64_t i = 0; i < n; i++) yv[i] = activate(fmaf(xv[i], sc[i], sh[i]), act);
            lt_rows_store(y, r, c0, yv, n);
        }
}

/* y = act(x * scale + shift) over rows [r0, r1); the activation a constant in each copy of the body */
LT_SIMD_CLONES
static void apply_rows(lt_rows y, lt_rows x, int64_t r0, int64_t r1, int64_t C, const float *scale, const float *shift,
                       lt_bn_act act) {
    switch (act) {
    case LT_BN_ACT_RELU: apply_body(y, x, r0, r1, C, scale, shift, LT_BN_ACT_RELU); break;
    case LT_BN_ACT_GELU: apply_body(y, x, r0, r1, C, scale, shift, LT_BN_ACT_GELU); break;
    default: apply_body(y, x, r0, r1, C, scale, shift, LT_BN_ACT_NONE); break;
    }
}

void lt_cpu_bn_channels_last_forward(const lt_cpu_bn_channels_last_forward_args *a) {
    int64_t C = a->shape.c, rows = a->shape.n * a->shape.h * a->shape.w;
    if (rows == 0 || C == 0) return;
    channel_tables t = tables_of(a->scratch, C);
    batch_statistics(a, t, rows);
    int threads = lt_threads_for(rows * C, LT_PARALLEL_GRAIN);
    /* elementwise: any split gives the same results */
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t p_ = 0; p_ < parts_for(rows); p_++) {
        int64_t r0, r1;
        lt_split_range(rows, (int)parts_for(rows), (int)p_, &r0, &r1);
        apply_rows(a->out, a->input, r0, r1, C, t.scale, t.shift, a->act);
    }
}

/* Windows [o0, o1) of the 2x2 pool: m = the first maximum of the window's four normalised values (NaN
 * wins), code its place; out = ReLU(m), and code 255 when nothing passed the ReLU (m <= 0 or NaN), as
 * bn_relu_pool.c. */
LT_SIMD_CLONES
static void pool_windows(lt_rows y, uint8_t *codes, lt_rows x, lt_channels_last_dims s, int64_t o0, int64_t o1, const float *scale,
                         const float *shift) {
    int64_t C = s.c, ho = s.h / 2, wo = s.w / 2;
    float t0[LT_ROW_CHUNK], t1[LT_ROW_CHUNK], t2[LT_ROW_CHUNK], t3[LT_ROW_CHUNK], tout[LT_ROW_CHUNK];
    for (int64_t o = o0; o < o1; o++) {
        int64_t b = o / (ho * wo), oy = o / wo % ho, ox = o % wo;
        int64_t r = (b * s.h + 2 * oy) * s.w + 2 * ox;  /* the window's top-left input row */
        for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
            int64_t n = chunk_of(C, c0);
            const float *restrict x0 = lt_rows_load(x, r, c0, n, t0), *restrict x1 = lt_rows_load(x, r + 1, c0, n, t1);
            const float *restrict x2 = lt_rows_load(x, r + s.w, c0, n, t2);
            const float *restrict x3 = lt_rows_load(x, r + s.w + 1, c0, n, t3);
            const float *restrict sc = scale + c0, *restrict sh = shift + c0;
            float *restrict out = lt_rows_target(y, o, c0, tout);
            uint8_t *restrict code = codes + o * C + c0;
            LT_VECTOR_LOOP
            for (int64_t i = 0; i < n; i++) {  /* selects, no branches: the loop vectorises */
                float v0 = fmaf(x0[i], sc[i], sh[i]), v1 = fmaf(x1[i], sc[i], sh[i]);
                float v2 = fmaf(x2[i], sc[i], sh[i]), v3 = fmaf(x3[i], sc[i], sh[i]);
                float m = nan_max(nan_max(nan_max(v0, v1), v2), v3);
                float k = v2 == m ? 2.0f : 3.0f;
                k = v1 == m ? 1.0f : k;
                k = v0 == m ? 0.0f : k;
                out[i] = m < 0 ? 0.0f : m;
                code[i] = (uint8_t)(m > 0 ? k : 255.0f);
            }
            lt_rows_store(y, o, c0, out, n);
        }
    }
}

void lt_cpu_bn_relu_pool_channels_last_forward(const lt_cpu_bn_channels_last_forward_args *a, uint8_t *codes) {
    lt_channels_last_dims s = a->shape;
    int64_t C = s.c, rows = s.n * s.h * s.w, windows = s.n * (s.h / 2) * (s.w / 2);
    if (rows == 0 || C == 0) return;
    channel_tables t = tables_of(a->scratch, C);
    batch_statistics(a, t, rows);
    int threads = lt_threads_for(rows * C, LT_PARALLEL_GRAIN);
    /* elementwise: any split gives the same results */
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t p_ = 0; p_ < parts_for(windows); p_++) {
        int64_t o0, o1;
        lt_split_range(windows, (int)parts_for(windows), (int)p_, &o0, &o1);
        pool_windows(a->out, codes, a->input, s, o0, o1, t.scale, t.shift);
    }
}

/* ---- backward ---- */

static void affine_tables(const lt_cpu_bn_channels_last_backward_args *a, channel_tables t) {
    for (int64_t c = 0; c < a->shape.c; c++) {
        double scale = (a->weight ? a->weight[c] : 1.0) * (double)a->save_invstd[c];
        t.mean[c] = a->save_mean[c];
        t.scale[c] = (float)scale;
        t.shift[c] = (float)((a->bias ? a->bias[c] : 0.0) - (double)a->save_mean[c] * scale);
    }
}

static void finish_coefficients(const lt_cpu_bn_channels_last_backward_args *a, channel_tables t, int64_t parts, int64_t rows) {
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

INLINE void grad_moments_body(lt_rows dy, lt_rows x, int64_t r0, int64_t r1, int64_t C, channel_tables t, lt_bn_act act,
                              double *sum, double *sumsq) {
    float tx[LT_ROW_CHUNK], tdy[LT_ROW_CHUNK];
    for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
        int64_t n = chunk_of(C, c0);
        float s[LT_ROW_CHUNK] = {0}, q[LT_ROW_CHUNK] = {0};
        double S[LT_ROW_CHUNK] = {0}, Q[LT_ROW_CHUNK] = {0};
        const float *restrict sc = t.scale + c0, *restrict sh = t.shift + c0, *restrict mean = t.mean + c0;
        for (int64_t r = r0; r < r1; r++) {
            const float *restrict xv = lt_rows_load(x, r, c0, n, tx), *restrict g = lt_rows_load(dy, r, c0, n, tdy);
            LT_VECTOR_LOOP
            for (int64_t i = 0; i < n; i++) {
                float gi = activation_grad(fmaf(xv[i], sc[i], sh[i]), g[i], act);
                s[i] += gi;
                q[i] += gi * (xv[i] - mean[i]);
            }
            if ((r - r0) % FLUSH == FLUSH - 1 || r == r1 - 1) flush(S, Q, s, q, n);
        }
        memcpy(sum + c0, S, (size_t)n * sizeof *S);
        memcpy(sumsq + c0, Q, (size_t)n * sizeof *Q);
    }
}

/* sum(g) and sum(g * (x - mean)) over rows [r0, r1), g = dy * act'(x * scale + shift) */
LT_SIMD_CLONES
static void grad_moments_rows(lt_rows dy, lt_rows x, int64_t r0, int64_t r1, int64_t C, channel_tables t, lt_bn_act act,
                              double *sum, double *sumsq) {
    switch (act) {
    case LT_BN_ACT_RELU: grad_moments_body(dy, x, r0, r1, C, t, LT_BN_ACT_RELU, sum, sumsq); break;
    case LT_BN_ACT_GELU: grad_moments_body(dy, x, r0, r1, C, t, LT_BN_ACT_GELU, sum, sumsq); break;
    default: grad_moments_body(dy, x, r0, r1, C, t, LT_BN_ACT_NONE, sum, sumsq); break;
    }
}

INLINE void grad_input_body(lt_rows dx, lt_rows dy, lt_rows x, int64_t r0, int64_t r1, int64_t C, channel_tables t,
                            lt_bn_act act) {
    float tx[LT_ROW_CHUNK], tdy[LT_ROW_CHUNK], tdx[LT_ROW_CHUNK];
    for (int64_t r = r0; r < r1; r++)
        for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
            int64_t n = chunk_of(C, c0);
            const float *restrict xv = lt_rows_load(x, r, c0, n, tx), *restrict g = lt_rows_load(dy, r, c0, n, tdy);
            const float *restrict sc = t.scale + c0, *restrict sh = t.shift + c0, *restrict mean = t.mean + c0;
            const float *restrict ka = t.ka + c0, *restrict kb = t.kb + c0, *restrict kc = t.kc + c0;
            float *restrict d = lt_rows_target(dx, r, c0, tdx);
            LT_VECTOR_LOOP
            for (int64_t i = 0; i < n; i++) {
                float gi = activation_grad(fmaf(xv[i], sc[i], sh[i]), g[i], act);
                d[i] = ka[i] * gi + lt_bn_centered(kb[i], xv[i], mean[i]) + kc[i];
            }
            lt_rows_store(dx, r, c0, d, n);
        }
}

/* dx = ka * g + kb * (x - mean) + kc over rows [r0, r1) */
LT_SIMD_CLONES
static void grad_input_rows(lt_rows dx, lt_rows dy, lt_rows x, int64_t r0, int64_t r1, int64_t C, channel_tables t,
                            lt_bn_act act) {
    switch (act) {
    case LT_BN_ACT_RELU: grad_input_body(dx, dy, x, r0, r1, C, t, LT_BN_ACT_RELU); break;
    case LT_BN_ACT_GELU: grad_input_body(dx, dy, x, r0, r1, C, t, LT_BN_ACT_GELU); break;
    default: grad_input_body(dx, dy, x, r0, r1, C, t, LT_BN_ACT_NONE); break;
    }
}

void lt_cpu_bn_channels_last_backward(const lt_cpu_bn_channels_last_backward_args *a) {
    int64_t C = a->shape.c, rows = a->shape.n * a->shape.h * a->shape.w, parts = parts_for(rows);
    if (rows == 0 || C == 0) return;
    channel_tables t = tables_of(a->scratch, C);
    affine_tables(a, t);
    int threads = lt_threads_for(rows * C, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t p = 0; p < parts; p++) {
        int64_t r0, r1;
        lt_split_range(rows, (int)parts, (int)p, &r0, &r1);
        grad_moments_rows(a->grad_output, a->input, r0, r1, C, t, a->act, t.sum + p * C, t.sumsq + p * C);
    }
    finish_coefficients(a, t, parts, rows);
    if (!a->grad_input.data) return;
    /* elementwise: any split gives the same results */
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t p_ = 0; p_ < parts_for(rows); p_++) {
        int64_t r0, r1;
        lt_split_range(rows, (int)parts_for(rows), (int)p_, &r0, &r1);
        grad_input_rows(a->grad_input, a->grad_output, a->input, r0, r1, C, t, a->act);
    }
}

/* The fused pool's backward pass goes window by window: each 2x2 window's gradient goes to the input
 * row its code names, 0 to the others (and to the rows no window covers when H or W is odd). */

/* sum(g) and sum(g * (x - mean)) over windows [o0, o1) */
LT_SIMD_CLONES
static void pooled_grad_moments(lt_rows dy, const uint8_t *codes, lt_rows x, lt_channels_last_dims sh, int64_t o0, int64_t o1,
                                channel_tables t, double *sum, double *sumsq) {
    int64_t C = sh.c, ho = sh.h / 2, wo = sh.w / 2;
    float tx[LT_ROW_CHUNK], tdy[LT_ROW_CHUNK];
    for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
        int64_t n = chunk_of(C, c0);
        float s[LT_ROW_CHUNK] = {0}, q[LT_ROW_CHUNK] = {0};
        double S[LT_ROW_CHUNK] = {0}, Q[LT_ROW_CHUNK] = {0};
        const float *restrict mean = t.mean + c0;
        for (int64_t o = o0; o < o1; o++) {
            int64_t b = o / (ho * wo), oy = o / wo % ho, ox = o % wo;
            int64_t r = (b * sh.h + 2 * oy) * sh.w + 2 * ox, row[4] = {r, r + 1, r + sh.w, r + sh.w + 1};
            const float *restrict g = lt_rows_load(dy, o, c0, n, tdy);
            const uint8_t *restrict code = codes + o * C + c0;
            for (int k = 0; k < 4; k++) {
                const float *restrict xv = lt_rows_load(x, row[k], c0, n, tx);
                LT_VECTOR_LOOP
                for (int64_t i = 0; i < n; i++) {
                    float gi = code[i] == k ? g[i] : 0.0f;
                    s[i] += gi;
                    q[i] += gi * (xv[i] - mean[i]);
                }
            }
            if ((o - o0) % FLUSH == FLUSH - 1 || o == o1 - 1) flush(S, Q, s, q, n);
        }
        memcpy(sum + c0, S, (size_t)n * sizeof *S);
        memcpy(sumsq + c0, Q, (size_t)n * sizeof *Q);
    }
}

/* dx of the rows of windows [o0, o1) */
LT_SIMD_CLONES
static void pooled_grad_input(lt_rows dx, lt_rows dy, const uint8_t *codes, lt_rows x, lt_channels_last_dims sh, int64_t o0,
                              int64_t o1, channel_tables t) {
    int64_t C = sh.c, ho = sh.h / 2, wo = sh.w / 2;
    float tx[LT_ROW_CHUNK], tdy[LT_ROW_CHUNK], tdx[LT_ROW_CHUNK];
    for (int64_t o = o0; o < o1; o++) {
        int64_t b = o / (ho * wo), oy = o / wo % ho, ox = o % wo;
        int64_t r = (b * sh.h + 2 * oy) * sh.w + 2 * ox, row[4] = {r, r + 1, r + sh.w, r + sh.w + 1};
        for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
            int64_t n = chunk_of(C, c0);
            const float *restrict g = lt_rows_load(dy, o, c0, n, tdy), *restrict mean = t.mean + c0;
            const float *restrict ka = t.ka + c0, *restrict kb = t.kb + c0, *restrict kc = t.kc + c0;
            const uint8_t *restrict code = codes + o * C + c0;
            for (int k = 0; k < 4; k++) {
                const float *restrict xv = lt_rows_load(x, row[k], c0, n, tx);
                float *restrict d = lt_rows_target(dx, row[k], c0, tdx);
                LT_VECTOR_LOOP
                for (int64_t i = 0; i < n; i++) d[i] = ka[i] * (code[i] == k ? g[i] : 0.0f) + lt_bn_centered(kb[i], xv[i], mean[i]) + kc[i];
                lt_rows_store(dx, row[k], c0, d, n);
            }
        }
    }
}

/* dx = kb * (x - mean) + kc of the rows outside every window (the last row or column of an odd size) */
static void uncovered_grad_input(lt_rows dx, lt_rows x, lt_channels_last_dims sh, channel_tables t) {
    int64_t C = sh.c, rows = sh.n * sh.h * sh.w, ho = sh.h / 2, wo = sh.w / 2;
    float tx[LT_ROW_CHUNK], tdx[LT_ROW_CHUNK];
    for (int64_t r = 0; r < rows; r++) {
        if (r / sh.w % sh.h < 2 * ho && r % sh.w < 2 * wo) continue;
        for (int64_t c0 = 0; c0 < C; c0 += LT_ROW_CHUNK) {
            int64_t n = chunk_of(C, c0);
            const float *xv = lt_rows_load(x, r, c0, n, tx);
            float *d = lt_rows_target(dx, r, c0, tdx);
            LT_VECTOR_LOOP
            for (int64_t i = 0; i < n; i++) d[i] = lt_bn_centered(t.kb[c0 + i], xv[i], t.mean[c0 + i]) + t.kc[c0 + i];
            lt_rows_store(dx, r, c0, d, n);
        }
    }
}

void lt_cpu_bn_relu_pool_channels_last_backward(const lt_cpu_bn_channels_last_backward_args *a, const uint8_t *codes) {
    lt_channels_last_dims sh = a->shape;
    int64_t C = sh.c, rows = sh.n * sh.h * sh.w, windows = sh.n * (sh.h / 2) * (sh.w / 2);
    if (rows == 0 || C == 0) return;
    int64_t parts = windows ? parts_for(windows) : 0;
    channel_tables t = tables_of(a->scratch, C);
    affine_tables(a, t);
    int threads = lt_threads_for(rows * C, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t p = 0; p < parts; p++) {
        int64_t o0, o1;
        lt_split_range(windows, (int)parts, (int)p, &o0, &o1);
        pooled_grad_moments(a->grad_output, codes, a->input, sh, o0, o1, t, t.sum + p * C, t.sumsq + p * C);
    }
    finish_coefficients(a, t, parts, rows);
    if (!a->grad_input.data) return;
    /* elementwise: any split gives the same results */
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t p_ = 0; p_ < parts_for(windows); p_++) {
        int64_t o0, o1;
        lt_split_range(windows, (int)parts_for(windows), (int)p_, &o0, &o1);
        pooled_grad_input(a->grad_input, a->grad_output, codes, a->input, sh, o0, o1, t);
    }
    if (sh.h % 2 || sh.w % 2) uncovered_grad_input(a->grad_input, a->input, sh, t);
}
