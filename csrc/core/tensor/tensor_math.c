#include "tensor_math.h"

#include <math.h>
#include <string.h>

#include "iter.h"
#include "../base/parallel.h"
#include "tensor_device.h"
#include "tensor_math_device.h"

/* ---- the row engine ---- */

typedef struct op_args {
    int op;
    float alpha, p1, p2;
    lt_device_kind kind;  /* which of the backend's functions computes it on a device */
} op_args;

/* One loop for unit strides (vectorised), one for a scalar second operand, one for any strides. */
#define BINARY_LOOP(EXPR)                                                                   \
    do {                                                                                    \
        if (so == 1 && sa == 1 && sb == 1) {                                                \
            for (int64_t i = 0; i < n; i++) { float x = a[i], y = b[i]; o[i] = (EXPR); }    \
        } else if (so == 1 && sa == 1 && sb == 0) {                                         \
            float y = b[0];                                                                 \
            for (int64_t i = 0; i < n; i++) { float x = a[i]; o[i] = (EXPR); }              \
        } else {                                                                            \
            for (int64_t i = 0; i < n; i++) {                                               \
                float x = a[i * sa], y = b[i * sb];                                         \
                o[i * so] = (EXPR);                                                         \
            }                                                                               \
        }                                                                                   \
    } while (0)

static void binary_row(int64_t n, float *const *p, const int64_t *st, const void *arg) {
    const op_args *args = arg;
    float *o = p[0];
    const float *a = p[1], *b = p[2];
    int64_t so = st[0], sa = st[1], sb = st[2];
    float alpha = args->alpha;
    switch ((lt_binop)args->op) {
    case LT_ADD: BINARY_LOOP(x + alpha * y); break;
    case LT_SUB: BINARY_LOOP(x - alpha * y); break;
    case LT_MUL: BINARY_LOOP(x * y); break;
    case LT_DIV: BINARY_LOOP(x / y); break;
    case LT_POW: BINARY_LOOP(y == 2.0f ? x * x : powf(x, y)); break;
    case LT_MAXIMUM: BINARY_LOOP(x != x || x > y ? x : y); break;
    case LT_MINIMUM: BINARY_LOOP(x != x || x < y ? x : y); break;
    case LT_EQ: BINARY_LOOP(x == y ? 1.0f : 0.0f); break;
    case LT_NE: BINARY_LOOP(x != y ? 1.0f : 0.0f); break;
    case LT_GT: BINARY_LOOP(x > y ? 1.0f : 0.0f); break;
    case LT_LT: BINARY_LOOP(x < y ? 1.0f : 0.0f); break;
    case LT_GE: BINARY_LOOP(x >= y ? 1.0f : 0.0f); break;
    case LT_LE: BINARY_LOOP(x <= y ? 1.0f : 0.0f); break;
    }
}

#define UNARY_LOOP(EXPR)                                                                    \
    do {                                                                                    \
        if (so == 1 && sa == 1) {                                                           \
            for (int64_t i = 0; i < n; i++) { float x = a[i]; o[i] = (EXPR); }              \
        } else {                                                                            \
            for (int64_t i = 0; i < n; i++) { float x = a[i * sa]; o[i * so] = (EXPR); }   \
        }                                                                                   \
    } while (0)

enum { LT_COPY = 100 };  /* internal unary op */

static void unary_row(int64_t n, float *const *p, const int64_t *st, const void *arg) {
    const op_args *args = arg;
    float *o = p[0];
    const float *a = p[1];
    int64_t so = st[0], sa = st[1];
    float lo = args->p1, hi = args->p2;
    switch (args->op) {
    case LT_NEG: UNARY_LOOP(-x); break;
    case LT_ABS: UNARY_LOOP(fabsf(x)); break;
    case LT_SQRT: UNARY_LOOP(sqrtf(x)); break;
    case LT_EXP: UNARY_LOOP(expf(x)); break;
    case LT_LOG: UNARY_LOOP(logf(x)); break;
    case LT_CLAMP: UNARY_LOOP(x < lo ? lo : x > hi ? hi : x); break;
    case LT_SIGN: UNARY_LOOP(x > 0 ? 1.0f : x < 0 ? -1.0f : x); break;
    case LT_TANH: UNARY_LOOP(tanhf(x)); break;
    case LT_SIGMOID: UNARY_LOOP(1.0f / (1.0f + expf(-x))); break;
    case LT_COPY: UNARY_LOOP(x); break;
    case LT_FILL:
        if (so == 1) for (int64_t i = 0; i < n; i++) o[i] = lo;
        else for (int64_t i = 0; i < n; i++) o[i * so] = lo;
        break;
    }
}

