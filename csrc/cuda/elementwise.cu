/* Tensor arithmetic on strided float32 views (backend_api.h's binary, scalar, unary, addcmul), with the
 * host's semantics (csrc/core/tensor/tensor_math.c's row loops): the same expression per element, NaN rules
 * included. One thread per output element in a grid-stride loop; each element's offsets in the three
 * views come from its index (int64) through the sizes, unless every view is dense, when the index is
 * the offset. The core copies an input that overlaps the output through another view before the call,
 * so elements are independent. */
#include <math.h>

#include "parts.cuh"

extern "C" {
#include "tensor/tensor_math.h"
}

namespace ltc {

/* The offsets of element i (row-major over s.size) in the output and the two inputs. */
__device__ __forceinline__ void offsets_of(const lt_elementwise_shape &s, int64_t i, int64_t &o, int64_t &a,
                                           int64_t &b) {
    o = a = b = 0;
    for (int d = s.ndim - 1; d >= 0; d--) {
        int64_t c = i % s.size[d];
        i /= s.size[d];
        o += c * s.out_stride[d];
        a += c * s.a_stride[d];
        b += c * s.b_stride[d];
    }
}

/* tensor_math.c's binary_row, element by element. */
__device__ __forceinline__ float binary_op(int op, float x, float y, float alpha) {
    switch (op) {
        case LT_ADD: return x + alpha * y;
        case LT_SUB: return x - alpha * y;
        case LT_MUL: return x * y;
        case LT_DIV: return x / y;
        case LT_POW: return y == 2.0f ? x * x : powf(x, y);
        case LT_MAXIMUM: return x != x || x > y ? x : y;
        case LT_MINIMUM: return x != x || x < y ? x : y;
        case LT_EQ: return x == y ? 1.0f : 0.0f;
        case LT_NE: return x != y ? 1.0f : 0.0f;
        case LT_GT: return x > y ? 1.0f : 0.0f;
        case LT_LT: return x < y ? 1.0f : 0.0f;
        case LT_GE: return x >= y ? 1.0f : 0.0f;
        default: return x <= y ? 1.0f : 0.0f; /* LT_LE (the host checked op) */
    }
}

/* tensor_math.c's unary_row, element by element (clamp's NaN bounds compare false: no bound). */
__device__ __forceinline__ float unary_op(int op, float x, float lo, float hi) {
    switch (op) {
        case LT_NEG: return -x;
        case LT_ABS: return fabsf(x);
        case LT_SQRT: return sqrtf(x);
        case LT_EXP: return expf(x);
        case LT_LOG: return logf(x);
        case LT_CLAMP: return x < lo ? lo : x > hi ? hi : x;
        case LT_FILL: return lo;
        case LT_SIGN: return x > 0 ? 1.0f : x < 0 ? -1.0f : x;
        case LT_TANH: return tanhf(x);
        default: return 1.0f / (1.0f + expf(-x)); /* LT_SIGMOID */
    }
}

/* What each kernel computes for one element; `o` is read first only by addcmul. */
enum kind { BINARY, SCALAR, SCALAR_REVERSED, UNARY, ADDCMUL };

struct args {
    int op;
    float alpha, p1, p2;
};

template <kind K>
__device__ __forceinline__ float element(const args &g, float o, const float *a, const float *b, int64_t ia,
                                         int64_t ib) {
    if (K == BINARY) return binary_op(g.op, a[ia], b[ib], g.alpha);
    if (K == SCALAR) return binary_op(g.op, a[ia], g.p1, 1.0f);
    if (K == SCALAR_REVERSED) return binary_op(g.op, g.p1, a[ia], 1.0f);
    if (K == UNARY) return unary_op(g.op, a[ia], g.p1, g.p2);
    return o + g.alpha * a[ia] * b[ib]; /* ADDCMUL, as the host's o += v * a * b */
}

template <kind K, bool DENSE>
__global__ void elementwise_kernel(float *out, const float *a, const float *b, args g, lt_elementwise_shape s,
                                   int64_t n) {
    LTC_FOR(i, n) {
        int64_t io = i, ia = i, ib = i;
        if (!DENSE) offsets_of(s, i, io, ia, ib);
        out[io] = element<K>(g, K == ADDCMUL ? out[io] : 0.0f, a, b, ia, ib);
    }
}

static int64_t numel_of(const lt_elementwise_shape &s) {
    int64_t n = 1;
    for (int d = 0; d < s.ndim; d++) n *= s.size[d];
    return n;
}

/* Whether a view with these strides is the dense row-major layout of s.size. */
static bool dense(const lt_elementwise_shape &s, const int64_t *stride) {
    int64_t expected = 1;
    for (int d = s.ndim - 1; d >= 0; d--) {
        if (s.size[d] != 1 && stride[d] != expected) return false;
        expected *= s.size[d];
    }
    return true;
}

template <kind K>
static int launch(const char *name, float *out, const float *a, const float *b, args g, const lt_elementwise_shape *s,
                  lt_error *err) {
    if (s->ndim < 1 || s->ndim > 8) return fail(err, "%s: %d dimensions (1 to 8 expected)", name, s->ndim);
    int64_t n = numel_of(*s);
    if (n == 0) return 0;
    bool uses_b = K == BINARY || K == ADDCMUL;
    bool all_dense = dense(*s, s->out_stride) && dense(*s, s->a_stride) && (!uses_b || dense(*s, s->b_stride));
    if (all_dense)
        elementwise_kernel<K, true><<<grid_for(n), 256, 0, state().stream>>>(out, a, b, g, *s, n);
    else
        elementwise_kernel<K, false><<<grid_for(n), 256, 0, state().stream>>>(out, a, b, g, *s, n);
    LTC_LAUNCHED(err, name);
    return 0;
}

static bool known_binop(int op) { return op >= LT_ADD && op <= LT_LE; }
static bool known_unop(int op) { return op >= LT_NEG && op <= LT_SIGMOID; }

int binary(float *out, const float *a, const float *b, int op, float alpha, const lt_elementwise_shape *s,
           lt_error *err) {
    if (!known_binop(op)) return fail(err, "binary: unknown operation %d", op);
    return launch<BINARY>("elementwise binary", out, a, b, args{op, alpha, 0, 0}, s, err);
}

int scalar(float *out, const float *a, float value, int op, int reversed, const lt_elementwise_shape *s,
           lt_error *err) {
    if (!known_binop(op)) return fail(err, "scalar: unknown operation %d", op);
    args g{op, 1.0f, value, 0};
    return reversed ? launch<SCALAR_REVERSED>("elementwise scalar", out, a, nullptr, g, s, err)
                    : launch<SCALAR>("elementwise scalar", out, a, nullptr, g, s, err);
}

int unary(float *out, const float *a, int op, float p1, float p2, const lt_elementwise_shape *s, lt_error *err) {
    if (!known_unop(op)) return fail(err, "unary: unknown operation %d", op);
    return launch<UNARY>("elementwise unary", out, a, nullptr, args{op, 0, p1, p2}, s, err);
}

int addcmul(float *out, const float *a, const float *b, float value, const lt_elementwise_shape *s, lt_error *err) {
    return launch<ADDCMUL>("elementwise addcmul", out, a, b, args{0, value, 0, 0}, s, err);
}

}  // namespace ltc
