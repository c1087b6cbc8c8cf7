/* The n elements are one row (rows.h) cut into chunks; each chunk converts in, computes, converts out. */
#include "activation_rows.h"

#include <string.h>

#include "../nn/ops.h"
#include "../base/parallel.h"
#include "../base/simd.h"
#include "gelu_math.h"
#include "relu_math.h"

typedef enum { GELU, GELU_GRAD, LEAKY, LEAKY_GRAD } op_kind;

#define INLINE static inline __attribute__((always_inline))

/* out = op(a, b) on one chunk; the op a constant in each copy */
INLINE void chunk_body(float *restrict o, const float *restrict a, const float *restrict b, int64_t n, float slope,
                       op_kind op) {
    LT_VECTOR_LOOP
    for (int64_t i = 0; i < n; i++) {
        switch (op) {
        case GELU: o[i] = lt_gelu(a[i]); break;                               /* a = x */
        case GELU_GRAD: o[i] = a[i] * lt_gelu_grad(b[i]); break;              /* a = dy, b = x */
        case LEAKY: o[i] = lt_leaky_relu(a[i], slope); break;
        case LEAKY_GRAD: o[i] = lt_leaky_relu_grad(b[i], a[i], slope); break;
        }
    }
}

INLINE void range_body(lt_rows out, lt_rows a, lt_rows b, int64_t lo, int64_t hi, float slope, op_kind op) {
    float ta[LT_ROW_CHUNK], tb[LT_ROW_CHUNK], to[LT_ROW_CHUNK];
    for (int64_t c0 = lo; c0 < hi; c0 += LT_ROW_CHUNK) {
        int64_t m = hi - c0 < LT_ROW_CHUNK ? hi - c0 : LT_ROW_CHUNK;
        float *o = lt_rows_target(out, 0, c0, to);
        chunk_body(o, lt_rows_load(a, 0, c0, m, ta), b.data ? lt_rows_load(b, 0, c0, m, tb) : NULL, m, slope, op);
        lt_rows_store(out, 0, c0, o, m);
    }
}

/* Elements [lo, hi) of the one row. */
LT_SIMD_CLONES
static void map_range(op_kind op, lt_rows out, lt_rows a, lt_rows b, int64_t lo, int64_t hi, float slope) {
    switch (op) {
    case GELU: range_body(out, a, b, lo, hi, slope, GELU); break;
    case GELU_GRAD: range_body(out, a, b, lo, hi, slope, GELU_GRAD); break;
    case LEAKY: range_body(out, a, b, lo, hi, slope, LEAKY); break;
    case LEAKY_GRAD: range_body(out, a, b, lo, hi, slope, LEAKY_GRAD); break;
    }
}

/* out = op(a, b) over n elements, in chunk-aligned ranges (elementwise: any split gives the same
 * results); b may have no data (unary) */
static void map(op_kind op, lt_rows out, lt_rows a, lt_rows b, int64_t n, float slope) {
    int64_t chunks = (n + LT_ROW_CHUNK - 1) / LT_ROW_CHUNK;
    int threads = lt_threads_for(n, LT_PARALLEL_GRAIN);
    int blocks = threads > 1 ? 4 * threads : 1;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int p = 0; p < blocks; p++) {
        int64_t k0, k1;
        lt_split_range(chunks, blocks, p, &k0, &k1);
        int64_t lo = k0 * LT_ROW_CHUNK, hi = k1 * LT_ROW_CHUNK < n ? k1 * LT_ROW_CHUNK : n;
        if (lo < hi) map_range(op, out, a, b, lo, hi, slope);
    }
}

static const lt_rows none = {0};

void lt_gelu_forward_rows(lt_rows y, lt_rows x, int64_t n) { map(GELU, y, x, none, n, 0); }
void lt_gelu_backward_rows(lt_rows dx, lt_rows dy, lt_rows x, int64_t n) { map(GELU_GRAD, dx, dy, x, n, 0); }
void lt_leaky_relu_forward_rows(lt_rows y, lt_rows x, int64_t n, float slope) { map(LEAKY, y, x, none, n, slope); }
void lt_leaky_relu_backward_rows(lt_rows dx, lt_rows dy, lt_rows x, int64_t n, float slope) {
    map(LEAKY_GRAD, dx, dy, x, n, slope);
}

/* ---- the mixed-precision activations' table entry (nn/activation.c) ---- */

static bool computes(const char *name) {
    return !strcmp(name, "relu") || !strcmp(name, "leaky_relu") || !strcmp(name, "gelu");
}

static bool supports_mixed(const lt_impl *self, const void *shape, lt_precision p) {
    return computes(((const lt_activation_mixed_shape *)shape)->a.activation);
}

static float slope_of(const lt_activation_shape *a) { return strcmp(a->activation, "relu") ? a->negative_slope : 0.0f; }

static int mixed_forward(lt_kernel_ctx *ctx, void *out, const void *in, lt_activation_mixed_shape s) {
    lt_rows y = lt_rows_of(out, s.y, 0), x = lt_rows_of((void *)in, s.x, 0);
    if (!strcmp(s.a.activation, "gelu")) lt_gelu_forward_rows(y, x, s.a.n);
    else lt_leaky_relu_forward_rows(y, x, s.a.n, slope_of(&s.a));
    return 0;
}

static int mixed_backward(lt_kernel_ctx *ctx, void *dinp, const void *dout, const void *in,
                          lt_activation_mixed_shape s) {
    lt_rows dx = lt_rows_of(dinp, s.dx, 0), dy = lt_rows_of((void *)dout, s.dy, 0), x = lt_rows_of((void *)in, s.x, 0);
    if (!strcmp(s.a.activation, "gelu")) lt_gelu_backward_rows(dx, dy, x, s.a.n);
    else lt_leaky_relu_backward_rows(dx, dy, x, s.a.n, slope_of(&s.a));
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
    lt_gelu_forward_rows(lt_rows_of(out, LT_FLOAT32, 0), lt_rows_of((void *)in, LT_FLOAT32, 0), s.n);
    return 0;
}

static int gelu_backward_cpu(lt_kernel_ctx *ctx, float *dinp, const float *dout, const float *in, const float *out,
                             lt_activation_shape s) {
    lt_gelu_backward_rows(lt_rows_of(dinp, LT_FLOAT32, 0), lt_rows_of((void *)dout, LT_FLOAT32, 0),
                         lt_rows_of((void *)in, LT_FLOAT32, 0), s.n);
    return 0;
}

const lt_activation_impl lt_gelu_cpu = {
    .base = {.name = "cpu", .supports = lt_activation_supports_fp32},
    .activation = "gelu",
    .forward = gelu_forward_cpu,
    .backward = gelu_backward_cpu,
};