static void addcmul_row(int64_t n, float *const *p, const int64_t *st, const void *arg) {
    const op_args *args = arg;
    float *o = p[0];
    const float *a = p[1], *b = p[2];
    int64_t so = st[0], sa = st[1], sb = st[2];
    float v = args->alpha;
    if (so == 1 && sa == 1 && sb == 1)
        for (int64_t i = 0; i < n; i++) o[i] += v * a[i] * b[i];
    else
        for (int64_t i = 0; i < n; i++) o[i * so] += v * a[i * sa] * b[i * sb];
}

/* ---- argument preparation ---- */

int lt_check_writable(const lt_tensor *out, lt_error *err) {
    if (lt_numel(out) == 0) return 0;  /* nothing is written */
    for (int d = 0; d < out->ndim; d++)
        if (out->stride[d] == 0 && out->size[d] > 1)
            return lt_fail(err, "cannot write into an expanded tensor (dimension %d has stride 0); clone() it first", d + 1);
    return 0;
}

static bool same_view(const lt_tensor *a, const lt_tensor *b) {
    if (a->offset != b->offset || a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->size[d] != b->size[d] || (a->size[d] > 1 && a->stride[d] != b->stride[d])) return false;
    return true;
}

/* Broadcasts in to out's shape into *view. When in shares out's storage through a different view,
 * element i of out could overwrite an input element still to be read, so the input is copied first. */
static int prepare_input(const lt_tensor *out, const lt_tensor *in, lt_tensor *view, lt_error *err) {
    if (lt_broadcast_to(view, in, out->ndim, out->size, err)) {
        char a[160], b[160];
        return lt_fail(err, "shape %s cannot be broadcast to %s", lt_shape_str(in, a, sizeof a), lt_shape_str(out, b, sizeof b));
    }
    if (in->storage == out->storage && !same_view(view, out) && lt_numel(out) > 0) {
        lt_tensor copy = {0};
        if (lt_contiguous(&copy, view, err)) return -1;
        if (copy.storage == view->storage) {  /* already contiguous: still shares out's memory */
            lt_tensor fresh = {0};
            if (lt_tensor_new_on(&fresh, copy.ndim, copy.size, LT_FLOAT32, lt_device_of(&copy), err)) {
                lt_tensor_release(&copy);
                return -1;
            }
            lt_copy(&fresh, &copy, err);
            lt_tensor_release(&copy);
            copy = fresh;
        }
        lt_tensor_release(view);
        *view = copy;
    }
    return 0;
}

/* The tensors of an elementwise operation must share a device: "add: expected cuda:0, got cpu for
 * other (the device of out; ...)". */
static int check_operands(const char *op, const lt_tensor *out, const lt_tensor *a, const lt_tensor *b, lt_device *d,
                          lt_error *err) {
    lt_named ts[3] = {{"out", out}, {"input", a}, {"other", b}};
    return lt_check_devices(op, ts, 3, d, err);
}

static int apply(lt_tensor *out, const lt_tensor *a, const lt_tensor *b, lt_row_fn fn, op_args args, lt_error *err) {
    lt_device device;
    if (lt_check_writable(out, err) || check_operands("elementwise arithmetic", out, a, b, &device, err)) return -1;
    lt_tensor va = {0}, vb = {0};
    int rc = -1;
    if (prepare_input(out, a, &va, err)) goto done;
    if (b && prepare_input(out, b, &vb, err)) goto done;
    if (device != LT_DEVICE_CPU) {
        rc = lt_device_elementwise(args.kind, out, &va, b ? &vb : NULL, args.op, args.alpha, args.p1, args.p2, err);
        goto done;
    }
    const lt_tensor *ts[3] = {out, &va, b ? &vb : NULL};
    lt_iter it;
    lt_iter_init(&it, b ? 3 : 2, ts);
    lt_iter_run(&it, fn, &args);
    rc = 0;
done:
    lt_tensor_release(&va);
    lt_tensor_release(&vb);
    return rc;
}

/* ---- public elementwise ---- */

int lt_binary_into(lt_tensor *out, const lt_tensor *a, const lt_tensor *b, lt_binop op, float alpha, lt_error *err) {
    return apply(out, a, b, binary_row, (op_args){op, alpha, 0, 0, LT_DEVICE_BINARY}, err);
}

