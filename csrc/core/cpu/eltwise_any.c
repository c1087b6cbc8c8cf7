/* The n elements are one row (rows.h) cut into chunks; each chunk converts in, computes, converts out. */
#include "eltwise_any.h"

#include <string.h>

#include "../nn/ops.h"
#include "../parallel.h"
#include "../simd.h"
#include "gelu_math.h"

LT_SIMD_CLONES
static void gelu_chunk(float *restrict y, const float *restrict x, const float *restrict unused, int64_t n,
                       float slope) {
    (void)unused;
    (void)slope;
    for (int64_t i = 0; i < n; i++) y[i] = lt_gelu(x[i]);
}

LT_SIMD_CLONES
static void gelu_grad_chunk(float *restrict dx, const float *restrict dy, const float *restrict x, int64_t n,
                            float slope) {
    (void)slope;
    for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * lt_gelu_grad(x[i]);
}

LT_SIMD_CLONES
static void leaky_chunk(float *restrict y, const float *restrict x, const float *restrict unused, int64_t n,
                        float slope) {
    (void)unused;
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : slope * x[i];
}

LT_SIMD_CLONES
static void leaky_grad_chunk(float *restrict dx, const float *restrict dy, const float *restrict x, int64_t n,
                             float slope) {
    for (int64_t i = 0; i < n; i++) dx[i] = x[i] > 0 ? dy[i] : slope * dy[i];
}

typedef void (*chunk_fn)(float *, const float *, const float *, int64_t, float);

/* out = fn(a, b) chunk by chunk; b may have no data (unary) */
static void map(chunk_fn fn, lt_rows out, lt_rows a, lt_rows b, int64_t n, float slope) {
    int64_t chunks = (n + LT_ROW_CHUNK - 1) / LT_ROW_CHUNK;
    int threads = lt_threads_for(n, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t k = 0; k < chunks; k++) {
        int64_t c0 = k * LT_ROW_CHUNK, m = n - c0 < LT_ROW_CHUNK ? n - c0 : LT_ROW_CHUNK;
        float ta[LT_ROW_CHUNK], tb[LT_ROW_CHUNK], to[LT_ROW_CHUNK];
        float *o = lt_rows_target(out, 0, c0, to);
        fn(o, lt_rows_load(a, 0, c0, m, ta), b.data ? lt_rows_load(b, 0, c0, m, tb) : NULL, m, slope);
        lt_rows_store(out, 0, c0, o, m);
    }
}

static const lt_rows none = {0};

void lt_gelu_forward_any(lt_rows y, lt_rows x, int64_t n) { map(gelu_chunk, y, x, none, n, 0); }
void lt_gelu_backward_any(lt_rows dx, lt_rows dy, lt_rows x, int64_t n) { map(gelu_grad_chunk, dx, dy, x, n, 0); }
void lt_leaky_relu_forward_any(lt_rows y, lt_rows x, int64_t n, float slope) { map(leaky_chunk, y, x, none, n, slope); }
void lt_leaky_relu_backward_any(lt_rows dx, lt_rows dy, lt_rows x, int64_t n, float slope) {
    map(leaky_grad_chunk, dx, dy, x, n, slope);
}

/* ---- the mixed-precision activations' table entry (nn/activation.c) ---- */

static bool computes(const char *name) {
    return !strcmp(name, "relu") || !strcmp(name, "leaky_relu") || !strcmp(name, "gelu");
}

static bool supports_mixed(const lt_impl *self, const void *shape, lt_precision p) {
    (void)self;
    (void)p;
    return computes(((const lt_activation_mixed_shape *)shape)->a.activation);
}

static float slope_of(const lt_activation_shape *a) { return strcmp(a->activation, "relu") ? a->negative_slope : 0.0f; }

static int mixed_forward(lt_kernel_ctx *ctx, void *out, const void *in, lt_activation_mixed_shape s) {
    (void)ctx;
    lt_rows y = lt_rows_of(out, s.y, 0), x = lt_rows_of((void *)in, s.x, 0);
    if (!strcmp(s.a.activation, "gelu")) lt_gelu_forward_any(y, x, s.a.n);
    else lt_leaky_relu_forward_any(y, x, s.a.n, slope_of(&s.a));
    return 0;
}

static int mixed_backward(lt_kernel_ctx *ctx, void *dinp, const void *dout, const void *in,
                          lt_activation_mixed_shape s) {
    (void)ctx;
    lt_rows dx = lt_rows_of(dinp, s.dx, 0), dy = lt_rows_of((void *)dout, s.dy, 0), x = lt_rows_of((void *)in, s.x, 0);
    if (!strcmp(s.a.activation, "gelu")) lt_gelu_backward_any(dx, dy, x, s.a.n);
    else lt_leaky_relu_backward_any(dx, dy, x, s.a.n, slope_of(&s.a));
    return 0;
}

const lt_activation_mixed_impl lt_activation_mixed_cpu = {
    .base = {.name = "cpu", .supports = supports_mixed},
    .computes = computes,
    .forward = mixed_forward,
    .backward = mixed_backward,
};

/* ---- GELU at float32, an entry of the CPU activations (cpu/activation.c's kind) ---- */

static int gelu_forward_cpu(lt_kernel_ctx *ctx, float *out, const float *in, lt_activation_shape s) {
    (void)ctx;
    lt_gelu_forward_any(lt_rows_of(out, LT_FLOAT32, 0), lt_rows_of((void *)in, LT_FLOAT32, 0), s.n);
    return 0;
}

static int gelu_backward_cpu(lt_kernel_ctx *ctx, float *dinp, const float *dout, const float *in, const float *out,
                             lt_activation_shape s) {
    (void)ctx;
    (void)out;
    lt_gelu_backward_any(lt_rows_of(dinp, LT_FLOAT32, 0), lt_rows_of((void *)dout, LT_FLOAT32, 0),
                         lt_rows_of((void *)in, LT_FLOAT32, 0), s.n);
    return 0;
}

const lt_activation_impl lt_gelu_cpu = {
    .base = {.name = "cpu", .supports = lt_activation_supports_fp32},
    .activation = "gelu",
    .forward = gelu_forward_cpu,
    .backward = gelu_backward_cpu,
};
