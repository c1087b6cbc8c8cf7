#include "optim.h"

#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "parallel.h"
#include "simd.h"

/* The update of one parameter is elementwise: each thread takes one contiguous range. */
static int threads_for(int64_t n) {
    return lt_threads_for(n, LT_PARALLEL_GRAIN);
}

static int check_operand(const char *what, const lt_tensor *t, const lt_tensor *param, lt_error *err) {
    char a[64], b[64];
    if (!t || !t->storage) return lt_fail(err, "%s is missing", what);
    if (!lt_same_shape(t, param))
        return lt_fail(err, "%s has shape %s, expected %s (the parameter's)", what, lt_shape_str(t, a, sizeof a),
                       lt_shape_str(param, b, sizeof b));
    if (!lt_is_contiguous(t)) return lt_fail(err, "%s is not contiguous", what);
    return 0;
}

static int check_param(const lt_tensor *param, lt_error *err) {
    if (!param || !param->storage) return lt_fail(err, "the parameter is missing");
    if (!lt_is_contiguous(param)) return lt_fail(err, "the parameter is not contiguous");
    return 0;
}

/* The kernels take their switches as arguments of an always-inlined function and are called with
 * constants, so that each combination compiles to its own branch-free, vectorised loop; the dispatch
 * functions are compiled once per instruction set (simd.h). */
#define KERNEL static inline __attribute__((always_inline)) void

/* ---- SGD ---- */

typedef struct sgd_coefs {
    float grad_sign, weight_decay, momentum, one_minus_dampening, neg_lr;
} sgd_coefs;

/* The same float operations as PyTorch's _single_tensor_sgd, in its order. */
KERNEL sgd_range(float *restrict p, float *restrict buf, const float *restrict g, int64_t n, const sgd_coefs *c,
                 bool weight_decay, bool momentum, bool init_buffer, bool nesterov) {
    for (int64_t i = 0; i < n; i++) {  /* i: element of the flattened parameter */
        float d = c->grad_sign * g[i];
        if (weight_decay) d = d + c->weight_decay * p[i];
        if (momentum) {
            float b = init_buffer ? d : buf[i] * c->momentum + c->one_minus_dampening * d;
            buf[i] = b;
            d = nesterov ? d + c->momentum * b : b;
        }
        p[i] = p[i] + c->neg_lr * d;
    }
}

LT_SIMD_CLONES static void sgd_dispatch(float *p, float *buf, const float *g, int64_t n, const sgd_coefs *c, bool weight_decay,
                         bool momentum, bool init_buffer, bool nesterov) {
    if (!momentum) {
        if (weight_decay) sgd_range(p, buf, g, n, c, true, false, false, false);
        else sgd_range(p, buf, g, n, c, false, false, false, false);
    } else if (init_buffer) {
        /* the first step: buf = d, so nesterov or not only changes d */
        if (nesterov) sgd_range(p, buf, g, n, c, weight_decay, true, true, true);
        else sgd_range(p, buf, g, n, c, weight_decay, true, true, false);
    } else if (nesterov) {
        if (weight_decay) sgd_range(p, buf, g, n, c, true, true, false, true);
        else sgd_range(p, buf, g, n, c, false, true, false, true);
    } else {
        if (weight_decay) sgd_range(p, buf, g, n, c, true, true, false, false);
        else sgd_range(p, buf, g, n, c, false, true, false, false);
    }
}

int lt_sgd_step(lt_tensor *param, lt_tensor *momentum_buffer, const lt_tensor *grad, bool init_buffer,
                const lt_sgd_options *o, lt_error *err) {
    if (check_param(param, err) || check_operand("the gradient", grad, param, err)) return -1;
    bool momentum = o->momentum != 0, weight_decay = o->weight_decay != 0;
    if (momentum && check_operand("the momentum buffer", momentum_buffer, param, err)) return -1;
    sgd_coefs c = {
        .grad_sign = o->maximize ? -1.0f : 1.0f, .weight_decay = (float)o->weight_decay,
        .momentum = (float)o->momentum, .one_minus_dampening = (float)(1.0 - o->dampening), .neg_lr = (float)-o->lr};
    float *p = lt_data(param), *buf = momentum ? lt_data(momentum_buffer) : NULL;
    const float *g = lt_data(grad);
    int64_t n = lt_numel(param);
    int threads = threads_for(n);
    #pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int64_t begin = 0, end = n;
#ifdef _OPENMP
        lt_split_range(n, omp_get_num_threads(), omp_get_thread_num(), &begin, &end);
#endif
        sgd_dispatch(p + begin, buf ? buf + begin : NULL, g + begin, end - begin, &c, weight_decay, momentum,
                     init_buffer, o->nesterov);
    }
    return 0;
}

