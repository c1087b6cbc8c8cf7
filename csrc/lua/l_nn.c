/* Bindings for the layer kernels (lightning.core.nn), called by the Lua layers in lua/lightning/nn/.
 * Each function takes one table of named fields, which the binding copies into the front's struct
 * (csrc/core/nn/nn.h) and passes whole:
 *   C.conv2d_forward{name = "Conv2d:forward", handle = self._kernel, output = self.output, cols = self._cols,
 *                    input = input, weight = self.weight, bias = self.bias, kernel_h = 3, ...}
 * `name` is the Lua method that calls, so that errors read "Conv2d:forward: input has 4 channels but the
 * layer expects 3"; a field of the wrong type, a missing one or one the function does not read is an
 * error that names it. Tensors that a kernel writes (outputs, gradients, scratch) are owned by the Lua
 * layer and resized in place; `handle` (C.kernel_handle()) is the layer's kernel handle. */
#include <math.h>
#include <string.h>

#include "../core/nn/nn.h"
#include "l_buffer.h"
#include "l_fields.h"

#define HANDLE_MT "lightning.core.nn.KernelHandle"

static int finish(lua_State *L, int rc, const char *fname, const lt_error *err, int nresults) {
    if (rc) return lt_raise(L, fname, err);
    lt_account_memory(L);
    return nresults;
}

/* ---- kernel handles ---- */

/* kernel_handle([precision]) -> a handle for one layer; precision "fp32" (default) or "bf16" */
static int kernel_handle(lua_State *L) {
    const char *fname = "lightning.core.nn.kernel_handle";
    const char *name = luaL_optstring(L, 1, "fp32");
    int precision = lt_precision_of(name);
    if (precision < 0) lt_raisef(L, fname, "precision must be \"fp32\", \"bf16\" or \"fp16\", got \"%s\"", name);
    lt_kernel_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
    lt_kernel_handle_init(h, (lt_precision)precision);
    luaL_setmetatable(L, HANDLE_MT);
    return 1;
}

static lt_kernel_handle *check_handle(lua_State *L, int idx, const char *fname) {
    lt_kernel_handle *h = luaL_testudata(L, idx, HANDLE_MT);
    if (!h) lt_argerror(L, idx, fname, "must be a kernel handle, got %s", lt_typename(L, idx));
    return h;
}

static int handle_gc(lua_State *L) {
    lt_kernel_handle_release(check_handle(L, 1, "KernelHandle:__gc"));
    return 0;
}

/* h:info() -> {op, implementation, precision (the one it runs), requested, forwarded} */
static int handle_info(lua_State *L) {
    lt_kernel_handle *h = check_handle(L, 1, "KernelHandle:info");
    lua_createtable(L, 0, 5);
    lua_pushstring(L, h->op ? h->op : "none");
    lua_setfield(L, -2, "op");
    lua_pushstring(L, h->impl ? h->impl->name : "none");
    lua_setfield(L, -2, "implementation");
    lua_pushstring(L, lt_precision_name(h->impl ? h->running : h->precision));
    lua_setfield(L, -2, "precision");
    lua_pushstring(L, lt_precision_name(h->precision));
    lua_setfield(L, -2, "requested");
    lua_pushboolean(L, h->forwarded);
    lua_setfield(L, -2, "forwarded");
    return 1;
}

/* h:set_precision("fp32" | "bf16" | "fp16"): what the layer asks for from its next call on */
static int handle_set_precision(lua_State *L) {
    const char *fname = "KernelHandle:set_precision";
    lt_kernel_handle *h = check_handle(L, 1, fname);
    const char *name = luaL_checkstring(L, 2);
    int precision = lt_precision_of(name);
    if (precision < 0) lt_raisef(L, fname, "precision must be \"fp32\", \"bf16\" or \"fp16\", got \"%s\"", name);
    h->precision = (lt_precision)precision;
    lua_settop(L, 1);
    return 1;
}

static int handle_tostring(lua_State *L) {
    lt_kernel_handle *h = check_handle(L, 1, "KernelHandle:__tostring");
    lua_pushfstring(L, "KernelHandle(%s: %s, %s)", h->op ? h->op : "unused", h->impl ? h->impl->name : "none",
                    lt_precision_name(h->impl ? h->running : h->precision));
    return 1;
}

