/* Tensor arithmetic: in-place methods (x:add(y) changes x, bumps its version and returns it), operators
 * that make new tensors (x + y), comparisons, reductions and matrix products. */
#include <math.h>

#include "../core/tensor/linalg.h"
#include "../core/tensor/tensor_math.h"
#include "l_util.h"

/* ---- elementwise, in place ---- */

/* self op= other, other a tensor (broadcast to self) or a number; alpha scales other for add/sub. */
static int inplace_binary(lua_State *L, const char *fname, lt_binop op, int tensor_only) {
    lt_tensor *t = lt_check_tensor_anywhere(L, 1, fname);
    lt_tensor *other = lt_test_tensor_anywhere(L, 2, fname);
    lt_error err;
    int rc;
    if (other) {
        float alpha = (float)lt_opt_number(L, 3, fname, 1.0);
        rc = lt_binary_into(t, t, other, op, alpha, &err);
    } else if (!tensor_only && lua_type(L, 2) == LUA_TNUMBER) {
        float s = (float)lua_tonumber(L, 2);
        if (op == LT_ADD || op == LT_SUB) s *= (float)lt_opt_number(L, 3, fname, 1.0);
        rc = lt_scalar_into(t, t, s, op, false, &err);
    } else {
        return lt_argerror(L, 2, fname, "must be a tensor%s, got %s", tensor_only ? "" : " or a number", lt_typename(L, 2));
    }
    if (rc) lt_raise(L, fname, &err);
    lt_bump_version(t);
    lua_settop(L, 1);
    return 1;
}

static int t_add(lua_State *L) { return inplace_binary(L, "Tensor:add", LT_ADD, 0); }
static int t_sub(lua_State *L) { return inplace_binary(L, "Tensor:sub", LT_SUB, 0); }
static int t_mul(lua_State *L) { return inplace_binary(L, "Tensor:mul", LT_MUL, 0); }
static int t_div(lua_State *L) { return inplace_binary(L, "Tensor:div", LT_DIV, 0); }
static int t_cmul(lua_State *L) { return inplace_binary(L, "Tensor:cmul", LT_MUL, 1); }
static int t_cdiv(lua_State *L) { return inplace_binary(L, "Tensor:cdiv", LT_DIV, 1); }
static int t_pow(lua_State *L) { return inplace_binary(L, "Tensor:pow", LT_POW, 0); }

static int inplace_unary(lua_State *L, const char *fname, lt_unop op, float p1, float p2) {
    lt_tensor *t = lt_check_tensor_anywhere(L, 1, fname);
    lt_error err;
    if (lt_unary_into(t, t, op, p1, p2, &err)) lt_raise(L, fname, &err);
    lt_bump_version(t);
    lua_settop(L, 1);
    return 1;
}

static int t_neg(lua_State *L) { return inplace_unary(L, "Tensor:neg", LT_NEG, 0, 0); }
static int t_abs(lua_State *L) { return inplace_unary(L, "Tensor:abs", LT_ABS, 0, 0); }
static int t_sqrt(lua_State *L) { return inplace_unary(L, "Tensor:sqrt", LT_SQRT, 0, 0); }
static int t_exp(lua_State *L) { return inplace_unary(L, "Tensor:exp", LT_EXP, 0, 0); }
static int t_log(lua_State *L) { return inplace_unary(L, "Tensor:log", LT_LOG, 0, 0); }
static int t_sign(lua_State *L) { return inplace_unary(L, "Tensor:sign", LT_SIGN, 0, 0); }
static int t_tanh(lua_State *L) { return inplace_unary(L, "Tensor:tanh", LT_TANH, 0, 0); }
static int t_sigmoid(lua_State *L) { return inplace_unary(L, "Tensor:sigmoid", LT_SIGMOID, 0, 0); }

/* clamp(min, max): either bound may be nil. */
static int t_clamp(lua_State *L) {
    lt_check_tensor_anywhere(L, 1, "Tensor:clamp");
    float lo = lua_isnoneornil(L, 2) ? NAN : (float)lt_check_number(L, 2, "Tensor:clamp");
    float hi = lua_isnoneornil(L, 3) ? NAN : (float)lt_check_number(L, 3, "Tensor:clamp");
    if (lo > hi) lt_raisef(L, "Tensor:clamp", "min (%g) is greater than max (%g)", lo, hi);
    return inplace_unary(L, "Tensor:clamp", LT_CLAMP, lo, hi);
}