int lt_binary_new(lt_tensor *out, const lt_tensor *a, const lt_tensor *b, lt_binop op, float alpha, lt_error *err) {
    int ndim;
    int64_t size[LT_MAX_DIMS];
    if (lt_broadcast_shape(a, b, &ndim, size, err)) return -1;
    if (lt_tensor_new_on(out, ndim, size, LT_FLOAT32, lt_device_of(a), err)) return -1;
    return lt_binary_into(out, a, b, op, alpha, err);
}

/* A 1-element tensor holding s, broadcast like any other operand. */
static void scalar_tensor(lt_tensor *t, lt_storage *s, float *value) {
    s->data = value;
    s->numel = 1;
    s->device = LT_DEVICE_CPU;
    s->allocator = NULL;    /* borrowed: the value lives on the caller's stack */
    s->refcount = 1 << 20;  /* never released to 0, so the struct is never freed either */
    s->version = 0;
    memset(t, 0, sizeof *t);
    t->storage = s;
    t->ndim = 1;
    t->size[0] = 1;
    t->stride[0] = 1;
}

/* On a device the number travels as an argument: the backend has no host memory to read it from. */
static int scalar_on_device(lt_tensor *out, const lt_tensor *a, float s, lt_binop op, bool reversed, lt_error *err) {
    lt_tensor va = {0};
    int rc = prepare_input(out, a, &va, err) ? -1 : lt_device_scalar(out, &va, s, op, reversed, err);
    lt_tensor_release(&va);
    return rc;
}

int lt_scalar_into(lt_tensor *out, const lt_tensor *a, float s, lt_binop op, bool reversed, lt_error *err) {
    lt_device device;
    if (check_operands("elementwise arithmetic", out, a, NULL, &device, err)) return -1;
    if (device != LT_DEVICE_CPU)
        return lt_check_writable(out, err) ? -1 : scalar_on_device(out, a, s, op, reversed, err);
    lt_storage storage;
    lt_tensor st;
    scalar_tensor(&st, &storage, &s);
    return reversed ? lt_binary_into(out, &st, a, op, 1.0f, err) : lt_binary_into(out, a, &st, op, 1.0f, err);
}

int lt_scalar_new(lt_tensor *out, const lt_tensor *a, float s, lt_binop op, bool reversed, lt_error *err) {
    if (lt_tensor_new_on(out, a->ndim, a->size, LT_FLOAT32, lt_device_of(a), err)) return -1;
    return lt_scalar_into(out, a, s, op, reversed, err);
}

int lt_unary_into(lt_tensor *out, const lt_tensor *a, lt_unop op, float p1, float p2, lt_error *err) {
    return apply(out, a, NULL, unary_row, (op_args){op, 0, p1, p2, LT_DEVICE_UNARY}, err);
}

int lt_addcmul_into(lt_tensor *out, const lt_tensor *a, const lt_tensor *b, float value, lt_error *err) {
    lt_tensor vb = {0};
    if (prepare_input(out, b, &vb, err)) return -1;
    int rc = apply(out, a, &vb, addcmul_row, (op_args){0, value, 0, 0, LT_DEVICE_ADDCMUL}, err);
    lt_tensor_release(&vb);
    return rc;
}

int lt_copy(lt_tensor *dst, const lt_tensor *src, lt_error *err) {
    if (dst->storage == src->storage && same_view(dst, src)) return 0;
    if (lt_device_of(dst) != LT_DEVICE_CPU || lt_device_of(src) != LT_DEVICE_CPU) {
        if (lt_device_of(dst) == lt_device_of(src)) return lt_convert(dst, src, err);
        return lt_copy_across(dst, src, err);
    }
    return apply(dst, src, NULL, unary_row, (op_args){LT_COPY, 0, 0, 0, LT_DEVICE_UNARY}, err);
}

int lt_fill(lt_tensor *t, float value, lt_error *err) {
    /* a dense block through the backend's fill; a view on a device through its strided unary */
    if (lt_device_of(t) != LT_DEVICE_CPU && (lt_is_contiguous(t) || lt_dtype_of(t) != LT_FLOAT32))
        return lt_device_fill(t, value, err);
    return apply(t, t, NULL, unary_row, (op_args){LT_FILL, 0, value, 0, LT_DEVICE_UNARY}, err);
}

/* ---- reductions ---- */

/* Reduces n values at x with stride s. Sums run in double, in order: results do not depend on the
 * thread count. */
