/* Softmax, log-softmax and the losses. Sums run in double; log-softmax subtracts the row maximum, so
 * large logits neither overflow nor lose the small probabilities. */
#include <math.h>

#include "../iter.h"
#include "nn.h"

/* Visits every line of t along dim: fn(pointers to the line's first element in each tensor). */
typedef void (*line_fn)(float **p, const int64_t *stride, int64_t n, void *ctx);

static void for_each_line(int ntensors, const lt_tensor *const *ts, int dim, line_fn fn, void *ctx) {
    lt_tensor views[3];
    const lt_tensor *vp[3];
    int64_t stride[3];
    for (int k = 0; k < ntensors; k++) {
        views[k] = *ts[k];
        views[k].size[dim] = 1;  /* the iterator walks line starts; the callback walks the line */
        vp[k] = &views[k];
        stride[k] = ts[k]->stride[dim];
    }
    int64_t n = ts[0]->size[dim];
    if (n == 0 || lt_numel(vp[0]) == 0) return;
    lt_iter it;
    lt_iter_init(&it, ntensors, vp);
    for (int64_t r = 0; r < it.rows; r++) {
        float *row[3];
        lt_iter_row(&it, r, row);
        for (int64_t i = 0; i < it.row_len; i++) {
            float *p[3];
            for (int k = 0; k < ntensors; k++) p[k] = row[k] + i * it.stride[k][it.ndim - 1];
            fn(p, stride, n, ctx);
        }
    }
}

static void softmax_line(float **p, const int64_t *st, int64_t n, void *ctx) {
    bool log_mode = *(bool *)ctx;
    float *y = p[0];
    const float *x = p[1];
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = fmaxf(mx, x[i * st[1]]);
    if (isinf(mx) && mx < 0) mx = 0;  /* all -inf: avoid -inf - -inf */
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += exp((double)x[i * st[1]] - mx);
    if (log_mode) {
        double lse = mx + log(sum);
        for (int64_t i = 0; i < n; i++) y[i * st[0]] = (float)(x[i * st[1]] - lse);
    } else {
        for (int64_t i = 0; i < n; i++) y[i * st[0]] = (float)(exp((double)x[i * st[1]] - mx) / sum);
    }
}

static void softmax_grad_line(float **p, const int64_t *st, int64_t n, void *ctx) {
    bool log_mode = *(bool *)ctx;
    float *d = p[0];
    const float *g = p[1], *y = p[2];
    double acc = 0;
    if (log_mode) {
        for (int64_t i = 0; i < n; i++) acc += g[i * st[1]];
        for (int64_t i = 0; i < n; i++) d[i * st[0]] = (float)(g[i * st[1]] - exp(y[i * st[2]]) * acc);
    } else {
        for (int64_t i = 0; i < n; i++) acc += (double)g[i * st[1]] * y[i * st[2]];
        for (int64_t i = 0; i < n; i++) d[i * st[0]] = (float)(y[i * st[2]] * (g[i * st[1]] - acc));
    }
}

int lt_softmax_forward(lt_tensor *out, const lt_tensor *input, int dim, bool log, lt_error *err) {
    if (dim < 0 || dim >= input->ndim) return lt_fail(err, "dimension %d out of range for a %d-D tensor", dim + 1, input->ndim);
    if (lt_resize_like(out, input, err)) return -1;
    const lt_tensor *ts[2] = {out, input};
    for_each_line(2, ts, dim, softmax_line, &log);
    return 0;
}

int lt_softmax_backward(lt_tensor *grad_input, const lt_tensor *grad_output, const lt_tensor *output, int dim,
                        bool log, lt_error *err) {
    char a[160], b[160];
    if (!lt_same_shape(grad_output, output))
        return lt_fail(err, "grad_output %s must have the output's shape %s", lt_shape_str(grad_output, a, sizeof a),
                       lt_shape_str(output, b, sizeof b));
    if (dim < 0 || dim >= output->ndim) return lt_fail(err, "dimension %d out of range for a %d-D tensor", dim + 1, output->ndim);
    if (lt_resize_like(grad_input, output, err)) return -1;
    const lt_tensor *ts[3] = {grad_input, grad_output, output};
    for_each_line(3, ts, dim, softmax_grad_line, &log);
    return 0;
}

