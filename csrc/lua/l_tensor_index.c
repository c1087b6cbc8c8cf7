/* Indexing by tensors of indices, masks, joining, and the version counter an autograd reads:
 * lightning.cat/stack/where, t:gather/scatter_add/index_select/index_add/masked_fill/_version. Index
 * tensors hold 1-based integers (as floats); the core checks each one. */
#include <limits.h>

#include "../core/tensor/tensor_index.h"
#include "../core/tensor/tensor_join.h"
#include "l_util.h"

/* ---- joining ---- */

/* The tensors of the list at idx (a plain table, read raw) into a scratch array pushed on the stack; the
 * list, an argument, keeps them alive. Nothing allocates between this and the core call, so no finalizer
 * can change the list meanwhile. */
static const lt_tensor **check_list(lua_State *L, int idx, const char *fname, int *n) {
    if (!lua_istable(L, idx)) lt_argerror(L, idx, fname, "must be a list of tensors, got %s", lt_typename(L, idx));
    lua_Unsigned len = lua_rawlen(L, idx);
    if (len == 0) lt_raisef(L, fname, "expected a non-empty list of tensors");
    if (len > INT_MAX / 2) lt_raisef(L, fname, "the list holds too many tensors (%llu)", (unsigned long long)len);
    const lt_tensor **ts = lt_push_scratch(L, (size_t)len * sizeof *ts, NULL);
    luaL_checkstack(L, 2, fname);
    for (lua_Unsigned i = 1; i <= len; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i);
        const lt_tensor *t = luaL_testudata(L, -1, LT_TENSOR_MT);
        if (!t) lt_raisef(L, fname, "element %llu of the list must be a tensor, got %s", (unsigned long long)i, lt_typename(L, -1));
        if (!t->storage) lt_raisef(L, fname, "element %llu of the list is a closed tensor (its memory was released)", (unsigned long long)i);
        if (lt_dtype_of(t) != LT_FLOAT32)
            lt_raisef(L, fname, "element %llu of the list is a %s tensor: call :float() first", (unsigned long long)i,
                      lt_dtype_name(lt_dtype_of(t)));
        ts[i - 1] = t;
        lua_pop(L, 1);
    }
    *n = (int)len;
    return ts;
}

/* The optional 1-based dimension at idx (default 1) for tensors of ndim dimensions plus `extra` (1 for a
 * new dimension), negative counting from the end, as a 0-based one. */
static int check_join_dim(lua_State *L, int idx, const char *fname, int ndim, int extra) {
    lua_Integer d = lua_isnoneornil(L, idx) ? 1 : lt_check_int_arg(L, idx, fname, "dimension");
    int top = ndim + extra;
    lua_Integer given = d;
    if (d < 0) d += top + 1;
    if (d < 1 || d > top) lt_raisef(L, fname, "dimension %lld out of range for %s %d-D tensors (1..%d)", (long long)given,
                                    extra ? "stacking" : "joining", ndim, top);
    return (int)d - 1;
}

typedef int (*join_fn)(lt_tensor *, int, const lt_tensor *const *, int, lt_error *);

static int join(lua_State *L, const char *fname, join_fn fn, int extra) {
    lua_settop(L, 2);  /* the list and the dimension (nil when left out) below what this pushes */
    lt_tensor *out = lt_push_tensor(L);
    int out_idx = lua_gettop(L), n;
    const lt_tensor **parts = check_list(L, 1, fname, &n);
    int ndim = 1;  /* cat: the largest (the others are 1-D empty ones, or an error); stack: all alike */
    for (int i = 0; i < n; i++)
        if (parts[i]->ndim > ndim) ndim = parts[i]->ndim;
    if (extra) ndim = parts[0]->ndim;
    int dim = check_join_dim(L, 2, fname, ndim, extra);
    lt_error err;
    if (fn(out, n, parts, dim, &err)) lt_raise(L, fname, &err);
    lua_pushvalue(L, out_idx);
    return 1;
}

/* lightning.cat(tensors[, dim = 1]) */
static int l_cat(lua_State *L) { return join(L, "lightning.cat", lt_cat, 0); }
/* lightning.stack(tensors[, dim = 1]) */
static int l_stack(lua_State *L) { return join(L, "lightning.stack", lt_stack, 1); }

/* ---- indexing ---- */

typedef int (*pick_fn)(lt_tensor *, const lt_tensor *, int, const lt_tensor *, lt_error *);
typedef int (*accumulate_fn)(lt_tensor *, int, const lt_tensor *, const lt_tensor *, lt_error *);