static double reduce_row(const float *x, int64_t n, int64_t s, lt_reduce_args args, int64_t *index) {
    switch (args.op) {
    case LT_RSUM:
    case LT_RMEAN: {
        double acc = 0;
        for (int64_t i = 0; i < n; i++) acc += x[i * s];
        return args.op == LT_RMEAN ? acc / (double)n : acc;
    }
    case LT_RMAX:
    case LT_RMIN: {
        float best = x[0];
        int64_t at = 0;
        bool want_max = args.op == LT_RMAX;
        for (int64_t i = 1; i < n && best == best; i++) {
            float v = x[i * s];
            if (v != v || (want_max ? v > best : v < best)) { best = v; at = i; }
        }
        if (index) *index = at;
        return best;
    }
    case LT_RVAR:
    case LT_RSTD: {
        double mean = 0, acc = 0;
        for (int64_t i = 0; i < n; i++) mean += x[i * s];
        mean /= (double)n;
        for (int64_t i = 0; i < n; i++) {
            double d = x[i * s] - mean;
            acc += d * d;
        }
        double var = acc / (double)(args.unbiased ? n - 1 : n);
        return args.op == LT_RSTD ? sqrt(var) : var;
    }
    case LT_RNORM: {
        double acc = 0;
        if (isinf(args.p)) {
            for (int64_t i = 0; i < n; i++) acc = fmax(acc, fabs(x[i * s]));
            return acc;
        }
        if (args.p == 2) {
            for (int64_t i = 0; i < n; i++) acc += (double)x[i * s] * x[i * s];
            return sqrt(acc);
        }
        if (args.p == 1) {
            for (int64_t i = 0; i < n; i++) acc += fabs(x[i * s]);
            return acc;
        }
        for (int64_t i = 0; i < n; i++) acc += pow(fabs(x[i * s]), args.p);
        return pow(acc, 1.0 / args.p);
    }
    }
    return 0;
}

static int check_reducible(int64_t n, lt_reduce_args args, lt_error *err) {
    if (n == 0 && (args.op == LT_RMAX || args.op == LT_RMIN))
        return lt_fail(err, "cannot take the %s of an empty tensor", args.op == LT_RMAX ? "max" : "min");
    return 0;
}

static bool has_index(lt_reduce_args args) { return args.op == LT_RMAX || args.op == LT_RMIN; }

/* The number the caller asked for is read back: the one synchronisation, where a host value is due. */
static int reduce_all_on_device(const lt_tensor *t, lt_reduce_args args, double *result, int64_t *index,
                                lt_error *err) {
    int64_t one = 1;
    lt_tensor value = {0}, at = {0}, host = {0};
    lt_device d = lt_device_of(t);
    bool want_index = index && has_index(args);
    int rc = -1;
    if (lt_tensor_new_on(&value, 1, &one, LT_FLOAT32, d, err) ||
        (want_index && lt_tensor_new_on(&at, 1, &one, LT_FLOAT32, d, err)) ||
        lt_device_reduce(&value, want_index ? &at : NULL, t, -1, args.op, args.unbiased, args.p, err) ||
        lt_to_device(&host, &value, LT_DEVICE_CPU, err))
        goto done;
    *result = lt_data(&host)[0];
    if (want_index) {
        if (lt_to_device(&host, &at, LT_DEVICE_CPU, err)) goto done;
        *index = (int64_t)lt_data(&host)[0];
    }
    rc = 0;
done:
    lt_tensor_release(&value);
    lt_tensor_release(&at);
    lt_tensor_release(&host);
    return rc;
}

int lt_reduce_all(const lt_tensor *t, lt_reduce_args args, double *result, int64_t *index, lt_error *err) {
    int64_t n = lt_numel(t);
    if (check_reducible(n, args, err)) return -1;
    if (n == 0) {
        *result = args.op == LT_RSUM || args.op == LT_RNORM ? 0.0 : NAN;
        return 0;
    }
    if (lt_device_of(t) != LT_DEVICE_CPU) return reduce_all_on_device(t, args, result, index, err);
    lt_tensor flat = {0};
    if (lt_contiguous(&flat, t, err)) return -1;
    *result = reduce_row(lt_data(&flat), n, 1, args, index);
    lt_tensor_release(&flat);
    return 0;
}