/* ---- Adam and AdamW ---- */

typedef struct adam_coefs {
    float grad_sign, weight_decay, decay_factor, beta1, one_minus_beta1, beta2, one_minus_beta2;
    float bias_correction2_sqrt, eps, neg_step_size;
} adam_coefs;

/* PyTorch's _single_tensor_adam(w) per element: the same float operations in the same order.
 * l2: Adam's weight decay (added to the gradient); decoupled: AdamW's (the parameter shrinks). */
KERNEL adam_range(float *restrict p, float *restrict m, float *restrict v, float *restrict vmax,
                  const float *restrict g, int64_t n, const adam_coefs *c, bool l2, bool decoupled, bool amsgrad) {
    for (int64_t i = 0; i < n; i++) {  /* i: element of the flattened parameter */
        float pi = p[i], grad = c->grad_sign * g[i];
        if (decoupled) pi = pi * c->decay_factor;
        if (l2) grad = grad + c->weight_decay * pi;
        float mi = m[i] * c->beta1 + c->one_minus_beta1 * grad;
        float vi = v[i] * c->beta2 + c->one_minus_beta2 * (grad * grad);
        m[i] = mi;
        v[i] = vi;
        if (amsgrad) {
            float old = vmax[i];
            vi = old >= vi || old != old ? old : vi;  /* torch.maximum: NaN wins */
            vmax[i] = vi;
        }
        float denom = sqrtf(vi) / c->bias_correction2_sqrt + c->eps;
        p[i] = pi + c->neg_step_size * (mi / denom);
    }
}

LT_SIMD_CLONES static void adam_dispatch(float *p, float *m, float *v, float *vmax, const float *g, int64_t n, const adam_coefs *c,
                          bool l2, bool decoupled, bool amsgrad) {
    if (amsgrad) {
        if (decoupled) adam_range(p, m, v, vmax, g, n, c, false, true, true);
        else if (l2) adam_range(p, m, v, vmax, g, n, c, true, false, true);
        else adam_range(p, m, v, vmax, g, n, c, false, false, true);
    } else {
        if (decoupled) adam_range(p, m, v, vmax, g, n, c, false, true, false);
        else if (l2) adam_range(p, m, v, vmax, g, n, c, true, false, false);
        else adam_range(p, m, v, vmax, g, n, c, false, false, false);
    }
}

int lt_adam_step(lt_tensor *param, lt_tensor *exp_avg, lt_tensor *exp_avg_sq, lt_tensor *max_exp_avg_sq,
                 const lt_tensor *grad, int64_t step, const lt_adam_options *o, lt_error *err) {
    if (check_param(param, err) || check_operand("the gradient", grad, param, err) ||
        check_operand("exp_avg", exp_avg, param, err) || check_operand("exp_avg_sq", exp_avg_sq, param, err))
        return -1;
    if (o->amsgrad && check_operand("max_exp_avg_sq", max_exp_avg_sq, param, err)) return -1;
    if (step < 1) return lt_fail(err, "the step count must be at least 1, got %lld", (long long)step);
    /* Bias corrections in double, as PyTorch computes them in Python floats. */
    double bias_correction1 = 1.0 - pow(o->beta1, (double)step);
    double bias_correction2 = 1.0 - pow(o->beta2, (double)step);
    adam_coefs c = {
        .grad_sign = o->maximize ? -1.0f : 1.0f, .weight_decay = (float)o->weight_decay,
        .decay_factor = (float)(1.0 - o->lr * o->weight_decay), .beta1 = (float)o->beta1,
        .one_minus_beta1 = (float)(1.0 - o->beta1), .beta2 = (float)o->beta2, .one_minus_beta2 = (float)(1.0 - o->beta2),
        .bias_correction2_sqrt = (float)sqrt(bias_correction2), .eps = (float)o->eps,
        .neg_step_size = (float)-(o->lr / bias_correction1)};
    bool decoupled = o->decoupled_weight_decay, l2 = !decoupled && o->weight_decay != 0;
    float *p = lt_data(param), *m = lt_data(exp_avg), *v = lt_data(exp_avg_sq);
    float *vmax = o->amsgrad ? lt_data(max_exp_avg_sq) : NULL;
    const float *g = lt_data(grad);
    int64_t n = lt_numel(param);
    int threads = threads_for(n);
    #pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int64_t begin = 0, end = n;
#ifdef _OPENMP
        lt_split_range(n, omp_get_num_threads(), omp_get_thread_num(), &begin, &end);
#endif
        adam_dispatch(p + begin, m + begin, v + begin, vmax ? vmax + begin : NULL, g + begin, end - begin, &c, l2,
                      decoupled, o->amsgrad);
    }
    return 0;
}