/* t:f(dim, index) -> a new tensor */
static int pick(lua_State *L, const char *fname, pick_fn fn) {
    lt_tensor *t = lt_check_tensor(L, 1, fname);
    int dim = lt_check_dim(L, 2, t, fname);
    lt_tensor *index = lt_check_tensor(L, 3, fname);
    lt_tensor *out = lt_push_tensor(L);
    lt_error err;
    if (fn(out, t, dim, index, &err)) lt_raise(L, fname, &err);
    return 1;
}

/* t:f(dim, index, src) -> t, changed in place */
static int accumulate(lua_State *L, const char *fname, accumulate_fn fn) {
    lt_tensor *t = lt_check_tensor(L, 1, fname);
    int dim = lt_check_dim(L, 2, t, fname);
    lt_tensor *index = lt_check_tensor(L, 3, fname), *src = lt_check_tensor(L, 4, fname);
    lt_error err;
    if (fn(t, dim, index, src, &err)) lt_raise(L, fname, &err);
    lt_bump_version(t);
    lua_settop(L, 1);
    return 1;
}

static int t_gather(lua_State *L) { return pick(L, "Tensor:gather", lt_gather); }
static int t_index_select(lua_State *L) { return pick(L, "Tensor:index_select", lt_index_select); }
static int t_scatter_add(lua_State *L) { return accumulate(L, "Tensor:scatter_add", lt_scatter_add); }
static int t_index_add(lua_State *L) { return accumulate(L, "Tensor:index_add", lt_index_add); }

/* ---- masks ---- */

/* t:masked_fill(mask, value) -> a new tensor (t is unchanged, as PyTorch's masked_fill) */
static int t_masked_fill(lua_State *L) {
    const char *fname = "Tensor:masked_fill";
    lt_tensor *t = lt_check_tensor(L, 1, fname), *mask = lt_check_tensor(L, 2, fname);
    float value = (float)lt_check_number(L, 3, fname);
    lt_tensor *out = lt_push_tensor(L);
    lt_error err;
    if (lt_masked_fill(out, t, mask, value, &err)) lt_raise(L, fname, &err);
    return 1;
}

/* A tensor at idx, or NULL with *value set from a number there. */
static const lt_tensor *tensor_or_number(lua_State *L, int idx, const char *fname, float *value) {
    const lt_tensor *t = lt_test_tensor(L, idx, fname);
    if (t) return t;
    if (lua_type(L, idx) != LUA_TNUMBER) lt_argerror(L, idx, fname, "must be a tensor or a number, got %s", lt_typename(L, idx));
    *value = (float)lua_tonumber(L, idx);
    return NULL;
}

/* lightning.where(cond, a, b) -> a where cond ~= 0, b elsewhere; a and b may be numbers */
static int l_where(lua_State *L) {
    const char *fname = "lightning.where";
    lt_tensor *cond = lt_check_tensor(L, 1, fname);
    float av = 0, bv = 0;
    const lt_tensor *a = tensor_or_number(L, 2, fname, &av), *b = tensor_or_number(L, 3, fname, &bv);
    lt_tensor *out = lt_push_tensor(L);
    lt_error err;
    if (lt_where(out, cond, a, av, b, bv, &err)) lt_raise(L, fname, &err);
    return 1;
}

/* t:_version() -> how many times t's storage was changed in place through the Tensor methods (views
 * share the count); an autograd compares it with the one it saw when it saved t. */
static int t_version(lua_State *L) {
    lt_tensor *t = lt_check_tensor_any(L, 1, "Tensor:_version");
    lua_pushinteger(L, (lua_Integer)t->storage->version);
    return 1;
}

void lt_open_tensor_index(lua_State *L, int module, int methods) {
    static const luaL_Reg module_fns[] = {{"cat", l_cat}, {"stack", l_stack}, {"where", l_where}, {NULL, NULL}};
    static const luaL_Reg method_fns[] = {
        {"gather", t_gather}, {"scatter_add", t_scatter_add}, {"index_select", t_index_select},
        {"index_add", t_index_add}, {"masked_fill", t_masked_fill}, {"_version", t_version}, {NULL, NULL}};
    lua_pushvalue(L, module);
    luaL_setfuncs(L, module_fns, 0);
    lua_pop(L, 1);
    lua_pushvalue(L, methods);
    luaL_setfuncs(L, method_fns, 0);
    lua_pop(L, 1);
}
