/* Bindings for optimizers (lightning.optim): functions in lightning.core.optim. The Lua classes in
 * lua/lightning/optim/ keep the parameter groups and the state tensors; these functions update one
 * parameter tensor per call, from one table of named fields (l_fields.h), and clip gradients over a list of
 * parameters (PyTorch's clip_grad_norm_ and clip_grad_value_, with their positional arguments). */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "../core/optim/amp.h"
#include "../core/optim/optim.h"
#include "../core/tensor/tensor_math.h"
#include "l_fields.h"

/* Raises a core error; `index` (0 when unknown) says which parameter of the optimizer it concerns. */
static int raise_for(lua_State *L, const char *fname, lua_Integer index, const lt_error *err) {
    if (index > 0) return lt_raisef(L, fname, "parameter %lld: %s", (long long)index, err->msg);
    return lt_raise(L, fname, err);
}

static lt_sgd_options sgd_options(lt_fields *f) {
    return (lt_sgd_options){.lr = lt_field_number(f, "lr"), .momentum = lt_field_number(f, "momentum"),
                            .dampening = lt_field_number(f, "dampening"),
                            .weight_decay = lt_field_number(f, "weight_decay"),
                            .nesterov = lt_field_boolean(f, "nesterov", false),
                            .maximize = lt_field_boolean(f, "maximize", false)};
}

static lt_adam_options adam_options(lt_fields *f, bool decoupled) {
    return (lt_adam_options){.lr = lt_field_number(f, "lr"), .beta1 = lt_field_number(f, "beta1"),
                             .beta2 = lt_field_number(f, "beta2"), .eps = lt_field_number(f, "eps"),
                             .weight_decay = lt_field_number(f, "weight_decay"),
                             .amsgrad = lt_field_boolean(f, "amsgrad", false),
                             .maximize = lt_field_boolean(f, "maximize", false), .decoupled_weight_decay = decoupled};
}

/* sgd_step{param, momentum_buffer (nil without momentum), grad, init_buffer, lr, momentum, dampening,
 *          weight_decay, nesterov, maximize, step_values (nil: lr's), index} */
static int l_sgd_step(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.optim.SGD:step");
    lt_sgd_args a = {
        .param = lt_field_tensor(&f, "param"), .momentum_buffer = lt_field_opt_tensor(&f, "momentum_buffer"),
        .grad = lt_field_tensor(&f, "grad"), .init_buffer = lt_field_boolean(&f, "init_buffer", false),
        .o = sgd_options(&f), .step_values = lt_field_opt_tensor(&f, "step_values")};
    lua_Integer index = lt_field_opt_integer(&f, "index", 0);
    lt_fields_close(&f);
    lt_error err;
    if (lt_sgd_step(&a, &err)) return raise_for(L, f.fname, index, &err);
    return 0;
}

/* adam_step{param, exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad), grad, step, lr, beta1, beta2, eps,
 *           weight_decay, amsgrad, maximize, decoupled (AdamW), step_values (nil: lr's and step's), index} */
static int l_adam_step(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.optim.Adam:step");
    bool decoupled = lt_field_boolean(&f, "decoupled", false);
    if (decoupled) f.fname = "lightning.optim.AdamW:step";
    lt_adam_args a = {
        .param = lt_field_tensor(&f, "param"), .exp_avg = lt_field_tensor(&f, "exp_avg"),
        .exp_avg_sq = lt_field_tensor(&f, "exp_avg_sq"), .max_exp_avg_sq = lt_field_opt_tensor(&f, "max_exp_avg_sq"),
        .grad = lt_field_tensor(&f, "grad"), .step = lt_field_integer(&f, "step"), .o = adam_options(&f, decoupled),
        .step_values = lt_field_opt_tensor(&f, "step_values")};
    lua_Integer index = lt_field_opt_integer(&f, "index", 0);
    lt_fields_close(&f);
    lt_error err;
    if (lt_adam_step(&a, &err)) return raise_for(L, f.fname, index, &err);
    return 0;
}

/* The step values (LT_STEP_VALUES floats) an update in a CUDA graph reads, written into row `row`
 * (1-based) of `into`, a host float32 tensor (rows, LT_STEP_VALUES): from the fields of sgd_step or
 * adam_step (optimizer options, and Adam's step), with `into` and `row` beside them. */
