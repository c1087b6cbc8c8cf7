/* The fake device's implementations (fake_device.c): the host's own, from the copy of the static core
 * linked into this module, each wrapped to turn the fake's device pointers into host ones, and to be
 * recorded instead of run while a CUDA graph is captured (FAKE_DEFERRED_OP, fake_graph.c). So the
 * specs can train a whole model "on the GPU" without one and compare it with the host bit for bit,
 * while the core's fronts still see pointers that fault if they read them. Dropout draws from this
 * module's generator, seeded by cuda.manual_seed, not from the core's. */
#include "fake.h"

#include "../core/base/blas.h"
#include "../core/nn/ops.h"
#include "../core/optim/optim.h"
#include "../core/optim/optim_ops.h"
#include "../core/base/rng.h"

#define H FAKE_HOST

/* ---- layers ---- */

static bool conv2d_supports(const lt_impl *self, const void *s, lt_precision p) {
    return lt_conv2d_cpu.base.supports(&lt_conv2d_cpu.base, s, p);
}
static int64_t conv2d_fscratch(const lt_conv2d_shape *s) { return lt_conv2d_cpu.forward_scratch(s); }
static int64_t conv2d_bscratch(const lt_conv2d_shape *s, bool gi) { return lt_conv2d_cpu.backward_scratch(s, gi); }
FAKE_DEFERRED_OP(conv2d_forward, lt_conv2d_cpu.forward(c, H(a.out), H(a.in), H(a.w), H(a.b), H(a.cols), a.s),
                 (float *, out), (const float *, in), (const float *, w), (const float *, b), (float *, cols),
                 (lt_conv2d_shape, s))
FAKE_DEFERRED_OP(conv2d_backward, lt_conv2d_cpu.backward(c, H(a.dx), H(a.dw), H(a.db), H(a.dy), H(a.x), H(a.w),
                 H(a.scratch), a.s),
                 (float *, dx), (float *, dw), (float *, db), (const float *, dy), (const float *, x),
                 (const float *, w), (float *, scratch), (lt_conv2d_shape, s))
static const lt_conv2d_impl conv2d = {{"fake", conv2d_supports, NULL}, conv2d_fscratch, conv2d_bscratch,
                                      conv2d_forward, conv2d_backward};

static bool fp32(const lt_impl *self, const void *s, lt_precision p) { return p == LT_FP32; }

FAKE_DEFERRED_OP(linear_forward, lt_linear_cpu.forward(c, H(a.out), H(a.in), H(a.w), H(a.b), a.s),
                 (float *, out), (const float *, in), (const float *, w), (const float *, b), (lt_linear_shape, s))
FAKE_DEFERRED_OP(linear_backward, lt_linear_cpu.backward(c, H(a.dx), H(a.dw), H(a.db), H(a.dy), H(a.x), H(a.w), a.s),
                 (float *, dx), (float *, dw), (float *, db), (const float *, dy), (const float *, x),
                 (const float *, w), (lt_linear_shape, s))
static const lt_linear_impl linear = {{"fake", fp32, NULL}, linear_forward, linear_backward};

FAKE_DEFERRED_OP(bn_forward, lt_batchnorm_cpu.forward(c, H(a.out), H(a.in), fake_host_vectors(a.v), a.s, a.p),
                 (float *, out), (const float *, in), (lt_bn_vectors, v), (lt_batchnorm_shape, s),
                 (lt_batchnorm_params, p))
FAKE_DEFERRED_OP(bn_backward, lt_batchnorm_cpu.backward(c, H(a.dx), H(a.dw), H(a.db), H(a.dy), H(a.x),
                 fake_host_vectors(a.v), a.s),
                 (float *, dx), (float *, dw), (float *, db), (const float *, dy), (const float *, x),
                 (lt_bn_vectors, v), (lt_batchnorm_shape, s))
