/* Bindings for the layer kernels (lightning.core.nn), called by the Lua layers in lua/lightning/nn/.
 * Each function takes the name of the Lua method that calls it first, so that shape errors read
 * "Conv2d:forward: input has 4 channels but the layer expects 3". Tensors that a kernel writes (outputs,
 * gradients, scratch) are owned by the Lua layer and resized in place. */
#include <math.h>
#include <string.h>

#include "../core/nn/nn.h"
#include "l_util.h"

static const char *name_arg(lua_State *L) { return lt_check_string(L, 1, "lightning.core.nn"); }

static lt_tensor *opt_tensor(lua_State *L, int idx, const char *fname) {
    return lua_isnoneornil(L, idx) ? NULL : lt_check_tensor(L, idx, fname);
}

static int finish(lua_State *L, int rc, const char *fname, const lt_error *err, int nresults) {
    if (rc) return lt_raise(L, fname, err);
    lt_account_memory(L);
    return nresults;
}

static lt_conv2d_params conv_params(lua_State *L, int idx, const char *fname) {
    lt_conv2d_params p;
    p.kernel_h = lt_check_integer(L, idx, fname);
    p.kernel_w = lt_check_integer(L, idx + 1, fname);
    p.stride_h = lt_check_integer(L, idx + 2, fname);
    p.stride_w = lt_check_integer(L, idx + 3, fname);
    p.pad_h = lt_check_integer(L, idx + 4, fname);
    p.pad_w = lt_check_integer(L, idx + 5, fname);
    if (p.kernel_h < 1 || p.kernel_w < 1 || p.stride_h < 1 || p.stride_w < 1 || p.pad_h < 0 || p.pad_w < 0)
        lt_raisef(L, fname, "kernel size and stride must be positive and padding non-negative");
    return p;
}

/* conv2d_forward(name, out, cols, input, weight, bias, kh, kw, sh, sw, ph, pw) */
static int conv2d_forward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *out = lt_check_tensor(L, 2, f), *cols = lt_check_tensor(L, 3, f), *in = lt_check_tensor(L, 4, f);
    lt_tensor *w = lt_check_tensor(L, 5, f), *b = opt_tensor(L, 6, f);
    lt_conv2d_params p = conv_params(L, 7, f);
    lt_error err;
    return finish(L, lt_conv2d_forward(out, cols, in, w, b, p, &err), f, &err, 0);
}

/* conv2d_backward(name, grad_input, grad_weight, grad_bias, grad_output, input, weight, cols, dy,
 *                 kh, kw, sh, sw, ph, pw) */
static int conv2d_backward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *gi = opt_tensor(L, 2, f), *gw = lt_check_tensor(L, 3, f), *gb = opt_tensor(L, 4, f);
    lt_tensor *go = lt_check_tensor(L, 5, f), *in = lt_check_tensor(L, 6, f), *w = lt_check_tensor(L, 7, f);
    lt_tensor *cols = lt_check_tensor(L, 8, f), *dy = lt_check_tensor(L, 9, f);
    lt_conv2d_params p = conv_params(L, 10, f);
    lt_error err;
    return finish(L, lt_conv2d_backward(gi, gw, gb, go, in, w, cols, dy, p, &err), f, &err, 0);
}

static int linear_forward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *out = lt_check_tensor(L, 2, f), *in = lt_check_tensor(L, 3, f), *w = lt_check_tensor(L, 4, f);
    lt_tensor *b = opt_tensor(L, 5, f);
    lt_error err;
    return finish(L, lt_linear_forward(out, in, w, b, &err), f, &err, 0);
}

static int linear_backward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *gi = opt_tensor(L, 2, f), *gw = lt_check_tensor(L, 3, f), *gb = opt_tensor(L, 4, f);
    lt_tensor *go = lt_check_tensor(L, 5, f), *in = lt_check_tensor(L, 6, f), *w = lt_check_tensor(L, 7, f);
    lt_error err;
    return finish(L, lt_linear_backward(gi, gw, gb, go, in, w, &err), f, &err, 0);
}

