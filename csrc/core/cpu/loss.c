/* The CPU losses: cross entropy and NLL over batch x classes scores, mean squared error. Sums run in
 * double. */
#include <math.h>

#include "softmax.h"

/* ---- classification ---- */

/* Target i as a 0-based class (targets hold 1-based classes: Lua's convention). Returns -1 for the
 * ignored class, -2 (with err filled) for an invalid one. */
static int64_t class_of(const float *target, int64_t i, const lt_class_loss_shape *s, lt_error *err) {
    float v = target[i];
    if (v != floorf(v) || !(v >= 1 && v <= (float)s->classes)) {
        if (s->ignore_index >= 0 && v == (float)(s->ignore_index + 1)) return -1;
        lt_fail(err, "target %g at position %lld is not a class index in 1..%lld", v, (long long)i + 1,
                (long long)s->classes);
        return -2;
    }
    int64_t k = (int64_t)v - 1;
    return k == s->ignore_index ? -1 : k;
}

static float weight_of(const float *weight, int64_t k) { return weight ? weight[k] : 1.0f; }

/* The normalisers of mean reduction: the summed weights of the counted (not ignored) targets, as
 * PyTorch's nll_loss divides by, and their number. */
static int weight_total(const float *target, const float *weight, const lt_class_loss_shape *s, double *total,
                        int64_t *counted, lt_error *err) {
    double t = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < s->batch; i++) {
        int64_t k = class_of(target, i, s, err);
        if (k == -2) return -1;
        if (k >= 0) {
            t += weight_of(weight, k);
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
static int class_loss(float *loss, float *losses, const float *lp, const float *target, const float *weight,
                      lt_class_loss_shape s, lt_error *err) {
    int64_t B = s.batch, K = s.classes;
    double eps = s.label_smoothing, total_w;
    int64_t counted;
    if (weight_total(target, weight, &s, &total_w, &counted, err)) return -1;
    double nll_sum = 0, smooth_sum = 0;
    for (int64_t i = 0; i < B; i++) {
        int64_t y = class_of(target, i, &s, err);
        if (y < 0) { losses[i] = 0; continue; }
        const float *row = lp + i * K;
        double nll = -(double)weight_of(weight, y) * row[y], smooth = 0;
        if (eps > 0)
            for (int64_t k = 0; k < K; k++) smooth -= (double)weight_of(weight, k) * row[k];
        nll_sum += nll;
        smooth_sum += smooth;
        losses[i] = (float)((1 - eps) * nll + eps / (double)K * smooth);
    }
    if (s.reduction == LT_REDUCE_MEAN)
        *loss = (float)((1 - eps) * nll_sum / total_w + eps / (double)K * smooth_sum / (weight ? total_w : (double)counted));
    else if (s.reduction == LT_REDUCE_SUM)
        *loss = (float)((1 - eps) * nll_sum + eps / (double)K * smooth_sum);
    return 0;
}

/* d loss / d log-probabilities, scaled: used by NLL directly and, through the softmax Jacobian, by cross
 * entropy. */
static int class_loss_backward(float *grad, const float *lp, const float *target, const float *weight,
                               const float *dout, const float *dscale, double scale, lt_class_loss_shape s,
                               bool through_softmax, lt_error *err) {
    int64_t B = s.batch, K = s.classes;
    double eps = s.label_smoothing, total_w;
    int64_t counted;
    if (weight_total(target, weight, &s, &total_w, &counted, err)) return -1;
    if (B * K == 0) return 0;
    double nll_scale = s.reduction == LT_REDUCE_MEAN ? 1.0 / total_w : 1.0;
    double smooth_scale = s.reduction == LT_REDUCE_MEAN ? 1.0 / (weight ? total_w : (double)counted) : 1.0;
    double wsum = 0;
    for (int64_t k = 0; k < K; k++) wsum += weight_of(weight, k);
    if (dscale) scale *= *dscale;
    for (int64_t i = 0; i < B; i++) {
        float *g = grad + i * K;
        const float *row = lp + i * K;
        int64_t y = class_of(target, i, &s, err);
        if (y < 0) {
            for (int64_t k = 0; k < K; k++) g[k] = 0;
            continue;
        }
        double sc = s.reduction == LT_REDUCE_NONE ? dout[i] : scale;
        double a = (1 - eps) * weight_of(weight, y) * nll_scale * sc;  /* coefficient of -lp[y] */
        double b = eps / (double)K * smooth_scale * sc;                /* of -sum_k w_k lp[k] */
        for (int64_t k = 0; k < K; k++) {
            double v;
            if (through_softmax)  /* d(-lp[j])/dz_k = p_k - [j == k] */
                v = a * exp(row[k]) + b * (wsum * exp(row[k]) - weight_of(weight, k));
            else
                v = -b * weight_of(weight, k);
            if (k == y) v -= a;
            g[k] = (float)v;
        }
    }
    return 0;
}

static int cross_entropy_forward(lt_kernel_ctx *ctx, float *loss, float *losses, float *log_probs,
                                 const float *scores, const float *target, const float *weight, lt_class_loss_shape s) {
    if (s.batch * s.classes > 0) lt_softmax_forward_cpu(log_probs, scores, (lt_softmax_shape){s.batch, s.classes, 1, true});
    return class_loss(loss, losses, log_probs, target, weight, s, ctx->err);
}

static int cross_entropy_backward(lt_kernel_ctx *ctx, float *dinp, const float *log_probs, const float *target,
                                  const float *weight, const float *dout, const float *dscale, double scale,
                                  lt_class_loss_shape s) {
    return class_loss_backward(dinp, log_probs, target, weight, dout, dscale, scale, s, true, ctx->err);
}

static int nll_loss_forward(lt_kernel_ctx *ctx, float *loss, float *losses, float *log_probs, const float *scores,
                            const float *target, const float *weight, lt_class_loss_shape s) {
    return class_loss(loss, losses, log_probs, target, weight, s, ctx->err);
}

static int nll_loss_backward(lt_kernel_ctx *ctx, float *dinp, const float *log_probs, const float *target,
                             const float *weight, const float *dout, const float *dscale, double scale,
                             lt_class_loss_shape s) {
    return class_loss_backward(dinp, log_probs, target, weight, dout, dscale, scale, s, false, ctx->err);
}

const lt_class_loss_impl lt_cross_entropy_cpu = {
    .base = {.name = "cpu", .supports = lt_supports_fp32},
    .forward = cross_entropy_forward,
    .backward = cross_entropy_backward,
};

const lt_class_loss_impl lt_nll_loss_cpu = {
    .base = {.name = "cpu", .supports = lt_supports_fp32},
    .forward = nll_loss_forward,
    .backward = nll_loss_backward,
};

/* ---- regression ---- */

static int mse_forward(lt_kernel_ctx *ctx, float *loss, float *losses, const float *in, const float *target,
                       lt_mse_shape s) {
    double sum = 0;
    for (int64_t i = 0; i < s.n; i++) {
        float d = in[i] - target[i];
        losses[i] = d * d;
        sum += (double)d * d;
    }
    if (s.reduction != LT_REDUCE_NONE) *loss = (float)(s.reduction == LT_REDUCE_MEAN ? sum / (double)s.n : sum);
    return 0;
}

static int mse_backward(lt_kernel_ctx *ctx, float *dinp, const float *in, const float *target, const float *dout,
                        const float *dscale, double scale, lt_mse_shape s) {
    if (dscale) scale *= *dscale;
    double k = 2.0 * scale / (s.reduction == LT_REDUCE_MEAN ? (double)(s.n ? s.n : 1) : 1.0);
    for (int64_t i = 0; i < s.n; i++) {
        double d = (double)in[i] - target[i];
        dinp[i] = (float)(k * d * (dout ? dout[i] : 1.0));
    }
    return 0;
}

const lt_mse_impl lt_mse_loss_cpu = {
    .base = {.name = "cpu", .supports = lt_supports_fp32},
    .forward = mse_forward,
    .backward = mse_backward,
};