static lt_kernel_handle *field_handle(lt_fields *f) {
    return lt_field_udata(f, "handle", HANDLE_MT, "a kernel handle (lightning.core.nn.kernel_handle())");
}

/* ---- convolution ---- */

static lt_conv2d_params conv_params(lt_fields *f) {
    lt_conv2d_params p = {
        .kernel_h = lt_field_integer(f, "kernel_h"), .kernel_w = lt_field_integer(f, "kernel_w"),
        .stride_h = lt_field_integer(f, "stride_h"), .stride_w = lt_field_integer(f, "stride_w"),
        .pad_h = lt_field_integer(f, "pad_h"), .pad_w = lt_field_integer(f, "pad_w")};
    return p;
}

/* conv2d_forward{handle, output, cols, input, weight, bias, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w} */
static int conv2d_forward(lua_State *L) {
    lt_fields f;
    lt_fields_open_any(&f, L, 1, "lightning.core.nn.conv2d_forward");
    lt_conv2d_args a = {
        .handle = field_handle(&f), .output = lt_field_tensor(&f, "output"), .cols = lt_field_tensor(&f, "cols"),
        .input = lt_field_tensor(&f, "input"), .weight = lt_field_tensor(&f, "weight"),
        .bias = lt_field_opt_tensor(&f, "bias"), .p = conv_params(&f)};
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_conv2d_forward(&a, &err), f.fname, &err, 0);
}

/* conv2d_backward{handle, grad_input (nil: not needed), grad_weight, grad_bias, grad_output, input, weight,
 *                 cols, dy, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w} */
static int conv2d_backward(lua_State *L) {
    lt_fields f;
    lt_fields_open_any(&f, L, 1, "lightning.core.nn.conv2d_backward");
    lt_conv2d_args a = {
        .handle = field_handle(&f), .grad_input = lt_field_opt_tensor(&f, "grad_input"),
        .grad_weight = lt_field_tensor(&f, "grad_weight"), .grad_bias = lt_field_opt_tensor(&f, "grad_bias"),
        .grad_output = lt_field_tensor(&f, "grad_output"), .input = lt_field_tensor(&f, "input"),
        .weight = lt_field_tensor(&f, "weight"), .cols = lt_field_tensor(&f, "cols"), .dy = lt_field_tensor(&f, "dy"),
        .p = conv_params(&f)};
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_conv2d_backward(&a, &err), f.fname, &err, 0);
}

/* ---- linear ---- */

/* linear_forward{handle, output, input, weight, bias} */
static int linear_forward(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.core.nn.linear_forward");
    lt_linear_args a = {.handle = field_handle(&f), .output = lt_field_tensor(&f, "output"),
                        .input = lt_field_tensor(&f, "input"), .weight = lt_field_tensor(&f, "weight"),
                        .bias = lt_field_opt_tensor(&f, "bias")};
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_linear_forward(&a, &err), f.fname, &err, 0);
}

/* linear_backward{handle, grad_input (nil: not needed), grad_weight, grad_bias, grad_output, input, weight} */
static int linear_backward(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.core.nn.linear_backward");
    lt_linear_args a = {
        .handle = field_handle(&f), .grad_input = lt_field_opt_tensor(&f, "grad_input"),
        .grad_weight = lt_field_tensor(&f, "grad_weight"), .grad_bias = lt_field_opt_tensor(&f, "grad_bias"),
        .grad_output = lt_field_tensor(&f, "grad_output"), .input = lt_field_tensor(&f, "input"),
        .weight = lt_field_tensor(&f, "weight")};
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_linear_backward(&a, &err), f.fname, &err, 0);
}

/* ---- batch normalisation ---- */

/* The fields both BatchNorm forward passes read: handle, output, save_mean, save_invstd, input, weight,
 * bias, running_mean, running_var, training, momentum (nil: cumulative average), eps, num_batches_tracked. */
static lt_batchnorm_args batchnorm_forward_fields(lt_fields *f) {
    lt_batchnorm_args a = {
        .handle = field_handle(f), .output = lt_field_tensor(f, "output"), .save_mean = lt_field_tensor(f, "save_mean"),
        .save_invstd = lt_field_tensor(f, "save_invstd"), .input = lt_field_tensor(f, "input"),
        .weight = lt_field_opt_tensor(f, "weight"), .bias = lt_field_opt_tensor(f, "bias"),
        .running_mean = lt_field_opt_tensor(f, "running_mean"), .running_var = lt_field_opt_tensor(f, "running_var")};
    a.p.training = lt_field_boolean(f, "training", false);
    a.p.momentum = lt_field_opt_number(f, "momentum", -1.0);
    a.p.eps = lt_field_number(f, "eps");
    a.p.num_batches_tracked = lt_field_opt_integer(f, "num_batches_tracked", 0);
    return a;
}