/* The arguments (training, momentum (nil: cumulative), eps, num_batches_tracked) from index i on. */
static lt_batchnorm_params check_batchnorm_params(lua_State *L, int i, const char *f) {
    lt_batchnorm_params p;
    p.training = lua_toboolean(L, i);
    p.momentum = lt_opt_number(L, i + 1, f, -1.0);
    p.eps = lt_check_number(L, i + 2, f);
    p.num_batches_tracked = lt_opt_integer(L, i + 3, f, 0);
    return p;
}

/* batchnorm_forward(name, out, save_mean, save_invstd, input, weight, bias, running_mean, running_var,
 *                   training, momentum (nil: cumulative), eps, num_batches_tracked) */
static int batchnorm_forward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *out = lt_check_tensor(L, 2, f), *sm = lt_check_tensor(L, 3, f), *si = lt_check_tensor(L, 4, f);
    lt_tensor *in = lt_check_tensor(L, 5, f), *w = opt_tensor(L, 6, f), *b = opt_tensor(L, 7, f);
    lt_tensor *rm = opt_tensor(L, 8, f), *rv = opt_tensor(L, 9, f);
    lt_batchnorm_params p = check_batchnorm_params(L, 10, f);
    lt_error err;
    return finish(L, lt_batchnorm_forward(out, sm, si, in, w, b, rm, rv, p, &err), f, &err, 0);
}

/* bn_relu_pool_forward(name, out, codes, save_mean, save_invstd, input, weight, bias, running_mean,
 *                      running_var, training, momentum, eps, num_batches_tracked) */
static int bn_relu_pool_forward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *out = lt_check_tensor(L, 2, f), *codes = lt_check_tensor(L, 3, f);
    lt_tensor *sm = lt_check_tensor(L, 4, f), *si = lt_check_tensor(L, 5, f);
    lt_tensor *in = lt_check_tensor(L, 6, f), *w = opt_tensor(L, 7, f), *b = opt_tensor(L, 8, f);
    lt_tensor *rm = opt_tensor(L, 9, f), *rv = opt_tensor(L, 10, f);
    lt_batchnorm_params p = check_batchnorm_params(L, 11, f);
    lt_error err;
    return finish(L, lt_bn_relu_pool_forward(out, codes, sm, si, in, w, b, rm, rv, p, &err), f, &err, 0);
}

/* bn_relu_pool_backward(name, grad_input, grad_weight, grad_bias, dy, grad_output, output, codes, input,
 *                       weight, bias, save_mean, save_invstd, training) */
static int bn_relu_pool_backward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *gi = opt_tensor(L, 2, f), *gw = opt_tensor(L, 3, f), *gb = opt_tensor(L, 4, f);
    lt_tensor *dy = lt_check_tensor(L, 5, f), *go = lt_check_tensor(L, 6, f), *out = lt_check_tensor(L, 7, f);
    lt_tensor *codes = lt_check_tensor(L, 8, f), *in = lt_check_tensor(L, 9, f);
    lt_tensor *w = opt_tensor(L, 10, f), *b = opt_tensor(L, 11, f);
    lt_tensor *sm = lt_check_tensor(L, 12, f), *si = lt_check_tensor(L, 13, f);
    bool training = lua_toboolean(L, 14);
    lt_error err;
    return finish(L, lt_bn_relu_pool_backward(gi, gw, gb, dy, go, out, codes, in, w, b, sm, si, training, &err), f, &err,
                  0);
}

static int batchnorm_backward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *gi = opt_tensor(L, 2, f), *gw = opt_tensor(L, 3, f), *gb = opt_tensor(L, 4, f);
    lt_tensor *go = lt_check_tensor(L, 5, f), *in = lt_check_tensor(L, 6, f), *w = opt_tensor(L, 7, f);
    lt_tensor *sm = lt_check_tensor(L, 8, f), *si = lt_check_tensor(L, 9, f);
    bool training = lua_toboolean(L, 10);
    lt_error err;
    return finish(L, lt_batchnorm_backward(gi, gw, gb, go, in, w, sm, si, training, &err), f, &err, 0);
}