static int bn_statistics(lt_kernel_ctx *c, double *sums, const float *x, lt_batchnorm_shape s) {
    if (fake_capturing()) return fake_fail(c->err, "bn_statistics reads or writes host memory: not in a graph");
    return lt_batchnorm_cpu.statistics(c, sums, H(x), s);  /* sums: host memory, as the interface says */
}
static int bn_normalize(lt_kernel_ctx *c, float *out, const float *x, const double *sums, lt_bn_vectors v,
                        lt_batchnorm_shape s, lt_batchnorm_params p) {
    if (fake_capturing()) return fake_fail(c->err, "bn_normalize reads or writes host memory: not in a graph");
    return lt_batchnorm_cpu.normalize(c, H(out), H(x), sums, fake_host_vectors(v), s, p);
}
static int bn_grad_sums(lt_kernel_ctx *c, double *sums, float *dw, float *db, const float *dy, const float *x,
                        lt_bn_vectors v, lt_batchnorm_shape s) {
    if (fake_capturing()) return fake_fail(c->err, "bn_grad_sums reads or writes host memory: not in a graph");
    return lt_batchnorm_cpu.grad_sums(c, sums, H(dw), H(db), H(dy), H(x), fake_host_vectors(v), s);
}
static int bn_grad_input(lt_kernel_ctx *c, float *dx, const double *sums, int64_t count, const float *dy,
                         const float *x, lt_bn_vectors v, lt_batchnorm_shape s) {
    if (fake_capturing()) return fake_fail(c->err, "bn_grad_input reads or writes host memory: not in a graph");
    return lt_batchnorm_cpu.grad_input(c, H(dx), sums, count, H(dy), H(x), fake_host_vectors(v), s);
}
static const lt_batchnorm_impl batchnorm = {{"fake", fp32, NULL}, bn_forward,   bn_backward,  bn_statistics,
                                            bn_normalize,         bn_grad_sums, bn_grad_input};

FAKE_DEFERRED_OP(brp_forward, lt_bn_relu_pool_cpu.forward(c, H(a.out), H(a.codes), H(a.in), fake_host_vectors(a.v), a.s,
                 a.p),
                 (float *, out), (float *, codes), (const float *, in), (lt_bn_vectors, v),
                 (lt_bn_relu_pool_shape, s), (lt_batchnorm_params, p))
FAKE_DEFERRED_OP(brp_backward, lt_bn_relu_pool_cpu.backward(c, H(a.dx), H(a.dw), H(a.db), H(a.dy), H(a.out),
                 H(a.codes), H(a.in), fake_host_vectors(a.v), a.s),
                 (float *, dx), (float *, dw), (float *, db), (const float *, dy), (const float *, out),
                 (const float *, codes), (const float *, in), (lt_bn_vectors, v), (lt_bn_relu_pool_shape, s))
static const lt_bn_relu_pool_impl bn_relu_pool = {{"fake", fp32, NULL}, brp_forward, brp_backward};

FAKE_DEFERRED_OP(maxpool_forward, lt_maxpool2d_cpu.forward(c, H(a.out), H(a.idx), H(a.in), a.s),
                 (float *, out), (float *, idx), (const float *, in), (lt_pool2d_shape, s))
FAKE_DEFERRED_OP(maxpool_backward, lt_maxpool2d_cpu.backward(c, H(a.dx), H(a.dy), H(a.out), H(a.idx), H(a.in), a.s),
                 (float *, dx), (const float *, dy), (const float *, out), (const float *, idx), (const float *, in),
                 (lt_pool2d_shape, s))
static const lt_maxpool2d_impl maxpool2d = {{"fake", fp32, NULL}, maxpool_forward, maxpool_backward};

FAKE_DEFERRED_OP(avgpool_forward, lt_avgpool2d_cpu.forward(c, H(a.out), H(a.in), a.s),
                 (float *, out), (const float *, in), (lt_pool2d_shape, s))
FAKE_DEFERRED_OP(avgpool_backward, lt_avgpool2d_cpu.backward(c, H(a.dx), H(a.dy), a.s),
                 (float *, dx), (const float *, dy), (lt_pool2d_shape, s))