/* The fields both BatchNorm backward passes read: handle, grad_input (nil: not needed), grad_weight,
 * grad_bias, grad_output, input, weight, bias, save_mean, save_invstd. */
static lt_batchnorm_args batchnorm_backward_fields(lt_fields *f) {
    lt_batchnorm_args a = {
        .handle = field_handle(f), .grad_input = lt_field_opt_tensor(f, "grad_input"),
        .grad_weight = lt_field_opt_tensor(f, "grad_weight"), .grad_bias = lt_field_opt_tensor(f, "grad_bias"),
        .grad_output = lt_field_tensor(f, "grad_output"), .input = lt_field_tensor(f, "input"),
        .weight = lt_field_opt_tensor(f, "weight"), .bias = lt_field_opt_tensor(f, "bias"),
        .save_mean = lt_field_tensor(f, "save_mean"), .save_invstd = lt_field_tensor(f, "save_invstd")};
    return a;
}

static int batchnorm_forward(lua_State *L) {
    lt_fields f;
    lt_fields_open_any(&f, L, 1, "lightning.core.nn.batchnorm_forward");
    lt_batchnorm_args a = batchnorm_forward_fields(&f);
    a.activation = lt_field_opt_string(&f, "activation", NULL);
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_batchnorm_forward(&a, &err), f.fname, &err, 0);
}

static int batchnorm_backward(lua_State *L) {
    lt_fields f;
    lt_fields_open_any(&f, L, 1, "lightning.core.nn.batchnorm_backward");
    lt_batchnorm_args a = batchnorm_backward_fields(&f);
    a.activation = lt_field_opt_string(&f, "activation", NULL);
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_batchnorm_backward(&a, &err), f.fname, &err, 0);
}

/* The statistics seam (nn.SyncBatchNorm, nn.h's lt_batchnorm_statistics): the `sums` field is a float64
 * buffer of 2C + 1 values. */
static lt_buffer *field_sums(lt_fields *f) {
    lt_buffer *b = lt_field_udata(f, "sums", LT_BUFFER_MT, "a float64 buffer (L.buffer)");
    if (b->dtype != LT_BUFFER_FLOAT64) lt_raisef(f->L, f->fname, "sums must be a float64 buffer, got an int64 one");
    return b;
}

/* batchnorm_statistics{<batchnorm_forward's fields>, sums} */
static int batchnorm_statistics(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.core.nn.batchnorm_statistics");
    lt_batchnorm_args a = batchnorm_forward_fields(&f);
    lt_buffer *sums = field_sums(&f);
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_batchnorm_statistics(&a, sums->data, sums->len, &err), f.fname, &err, 0);
}

/* batchnorm_normalize{<batchnorm_forward's fields>, sums} */
static int batchnorm_normalize(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.core.nn.batchnorm_normalize");
    lt_batchnorm_args a = batchnorm_forward_fields(&f);
    lt_buffer *sums = field_sums(&f);
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_batchnorm_normalize(&a, sums->data, sums->len, &err), f.fname, &err, 0);
}

/* batchnorm_grad_sums{<batchnorm_backward's fields>, sums} */
static int batchnorm_grad_sums(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.core.nn.batchnorm_grad_sums");
    lt_batchnorm_args a = batchnorm_backward_fields(&f);
    lt_buffer *sums = field_sums(&f);
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_batchnorm_grad_sums(&a, sums->data, sums->len, &err), f.fname, &err, 0);
}

/* batchnorm_grad_input{<batchnorm_backward's fields>, sums, count} */
static int batchnorm_grad_input(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.core.nn.batchnorm_grad_input");
    lt_batchnorm_args a = batchnorm_backward_fields(&f);
    lt_buffer *sums = field_sums(&f);
    lua_Integer count = lt_field_integer(&f, "count");
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_batchnorm_grad_input(&a, sums->data, sums->len, count, &err), f.fname, &err, 0);
}