static int leaky_relu_forward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *out = lt_check_tensor(L, 2, f), *in = lt_check_tensor(L, 3, f);
    float slope = (float)lt_check_number(L, 4, f);
    lt_error err;
    return finish(L, lt_leaky_relu_forward(out, in, slope, &err), f, &err, 0);
}

static int leaky_relu_backward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *gi = lt_check_tensor(L, 2, f), *go = lt_check_tensor(L, 3, f), *ref = lt_check_tensor(L, 4, f);
    float slope = (float)lt_check_number(L, 5, f);
    lt_error err;
    return finish(L, lt_leaky_relu_backward(gi, go, ref, slope, &err), f, &err, 0);
}

static int dropout_forward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *out = lt_check_tensor(L, 2, f), *mask = lt_check_tensor(L, 3, f), *in = lt_check_tensor(L, 4, f);
    double p = lt_check_number(L, 5, f);
    lt_error err;
    return finish(L, lt_dropout_forward(out, mask, in, p, &err), f, &err, 0);
}

static int dropout_backward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *gi = lt_check_tensor(L, 2, f), *go = lt_check_tensor(L, 3, f), *mask = lt_check_tensor(L, 4, f);
    lt_error err;
    return finish(L, lt_dropout_backward(gi, go, mask, &err), f, &err, 0);
}

static lt_pool2d_params pool_params(lua_State *L, int idx, const char *fname) {
    lt_pool2d_params p;
    p.kernel_h = lt_check_integer(L, idx, fname);
    p.kernel_w = lt_check_integer(L, idx + 1, fname);
    p.stride_h = lt_check_integer(L, idx + 2, fname);
    p.stride_w = lt_check_integer(L, idx + 3, fname);
    p.pad_h = lt_check_integer(L, idx + 4, fname);
    p.pad_w = lt_check_integer(L, idx + 5, fname);
    p.count_include_pad = lua_isnoneornil(L, idx + 6) ? true : lua_toboolean(L, idx + 6);
    p.relu = lua_toboolean(L, idx + 7);
    return p;
}

/* pool parameters: kh, kw, sh, sw, ph, pw, count_include_pad, relu */

/* maxpool2d_forward(name, out, indices, input, <pool parameters>) */
static int maxpool2d_forward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *out = lt_check_tensor(L, 2, f), *idx = lt_check_tensor(L, 3, f), *in = lt_check_tensor(L, 4, f);
    lt_pool2d_params p = pool_params(L, 5, f);
    lt_error err;
    return finish(L, lt_maxpool2d_forward(out, idx, in, p, &err), f, &err, 0);
}

/* maxpool2d_backward(name, grad_input, grad_output, output, indices, input, <pool parameters>) */
static int maxpool2d_backward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *gi = lt_check_tensor(L, 2, f), *go = lt_check_tensor(L, 3, f), *out = lt_check_tensor(L, 4, f);
    lt_tensor *idx = lt_check_tensor(L, 5, f), *in = lt_check_tensor(L, 6, f);
    lt_pool2d_params p = pool_params(L, 7, f);
    lt_error err;
    return finish(L, lt_maxpool2d_backward(gi, go, out, idx, in, p, &err), f, &err, 0);
}

static int avgpool2d_forward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *out = lt_check_tensor(L, 2, f), *in = lt_check_tensor(L, 3, f);
    lt_pool2d_params p = pool_params(L, 4, f);
    lt_error err;
    return finish(L, lt_avgpool2d_forward(out, in, p, &err), f, &err, 0);
}

static int avgpool2d_backward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *gi = lt_check_tensor(L, 2, f), *go = lt_check_tensor(L, 3, f), *in = lt_check_tensor(L, 4, f);
    lt_pool2d_params p = pool_params(L, 5, f);
    lt_error err;
    return finish(L, lt_avgpool2d_backward(gi, go, in, p, &err), f, &err, 0);
}