static const lt_avgpool2d_impl avgpool2d = {{"fake", fp32, NULL}, avgpool_forward, avgpool_backward};

FAKE_DEFERRED_OP(adaptive_forward, lt_adaptive_avgpool2d_cpu.forward(c, H(a.out), H(a.in), a.s),
                 (float *, out), (const float *, in), (lt_pool2d_shape, s))
FAKE_DEFERRED_OP(adaptive_backward, lt_adaptive_avgpool2d_cpu.backward(c, H(a.dx), H(a.dy), a.s),
                 (float *, dx), (const float *, dy), (lt_pool2d_shape, s))
static const lt_avgpool2d_impl adaptive_avgpool2d = {{"fake", fp32, NULL}, adaptive_forward, adaptive_backward};

/* The host's entry for the activation a shape names (the fronts checked the name). */
static const lt_activation_impl *host_activation(const lt_activation_shape *s) {
    static const lt_activation_impl *const all[] = {&lt_relu_cpu, &lt_leaky_relu_cpu, &lt_gelu_cpu};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (!strcmp(all[i]->activation, s->activation)) return all[i];
    return NULL;
}
static bool activation_supports(const lt_impl *self, const void *s, lt_precision p) {
    const lt_activation_impl *cpu = host_activation(s);
    return cpu && cpu->base.supports(&cpu->base, s, p);
}
FAKE_DEFERRED_OP(activation_forward, host_activation(&a.s)->forward(c, H(a.out), H(a.in), a.s),
                 (float *, out), (const float *, in), (lt_activation_shape, s))
FAKE_DEFERRED_OP(activation_backward, host_activation(&a.s)->backward(c, H(a.dx), H(a.dy), H(a.in), H(a.out), a.s),
                 (float *, dx), (const float *, dy), (const float *, in), (const float *, out),
                 (lt_activation_shape, s))
/* the fronts check the name against the host's entries; one fake entry computes them all */
static const lt_activation_impl activation = {{"fake", activation_supports, NULL}, "any", activation_forward,
                                              activation_backward};

FAKE_DEFERRED_OP(dropout_forward, lt_dropout_cpu.forward(c, H(a.out), H(a.mask), H(a.in), a.s),
                 (float *, out), (float *, mask), (const float *, in), (lt_dropout_shape, s))
FAKE_DEFERRED_OP(dropout_backward, lt_dropout_cpu.backward(c, H(a.dx), H(a.dy), H(a.mask), a.s),
                 (float *, dx), (const float *, dy), (const float *, mask), (lt_dropout_shape, s))
static const lt_dropout_impl dropout = {{"fake", fp32, NULL}, dropout_forward, dropout_backward};

FAKE_DEFERRED_OP(softmax_forward, lt_softmax_cpu.forward(c, H(a.out), H(a.in), a.s),
                 (float *, out), (const float *, in), (lt_softmax_shape, s))
FAKE_DEFERRED_OP(softmax_backward, lt_softmax_cpu.backward(c, H(a.dx), H(a.dy), H(a.out), a.s),
                 (float *, dx), (const float *, dy), (const float *, out), (lt_softmax_shape, s))
static const lt_softmax_impl softmax = {{"fake", fp32, NULL}, softmax_forward, softmax_backward};

FAKE_DEFERRED_OP(ce_forward, lt_cross_entropy_cpu.forward(c, H(a.loss), H(a.losses), H(a.lp), H(a.scores),
                 H(a.target), H(a.weight), a.s),
                 (float *, loss), (float *, losses), (float *, lp), (const float *, scores), (const float *, target),
                 (const float *, weight), (lt_class_loss_shape, s))
FAKE_DEFERRED_OP(ce_backward, lt_cross_entropy_cpu.backward(c, H(a.dx), H(a.lp), H(a.target), H(a.weight), H(a.dout),
                 H(a.dscale), a.scale, a.s),
                 (float *, dx), (const float *, lp), (const float *, target), (const float *, weight),
                 (const float *, dout), (const float *, dscale), (double, scale), (lt_class_loss_shape, s))