static float *step_values_row(lt_fields *f) {
    lt_tensor *into = lt_field_tensor(f, "into");
    lua_Integer row = lt_field_integer(f, "row");
    if (lt_device_of(into) != LT_DEVICE_CPU || lt_dtype_of(into) != LT_FLOAT32 || !lt_is_contiguous(into) ||
        into->ndim != 2 || into->size[1] != LT_STEP_VALUES || row < 1 || row > into->size[0])
        lt_raisef(f->L, f->fname, "into must be a contiguous float32 host tensor (rows, %d) and row one of its rows",
                  LT_STEP_VALUES);
    return (float *)lt_data(into) + (row - 1) * LT_STEP_VALUES;
}

static int l_sgd_step_values(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.optim.SGD:step");
    lt_sgd_options o = sgd_options(&f);
    float *out = step_values_row(&f);
    lt_fields_close(&f);
    lt_sgd_coefficients k;
    lt_sgd_step_values(&o, &k);
    memcpy(out, &k, sizeof k);
    return 0;
}

static int l_adam_step_values(lua_State *L) {
    lt_fields f;
    lt_fields_open(&f, L, 1, "lightning.optim.Adam:step");
    lt_adam_options o = adam_options(&f, lt_field_boolean(&f, "decoupled", false));
    int64_t step = lt_field_integer(&f, "step");
    float *out = step_values_row(&f);
    lt_fields_close(&f);
    lt_error err;
    lt_adam_coefficients k;
    if (lt_adam_step_values(&o, step, &k, &err)) return lt_raise(L, f.fname, &err);
    memcpy(out, &k, sizeof k);
    return 0;
}

/* ---- gradient clipping ---- */

/* The parameters argument: one tensor or a list of tensors, on any device (the norm and the scaling
 * compute where the gradients are). */
static lua_Integer param_count(lua_State *L, const char *fname) {
    if (lt_test_tensor_anywhere(L, 1, fname)) return 1;
    if (!lua_istable(L, 1))
        lt_argerror(L, 1, fname, "must be a tensor or a list of tensors, got %s", lt_typename(L, 1));
    return luaL_len(L, 1);
}

/* Pushes the gradient of parameter i (1-based) and returns it, or pushes nothing and returns NULL when
 * the parameter has no gradient. */
static lt_tensor *push_grad(lua_State *L, lua_Integer i, const char *fname) {
    if (lt_test_tensor_anywhere(L, 1, fname)) lua_pushvalue(L, 1);
    else lua_geti(L, 1, i);
    if (!lt_test_tensor_anywhere(L, -1, fname))
        lt_raisef(L, fname, "params[%lld] must be a tensor, got %s", (long long)i, lt_typename(L, -1));
    lua_getfield(L, -1, "grad");
    lua_remove(L, -2);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    lt_tensor *g = lt_test_tensor_anywhere(L, -1, fname);
    if (!g) lt_raisef(L, fname, "params[%lld].grad must be a tensor or nil, got %s", (long long)i, lt_typename(L, -1));
    return g;
}

/* A number argument named in messages: "argument 2 (max_norm) must be a number, got string". */
static double check_named_number(lua_State *L, int idx, const char *fname, const char *name) {
    if (lua_type(L, idx) != LUA_TNUMBER)
        lt_argerror(L, idx, fname, "(%s) must be a number, got %s", name, lua_isnone(L, idx) ? "nothing" : lt_typename(L, idx));
    return lua_tonumber(L, idx);
}

static double check_norm_type(lua_State *L, int idx, const char *fname) {
    if (lua_isnoneornil(L, idx)) return 2.0;
    if (lua_type(L, idx) == LUA_TSTRING && strcmp(lua_tostring(L, idx), "inf") == 0) return INFINITY;
    if (lua_type(L, idx) != LUA_TNUMBER)
        lt_argerror(L, idx, fname, "(norm_type) must be a number or \"inf\", got %s", lt_typename(L, idx));
    double p = lua_tonumber(L, idx);
    if (!(p > 0)) lt_argerror(L, idx, fname, "(norm_type) must be positive (math.huge for the max norm), got %g", p);
    return p;
}

/* clip_grad_norm(params, max_norm[, norm_type[, error_if_nonfinite]]) --> the total norm before
 * clipping. PyTorch's clip_grad_norm_: the gradients are scaled by max_norm / (total + 1e-6) when that
 * is below 1 (or NaN, which PyTorch's clamp lets through, so NaN gradients stay visible). */