static int t_addcmul(lua_State *L) {
    lt_tensor *t = lt_check_tensor_anywhere(L, 1, "Tensor:addcmul"), *a = lt_check_tensor_anywhere(L, 2, "Tensor:addcmul"), *b = lt_check_tensor_anywhere(L, 3, "Tensor:addcmul");
    float value = (float)lt_opt_number(L, 4, "Tensor:addcmul", 1.0);
    lt_error err;
    if (lt_addcmul_into(t, a, b, value, &err)) lt_raise(L, "Tensor:addcmul", &err);
    lt_bump_version(t);
    lua_settop(L, 1);
    return 1;
}

/* ---- operators and comparisons: new tensors ---- */

static int new_binary(lua_State *L, const char *fname, lt_binop op) {
    lt_tensor *a = lt_test_tensor_anywhere(L, 1, fname), *b = lt_test_tensor_anywhere(L, 2, fname);
    lt_error err;
    int rc;
    if (a && b) {
        lt_tensor *out = lt_push_tensor(L);
        rc = lt_binary_new(out, a, b, op, 1.0f, &err);
    } else if (a && lua_type(L, 2) == LUA_TNUMBER) {
        lt_tensor *out = lt_push_tensor(L);
        rc = lt_scalar_new(out, a, (float)lua_tonumber(L, 2), op, false, &err);
    } else if (b && lua_type(L, 1) == LUA_TNUMBER) {
        lt_tensor *out = lt_push_tensor(L);
        rc = lt_scalar_new(out, b, (float)lua_tonumber(L, 1), op, true, &err);
    } else {
        return lt_raisef(L, fname, "expected tensors or a tensor and a number, got %s and %s", lt_typename(L, 1),
                         lt_typename(L, 2));
    }
    if (rc) lt_raise(L, fname, &err);
    return 1;
}

static int op_add(lua_State *L) { return new_binary(L, "Tensor:__add", LT_ADD); }
static int op_sub(lua_State *L) { return new_binary(L, "Tensor:__sub", LT_SUB); }
static int op_mul(lua_State *L) { return new_binary(L, "Tensor:__mul", LT_MUL); }
static int op_div(lua_State *L) { return new_binary(L, "Tensor:__div", LT_DIV); }
static int op_pow(lua_State *L) { return new_binary(L, "Tensor:__pow", LT_POW); }

static int op_unm(lua_State *L) {
    lt_tensor *a = lt_check_tensor_anywhere(L, 1, "Tensor:__unm");
    lt_tensor *out = lt_push_tensor(L);
    lt_error err;
    if (lt_tensor_new_on(out, a->ndim, a->size, LT_FLOAT32, lt_device_of(a), &err) ||
        lt_unary_into(out, a, LT_NEG, 0, 0, &err))
        lt_raise(L, "Tensor:__unm", &err);
    return 1;
}

static int compare(lua_State *L, const char *fname, lt_binop op) {
    lt_check_tensor_anywhere(L, 1, fname);
    if (!lt_test_tensor_anywhere(L, 2, fname) && lua_type(L, 2) != LUA_TNUMBER)
        return lt_argerror(L, 2, fname, "must be a tensor or a number, got %s", lt_typename(L, 2));
    return new_binary(L, fname, op);
}

static int t_eq(lua_State *L) { return compare(L, "Tensor:eq", LT_EQ); }
static int t_ne(lua_State *L) { return compare(L, "Tensor:ne", LT_NE); }
static int t_gt(lua_State *L) { return compare(L, "Tensor:gt", LT_GT); }
static int t_lt(lua_State *L) { return compare(L, "Tensor:lt", LT_LT); }
static int t_ge(lua_State *L) { return compare(L, "Tensor:ge", LT_GE); }
static int t_le(lua_State *L) { return compare(L, "Tensor:le", LT_LE); }

/* ---- reductions ---- */

/* All elements: a number (and for max/min the 1-based flat index, which only argmax/argmin keep). One
 * dimension: a tensor (and for max/min a tensor of 1-based indices). */