/* bn_relu_pool_forward{<batchnorm_forward's fields>, codes} */
static int bn_relu_pool_forward(lua_State *L) {
    lt_fields f;
    lt_fields_open_any(&f, L, 1, "lightning.core.nn.bn_relu_pool_forward");
    lt_bn_relu_pool_args a = {.bn = batchnorm_forward_fields(&f), .codes = lt_field_tensor(&f, "codes")};
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_bn_relu_pool_forward(&a, &err), f.fname, &err, 0);
}

/* bn_relu_pool_backward{<batchnorm_backward's fields>, output, codes, dy} */
static int bn_relu_pool_backward(lua_State *L) {
    lt_fields f;
    lt_fields_open_any(&f, L, 1, "lightning.core.nn.bn_relu_pool_backward");
    lt_bn_relu_pool_args a = {.bn = batchnorm_backward_fields(&f), .codes = lt_field_tensor(&f, "codes"),
                              .dy = lt_field_tensor(&f, "dy")};
    a.bn.output = lt_field_tensor(&f, "output");
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_bn_relu_pool_backward(&a, &err), f.fname, &err, 0);
}

/* ---- activations ---- */

/* activation_forward{handle, activation ("relu", "leaky_relu"), negative_slope, output, input} */
static int activation_forward(lua_State *L) {
    lt_fields f;
    lt_fields_open_any(&f, L, 1, "lightning.core.nn.activation_forward");
    lt_activation_args a = {
        .handle = field_handle(&f), .activation = lt_field_string(&f, "activation"),
        .negative_slope = (float)lt_field_opt_number(&f, "negative_slope", 0.0), .output = lt_field_tensor(&f, "output"),
        .input = lt_field_tensor(&f, "input")};
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_activation_forward(&a, &err), f.fname, &err, 0);
}

/* activation_backward{handle, activation, negative_slope, grad_input, grad_output, input, output} */
static int activation_backward(lua_State *L) {
    lt_fields f;
    lt_fields_open_any(&f, L, 1, "lightning.core.nn.activation_backward");
    lt_activation_args a = {
        .handle = field_handle(&f), .activation = lt_field_string(&f, "activation"),
        .negative_slope = (float)lt_field_opt_number(&f, "negative_slope", 0.0),
        .grad_input = lt_field_tensor(&f, "grad_input"), .grad_output = lt_field_tensor(&f, "grad_output"),
        .input = lt_field_tensor(&f, "input"), .output = lt_field_tensor(&f, "output")};
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_activation_backward(&a, &err), f.fname, &err, 0);
}

/* ---- dropout: each function returns the tensor that holds its result ---- */

/* Pushes the field among (a, b) whose tensor is `result`. */
static void push_result(lua_State *L, const lt_tensor *result, const lt_tensor *a, const char *a_name,
                        const char *b_name) {
    lua_getfield(L, 1, result == a ? a_name : b_name);
}

/* dropout_forward{handle, p, training, output, mask, input} -> output, or input outside training */
static int dropout_forward(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.core.nn.dropout_forward");
    lt_dropout_args a = {.handle = field_handle(&f), .p = lt_field_number(&f, "p"),
                         .training = lt_field_boolean(&f, "training", false), .output = lt_field_tensor(&f, "output"),
                         .mask = lt_field_tensor(&f, "mask"), .input = lt_field_tensor(&f, "input")};
    lt_fields_close(&f);
    lt_error err;
    const lt_tensor *result = NULL;
    int rc = lt_dropout_forward(&a, &result, &err);
    if (rc == 0) push_result(L, result, a.output, "output", "input");
    return finish(L, rc, f.fname, &err, 1);
}

/* dropout_backward{handle, p, grad_input, grad_output, mask, input} -> grad_input, or grad_output when the
 * forward pass was the identity */
static int dropout_backward(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.core.nn.dropout_backward");
    lt_dropout_args a = {.handle = field_handle(&f), .p = lt_field_number(&f, "p"),
                         .grad_input = lt_field_tensor(&f, "grad_input"),
                         .grad_output = lt_field_tensor(&f, "grad_output"), .mask = lt_field_tensor(&f, "mask"),
                         .input = lt_field_tensor(&f, "input")};
    lt_fields_close(&f);
    lt_error err;
    const lt_tensor *result = NULL;
    int rc = lt_dropout_backward(&a, &result, &err);
    if (rc == 0) push_result(L, result, a.grad_input, "grad_input", "grad_output");
    return finish(L, rc, f.fname, &err, 1);
}