static int l_clip_grad_norm(lua_State *L) {
    const char *fname = "lightning.optim.clip_grad_norm";
    lua_Integer n = param_count(L, fname);
    double max_norm = check_named_number(L, 2, fname, "max_norm");
    if (!(max_norm >= 0)) lt_argerror(L, 2, fname, "(max_norm) must be a non-negative number, got %g", max_norm);
    double norm_type = check_norm_type(L, 3, fname);
    if (!lua_isnoneornil(L, 4) && !lua_isboolean(L, 4))
        lt_argerror(L, 4, fname, "(error_if_nonfinite) must be a boolean, got %s", lt_typename(L, 4));
    int error_if_nonfinite = lua_toboolean(L, 4);
    lt_error err;
    double acc = 0.0;
    for (lua_Integer i = 1; i <= n; i++) {
        lt_tensor *g = push_grad(L, i, fname);
        if (!g) continue;
        if (lt_norm_accumulate(&acc, g, norm_type, &err)) return lt_raisef(L, fname, "params[%lld].grad: %s", (long long)i, err.msg);
        lua_pop(L, 1);
    }
    double total = lt_norm_finish(acc, norm_type);
    if (error_if_nonfinite && !isfinite(total))
        return lt_raisef(L, fname, "the total norm of order %g of the gradients is non-finite (%g), so it cannot be "
                         "clipped; pass error_if_nonfinite = false to scale the gradients by it anyway", norm_type, total);
    double coef = max_norm / (total + 1e-6);
    if (!(coef >= 1.0)) {
        for (lua_Integer i = 1; i <= n; i++) {
            lt_tensor *g = push_grad(L, i, fname);
            if (!g) continue;
            if (lt_scalar_into(g, g, (float)coef, LT_MUL, false, &err)) return lt_raisef(L, fname, "params[%lld].grad: %s", (long long)i, err.msg);
            lua_pop(L, 1);
        }
    }
    lua_pushnumber(L, total);
    return 1;
}

/* The n tensors of argument 1 (one tensor or a list of them; grads: each one's .grad, parameters without
 * one skipped as NULL) in an array that Lua collects, left on the stack. */
static lt_tensor **tensor_list(lua_State *L, const char *fname, bool grads, lua_Integer *n) {
    *n = param_count(L, fname);
    lt_tensor **ts = lua_newuserdatauv(L, sizeof *ts * (size_t)(*n > 0 ? *n : 1), 0);
    for (lua_Integer i = 1; i <= *n; i++) {
        if (grads) {
            ts[i - 1] = push_grad(L, i, fname);
        } else {
            if (lt_test_tensor_anywhere(L, 1, fname)) lua_pushvalue(L, 1);
            else lua_geti(L, 1, i);
            if (!(ts[i - 1] = lt_test_tensor_anywhere(L, -1, fname)))
                lt_raisef(L, fname, "tensors[%lld] must be a tensor, got %s", (long long)i, lt_typename(L, -1));
        }
        if (ts[i - 1]) lua_pop(L, 1);  /* (argument 1 keeps it) */
    }
    return ts;
}

/* get_total_norm(tensors[, norm_type]) --> their norm as if concatenated, a one-element tensor on their
 * device (PyTorch's torch.nn.utils.get_total_norm): on a GPU nothing waits. */
static int l_get_total_norm(lua_State *L) {
    const char *fname = "lightning.optim.get_total_norm";
    double norm_type = check_norm_type(L, 2, fname);
    lua_Integer n;
    lt_tensor **ts = tensor_list(L, fname, false, &n);
    if (n > INT_MAX) return lt_raisef(L, fname, "too many tensors (%lld)", (long long)n);
    lt_tensor *total = lt_push_tensor(L);
    lt_error err;
    if (lt_total_norm(total, (const lt_tensor *const *)ts, (int)n, norm_type, &err)) return lt_raise(L, fname, &err);
    lt_account_memory(L);
    return 1;
}

/* clip_grads_with_norm(params, max_norm, total_norm): the gradients scaled by
 * min(1, max_norm / (total_norm + 1e-6)), total_norm a one-element tensor on their device (PyTorch's
 * clip_grads_with_norm_): with get_total_norm, clipping that does not wait for a GPU. */
static int l_clip_grads_with_norm(lua_State *L) {
    const char *fname = "lightning.optim.clip_grads_with_norm";
    double max_norm = check_named_number(L, 2, fname, "max_norm");
    if (!(max_norm >= 0)) lt_argerror(L, 2, fname, "(max_norm) must be a non-negative number, got %g", max_norm);
    lt_tensor *total = lt_test_tensor_anywhere(L, 3, fname);
    if (!total) lt_argerror(L, 3, fname, "(total_norm) must be a tensor (from get_total_norm), got %s", lt_typename(L, 3));
    lua_Integer n;
    lt_tensor **gs = tensor_list(L, fname, true, &n);
    if (n > INT_MAX) return lt_raisef(L, fname, "too many parameters (%lld)", (long long)n);
    lt_error err;
    if (lt_clip_with_norm(gs, (int)n, max_norm, total, &err)) return lt_raise(L, fname, &err);
    return 0;
}