/* ---- classification losses ---- */

static int check_class_inputs(const lt_tensor *scores, const lt_tensor *target, const lt_class_loss_params *p,
                              lt_error *err) {
    char a[160], b[160];
    if (scores->ndim != 2)
        return lt_fail(err, "expected a 2-D input (batch x classes), got %s", lt_shape_str(scores, a, sizeof a));
    if (target->ndim != 1 || target->size[0] != scores->size[0])
        return lt_fail(err, "target must be a vector of %lld class indices, got %s (input %s)", (long long)scores->size[0],
                       lt_shape_str(target, a, sizeof a), lt_shape_str(scores, b, sizeof b));
    if (p->weight && (p->weight->ndim != 1 || p->weight->size[0] != scores->size[1]))
        return lt_fail(err, "class weights must be a vector of %lld elements, got %s", (long long)scores->size[1],
                       lt_shape_str(p->weight, a, sizeof a));
    if (!(p->label_smoothing >= 0 && p->label_smoothing <= 1))
        return lt_fail(err, "label_smoothing must be between 0 and 1, got %g", p->label_smoothing);
    return 0;
}

/* Reads target i as a 0-based class (targets hold 1-based classes: Lua's convention). Returns -1 for
 * the ignored class, -2 (with err filled) for an invalid one. */
static int64_t class_of(const lt_tensor *target, int64_t i, int64_t classes, int64_t ignore_index, lt_error *err) {
    float v = target->storage->data[target->offset + i * target->stride[0]];
    if (v != floorf(v) || !(v >= 1 && v <= (float)classes)) {
        if (ignore_index >= 0 && v == (float)(ignore_index + 1)) return -1;
        lt_fail(err, "target %g at position %lld is not a class index in 1..%lld", v, (long long)i + 1, (long long)classes);
        return -2;
    }
    int64_t k = (int64_t)v - 1;
    return k == ignore_index ? -1 : k;
}

static float weight_of(const lt_class_loss_params *p, int64_t k) {
    return p->weight ? p->weight->storage->data[p->weight->offset + k * p->weight->stride[0]] : 1.0f;
}

/* The normalisers of mean reduction: the summed weights of the counted (not ignored) targets, as
 * PyTorch's nll_loss divides by, and their number. */
static int weight_total(const lt_tensor *target, int64_t classes, const lt_class_loss_params *p, double *total,
                        int64_t *counted, lt_error *err) {
    double t = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < target->size[0]; i++) {
        int64_t k = class_of(target, i, classes, p->ignore_index, err);
        if (k == -2) return -1;
        if (k >= 0) {
            t += weight_of(p, k);
            n++;
        }
    }
    *total = t;
    *counted = n;
    return 0;
}

/* Loss of log-probabilities lp (B x K): (1 - e) * nll + e / K * smooth, PyTorch 1.13's definition,
 * where smooth_i = -sum_k w_k lp_ik. With mean reduction nll is normalised by the counted weights, and
 * smooth by them too when weights are given, by the number of counted samples otherwise. */
static int class_loss(double *loss, lt_tensor *losses, const lt_tensor *lp, const lt_tensor *target,
                      lt_class_loss_params p, lt_error *err) {
    int64_t B = lp->size[0], K = lp->size[1];
    double eps = p.label_smoothing, total_w;
    int64_t counted;
    if (weight_total(target, K, &p, &total_w, &counted, err)) return -1;
    int64_t lsize[1] = {B};
    if (lt_tensor_resize(losses, 1, lsize, err)) return -1;
    float *li = B ? lt_data(losses) : NULL;
    const float *lpd = lt_numel(lp) ? lt_data(lp) : NULL;
    double nll_sum = 0, smooth_sum = 0;
    for (int64_t i = 0; i < B; i++) {
        int64_t y = class_of(target, i, K, p.ignore_index, err);
        if (y < 0) { li[i] = 0; continue; }
        const float *row = lpd + i * K;
        double nll = -(double)weight_of(&p, y) * row[y], smooth = 0;
        if (eps > 0)
            for (int64_t k = 0; k < K; k++) smooth -= (double)weight_of(&p, k) * row[k];
        nll_sum += nll;
        smooth_sum += smooth;
        li[i] = (float)((1 - eps) * nll + eps / (double)K * smooth);
    }
    switch (p.reduction) {
    case LT_REDUCE_MEAN:
        *loss = (1 - eps) * nll_sum / total_w + eps / (double)K * smooth_sum / (p.weight ? total_w : (double)counted);
        break;
    case LT_REDUCE_SUM: *loss = (1 - eps) * nll_sum + eps / (double)K * smooth_sum; break;
    case LT_REDUCE_NONE: *loss = NAN; break;
    }
    return 0;
}