static const lt_class_loss_impl cross_entropy = {{"fake", fp32, NULL}, ce_forward, ce_backward};

FAKE_DEFERRED_OP(nll_forward, lt_nll_loss_cpu.forward(c, H(a.loss), H(a.losses), H(a.lp), H(a.scores), H(a.target),
                 H(a.weight), a.s),
                 (float *, loss), (float *, losses), (float *, lp), (const float *, scores), (const float *, target),
                 (const float *, weight), (lt_class_loss_shape, s))
FAKE_DEFERRED_OP(nll_backward, lt_nll_loss_cpu.backward(c, H(a.dx), H(a.lp), H(a.target), H(a.weight), H(a.dout),
                 H(a.dscale), a.scale, a.s),
                 (float *, dx), (const float *, lp), (const float *, target), (const float *, weight),
                 (const float *, dout), (const float *, dscale), (double, scale), (lt_class_loss_shape, s))
static const lt_class_loss_impl nll_loss = {{"fake", fp32, NULL}, nll_forward, nll_backward};

FAKE_DEFERRED_OP(mse_forward, lt_mse_loss_cpu.forward(c, H(a.loss), H(a.losses), H(a.in), H(a.target), a.s),
                 (float *, loss), (float *, losses), (const float *, in), (const float *, target), (lt_mse_shape, s))
FAKE_DEFERRED_OP(mse_backward, lt_mse_loss_cpu.backward(c, H(a.dx), H(a.in), H(a.target), H(a.dout), H(a.dscale),
                 a.scale, a.s),
                 (float *, dx), (const float *, in), (const float *, target), (const float *, dout),
                 (const float *, dscale), (double, scale), (lt_mse_shape, s))
static const lt_mse_impl mse_loss = {{"fake", fp32, NULL}, mse_forward, mse_backward};

/* ---- optimizers ---- */

/* the step values the update reads when it runs, behind the fake's pointer */
static lt_sgd_shape host_sgd(lt_sgd_shape s) {
    s.step_values = H(s.step_values);
    return s;
}
static lt_adam_shape host_adam(lt_adam_shape s) {
    s.step_values = H(s.step_values);
    return s;
}

FAKE_DEFERRED_OP(sgd_step, lt_sgd_cpu.step(c, H(a.param), H(a.buf), H(a.grad), host_sgd(a.s)),
                 (float *, param), (float *, buf), (const float *, grad), (lt_sgd_shape, s))
static const lt_sgd_impl sgd = {{"fake", fp32, NULL}, sgd_step};

FAKE_DEFERRED_OP(adam_step, lt_adam_cpu.step(c, H(a.param), H(a.m), H(a.v), H(a.vmax), H(a.grad), host_adam(a.s)),
                 (float *, param), (float *, m), (float *, v), (float *, vmax), (const float *, grad),
                 (lt_adam_shape, s))
static const lt_adam_impl adam = {{"fake", fp32, NULL}, adam_step};

static int norm_accumulate(lt_kernel_ctx *c, double *acc, const float *x, lt_norm_shape s) {
    if (fake_capturing()) return fake_fail(c->err, "norm_accumulate reads or writes host memory: not in a graph");
    return lt_norm_cpu.accumulate(c, acc, H(x), s);
}
/* the device's own: acc behind the fake's pointer, the total written there (lt_norm_finish's rule) */
FAKE_DEFERRED_OP(norm_accumulate_on_device, lt_norm_cpu.accumulate(c, H(a.acc), H(a.x), a.s),
                 (double *, acc), (const float *, x), (lt_norm_shape, s))
static int norm_finish_now(float *total, const double *acc, double norm_type) {
    *total = (float)lt_norm_finish(*acc, norm_type);
    return 0;
}
FAKE_DEFERRED_OP(norm_finish_on_device, norm_finish_now(H(a.total), H(a.acc), a.p),
                 (float *, total), (const double *, acc), (double, p))
static const lt_norm_impl grad_norm = {{"fake", fp32, NULL}, norm_accumulate, norm_accumulate_on_device,
                                       norm_finish_on_device};

