/* The CPU optimizer updates and gradient norms. An update is elementwise; the parameter is cut into
 * blocks of BLOCK elements and each thread takes one contiguous run of whole blocks, so that an element
 * goes through the same code (a vector lane, or the loop's scalar tail) at any thread count. */
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../optim/optim_ops.h"
#include "../base/parallel.h"
#include "../base/simd.h"

/* The kernels take their switches as arguments of an always-inlined function and are called with
 * constants, so that each combination compiles to its own branch-free, vectorised loop; the dispatch
 * functions are compiled once per instruction set (simd.h). */
#define KERNEL static inline __attribute__((always_inline)) void

#define BLOCK 4096  /* elements: a multiple of every vector width, so blocks start where vectors do */

/* Inside a parallel region: this thread's share [*begin, *end) of [0, n), whole blocks. */
static inline void thread_range(int64_t n, int64_t *begin, int64_t *end) {
    int64_t first = 0, last = (n + BLOCK - 1) / BLOCK;
#ifdef _OPENMP
    lt_split_range(last, omp_get_num_threads(), omp_get_thread_num(), &first, &last);
#endif
    *begin = first * BLOCK;
    *end = last * BLOCK < n ? last * BLOCK : n;
}

/* ---- SGD ---- */

/* The same float operations as PyTorch's _single_tensor_sgd, in its order. */
KERNEL sgd_range(float *restrict p, float *restrict buf, const float *restrict g, int64_t n, const lt_sgd_shape *c,
                 bool weight_decay, bool momentum, bool init_buffer, bool nesterov) {
    for (int64_t i = 0; i < n; i++) {  /* i: element of the flattened parameter */
        float d = c->k.grad_sign * g[i];
        if (weight_decay) d = d + c->k.weight_decay * p[i];
        if (momentum) {
            float b = init_buffer ? d : buf[i] * c->k.momentum + c->k.one_minus_dampening * d;
            buf[i] = b;
            d = nesterov ? d + c->k.momentum * b : b;
        }
        p[i] = p[i] + c->k.neg_lr * d;
    }
}

LT_SIMD_CLONES static void sgd_dispatch(float *p, float *buf, const float *g, int64_t n, const lt_sgd_shape *c) {
    bool weight_decay = c->has_weight_decay;
    if (!c->has_momentum) {
        if (weight_decay) sgd_range(p, buf, g, n, c, true, false, false, false);
        else sgd_range(p, buf, g, n, c, false, false, false, false);
    } else if (c->init_buffer) {
        /* the first step: buf = d, so nesterov or not only changes d */
        if (c->nesterov) sgd_range(p, buf, g, n, c, weight_decay, true, true, true);
        else sgd_range(p, buf, g, n, c, weight_decay, true, true, false);
    } else if (c->nesterov) {
        if (weight_decay) sgd_range(p, buf, g, n, c, true, true, false, true);
        else sgd_range(p, buf, g, n, c, false, true, false, true);
    } else {
        if (weight_decay) sgd_range(p, buf, g, n, c, true, true, false, false);
        else sgd_range(p, buf, g, n, c, false, true, false, false);
    }
}

static int sgd_step_cpu(lt_kernel_ctx *ctx, float *param, float *buf, const float *grad, lt_sgd_shape s) {
    s = lt_sgd_shape_read(s);
    int threads = lt_threads_for(s.n, LT_PARALLEL_GRAIN);
    #pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int64_t begin, end;
        thread_range(s.n, &begin, &end);
        sgd_dispatch(param + begin, buf ? buf + begin : NULL, grad + begin, end - begin, &s);
    }
    return 0;
}

const lt_sgd_impl lt_sgd_cpu = {.base = {.name = "cpu", .supports = lt_supports_fp32}, .step = sgd_step_cpu};

/* ---- Adam and AdamW ---- */