/* clip_grad_value(params, clip_value): every gradient element clamped to [-clip_value, clip_value]. */
static int l_clip_grad_value(lua_State *L) {
    const char *fname = "lightning.optim.clip_grad_value";
    lua_Integer n = param_count(L, fname);
    double v = check_named_number(L, 2, fname, "clip_value");
    if (!(v >= 0)) lt_argerror(L, 2, fname, "(clip_value) must be a non-negative number, got %g", v);
    lt_error err;
    for (lua_Integer i = 1; i <= n; i++) {
        lt_tensor *g = push_grad(L, i, fname);
        if (!g) continue;
        if (lt_unary_into(g, g, LT_CLAMP, (float)-v, (float)v, &err)) return lt_raisef(L, fname, "params[%lld].grad: %s", (long long)i, err.msg);
        lua_pop(L, 1);
    }
    return 0;
}

/* amp_unscale(grads, inv_scale, found_inf): every tensor of grads (one, or a list) multiplied by
 * inv_scale, and found_inf set to 1 when one held an inf or NaN (torch's
 * _amp_foreach_non_finite_check_and_unscale_); the three on one device, nothing read back. */
static int l_amp_unscale(lua_State *L) {
    const char *fname = "lightning.optim.amp_unscale";
    lt_tensor *inv_scale = lt_test_tensor_anywhere(L, 2, fname), *found_inf = lt_test_tensor_anywhere(L, 3, fname);
    if (!inv_scale) lt_argerror(L, 2, fname, "(inv_scale) must be a tensor, got %s", lt_typename(L, 2));
    if (!found_inf) lt_argerror(L, 3, fname, "(found_inf) must be a tensor, got %s", lt_typename(L, 3));
    lua_Integer n;
    lt_tensor **gs = tensor_list(L, fname, false, &n);
    if (n > INT_MAX) return lt_raisef(L, fname, "too many tensors (%lld)", (long long)n);
    lt_error err;
    if (lt_amp_unscale(gs, (int)n, inv_scale, found_inf, &err)) return lt_raise(L, fname, &err);
    return 0;
}

/* amp_update_scale(scale, growth_tracker, found_inf, growth_factor, backoff_factor, growth_interval):
 * the scale and its tracker after a step (torch's _amp_update_scale_), where they are. */
static int l_amp_update_scale(lua_State *L) {
    const char *fname = "lightning.optim.amp_update_scale";
    static const char *const names[] = {"scale", "growth_tracker", "found_inf"};
    lt_tensor *t[3];
    for (int i = 0; i < 3; i++)
        if (!(t[i] = lt_test_tensor_anywhere(L, i + 1, fname)))
            lt_argerror(L, i + 1, fname, "(%s) must be a tensor, got %s", names[i], lt_typename(L, i + 1));
    lt_amp_growth g = {check_named_number(L, 4, fname, "growth_factor"), check_named_number(L, 5, fname, "backoff_factor"),
                       0};
    if (!lua_isinteger(L, 6)) lt_argerror(L, 6, fname, "(growth_interval) must be an integer, got %s", lt_typename(L, 6));
    lua_Integer interval = lua_tointeger(L, 6);
    g.growth_interval = interval;
    lt_error err;
    if (lt_amp_update_scale(t[0], t[1], t[2], g, &err)) return lt_raise(L, fname, &err);
    return 0;
}

void lt_open_optim(lua_State *L, int module) {
    static const luaL_Reg fns[] = {
        {"sgd_step", l_sgd_step}, {"adam_step", l_adam_step}, {"sgd_step_values", l_sgd_step_values},
        {"adam_step_values", l_adam_step_values}, {"clip_grad_norm", l_clip_grad_norm},
        {"get_total_norm", l_get_total_norm}, {"clip_grads_with_norm", l_clip_grads_with_norm},
        {"clip_grad_value", l_clip_grad_value}, {"amp_unscale", l_amp_unscale},
        {"amp_update_scale", l_amp_update_scale}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_pushinteger(L, LT_STEP_VALUES);  /* the floats of a row of step values */
    lua_setfield(L, -2, "STEP_VALUES");
    lua_setfield(L, module, "optim");
}
