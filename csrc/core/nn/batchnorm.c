/* Batch normalisation over (N, C, ...) inputs, per channel C. A channel's elements are N runs of
 * `inner` contiguous floats (inner = product of the trailing sizes), found through the batch and channel
 * strides, so both NCHW tensors and the batch-folded layout of nn.h work without copies. */
#include <math.h>

#include "../parallel.h"
#include "../simd.h"
#include "batchnorm_channel.h"

static bool runs_contiguous(const lt_tensor *t) {
    int64_t st = 1;
    for (int d = t->ndim - 1; d >= 2; d--) {
        if (t->size[d] != 1 && t->stride[d] != st) return false;
        st *= t->size[d];
    }
    return true;
}

channel_view lt_bn_view(const lt_tensor *t) {
    channel_view v = {t->size[0], t->size[1], 1, t->stride[0], t->stride[1]};
    for (int d = 2; d < t->ndim; d++) v.inner *= t->size[d];
    return v;
}

/* Partial sums in LANES independent accumulators: a float reduction the compiler can vectorise
 * without reassociating (we build without -ffast-math). */
#define LANES 16

/* Sum and sum of squares of one channel's deviations from `shift` (its first element, which keeps
 * E[x^2] - E[x]^2 from cancelling when the mean is large next to the spread). Runs are summed in float
 * lanes, the runs' totals in double. */
LT_SIMD_CLONES
static void channel_moments(const float *x, channel_view v, float shift, double *sum, double *sumsq) {
    double s = 0, q = 0;
    if (v.inner == 1) {  /* (N, C) inputs: one element per sample, a plain strided loop */
        for (int64_t b = 0; b < v.n; b++) {
            double d = (double)x[b * v.sn] - shift;
            s += d;
            q += d * d;
        }
        *sum = s;
        *sumsq = q;
        return;
    }
    for (int64_t b = 0; b < v.n; b++) {
        const float *run = x + b * v.sn;
        float ls[LANES] = {0}, lq[LANES] = {0};
        int64_t i = 0;
        for (; i + LANES <= v.inner; i += LANES)
            for (int k = 0; k < LANES; k++) {
                float d = run[i + k] - shift;
                ls[k] += d;
                lq[k] += d * d;
            }
        for (; i < v.inner; i++) {
            float d = run[i] - shift;
            ls[0] += d;
            lq[0] += d * d;
        }
        for (int k = 0; k < LANES; k++) {
            s += ls[k];
            q += lq[k];
        }
    }
    *sum = s;
    *sumsq = q;
}

/* y = x * scale + shift over one channel */
LT_SIMD_CLONES
static void channel_affine(float *y, channel_view vy, const float *x, channel_view vx, float scale, float shift) {
    if (vx.inner == 1) {
        for (int64_t b = 0; b < vx.n; b++) y[b * vy.sn] = x[b * vx.sn] * scale + shift;
        return;
    }
    for (int64_t b = 0; b < vx.n; b++) {
        const float *in = x + b * vx.sn;
        float *out = y + b * vy.sn;
        for (int64_t i = 0; i < vx.inner; i++) out[i] = in[i] * scale + shift;
    }
}

/* sum(dy) and sum(dy * (x - mean)) over one channel, in lanes as channel_moments */
LT_SIMD_CLONES
static void channel_grad_sums(const float *dy, channel_view vg, const float *x, channel_view vx, float mean,
                              double *sum_dy, double *sum_dy_xc) {
    double s = 0, q = 0;
    if (vx.inner == 1) {
        for (int64_t b = 0; b < vx.n; b++) {
            s += dy[b * vg.sn];
            q += (double)dy[b * vg.sn] * (x[b * vx.sn] - mean);
        }
        *sum_dy = s;
        *sum_dy_xc = q;
        return;
    }
    for (int64_t b = 0; b < vx.n; b++) {
        const float *g = dy + b * vg.sn, *in = x + b * vx.sn;
        float ls[LANES] = {0}, lq[LANES] = {0};
        int64_t i = 0;
        for (; i + LANES <= vx.inner; i += LANES)
            for (int k = 0; k < LANES; k++) {
                ls[k] += g[i + k];
                lq[k] += g[i + k] * (in[i + k] - mean);
            }
        for (; i < vx.inner; i++) {
            ls[0] += g[i];
            lq[0] += g[i] * (in[i] - mean);
        }
        for (int k = 0; k < LANES; k++) {
            s += ls[k];
            q += lq[k];
        }
    }
    *sum_dy = s;
    *sum_dy_xc = q;
}