/* PyTorch's _single_tensor_adam(w) per element: the same float operations in the same order. */
KERNEL adam_range(float *restrict p, float *restrict m, float *restrict v, float *restrict vmax,
                  const float *restrict g, int64_t n, const lt_adam_shape *c, bool l2, bool decoupled, bool amsgrad) {
    for (int64_t i = 0; i < n; i++) {  /* i: element of the flattened parameter */
        float pi = p[i], grad = c->k.grad_sign * g[i];
        if (decoupled) pi = pi * c->k.decay_factor;
        if (l2) grad = grad + c->k.weight_decay * pi;
        float mi = m[i] * c->k.beta1 + c->k.one_minus_beta1 * grad;
        float vi = v[i] * c->k.beta2 + c->k.one_minus_beta2 * (grad * grad);
        m[i] = mi;
        v[i] = vi;
        if (amsgrad) {
            float old = vmax[i];
            vi = old >= vi || old != old ? old : vi;  /* torch.maximum: NaN wins */
            vmax[i] = vi;
        }
        float denom = sqrtf(vi) / c->k.bias_correction2_sqrt + c->k.eps;
        p[i] = pi + c->k.neg_step_size * (mi / denom);
    }
}

LT_SIMD_CLONES static void adam_dispatch(float *p, float *m, float *v, float *vmax, const float *g, int64_t n,
                                         const lt_adam_shape *c) {
    if (c->amsgrad) {
        if (c->decoupled) adam_range(p, m, v, vmax, g, n, c, false, true, true);
        else if (c->l2) adam_range(p, m, v, vmax, g, n, c, true, false, true);
        else adam_range(p, m, v, vmax, g, n, c, false, false, true);
    } else {
        if (c->decoupled) adam_range(p, m, v, vmax, g, n, c, false, true, false);
        else if (c->l2) adam_range(p, m, v, vmax, g, n, c, true, false, false);
        else adam_range(p, m, v, vmax, g, n, c, false, false, false);
    }
}

static int adam_step_cpu(lt_kernel_ctx *ctx, float *param, float *exp_avg, float *exp_avg_sq, float *vmax,
                         const float *grad, lt_adam_shape s) {
    s = lt_adam_shape_read(s);
    int threads = lt_threads_for(s.n, LT_PARALLEL_GRAIN);
    #pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int64_t begin, end;
        thread_range(s.n, &begin, &end);
        adam_dispatch(param + begin, exp_avg + begin, exp_avg_sq + begin, vmax ? vmax + begin : NULL, grad + begin,
                      end - begin, &s);
    }
    return 0;
}

const lt_adam_impl lt_adam_cpu = {.base = {.name = "cpu", .supports = lt_supports_fp32}, .step = adam_step_cpu};

/* ---- norms for gradient clipping ---- */

/* Sums of squares (square = true) or of absolute values: LANES independent float sums, which the
 * compiler keeps in one vector register, added into a double every BLOCK elements so that rounding
 * stays at float's level for a block, not for the whole tensor. */
#define LANES 16
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

#define PART_BLOCKS 8  /* blocks of a part at least: LT_PARALLEL_GRAIN elements */

/* The tensor is cut into parts of whole blocks, fixed by its size (parallel.h); each part's sum runs in
 * block order, and the parts' sums are added in part order: the same result at any thread count. */
static int norm_accumulate_cpu(lt_kernel_ctx *ctx, double *acc, const float *x, lt_norm_shape s) {
    int64_t n = s.n, blocks = (n + BLOCK - 1) / BLOCK;
    double sums[LT_MAX_PARTS];
    int parts = lt_parts_for(blocks, PART_BLOCKS), threads = lt_threads_for_parts(parts, n, LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int p = 0; p < parts; p++) {
        int64_t first, last;
        lt_split_range(blocks, parts, p, &first, &last);
        int64_t begin = first * BLOCK, end = last * BLOCK < n ? last * BLOCK : n;
        sums[p] = begin < end ? norm_part(x + begin, end - begin, s.norm_type) : 0.0;
    }
    for (int p = 0; p < parts; p++) *acc = combine(*acc, sums[p], s.norm_type);
    return 0;
}

const lt_norm_impl lt_norm_cpu = {.base = {.name = "cpu", .supports = lt_supports_fp32},
                                  .accumulate = norm_accumulate_cpu};