int lt_reduce_dim(lt_tensor *values, lt_tensor *indices, const lt_tensor *in, int dim, bool keepdim,
                  lt_reduce_args args, lt_error *err) {
    if (dim < 0 || dim >= in->ndim) return lt_fail(err, "dimension %d out of range for a %d-D tensor", dim + 1, in->ndim);
    int64_t n = in->size[dim];
    if (check_reducible(n, args, err)) return -1;
    /* Output shape: dim removed (or kept as 1); a 1-D input keeps one dimension of size 1. */
    int64_t size[LT_MAX_DIMS];
    int ndim = 0;
    for (int d = 0; d < in->ndim; d++) {
        if (d != dim) size[ndim++] = in->size[d];
        else if (keepdim) size[ndim++] = 1;
    }
    if (ndim == 0) size[ndim++] = 1;
    lt_device device = lt_device_of(in);
    if (lt_tensor_new_on(values, ndim, size, LT_FLOAT32, device, err)) return -1;
    bool want_index = indices && has_index(args);
    if (want_index && lt_tensor_new_on(indices, ndim, size, LT_FLOAT32, device, err)) return -1;
    if (device != LT_DEVICE_CPU) {
        if (lt_numel(values) == 0) return 0;
        if (n == 0) return lt_fill(values, args.op == LT_RSUM || args.op == LT_RNORM ? 0.0f : NAN, err);
        return lt_device_reduce(values, want_index ? indices : NULL, in, dim, args.op, args.unbiased, args.p, err);
    }

    /* Walk the input with the reduced dimension moved last; output element r is row r. */
    lt_tensor src = *in;
    for (int d = dim; d < in->ndim - 1; d++) { src.size[d] = in->size[d + 1]; src.stride[d] = in->stride[d + 1]; }
    src.size[in->ndim - 1] = 1;  /* the iterator walks positions; reduce_row walks the dimension */
    src.ndim = in->ndim;
    int64_t rows = lt_numel(values), rstride = in->stride[dim];
    float *out = lt_data(values), *idx = want_index ? lt_data(indices) : NULL;
    if (rows == 0) return 0;
    if (n == 0) {  /* over an empty dimension: sums are 0, means and spreads NaN (max and min refused above) */
        for (int64_t r = 0; r < rows; r++) out[r] = args.op == LT_RSUM || args.op == LT_RNORM ? 0.0f : NAN;
        return 0;
    }
    lt_iter it;
    const lt_tensor *ts[1] = {&src};
    lt_iter_init(&it, 1, ts);
    int threads = lt_threads_for(rows * n, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t r = 0; r < rows; r++) {
        /* the iterator's rows have length row_len; position r is element r % row_len of row r / row_len */
        float *p[1];
        lt_iter_row(&it, r / it.row_len, p);
        const float *x = p[0] + (r % it.row_len) * it.stride[0][it.ndim - 1];
        int64_t at = 0;
        out[r] = (float)reduce_row(x, n, rstride, args, &at);
        if (idx) idx[r] = (float)at;
    }
    return 0;
}

/* ---- fills ---- */

typedef double (*draw_fn)(lt_rng *rng, double a, double b);
static double draw_uniform(lt_rng *rng, double lo, double hi) { return lo + (hi - lo) * lt_rng_uniform(rng); }
static double draw_normal(lt_rng *rng, double mean, double std) { return mean + std * lt_rng_normal(rng); }

static int fill_random(lt_tensor *t, draw_fn draw, double a, double b, lt_rng *rng, lt_error *err) {
    if (lt_check_writable(t, err)) return -1;
    lt_iter it;
    const lt_tensor *ts[1] = {t};
    lt_iter_init(&it, 1, ts);
    int64_t s = it.stride[0][it.ndim - 1];
    for (int64_t r = 0; r < it.rows; r++) {
        float *p[1];
        lt_iter_row(&it, r, p);
        for (int64_t i = 0; i < it.row_len; i++) p[0][i * s] = (float)draw(rng, a, b);
    }
    return 0;
}

int lt_fill_uniform(lt_tensor *t, double lo, double hi, lt_rng *rng, lt_error *err) {
    return fill_random(t, draw_uniform, lo, hi, rng, err);
}

int lt_fill_normal(lt_tensor *t, double mean, double std, lt_rng *rng, lt_error *err) {
    return fill_random(t, draw_normal, mean, std, rng, err);
}

int lt_arange(lt_tensor *out, double start, double end, double step, lt_error *err) {
    if (step == 0 || !isfinite(step) || !isfinite(start) || !isfinite(end))
        return lt_fail(err, "expected finite start, end and a non-zero step, got %g, %g, %g", start, end, step);
    if ((end - start) / step < 0)
        return lt_fail(err, "the step %g goes away from the end: start %g, end %g", step, start, end);
    double count = ceil((end - start) / step);
    if (count > 1e12) return lt_fail(err, "too many elements (%g)", count);
    int64_t n = (int64_t)count;
    if (lt_tensor_new(out, 1, &n, err)) return -1;
    float *x = n ? lt_data(out) : NULL;
    for (int64_t i = 0; i < n; i++) x[i] = (float)(start + (double)i * step);
    return 0;
}