/* d loss / d log-probabilities for one row, scaled: used by NLL directly and, through the softmax
 * Jacobian, by cross entropy. */
static int class_loss_backward(lt_tensor *grad_input, const lt_tensor *lp, const lt_tensor *target,
                               lt_class_loss_params p, const lt_tensor *grad_output, double scale, bool through_softmax,
                               lt_error *err) {
    int64_t B = lp->size[0], K = lp->size[1];
    double eps = p.label_smoothing, total_w;
    int64_t counted;
    if (weight_total(target, K, &p, &total_w, &counted, err)) return -1;
    if (p.reduction == LT_REDUCE_NONE && (!grad_output || grad_output->ndim != 1 || grad_output->size[0] != B))
        return lt_fail(err, "with reduction 'none' the gradient must be a vector of %lld per-sample values", (long long)B);
    if (lt_tensor_resize(grad_input, 2, lp->size, err)) return -1;
    if (B * K == 0) return 0;
    double nll_scale = p.reduction == LT_REDUCE_MEAN ? 1.0 / total_w : 1.0;
    double smooth_scale = p.reduction == LT_REDUCE_MEAN ? 1.0 / (p.weight ? total_w : (double)counted) : 1.0;
    double wsum = 0;
    for (int64_t k = 0; k < K; k++) wsum += weight_of(&p, k);
    float *gi = lt_data(grad_input);
    const float *lpd = lt_data(lp);
    for (int64_t i = 0; i < B; i++) {
        float *g = gi + i * K;
        const float *row = lpd + i * K;
        int64_t y = class_of(target, i, K, p.ignore_index, err);
        if (y < 0) {
            for (int64_t k = 0; k < K; k++) g[k] = 0;
            continue;
        }
        double s = p.reduction == LT_REDUCE_NONE ? grad_output->storage->data[grad_output->offset + i * grad_output->stride[0]]
                                                 : scale;
        double a = (1 - eps) * weight_of(&p, y) * nll_scale * s;  /* coefficient of -lp[y] */
        double b = eps / (double)K * smooth_scale * s;            /* of -sum_k w_k lp[k] */
        for (int64_t k = 0; k < K; k++) {
            double v;
            if (through_softmax)  /* d(-lp[j])/dz_k = p_k - [j == k] */
                v = a * exp(row[k]) + b * (wsum * exp(row[k]) - weight_of(&p, k));
            else
                v = -b * weight_of(&p, k);
            if (k == y) v -= a;
            g[k] = (float)v;
        }
    }
    return 0;
}

int lt_cross_entropy_forward(double *loss, lt_tensor *losses, lt_tensor *log_probs, const lt_tensor *logits,
                             const lt_tensor *target, lt_class_loss_params p, lt_error *err) {
    if (check_class_inputs(logits, target, &p, err)) return -1;
    if (lt_tensor_resize(log_probs, 2, logits->size, err) || lt_softmax_forward(log_probs, logits, 1, true, err)) return -1;
    return class_loss(loss, losses, log_probs, target, p, err);
}

int lt_cross_entropy_backward(lt_tensor *grad_input, const lt_tensor *log_probs, const lt_tensor *target,
                              lt_class_loss_params p, const lt_tensor *grad_output, double scale, lt_error *err) {
    if (check_class_inputs(log_probs, target, &p, err)) return -1;
    return class_loss_backward(grad_input, log_probs, target, p, grad_output, scale, true, err);
}