/* ---- norms for gradient clipping ---- */

/* Sums of squares (square = true) or of absolute values: LANES independent float sums, which the
 * compiler keeps in one vector register, added into a double every BLOCK elements so that rounding
 * stays at float's level for a block, not for the whole tensor. */
#define LANES 16
#define BLOCK 4096
KERNEL sum_powers(double *out, const float *restrict x, int64_t n, bool square) {
    double total = 0.0;
    for (int64_t start = 0; start < n; start += BLOCK) {  /* start: first element of the block */
        int64_t len = n - start < BLOCK ? n - start : BLOCK;
        const float *b = x + start;
        float lane[LANES] = {0};
        int64_t i = 0;
        for (; i + LANES <= len; i += LANES)
            for (int j = 0; j < LANES; j++) lane[j] += square ? b[i + j] * b[i + j] : fabsf(b[i + j]);
        for (; i < len; i++) lane[0] += square ? b[i] * b[i] : fabsf(b[i]);
        for (int j = 0; j < LANES; j++) total += lane[j];
    }
    *out = total;
}

/* sum |x|^p over x[0..n) (p finite), or max |x| (p infinite). */
LT_SIMD_CLONES static double norm_part(const float *x, int64_t n, double p) {
    if (isinf(p)) {
        float best = 0.0f;
        for (int64_t i = 0; i < n; i++) {
            float a = fabsf(x[i]);
            best = a > best || a != a ? a : best;
        }
        return best;
    }
    double sum = 0.0;
    if (p == 2.0) sum_powers(&sum, x, n, true);
    else if (p == 1.0) sum_powers(&sum, x, n, false);
    else for (int64_t i = 0; i < n; i++) sum += pow(fabs((double)x[i]), p);
    return sum;
}

static double combine(double a, double b, double p) {
    if (!isinf(p)) return a + b;
    return a > b || a != a ? a : b;
}

int lt_norm_accumulate(double *acc, const lt_tensor *t, double norm_type, lt_error *err) {
    if (!(norm_type > 0)) return lt_fail(err, "the norm type must be positive (or inf), got %g", norm_type);
    lt_tensor flat = {0};
    if (lt_contiguous(&flat, t, err)) return -1;  /* copies only a non-contiguous gradient */
    const float *x = lt_data(&flat);
    int64_t n = lt_numel(&flat);
    enum { MAX_PARTS = 256 };
    double parts[MAX_PARTS];
    int threads = threads_for(n), team = 1;
    if (threads > MAX_PARTS) threads = MAX_PARTS;
    #pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int part = 0;
#ifdef _OPENMP
        part = omp_get_thread_num();
        if (part == 0) team = omp_get_num_threads();  /* the team may be smaller than asked */
        #pragma omp barrier
#endif
        /* threads take whole blocks, so the float sums inside blocks do not depend on the thread count */
        int64_t first, last;
        lt_split_range((n + BLOCK - 1) / BLOCK, team, part, &first, &last);
        int64_t begin = first * BLOCK, end = last * BLOCK < n ? last * BLOCK : n;
        parts[part] = begin < end ? norm_part(x + begin, end - begin, norm_type) : 0.0;
    }
    /* added in a fixed order: a thread count gives the same result at every call, and different thread
     * counts differ only by the rounding of a few doubles */
    for (int i = 0; i < team; i++) *acc = combine(*acc, parts[i], norm_type);
    lt_tensor_release(&flat);
    return 0;
}

double lt_norm_finish(double acc, double norm_type) {
    if (isinf(norm_type) || norm_type == 1.0) return acc;
    if (norm_type == 2.0) return sqrt(acc);
    return pow(acc, 1.0 / norm_type);
}