/* the loss scaler's: the host's kernels behind the fake's pointers, deferred like the device's */
FAKE_DEFERRED_OP(amp_unscale_now, lt_amp_unscale_cpu.unscale(c, H(a.g), H(a.inv), H(a.found), a.s),
                 (float *, g), (const float *, inv), (float *, found), (lt_amp_unscale_shape, s))
static const lt_amp_unscale_impl amp_unscale = {{"fake", fp32, NULL}, amp_unscale_now};
FAKE_DEFERRED_OP(amp_update_now, lt_amp_update_cpu.update(c, H(a.scale), H(a.tracker), H(a.found), a.s),
                 (float *, scale), (float *, tracker), (const float *, found), (lt_amp_update_shape, s))
static const lt_amp_update_impl amp_update = {{"fake", fp32, NULL}, amp_update_now};

/* ---- the tables, by the names the fronts pick with ---- */

#define TABLE(name, entry) static const void *const name##_impls[] = {&entry, NULL}
TABLE(conv2d, conv2d);
TABLE(linear, linear);
TABLE(batchnorm, batchnorm);
TABLE(bn_relu_pool, bn_relu_pool);
TABLE(maxpool2d, maxpool2d);
TABLE(avgpool2d, avgpool2d);
TABLE(adaptive_avgpool2d, adaptive_avgpool2d);
TABLE(activation, activation);
TABLE(dropout, dropout);
TABLE(softmax, softmax);
TABLE(cross_entropy, cross_entropy);
TABLE(nll_loss, nll_loss);
TABLE(mse_loss, mse_loss);
TABLE(sgd, sgd);
TABLE(adam, adam);
TABLE(grad_norm, grad_norm);
TABLE(amp_unscale, amp_unscale);
TABLE(amp_update_scale, amp_update);
TABLE(conv2d_channels_last, fake_conv2d_channels_last);
TABLE(batchnorm_channels_last, fake_batchnorm_channels_last);  /* and the fused pool's */
TABLE(maxpool2d_channels_last, fake_maxpool2d_channels_last);
TABLE(activation_mixed, fake_activation_mixed);

const lt_backend_op fake_ops[] = {
    {"conv2d", conv2d_impls},       {"linear", linear_impls},
    {"batchnorm", batchnorm_impls}, {"bn_relu_pool", bn_relu_pool_impls},
    {"maxpool2d", maxpool2d_impls}, {"avgpool2d", avgpool2d_impls},
    {"adaptive_avgpool2d", adaptive_avgpool2d_impls}, {"activation", activation_impls},
    {"dropout", dropout_impls},     {"softmax", softmax_impls},
    {"cross_entropy", cross_entropy_impls}, {"nll_loss", nll_loss_impls},
    {"mse_loss", mse_loss_impls},   {"sgd", sgd_impls},
    {"adam", adam_impls},           {"grad_norm", grad_norm_impls},
    {"amp_unscale", amp_unscale_impls}, {"amp_update_scale", amp_update_scale_impls},
    {"conv2d.channels_last", conv2d_channels_last_impls},
    {"batchnorm.channels_last", batchnorm_channels_last_impls},
    {"bn_relu_pool.channels_last", batchnorm_channels_last_impls},
    {"maxpool2d.channels_last", maxpool2d_channels_last_impls},
    {"activation.mixed", activation_mixed_impls},
    {NULL, NULL}};

void fake_manual_seed(uint64_t seed) { lt_rng_seed(lt_rng_global(), seed); }
void fake_get_rng_state(char *out) { lt_rng_get_state(lt_rng_global(), out); }
int fake_set_rng_state(const char *state, lt_error *err) {
    if (fake_capturing()) return fake_fail(err, "set_rng_state cannot be captured");
    return lt_rng_set_state(lt_rng_global(), state, err);
}

/* This copy of the core loads its own OpenBLAS handle, as lightning.core does when Lua loads it. */
int fake_ops_init(lt_error *err) { return lt_blas_load(err); }