/* dx = a * dy + b * (x - mean) + c over one channel */
LT_SIMD_CLONES
static void channel_grad_input(float *dx, channel_view vd, const float *dy, channel_view vg, const float *x,
                               channel_view vx, float mean, float a, float b, float c) {
    if (vx.inner == 1) {
        for (int64_t n = 0; n < vx.n; n++) dx[n * vd.sn] = a * dy[n * vg.sn] + b * (x[n * vx.sn] - mean) + c;
        return;
    }
    for (int64_t n = 0; n < vx.n; n++) {
        float *d = dx + n * vd.sn;
        const float *g = dy + n * vg.sn, *in = x + n * vx.sn;
        for (int64_t i = 0; i < vx.inner; i++) d[i] = a * g[i] + b * (in[i] - mean) + c;
    }
}

int lt_bn_check_vector(const char *what, const lt_tensor *t, int64_t c, lt_error *err) {
    char a[160];
    if (t && (t->ndim != 1 || t->size[0] != c || !lt_is_contiguous(t)))
        return lt_fail(err, "%s must be a vector of %lld elements, got %s", what, (long long)c, lt_shape_str(t, a, sizeof a));
    return 0;
}

int lt_bn_with_runs(lt_tensor *view, const lt_tensor *t, lt_error *err) {
    if (runs_contiguous(t)) {
        lt_tensor_share(view, t);
        return 0;
    }
    return lt_contiguous(view, t, err);
}

bn_affine lt_bn_channel_forward(const float *x, channel_view v, int64_t c, int64_t count, const float *weight,
                                const float *bias, float *running_mean, float *running_var, lt_batchnorm_params p) {
    double mean, var;
    if (p.training) {
        double sum, sumsq;
        float shift = x[0];
        channel_moments(x, v, shift, &sum, &sumsq);
        double dmean = sum / (double)count;
        mean = shift + dmean;
        var = sumsq / (double)count - dmean * dmean;
        if (var < 0) var = 0;
        if (running_mean) {
            double factor = p.momentum >= 0 ? p.momentum : 1.0 / (double)(p.num_batches_tracked > 0 ? p.num_batches_tracked : 1);
            running_mean[c] = (float)((1 - factor) * running_mean[c] + factor * mean);
            running_var[c] = (float)((1 - factor) * running_var[c] + factor * var * (double)count / (double)(count - 1));
        }
    } else {
        mean = running_mean[c];
        var = running_var[c];
    }
    return lt_bn_affine((float)mean, (float)(1.0 / sqrt(var + p.eps)), weight, bias, c);
}

bn_affine lt_bn_affine(float mean, float invstd, const float *weight, const float *bias, int64_t c) {
    double scale = (weight ? weight[c] : 1.0) * (double)invstd;
    double shift = (bias ? bias[c] : 0.0) - (double)mean * scale;
    return (bn_affine){mean, invstd, (float)scale, (float)shift};
}

bn_grad lt_bn_grad_coefficients(double sum_dy, double sum_dy_xc, int64_t count, float gamma, float invstd,
                                bool training) {
    double k = (double)gamma * invstd;
    if (!training) return (bn_grad){(float)k, 0.0f, 0.0f};
    /* dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)) */
    double dmean = sum_dy / (double)count, dvar = sum_dy_xc / (double)count * invstd * invstd;
    return (bn_grad){(float)k, (float)(-k * dvar), (float)(-k * dmean)};
}