static int reduce(lua_State *L, const char *fname, lt_reduce_args args, int dim_arg, int keepdim_arg) {
    lt_tensor *t = lt_check_tensor_anywhere(L, 1, fname);
    lt_error err;
    bool with_index = args.op == LT_RMAX || args.op == LT_RMIN;
    if (lua_isnoneornil(L, dim_arg)) {
        double v;
        int64_t index = 0;
        if (lt_reduce_all(t, args, &v, &index, &err)) lt_raise(L, fname, &err);
        lua_pushnumber(L, v);
        if (!with_index) return 1;
        lua_pushinteger(L, index + 1);
        return 2;
    }
    int dim = lt_check_dim(L, dim_arg, t, fname);
    int keepdim = lt_opt_boolean(L, keepdim_arg, fname, 0);
    lt_tensor *values = lt_push_tensor(L);
    lt_tensor *indices = with_index ? lt_push_tensor(L) : NULL;
    if (lt_reduce_dim(values, indices, t, dim, keepdim, args, &err)) lt_raise(L, fname, &err);
    if (!with_index) return 1;
    lt_scalar_into(indices, indices, 1.0f, LT_ADD, false, NULL);  /* 1-based */
    return 2;
}

static lt_reduce_args args_of(lt_reduce_op op) { return (lt_reduce_args){op, true, 2.0}; }

static int t_sum(lua_State *L) { return reduce(L, "Tensor:sum", args_of(LT_RSUM), 2, 3); }
static int t_mean(lua_State *L) { return reduce(L, "Tensor:mean", args_of(LT_RMEAN), 2, 3); }
/* max([dim[, keepdim]]), min: over all elements just the number, as PyTorch's t.max() (argmax gives the
 * index); over one dimension the values and their 1-based indices. */
static int extremum(lua_State *L, const char *fname, lt_reduce_op op) {
    bool whole = lua_isnoneornil(L, 2);  /* (checked first: the results go on the stack above) */
    int n = reduce(L, fname, args_of(op), 2, 3);
    if (whole) {
        lua_pop(L, 1);  /* the flat index */
        return 1;
    }
    return n;
}
static int t_max(lua_State *L) { return extremum(L, "Tensor:max", LT_RMAX); }
static int t_min(lua_State *L) { return extremum(L, "Tensor:min", LT_RMIN); }

/* argmax([dim[, keepdim]]): the 1-based index of the largest element (first on ties). */
static int arg_reduce(lua_State *L, const char *fname, lt_reduce_op op) {
    int n = reduce(L, fname, args_of(op), 2, 3);
    lua_remove(L, -n);  /* drop the values, keep the indices */
    return 1;
}
static int t_argmax(lua_State *L) { return arg_reduce(L, "Tensor:argmax", LT_RMAX); }
static int t_argmin(lua_State *L) { return arg_reduce(L, "Tensor:argmin", LT_RMIN); }

/* var([dim[, unbiased[, keepdim]]]) and std: unbiased (n - 1) unless told otherwise. */
static int spread(lua_State *L, const char *fname, lt_reduce_op op) {
    lt_reduce_args args = args_of(op);
    args.unbiased = lt_opt_boolean(L, 3, fname, 1);
    return reduce(L, fname, args, 2, 4);
}
static int t_var(lua_State *L) { return spread(L, "Tensor:var", LT_RVAR); }
static int t_std(lua_State *L) { return spread(L, "Tensor:std", LT_RSTD); }

/* norm([p[, dim[, keepdim]]]): p = 2 by default; math.huge for the max norm. */
static int t_norm(lua_State *L) {
    lt_reduce_args args = args_of(LT_RNORM);
    args.p = lt_opt_number(L, 2, "Tensor:norm", 2.0);
    if (!(args.p > 0)) lt_raisef(L, "Tensor:norm", "p must be positive, got %g", args.p);
    if (lua_gettop(L) >= 2) lua_remove(L, 2);
    return reduce(L, "Tensor:norm", args, 2, 3);
}

/* ---- matrix products ---- */

typedef int (*product_fn)(lt_tensor *, const lt_tensor *, const lt_tensor *, lt_error *);

static int product(lua_State *L, const char *fname, product_fn fn) {
    lt_tensor *a = lt_check_tensor(L, 1, fname), *b = lt_check_tensor(L, 2, fname);
    lt_tensor *out = lt_push_tensor(L);
    lt_error err;
    if (fn(out, a, b, &err)) lt_raise(L, fname, &err);
    return 1;
}

static int l_mm(lua_State *L) { return product(L, "lightning.mm", lt_mm); }
static int l_bmm(lua_State *L) { return product(L, "lightning.bmm", lt_bmm); }
static int l_matmul(lua_State *L) { return product(L, "lightning.matmul", lt_matmul); }