static int adaptive_avgpool2d_forward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *out = lt_check_tensor(L, 2, f), *in = lt_check_tensor(L, 3, f);
    int64_t oh = lt_check_integer(L, 4, f), ow = lt_check_integer(L, 5, f);
    lt_error err;
    return finish(L, lt_adaptive_avgpool2d_forward(out, in, oh, ow, &err), f, &err, 0);
}

static int adaptive_avgpool2d_backward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *gi = lt_check_tensor(L, 2, f), *go = lt_check_tensor(L, 3, f), *in = lt_check_tensor(L, 4, f);
    lt_error err;
    return finish(L, lt_adaptive_avgpool2d_backward(gi, go, in, &err), f, &err, 0);
}

/* softmax_forward(name, out, input, dim, log) */
static int softmax_forward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *out = lt_check_tensor(L, 2, f), *in = lt_check_tensor(L, 3, f);
    int dim = lt_check_dim(L, 4, in, f);
    lt_error err;
    return finish(L, lt_softmax_forward(out, in, dim, lua_toboolean(L, 5), &err), f, &err, 0);
}

static int softmax_backward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *gi = lt_check_tensor(L, 2, f), *go = lt_check_tensor(L, 3, f), *out = lt_check_tensor(L, 4, f);
    int dim = lt_check_dim(L, 5, out, f);
    lt_error err;
    return finish(L, lt_softmax_backward(gi, go, out, dim, lua_toboolean(L, 6), &err), f, &err, 0);
}

static lt_reduction check_reduction(lua_State *L, int idx, const char *fname) {
    const char *r = lt_check_string(L, idx, fname);
    if (!strcmp(r, "mean")) return LT_REDUCE_MEAN;
    if (!strcmp(r, "sum")) return LT_REDUCE_SUM;
    if (!strcmp(r, "none")) return LT_REDUCE_NONE;
    lt_raisef(L, fname, "reduction must be 'mean', 'sum' or 'none', got '%s'", r);
    return LT_REDUCE_MEAN;
}

/* weight, label_smoothing, reduction, ignore_index (1-based class; < 1: none) from idx on */
static lt_class_loss_params class_params(lua_State *L, int idx, const char *fname, bool smoothing) {
    lt_class_loss_params p;
    p.weight = opt_tensor(L, idx, fname);
    int next = idx + 1;
    p.label_smoothing = smoothing ? lt_check_number(L, next++, fname) : 0.0;
    p.reduction = check_reduction(L, next++, fname);
    lua_Integer ignore = lt_opt_integer(L, next, fname, 0);
    p.ignore_index = ignore >= 1 ? ignore - 1 : -1;
    return p;
}

static void push_loss(lua_State *L, double loss, lt_reduction r) {
    if (r == LT_REDUCE_NONE) lua_pushnil(L);
    else lua_pushnumber(L, loss);
}

/* cross_entropy_forward(name, losses, log_probs, logits, target, weight, smoothing, reduction, ignore) -> loss */
static int cross_entropy_forward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *losses = lt_check_tensor(L, 2, f), *lp = lt_check_tensor(L, 3, f), *x = lt_check_tensor(L, 4, f);
    lt_tensor *t = lt_check_tensor(L, 5, f);
    lt_class_loss_params p = class_params(L, 6, f, true);
    double loss = 0;
    lt_error err;
    int rc = lt_cross_entropy_forward(&loss, losses, lp, x, t, p, &err);
    push_loss(L, loss, p.reduction);
    return finish(L, rc, f, &err, 1);
}

/* cross_entropy_backward(name, grad_input, log_probs, target, weight, smoothing, reduction, ignore,
 *                        grad_output (tensor for 'none'), scale) */
static int cross_entropy_backward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *gi = lt_check_tensor(L, 2, f), *lp = lt_check_tensor(L, 3, f), *t = lt_check_tensor(L, 4, f);
    lt_class_loss_params p = class_params(L, 5, f, true);
    lt_tensor *go = opt_tensor(L, 9, f);
    double scale = lt_opt_number(L, 10, f, 1.0);
    lt_error err;
    return finish(L, lt_cross_entropy_backward(gi, lp, t, p, go, scale, &err), f, &err, 0);
}