/* ---- pooling ---- */

/* <windows>: kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w */
static lt_pool2d_params pool_params(lt_fields *f) {
    lt_pool2d_params p = {
        .kernel_h = lt_field_integer(f, "kernel_h"), .kernel_w = lt_field_integer(f, "kernel_w"),
        .stride_h = lt_field_integer(f, "stride_h"), .stride_w = lt_field_integer(f, "stride_w"),
        .pad_h = lt_field_integer(f, "pad_h"), .pad_w = lt_field_integer(f, "pad_w")};
    return p;
}

/* maxpool2d_forward{handle, output, indices, input, <windows>, relu} */
static int maxpool2d_forward(lua_State *L) {
    lt_fields f;
    lt_fields_open_any(&f, L, 1, "lightning.core.nn.maxpool2d_forward");
    lt_pool2d_args a = {.handle = field_handle(&f), .output = lt_field_tensor(&f, "output"),
                        .indices = lt_field_tensor(&f, "indices"), .input = lt_field_tensor(&f, "input"),
                        .p = pool_params(&f)};
    a.p.relu = lt_field_boolean(&f, "relu", false);
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_maxpool2d_forward(&a, &err), f.fname, &err, 0);
}

/* maxpool2d_backward{handle, grad_input, grad_output, output, indices, input, <windows>, relu} */
static int maxpool2d_backward(lua_State *L) {
    lt_fields f;
    lt_fields_open_any(&f, L, 1, "lightning.core.nn.maxpool2d_backward");
    lt_pool2d_args a = {.handle = field_handle(&f), .grad_input = lt_field_tensor(&f, "grad_input"),
                        .grad_output = lt_field_tensor(&f, "grad_output"), .output = lt_field_tensor(&f, "output"),
                        .indices = lt_field_tensor(&f, "indices"), .input = lt_field_tensor(&f, "input"),
                        .p = pool_params(&f)};
    a.p.relu = lt_field_boolean(&f, "relu", false);
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_maxpool2d_backward(&a, &err), f.fname, &err, 0);
}

/* avgpool2d_forward{handle, output, input, <windows>, count_include_pad (default true)} */
static int avgpool2d_forward(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.core.nn.avgpool2d_forward");
    lt_pool2d_args a = {.handle = field_handle(&f), .output = lt_field_tensor(&f, "output"),
                        .input = lt_field_tensor(&f, "input"), .p = pool_params(&f)};
    a.p.count_include_pad = lt_field_boolean(&f, "count_include_pad", true);
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_avgpool2d_forward(&a, &err), f.fname, &err, 0);
}

/* avgpool2d_backward{handle, grad_input, grad_output, input, <windows>, count_include_pad} */
static int avgpool2d_backward(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.core.nn.avgpool2d_backward");
    lt_pool2d_args a = {.handle = field_handle(&f), .grad_input = lt_field_tensor(&f, "grad_input"),
                        .grad_output = lt_field_tensor(&f, "grad_output"), .input = lt_field_tensor(&f, "input"),
                        .p = pool_params(&f)};
    a.p.count_include_pad = lt_field_boolean(&f, "count_include_pad", true);
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_avgpool2d_backward(&a, &err), f.fname, &err, 0);
}

static lt_pool2d_params adaptive_params(lt_fields *f) {
    return (lt_pool2d_params){.out_h = lt_field_integer(f, "out_h"), .out_w = lt_field_integer(f, "out_w")};
}

/* adaptive_avgpool2d_forward{handle, output, input, out_h, out_w} */
static int adaptive_avgpool2d_forward(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.core.nn.adaptive_avgpool2d_forward");
    lt_pool2d_args a = {.handle = field_handle(&f), .output = lt_field_tensor(&f, "output"),
                        .input = lt_field_tensor(&f, "input"), .p = adaptive_params(&f)};
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_adaptive_avgpool2d_forward(&a, &err), f.fname, &err, 0);
}