/* lightning.addmm(M, a, b[, beta[, alpha]]) = beta * M + alpha * a @ b, a new tensor. */
static int l_addmm(lua_State *L) {
    const char *fname = "lightning.addmm";
    lt_tensor *m = lt_check_tensor(L, 1, fname), *a = lt_check_tensor(L, 2, fname), *b = lt_check_tensor(L, 3, fname);
    float beta = (float)lt_opt_number(L, 4, fname, 1.0), alpha = (float)lt_opt_number(L, 5, fname, 1.0);
    lt_error err;
    if (a->ndim != 2 || b->ndim != 2 || a->size[1] != b->size[0]) {
        lt_tensor tmp = {0};
        lt_mm(&tmp, a, b, &err);  /* fails, with the message that says why */
        lt_tensor_release(&tmp);
        lt_raise(L, fname, &err);
    }
    int64_t size[2] = {a->size[0], b->size[1]};
    lt_tensor *out = lt_push_tensor(L);
    if (lt_tensor_new(out, 2, size, &err) || lt_copy(out, m, &err) || lt_addmm_into(out, a, b, beta, alpha, &err))
        lt_raise(L, fname, &err);
    return 1;
}

/* self:addmm(a, b[, beta[, alpha]]): self = beta * self + alpha * a @ b, in place. */
static int t_addmm(lua_State *L) {
    lt_tensor *t = lt_check_tensor(L, 1, "Tensor:addmm"), *a = lt_check_tensor(L, 2, "Tensor:addmm"), *b = lt_check_tensor(L, 3, "Tensor:addmm");
    float beta = (float)lt_opt_number(L, 4, "Tensor:addmm", 1.0), alpha = (float)lt_opt_number(L, 5, "Tensor:addmm", 1.0);
    lt_error err;
    if (lt_addmm_into(t, a, b, beta, alpha, &err)) lt_raise(L, "Tensor:addmm", &err);
    lt_bump_version(t);
    lua_settop(L, 1);
    return 1;
}

/* lightning.eigh(a) -> values (ascending), vectors (columns): torch.linalg.eigh of a symmetric matrix
 * (its lower triangle), in double precision inside. */
static int l_eigh(lua_State *L) {
    const char *fname = "lightning.eigh";
    lt_tensor *a = lt_check_tensor(L, 1, fname);
    lt_tensor *values = lt_push_tensor(L), *vectors = lt_push_tensor(L);
    lt_error err;
    if (lt_eigh(values, vectors, a, &err)) lt_raise(L, fname, &err);
    return 2;
}

void lt_open_tensor_math(lua_State *L, int module, int methods) {
    static const luaL_Reg module_fns[] = {
        {"mm", l_mm}, {"bmm", l_bmm}, {"matmul", l_matmul}, {"addmm", l_addmm}, {"eigh", l_eigh}, {NULL, NULL}};
    static const luaL_Reg method_fns[] = {
        {"add", t_add}, {"sub", t_sub}, {"mul", t_mul}, {"div", t_div}, {"cmul", t_cmul}, {"cdiv", t_cdiv},
        {"pow", t_pow}, {"neg", t_neg}, {"abs", t_abs}, {"sqrt", t_sqrt}, {"exp", t_exp}, {"log", t_log},
        {"sign", t_sign}, {"tanh", t_tanh}, {"sigmoid", t_sigmoid}, {"clamp", t_clamp}, {"addcmul", t_addcmul},
        {"eq", t_eq}, {"ne", t_ne}, {"gt", t_gt}, {"lt", t_lt}, {"ge", t_ge}, {"le", t_le},
        {"sum", t_sum}, {"mean", t_mean}, {"max", t_max}, {"min", t_min}, {"argmax", t_argmax},
        {"argmin", t_argmin}, {"var", t_var}, {"std", t_std}, {"norm", t_norm},
        {"mm", l_mm}, {"bmm", l_bmm}, {"matmul", l_matmul}, {"addmm", t_addmm}, {NULL, NULL}};
    static const luaL_Reg operators[] = {
        {"__add", op_add}, {"__sub", op_sub}, {"__mul", op_mul}, {"__div", op_div}, {"__pow", op_pow},
        {"__unm", op_unm}, {NULL, NULL}};
    lua_pushvalue(L, module);
    luaL_setfuncs(L, module_fns, 0);
    lua_pop(L, 1);
    lua_pushvalue(L, methods);
    luaL_setfuncs(L, method_fns, 0);
    lua_pop(L, 1);
    luaL_getmetatable(L, LT_TENSOR_MT);
    luaL_setfuncs(L, operators, 0);
    lua_pop(L, 1);
}