int lt_batchnorm_forward(lt_tensor *out, lt_tensor *save_mean, lt_tensor *save_invstd, const lt_tensor *input,
                         const lt_tensor *weight, const lt_tensor *bias, lt_tensor *running_mean,
                         lt_tensor *running_var, lt_batchnorm_params p, lt_error *err) {
    char a[160];
    if (input->ndim < 2) return lt_fail(err, "expected an input of at least 2 dimensions (batch x channels ...), got %s",
                                        lt_shape_str(input, a, sizeof a));
    int64_t C = input->size[1];
    if (lt_bn_check_vector("weight", weight, C, err) || lt_bn_check_vector("bias", bias, C, err) ||
        lt_bn_check_vector("running_mean", running_mean, C, err) || lt_bn_check_vector("running_var", running_var, C, err))
        return -1;
    int64_t count = lt_numel(input) / (C ? C : 1);
    if (p.training && count <= 1)
        return lt_fail(err, "expected more than 1 value per channel when training, got input of size %s",
                       lt_shape_str(input, a, sizeof a));
    if (!p.training && (!running_mean || !running_var))
        return lt_fail(err, "evaluation needs running statistics (track_running_stats) or training mode");
    lt_tensor x = {0};
    if (lt_bn_with_runs(&x, input, err)) return -1;
    int64_t csize[1] = {C};
    int rc = -1;
    if (lt_resize_like(out, &x, err) || lt_tensor_resize(save_mean, 1, csize, err) ||
        lt_tensor_resize(save_invstd, 1, csize, err))
        goto done;
    if (lt_numel(&x) == 0) { rc = 0; goto done; }
    channel_view vx = lt_bn_view(&x), vy = lt_bn_view(out);
    const float *xd = lt_data(&x);
    float *yd = lt_data(out), *sm = lt_data(save_mean), *si = lt_data(save_invstd);
    const float *w = weight ? lt_data(weight) : NULL, *bs = bias ? lt_data(bias) : NULL;
    float *rm = running_mean ? lt_data(running_mean) : NULL, *rv = running_var ? lt_data(running_var) : NULL;
    int threads = lt_threads_for(lt_numel(&x), LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t c = 0; c < C; c++) {
        bn_affine t = lt_bn_channel_forward(xd + c * vx.sc, vx, c, count, w, bs, rm, rv, p);
        sm[c] = t.mean;
        si[c] = t.invstd;
        channel_affine(yd + c * vy.sc, vy, xd + c * vx.sc, vx, t.scale, t.shift);
    }
    rc = 0;
done:
    lt_tensor_release(&x);
    return rc;
}

int lt_batchnorm_backward(lt_tensor *grad_input, lt_tensor *grad_weight, lt_tensor *grad_bias,
                          const lt_tensor *grad_output, const lt_tensor *input, const lt_tensor *weight,
                          const lt_tensor *save_mean, const lt_tensor *save_invstd, bool training, lt_error *err) {
    char a[160], b[160];
    if (input->ndim < 2 || !lt_same_shape(input, grad_output))
        return lt_fail(err, "grad_output %s must have the input's shape %s", lt_shape_str(grad_output, a, sizeof a),
                       lt_shape_str(input, b, sizeof b));
    int64_t C = input->size[1];
    if (lt_bn_check_vector("weight", weight, C, err) || lt_bn_check_vector("grad_weight", grad_weight, C, err) ||
        lt_bn_check_vector("grad_bias", grad_bias, C, err) || lt_bn_check_vector("saved mean", save_mean, C, err) ||
        lt_bn_check_vector("saved invstd", save_invstd, C, err))
        return -1;
    lt_tensor x = {0}, g = {0};
    int rc = -1;
    if (lt_bn_with_runs(&x, input, err) || lt_bn_with_runs(&g, grad_output, err)) goto done;
    if (grad_input && lt_resize_like(grad_input, &x, err)) goto done;
    if (lt_numel(&x) == 0) { rc = 0; goto done; }
    int64_t count = lt_numel(&x) / C;
    channel_view vx = lt_bn_view(&x), vg = lt_bn_view(&g), vd = grad_input ? lt_bn_view(grad_input) : vx;
    const float *xd = lt_data(&x), *gd = lt_data(&g), *sm = lt_data(save_mean), *si = lt_data(save_invstd);
    const float *w = weight ? lt_data(weight) : NULL;
    float *gw = grad_weight ? lt_data(grad_weight) : NULL, *gb = grad_bias ? lt_data(grad_bias) : NULL;
    float *dx = grad_input ? lt_data(grad_input) : NULL;
    int threads = lt_threads_for(lt_numel(&x), LT_PARALLEL_GRAIN);
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t c = 0; c < C; c++) {
        double sum_dy, sum_dy_xc;
        float mean = sm[c], invstd = si[c], gamma = w ? w[c] : 1.0f;
        channel_grad_sums(gd + c * vg.sc, vg, xd + c * vx.sc, vx, mean, &sum_dy, &sum_dy_xc);
        if (gw) gw[c] += (float)(sum_dy_xc * invstd);
        if (gb) gb[c] += (float)sum_dy;
        if (!dx) continue;
        bn_grad k = lt_bn_grad_coefficients(sum_dy, sum_dy_xc, count, gamma, invstd, training);
        channel_grad_input(dx + c * vd.sc, vd, gd + c * vg.sc, vg, xd + c * vx.sc, vx, mean, k.a, k.b, k.c);
    }
    rc = 0;
done:
    lt_tensor_release(&x);
    lt_tensor_release(&g);
    return rc;
}