/* adaptive_avgpool2d_backward{handle, grad_input, grad_output, input, out_h, out_w} */
static int adaptive_avgpool2d_backward(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.core.nn.adaptive_avgpool2d_backward");
    lt_pool2d_args a = {.handle = field_handle(&f), .grad_input = lt_field_tensor(&f, "grad_input"),
                        .grad_output = lt_field_tensor(&f, "grad_output"), .input = lt_field_tensor(&f, "input"),
                        .p = adaptive_params(&f)};
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_adaptive_avgpool2d_backward(&a, &err), f.fname, &err, 0);
}

/* ---- softmax ---- */

/* dim: 1-based, negative counts from the end of t's dimensions */
static int field_dim(lt_fields *f, const lt_tensor *t) {
    lua_Integer given = lt_field_integer(f, "dim"), d = given < 0 ? given + t->ndim + 1 : given;
    if (d < 1 || d > t->ndim)
        lt_raisef(f->L, f->fname, "dim %lld is out of range for a %d-D tensor", (long long)given, t->ndim);
    return (int)d - 1;
}

/* softmax_forward{handle, output, input, dim, log} */
static int softmax_forward(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.core.nn.softmax_forward");
    lt_softmax_args a = {.handle = field_handle(&f), .output = lt_field_tensor(&f, "output"),
                         .input = lt_field_tensor(&f, "input"), .log = lt_field_boolean(&f, "log", false)};
    a.dim = field_dim(&f, a.input);
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_softmax_forward(&a, &err), f.fname, &err, 0);
}

/* softmax_backward{handle, grad_input, grad_output, output, input, dim, log} */
static int softmax_backward(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.core.nn.softmax_backward");
    lt_softmax_args a = {.handle = field_handle(&f), .grad_input = lt_field_tensor(&f, "grad_input"),
                         .grad_output = lt_field_tensor(&f, "grad_output"), .output = lt_field_tensor(&f, "output"),
                         .input = lt_field_tensor(&f, "input"), .log = lt_field_boolean(&f, "log", false)};
    a.dim = field_dim(&f, a.input);
    lt_fields_close(&f);
    lt_error err;
    return finish(L, lt_softmax_backward(&a, &err), f.fname, &err, 0);
}

/* ---- losses ---- */

static lt_reduction field_reduction(lt_fields *f) {
    const char *r = lt_field_string(f, "reduction");
    if (!strcmp(r, "mean")) return LT_REDUCE_MEAN;
    if (!strcmp(r, "sum")) return LT_REDUCE_SUM;
    if (!strcmp(r, "none")) return LT_REDUCE_NONE;
    lt_raisef(f->L, f->fname, "reduction must be 'mean', 'sum' or 'none', got '%s'", r);
    return LT_REDUCE_MEAN;
}

/* The fields every loss reads: handle, input, target, reduction; the classification losses' weight,
 * label_smoothing (cross entropy) and ignore_index (a 1-based class; nil or < 1: none). */
static lt_loss_args loss_fields(lt_fields *f, bool classes, bool smoothing) {
    lt_loss_args a = {.handle = field_handle(f), .input = lt_field_tensor(f, "input"),
                      .target = lt_field_tensor(f, "target")};
    a.p.reduction = field_reduction(f);
    a.p.ignore_index = -1;
    if (classes) {
        a.p.weight = lt_field_opt_tensor(f, "weight");
        lua_Integer ignore = lt_field_opt_integer(f, "ignore_index", 0);
        a.p.ignore_index = ignore >= 1 ? ignore - 1 : -1;
    }
    if (smoothing) a.p.label_smoothing = lt_field_number(f, "label_smoothing");
    return a;
}

/* The backward fields: grad_input, and the gradient: grad_output (a tensor, reduction none) or scale
 * (a number, default 1) times grad_loss (a one-element tensor where the input is: autograd's, read there
 * so that a GPU's is not brought to the host). */
static void loss_backward_fields(lt_fields *f, lt_loss_args *a) {
    a->grad_input = lt_field_tensor(f, "grad_input");
    a->grad_output = lt_field_opt_tensor(f, "grad_output");
    a->scale = lt_field_opt_number(f, "scale", 1.0);
    a->scale_tensor = lt_field_opt_tensor(f, "grad_loss");
}

typedef int (*loss_forward_fn)(const lt_loss_args *, lt_error *);
typedef int (*loss_backward_fn)(const lt_loss_args *, lt_error *);

/* A loss's forward pass: reads the common fields and losses (and log_probs for cross entropy), returns
 * the reduced loss, a new one-element tensor on the input's device (nil for reduction none). */