int lt_nll_loss_forward(double *loss, lt_tensor *losses, const lt_tensor *log_probs, const lt_tensor *target,
                        lt_class_loss_params p, lt_error *err) {
    p.label_smoothing = 0;
    if (check_class_inputs(log_probs, target, &p, err)) return -1;
    lt_tensor lp = {0};
    if (lt_contiguous(&lp, log_probs, err)) return -1;
    int rc = class_loss(loss, losses, &lp, target, p, err);
    lt_tensor_release(&lp);
    return rc;
}

int lt_nll_loss_backward(lt_tensor *grad_input, const lt_tensor *log_probs, const lt_tensor *target,
                         lt_class_loss_params p, const lt_tensor *grad_output, double scale, lt_error *err) {
    p.label_smoothing = 0;
    if (check_class_inputs(log_probs, target, &p, err)) return -1;
    return class_loss_backward(grad_input, log_probs, target, p, grad_output, scale, false, err);
}

/* ---- regression ---- */

static int check_same(const lt_tensor *input, const lt_tensor *target, lt_error *err) {
    char a[160], b[160];
    if (!lt_same_shape(input, target))
        return lt_fail(err, "target %s must have the input's shape %s", lt_shape_str(target, a, sizeof a),
                       lt_shape_str(input, b, sizeof b));
    return 0;
}

int lt_mse_loss_forward(double *loss, lt_tensor *losses, const lt_tensor *input, const lt_tensor *target,
                        lt_reduction reduction, lt_error *err) {
    if (check_same(input, target, err)) return -1;
    if (lt_tensor_resize(losses, input->ndim, input->size, err)) return -1;
    const lt_tensor *ts[3] = {losses, input, target};
    lt_iter it;
    lt_iter_init(&it, 3, ts);
    double sum = 0;
    for (int64_t r = 0; r < it.rows; r++) {
        float *p[3];
        lt_iter_row(&it, r, p);
        for (int64_t i = 0; i < it.row_len; i++) {
            float d = p[1][i * it.stride[1][it.ndim - 1]] - p[2][i * it.stride[2][it.ndim - 1]];
            p[0][i * it.stride[0][it.ndim - 1]] = d * d;
            sum += (double)d * d;
        }
    }
    int64_t n = lt_numel(input);
    *loss = reduction == LT_REDUCE_MEAN ? sum / (double)n : reduction == LT_REDUCE_SUM ? sum : NAN;
    return 0;
}

int lt_mse_loss_backward(lt_tensor *grad_input, const lt_tensor *input, const lt_tensor *target,
                         lt_reduction reduction, const lt_tensor *grad_output, double scale, lt_error *err) {
    if (check_same(input, target, err)) return -1;
    if (reduction == LT_REDUCE_NONE && (!grad_output || !lt_same_shape(grad_output, input)))
        return lt_fail(err, "with reduction 'none' the gradient must have the input's shape");
    if (lt_tensor_resize(grad_input, input->ndim, input->size, err)) return -1;
    int64_t n = lt_numel(input);
    double k = 2.0 * scale / (reduction == LT_REDUCE_MEAN ? (double)(n ? n : 1) : 1.0);
    const lt_tensor *ts[3] = {grad_input, input, target};
    lt_iter it;
    lt_iter_init(&it, 3, ts);
    const float *go = NULL;
    lt_tensor g = {0};
    if (reduction == LT_REDUCE_NONE) {
        if (lt_contiguous(&g, grad_output, err)) return -1;
        go = n ? lt_data(&g) : NULL;
    }
    int64_t flat = 0;  /* grad_input is contiguous: its rows are consecutive */
    for (int64_t r = 0; r < it.rows; r++) {
        float *p[3];
        lt_iter_row(&it, r, p);
        for (int64_t i = 0; i < it.row_len; i++, flat++) {
            double d = (double)p[1][i * it.stride[1][it.ndim - 1]] - p[2][i * it.stride[2][it.ndim - 1]];
            p[0][i * it.stride[0][it.ndim - 1]] = (float)(k * d * (go ? go[flat] : 1.0));
        }
    }
    lt_tensor_release(&g);
    return 0;
}