static int nll_loss_forward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *losses = lt_check_tensor(L, 2, f), *lp = lt_check_tensor(L, 3, f), *t = lt_check_tensor(L, 4, f);
    lt_class_loss_params p = class_params(L, 5, f, false);
    double loss = 0;
    lt_error err;
    int rc = lt_nll_loss_forward(&loss, losses, lp, t, p, &err);
    push_loss(L, loss, p.reduction);
    return finish(L, rc, f, &err, 1);
}

static int nll_loss_backward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *gi = lt_check_tensor(L, 2, f), *lp = lt_check_tensor(L, 3, f), *t = lt_check_tensor(L, 4, f);
    lt_class_loss_params p = class_params(L, 5, f, false);
    lt_tensor *go = opt_tensor(L, 8, f);
    double scale = lt_opt_number(L, 9, f, 1.0);
    lt_error err;
    return finish(L, lt_nll_loss_backward(gi, lp, t, p, go, scale, &err), f, &err, 0);
}

static int mse_loss_forward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *losses = lt_check_tensor(L, 2, f), *x = lt_check_tensor(L, 3, f), *t = lt_check_tensor(L, 4, f);
    lt_reduction r = check_reduction(L, 5, f);
    double loss = 0;
    lt_error err;
    int rc = lt_mse_loss_forward(&loss, losses, x, t, r, &err);
    push_loss(L, loss, r);
    return finish(L, rc, f, &err, 1);
}

static int mse_loss_backward(lua_State *L) {
    const char *f = name_arg(L);
    lt_tensor *gi = lt_check_tensor(L, 2, f), *x = lt_check_tensor(L, 3, f), *t = lt_check_tensor(L, 4, f);
    lt_reduction r = check_reduction(L, 5, f);
    lt_tensor *go = opt_tensor(L, 6, f);
    double scale = lt_opt_number(L, 7, f, 1.0);
    lt_error err;
    return finish(L, lt_mse_loss_backward(gi, x, t, r, go, scale, &err), f, &err, 0);
}

/* is_cnhw(t): whether t is stored in the batch-folded layout (for tests and debugging). */
static int is_cnhw(lua_State *L) {
    lua_pushboolean(L, lt_is_cnhw(lt_check_tensor(L, 1, "lightning.core.nn.is_cnhw")));
    return 1;
}

void lt_open_nn(lua_State *L, int module) {
    static const luaL_Reg fns[] = {
        {"conv2d_forward", conv2d_forward}, {"conv2d_backward", conv2d_backward},
        {"linear_forward", linear_forward}, {"linear_backward", linear_backward},
        {"batchnorm_forward", batchnorm_forward}, {"batchnorm_backward", batchnorm_backward},
        {"bn_relu_pool_forward", bn_relu_pool_forward}, {"bn_relu_pool_backward", bn_relu_pool_backward},
        {"leaky_relu_forward", leaky_relu_forward}, {"leaky_relu_backward", leaky_relu_backward},
        {"dropout_forward", dropout_forward}, {"dropout_backward", dropout_backward},
        {"maxpool2d_forward", maxpool2d_forward}, {"maxpool2d_backward", maxpool2d_backward},
        {"avgpool2d_forward", avgpool2d_forward}, {"avgpool2d_backward", avgpool2d_backward},
        {"adaptive_avgpool2d_forward", adaptive_avgpool2d_forward},
        {"adaptive_avgpool2d_backward", adaptive_avgpool2d_backward},
        {"softmax_forward", softmax_forward}, {"softmax_backward", softmax_backward},
        {"cross_entropy_forward", cross_entropy_forward}, {"cross_entropy_backward", cross_entropy_backward},
        {"nll_loss_forward", nll_loss_forward}, {"nll_loss_backward", nll_loss_backward},
        {"mse_loss_forward", mse_loss_forward}, {"mse_loss_backward", mse_loss_backward},
        {"is_cnhw", is_cnhw}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, module, "nn");
}