static int loss_forward(lua_State *L, const char *fname, loss_forward_fn fn, bool classes, bool smoothing) {
    lt_fields f;
    lt_fields_open(&f, L, 1, fname);
    lt_loss_args a = loss_fields(&f, classes, smoothing);
    a.losses = lt_field_tensor(&f, "losses");
    if (smoothing) a.log_probs = lt_field_tensor(&f, "log_probs");
    lt_fields_close(&f);
    if (a.p.reduction == LT_REDUCE_NONE) lua_pushnil(L);
    else a.loss = lt_push_tensor(L);
    lt_error err;
    return finish(L, fn(&a, &err), f.fname, &err, 1);
}

static int loss_backward(lua_State *L, const char *fname, loss_backward_fn fn, bool classes, bool smoothing) {
    lt_fields f;
    lt_fields_open(&f, L, 1, fname);
    lt_loss_args a = loss_fields(&f, classes, smoothing);
    if (smoothing) a.log_probs = lt_field_tensor(&f, "log_probs");
    loss_backward_fields(&f, &a);
    lt_fields_close(&f);
    lt_error err;
    return finish(L, fn(&a, &err), f.fname, &err, 0);
}

/* cross_entropy_forward{handle, losses, log_probs, input, target, weight, label_smoothing, reduction,
 * ignore_index} -> loss (a one-element tensor) */
static int cross_entropy_forward(lua_State *L) {
    return loss_forward(L, "lightning.core.nn.cross_entropy_forward", lt_cross_entropy_forward, true, true);
}

/* cross_entropy_backward{handle, grad_input, log_probs, input, target, weight, label_smoothing, reduction,
 * ignore_index, grad_output | scale, grad_loss} */
static int cross_entropy_backward(lua_State *L) {
    return loss_backward(L, "lightning.core.nn.cross_entropy_backward", lt_cross_entropy_backward, true, true);
}

/* nll_loss_forward{handle, losses, input, target, weight, reduction, ignore_index} -> loss */
static int nll_loss_forward(lua_State *L) {
    return loss_forward(L, "lightning.core.nn.nll_loss_forward", lt_nll_loss_forward, true, false);
}

static int nll_loss_backward(lua_State *L) {
    return loss_backward(L, "lightning.core.nn.nll_loss_backward", lt_nll_loss_backward, true, false);
}

/* mse_loss_forward{handle, losses, input, target, reduction} -> loss */
static int mse_loss_forward(lua_State *L) {
    return loss_forward(L, "lightning.core.nn.mse_loss_forward", lt_mse_loss_forward, false, false);
}

static int mse_loss_backward(lua_State *L) {
    return loss_backward(L, "lightning.core.nn.mse_loss_backward", lt_mse_loss_backward, false, false);
}

/* is_cnhw(t): whether t is stored in the batch-folded layout (for tests and debugging). */
static int is_cnhw(lua_State *L) {
    lua_pushboolean(L, lt_is_cnhw(lt_check_tensor(L, 1, "lightning.core.nn.is_cnhw")));
    return 1;
}

void lt_open_nn(lua_State *L, int module) {
    static const luaL_Reg handle_methods[] = {{"info", handle_info}, {"set_precision", handle_set_precision},
                                              {NULL, NULL}};
    luaL_newmetatable(L, HANDLE_MT);
    lua_pushcfunction(L, handle_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, handle_tostring);
    lua_setfield(L, -2, "__tostring");
    luaL_newlib(L, handle_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    static const luaL_Reg fns[] = {
        {"kernel_handle", kernel_handle},
        {"conv2d_forward", conv2d_forward}, {"conv2d_backward", conv2d_backward},
        {"linear_forward", linear_forward}, {"linear_backward", linear_backward},
        {"batchnorm_forward", batchnorm_forward}, {"batchnorm_backward", batchnorm_backward},
        {"batchnorm_statistics", batchnorm_statistics}, {"batchnorm_normalize", batchnorm_normalize},
        {"batchnorm_grad_sums", batchnorm_grad_sums}, {"batchnorm_grad_input", batchnorm_grad_input},
        {"bn_relu_pool_forward", bn_relu_pool_forward}, {"bn_relu_pool_backward", bn_relu_pool_backward},
        {"activation_forward", activation_forward}, {"activation_backward", activation_backward},
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
