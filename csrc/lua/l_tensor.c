/* The Tensor class: creation, shape and views, element access, copying, printing and lifetime. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/device/backend.h"
#include "../core/base/rng.h"
#include "../core/tensor/tensor_device.h"
#include "../core/tensor/tensor_format.h"
#include "../core/tensor/tensor_math.h"
#include "l_util.h"

/* ---- creation ---- */

static lt_tensor *push_new(lua_State *L, const char *fname, int ndim, const int64_t *size) {
    lt_tensor *t = lt_push_tensor(L);
    lt_error err;
    if (lt_tensor_new(t, ndim, size, &err)) lt_raise(L, fname, &err);
    return t;
}

static lt_tensor *push_filled(lua_State *L, const char *fname, float value) {
    int64_t size[LT_MAX_DIMS];
    int n = lt_check_sizes_arg(L, 1, fname, size, 0);
    lt_tensor *t = push_new(L, fname, n, size);
    lt_fill(t, value, NULL);
    return t;
}

static int l_empty(lua_State *L) { return push_filled(L, "lightning.empty", 0.0f), 1; }
static int l_zeros(lua_State *L) { return push_filled(L, "lightning.zeros", 0.0f), 1; }
static int l_ones(lua_State *L) { return push_filled(L, "lightning.ones", 1.0f), 1; }

static int l_full(lua_State *L) {
    const char *fname = "lightning.full";
    lt_check_table(L, 1, fname);
    float value = (float)lt_check_number(L, 2, fname);
    lua_settop(L, 1);
    int64_t size[LT_MAX_DIMS];
    int n = lt_check_sizes_arg(L, 1, fname, size, 0);
    lt_fill(push_new(L, fname, n, size), value, NULL);
    return 1;
}

static int push_random(lua_State *L, const char *fname, int normal) {
    int64_t size[LT_MAX_DIMS];
    int n = lt_check_sizes_arg(L, 1, fname, size, 0);
    lt_tensor *t = push_new(L, fname, n, size);
    lt_error err;
    int rc = normal ? lt_fill_normal(t, 0, 1, lt_rng_global(), &err) : lt_fill_uniform(t, 0, 1, lt_rng_global(), &err);
    if (rc) lt_raise(L, fname, &err);
    return 1;
}

static int l_rand(lua_State *L) { return push_random(L, "lightning.rand", 0); }
static int l_randn(lua_State *L) { return push_random(L, "lightning.randn", 1); }

/* arange(n), arange(start, end[, step]): end excluded, as in PyTorch. */
static int l_arange(lua_State *L) {
    double start = 0, end, step = 1;
    if (lua_gettop(L) <= 1) {
        end = lt_check_number(L, 1, "lightning.arange");
    } else {
        start = lt_check_number(L, 1, "lightning.arange");
        end = lt_check_number(L, 2, "lightning.arange");
        step = lt_opt_number(L, 3, "lightning.arange", 1);
    }
    lt_tensor *t = lt_push_tensor(L);
    lt_error err;
    if (lt_arange(t, start, end, step, &err)) lt_raise(L, "lightning.arange", &err);
    return 1;
}

/* Shape of a nested table: follow first elements down to a number. */
static int nested_shape(lua_State *L, int idx, int64_t *size) {
    const char *fname = "lightning.tensor";
    int ndim = 0;
    lua_pushvalue(L, idx);
    while (lua_istable(L, -1)) {
        if (ndim == LT_MAX_DIMS) lt_raisef(L, fname, "nested tables are more than %d levels deep", LT_MAX_DIMS);
        size[ndim++] = (int64_t)luaL_len(L, -1);
        if (size[ndim - 1] == 0) break;
        lua_geti(L, -1, 1);
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
    return ndim;
}

static void fill_nested(lua_State *L, int idx, int d, int ndim, const int64_t *size, float **out, int64_t *path) {
    const char *fname = "lightning.tensor";
    if (!lua_istable(L, idx))
        lt_raisef(L, fname, "expected a table at depth %d, got %s", d + 1, lt_typename(L, idx));
    int64_t n = (int64_t)luaL_len(L, idx);
    if (n != size[d]) lt_raisef(L, fname, "nested tables have inconsistent lengths at depth %d: expected %lld, got %lld",
                                d + 1, (long long)size[d], (long long)n);
    for (int64_t i = 1; i <= n; i++) {
        lua_geti(L, idx, i);
        path[d] = i;
        if (d == ndim - 1) {
            int isnum;
            lua_Number v = lua_tonumberx(L, -1, &isnum);
            if (!isnum) lt_raisef(L, fname, "element %lld at depth %d is a %s, expected a number", (long long)i, d + 1,
                                  lt_typename(L, -1));
            *(*out)++ = (float)v;
        } else {
            fill_nested(L, lua_gettop(L), d + 1, ndim, size, out, path);
        }
        lua_pop(L, 1);
    }
}

static int l_tensor(lua_State *L) {
    const char *fname = "lightning.tensor";
    if (lua_type(L, 1) == LUA_TNUMBER) {
        int64_t one = 1;
        lt_tensor *t = push_new(L, fname, 1, &one);
        lt_data(t)[0] = (float)lua_tonumber(L, 1);
        return 1;
    }
    if (!lua_istable(L, 1)) return lt_argerror(L, 1, fname, "must be a table of numbers (nested for more dimensions), got %s", lt_typename(L, 1));
    int64_t size[LT_MAX_DIMS], path[LT_MAX_DIMS];
    int ndim = nested_shape(L, 1, size);
    lt_tensor *t = push_new(L, fname, ndim, size);
    float *p = lt_numel(t) ? lt_data(t) : NULL;
    fill_nested(L, 1, 0, ndim, size, &p, path);
    return 1;
}

static int l_is_tensor(lua_State *L) {
    lua_pushboolean(L, luaL_testudata(L, 1, LT_TENSOR_MT) != NULL);
    return 1;
}

/* ---- shape ---- */

static int t_size(lua_State *L) {
    lt_tensor *t = lt_check_tensor_any(L, 1, "Tensor:size");
    if (lua_isnoneornil(L, 2)) {
        lt_push_size(L, t->ndim, t->size);
    } else {
        lua_pushinteger(L, t->size[lt_check_dim(L, 2, t, "Tensor:size")]);
    }
    return 1;
}

static int t_stride(lua_State *L) {
    lt_tensor *t = lt_check_tensor_any(L, 1, "Tensor:stride");
    if (lua_isnoneornil(L, 2)) lt_push_size(L, t->ndim, t->stride);
    else lua_pushinteger(L, t->stride[lt_check_dim(L, 2, t, "Tensor:stride")]);
    return 1;
}

static int t_dim(lua_State *L) { return lua_pushinteger(L, lt_check_tensor_any(L, 1, "Tensor:dim")->ndim), 1; }
static int t_numel(lua_State *L) { return lua_pushinteger(L, lt_numel(lt_check_tensor_any(L, 1, "Tensor:numel"))), 1; }
static int t_is_contiguous(lua_State *L) { return lua_pushboolean(L, lt_is_contiguous(lt_check_tensor_any(L, 1, "Tensor:is_contiguous"))), 1; }

static int t_len(lua_State *L) {
    lt_tensor *t = lt_check_tensor_any(L, 1, "Tensor:len");
    return lua_pushinteger(L, t->size[0]), 1;
}

/* ---- views ---- */

typedef int (*resize_fn)(lt_tensor *, const lt_tensor *, int, const int64_t *, lt_error *);

static int push_resized(lua_State *L, const char *fname, resize_fn fn) {
    lt_tensor *t = lt_check_tensor_any(L, 1, fname);
    int64_t size[LT_MAX_DIMS];
    int n = lt_check_sizes_arg(L, 2, fname, size, 1);
    lt_tensor *out = lt_push_tensor(L);
    lt_error err;
    if (fn(out, t, n, size, &err)) lt_raise(L, fname, &err);
    return 1;
}

static int t_view(lua_State *L) { return push_resized(L, "Tensor:view", lt_view); }

/* Resizes t in place and returns it. A new storage starts its version from the old one's, so that the
 * version still moves on (an autograd compares it with the one it saw). */
static int resized_in_place(lua_State *L, const char *fname, lt_tensor *t, int ndim, const int64_t *size) {
    uint64_t version = t->storage->version;
    lt_error err;
    if (lt_tensor_resize(t, ndim, size, &err)) lt_raise(L, fname, &err);
    if (t->storage->version < version) t->storage->version = version;
    lt_bump_version(t);
    lt_account_memory(L);
    lua_settop(L, 1);
    return 1;
}

/* resize(sizes...): makes the tensor contiguous with these sizes, in place, keeping its storage when it
 * is large enough (the contents are then whatever was there). */
static int t_resize(lua_State *L) {
    const char *fname = "Tensor:resize";
    lt_tensor *t = lt_check_tensor_anywhere(L, 1, fname);
    int64_t size[LT_MAX_DIMS];
    int n = lt_check_sizes_arg(L, 2, fname, size, 0);
    return resized_in_place(L, fname, t, n, size);
}

static int t_resize_as(lua_State *L) {
    const char *fname = "Tensor:resize_as";
    lt_tensor *t = lt_check_tensor_anywhere(L, 1, fname), *other = lt_check_tensor_any(L, 2, fname);
    return resized_in_place(L, fname, t, other->ndim, other->size);
}
static int t_reshape(lua_State *L) { return push_resized(L, "Tensor:reshape", lt_reshape); }
static int t_expand(lua_State *L) { return push_resized(L, "Tensor:expand", lt_expand); }

static int t_narrow(lua_State *L) {
    const char *fname = "Tensor:narrow";
    lt_tensor *t = lt_check_tensor_any(L, 1, fname);
    int d = lt_check_dim(L, 2, t, fname);
    int64_t start = lt_check_index_arg(L, 3, fname, "start");
    lua_Integer len = lt_check_int_arg(L, 4, fname, "length");
    lt_tensor *out = lt_push_tensor(L);
    lt_error err;
    if (lt_narrow(out, t, d, start, len, &err)) lt_raise(L, fname, &err);
    return 1;
}

static int t_select(lua_State *L) {
    const char *fname = "Tensor:select";
    lt_tensor *t = lt_check_tensor_any(L, 1, fname);
    int d = lt_check_dim(L, 2, t, fname);
    int64_t i = lt_check_index_arg(L, 3, fname, "index");
    lt_tensor *out = lt_push_tensor(L);
    lt_error err;
    if (lt_select(out, t, d, i, &err)) lt_raise(L, fname, &err);
    return 1;
}

static int t_transpose(lua_State *L) {
    const char *fname = "Tensor:transpose";
    lt_tensor *t = lt_check_tensor_any(L, 1, fname);
    int d0 = lt_check_dim(L, 2, t, fname), d1 = lt_check_dim(L, 3, t, fname);
    lt_tensor *out = lt_push_tensor(L);
    lt_error err;
    if (lt_transpose(out, t, d0, d1, &err)) lt_raise(L, fname, &err);
    return 1;
}

static int t_t(lua_State *L) {
    lt_tensor *t = lt_check_tensor_any(L, 1, "Tensor:t");
    if (t->ndim > 2) lt_raisef(L, "Tensor:t", "expected a 1-D or 2-D tensor, got a %d-D tensor; use transpose(d1, d2)", t->ndim);
    lt_tensor *out = lt_push_tensor(L);
    if (t->ndim == 1) lt_tensor_share(out, t);
    else lt_transpose(out, t, 0, 1, NULL);
    return 1;
}

static int t_permute(lua_State *L) {
    const char *fname = "Tensor:permute";
    lt_tensor *t = lt_check_tensor_any(L, 1, fname);
    int64_t dims[LT_MAX_DIMS];
    int n = lt_check_sizes_arg(L, 2, fname, dims, 0);
    int order[LT_MAX_DIMS];
    if (n != t->ndim) lt_raisef(L, fname, "expected %d dimensions in the order, got %d", t->ndim, n);
    for (int i = 0; i < n; i++) {
        if (dims[i] < 1 || dims[i] > t->ndim)
            lt_raisef(L, fname, "dimension %lld out of range for a %d-D tensor", (long long)dims[i], t->ndim);
        order[i] = (int)dims[i] - 1;
    }
    lt_tensor *out = lt_push_tensor(L);
    lt_error err;
    if (lt_permute(out, t, n, order, &err)) lt_raise(L, fname, &err);
    return 1;
}

static int t_squeeze(lua_State *L) {
    lt_tensor *t = lt_check_tensor_any(L, 1, "Tensor:squeeze");
    int d = lua_isnoneornil(L, 2) ? -1 : lt_check_dim(L, 2, t, "Tensor:squeeze");
    lt_tensor *out = lt_push_tensor(L);
    lt_error err;
    if (lt_squeeze(out, t, d, &err)) lt_raise(L, "Tensor:squeeze", &err);
    return 1;
}

static int t_unsqueeze(lua_State *L) {
    const char *fname = "Tensor:unsqueeze";
    lt_tensor *t = lt_check_tensor_any(L, 1, fname);
    lua_Integer d = lt_check_int_arg(L, 2, fname, "dimension");
    if (d < 0) d += t->ndim + 2;
    if (d < 1 || d > t->ndim + 1)
        lt_raisef(L, fname, "dimension %lld out of range 1..%d", (long long)lua_tointeger(L, 2), t->ndim + 1);
    lt_tensor *out = lt_push_tensor(L);
    lt_error err;
    if (lt_unsqueeze(out, t, (int)d - 1, &err)) lt_raise(L, fname, &err);
    return 1;
}

static int t_contiguous(lua_State *L) {
    lt_tensor *t = lt_check_tensor_any(L, 1, "Tensor:contiguous");
    if (lt_is_contiguous(t)) {
        lua_settop(L, 1);
        return 1;
    }
    lt_tensor *out = lt_push_tensor(L);
    lt_error err;
    if (lt_contiguous(out, t, &err)) lt_raise(L, "Tensor:contiguous", &err);
    return 1;
}

/* ---- element access ---- */

static void check_indices(lua_State *L, int first, int count, const lt_tensor *t, const char *fname, int64_t *idx) {
    if (count != t->ndim) lt_raisef(L, fname, "expected %d indices for a %d-D tensor, got %d", t->ndim, t->ndim, count);
    for (int i = 0; i < count; i++) idx[i] = lt_check_index_arg(L, first + i, fname, "index");
}

static int t_get(lua_State *L) {
    const char *fname = "Tensor:get";
    lt_tensor *t = lt_check_tensor(L, 1, fname);
    int64_t idx[LT_MAX_DIMS], off;
    check_indices(L, 2, lua_gettop(L) - 1, t, fname, idx);
    lt_error err;
    if (lt_offset_of(t, t->ndim, idx, &off, &err)) lt_raise(L, fname, &err);
    lua_pushnumber(L, ((float *)t->storage->data)[off]);
    return 1;
}

static int t_set(lua_State *L) {
    const char *fname = "Tensor:set";
    lt_tensor *t = lt_check_tensor(L, 1, fname);
    int top = lua_gettop(L);
    if (top < 2) lt_raisef(L, fname, "expected indices and a value");
    float v = (float)lt_check_number(L, top, fname);
    int64_t idx[LT_MAX_DIMS], off;
    check_indices(L, 2, top - 2, t, fname, idx);
    lt_error err;
    if (lt_offset_of(t, t->ndim, idx, &off, &err)) lt_raise(L, fname, &err);
    ((float *)t->storage->data)[off] = v;
    lt_bump_version(t);
    lua_settop(L, 1);
    return 1;
}

/* The tensor at idx as the host reads it: itself, or for a tensor on a GPU a copy on the host, pushed
 * (printing, item and totable copy through the host, as PyTorch's do). */
static const lt_tensor *on_host(lua_State *L, int idx, const char *fname) {
    lt_tensor *t = lt_check_tensor_any(L, idx, fname);
    if (lt_device_of(t) == LT_DEVICE_CPU) return t;
    lt_tensor *host = lt_push_tensor(L);
    lt_error err;
    if (lt_to_device(host, t, LT_DEVICE_CPU, &err)) lt_raise(L, fname, &err);
    return host;
}

/* The same for a float32 tensor. */
static const lt_tensor *host_readable(lua_State *L, int idx, const char *fname) {
    const lt_tensor *t = on_host(L, idx, fname);
    if (lt_dtype_of(t) != LT_FLOAT32) lt_check_tensor(L, idx, fname);  /* raises */
    return t;
}

static int t_item(lua_State *L) {
    const lt_tensor *t = host_readable(L, 1, "Tensor:item");
    if (lt_numel(t) != 1) {
        char s[160];
        lt_raisef(L, "Tensor:item", "expected a tensor with one element, got %s", lt_shape_str(t, s, sizeof s));
    }
    int64_t off = t->offset;  /* every dimension has size 1 */
    lua_pushnumber(L, ((float *)t->storage->data)[off]);
    return 1;
}

static void push_table(lua_State *L, const lt_tensor *t, int d, int64_t off) {
    luaL_checkstack(L, 4, "tensor too deep");
    lua_createtable(L, lt_table_hint(t->size[d]), 0);
    for (int64_t i = 0; i < t->size[d]; i++) {
        int64_t o = off + i * t->stride[d];
        if (d == t->ndim - 1) lua_pushnumber(L, ((float *)t->storage->data)[o]);
        else push_table(L, t, d + 1, o);
        lua_rawseti(L, -2, i + 1);
    }
}

static int t_totable(lua_State *L) {
    const lt_tensor *t = host_readable(L, 1, "Tensor:totable");
    push_table(L, t, 0, t->offset);
    return 1;
}

/* t[i]: a number for 1-D tensors, the i-th slice (a view) otherwise. Other keys: methods, then fields
 * stored on the tensor (such as p.grad). */
static int t_index(lua_State *L) {
    if (lua_type(L, 2) == LUA_TNUMBER) {
        const char *fname = "Tensor:__index";
        lt_tensor *t = lt_check_tensor_anywhere(L, 1, fname);
        lua_Integer i = lt_check_int_arg(L, 2, fname, "index");
        if (i < 1 || i > t->size[0])
            lt_raisef(L, fname, "index %lld out of range for dimension 1 of size %lld", (long long)i, (long long)t->size[0]);
        if (t->ndim == 1 && lt_device_of(t) != LT_DEVICE_CPU) {  /* the element, through the host */
            lt_tensor element = *t, host = {0};
            element.size[0] = 1;
            element.offset += (i - 1) * t->stride[0];
            lt_error err;
            if (lt_to_device(&host, &element, LT_DEVICE_CPU, &err)) lt_raise(L, fname, &err);
            lua_pushnumber(L, *lt_data(&host));
            lt_tensor_release(&host);
        } else if (t->ndim == 1) {
            lua_pushnumber(L, ((float *)t->storage->data)[t->offset + (i - 1) * t->stride[0]]);
        } else {
            lt_tensor *out = lt_push_tensor(L);
            lt_select(out, t, 0, i - 1, NULL);
        }
        return 1;
    }
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE) return 0;
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

static int t_newindex(lua_State *L) {
    const char *fname = "Tensor:__newindex";
    /* fields (p.grad, autograd's grad_fn) may be set on a tensor of any dtype; elements only on float32 */
    lt_check_tensor_any(L, 1, fname);
    if (lua_type(L, 2) == LUA_TNUMBER) {
        lt_tensor *t = lt_check_tensor(L, 1, fname);
        lua_Integer i = lt_check_int_arg(L, 2, fname, "index");
        if (i < 1 || i > t->size[0])
            lt_raisef(L, fname, "index %lld out of range for dimension 1 of size %lld", (long long)i, (long long)t->size[0]);
        lt_error err;
        lt_tensor *src = lt_test_tensor(L, 3, fname);
        if (t->ndim == 1) {
            if (!src && lua_type(L, 3) != LUA_TNUMBER)
                lt_raisef(L, fname, "expected a number to store, got %s", lt_typename(L, 3));
            lt_tensor view = *t;
            view.size[0] = 1;
            view.offset += (i - 1) * t->stride[0];
            if (src ? lt_copy(&view, src, &err) : lt_fill(&view, (float)lua_tonumber(L, 3), &err)) lt_raise(L, fname, &err);
            lt_bump_version(t);
            return 0;
        }
        lt_tensor slice = {0};
        lt_select(&slice, t, 0, i - 1, NULL);
        int rc;
        if (src) rc = lt_copy(&slice, src, &err);
        else if (lua_type(L, 3) == LUA_TNUMBER) rc = lt_fill(&slice, (float)lua_tonumber(L, 3), &err);
        else rc = lt_fail(&err, "expected a number or a tensor to store, got %s", lt_typename(L, 3));
        lt_tensor_release(&slice);
        if (rc) lt_raise(L, fname, &err);
        lt_bump_version(t);
        return 0;
    }
    if (lua_type(L, 2) != LUA_TSTRING) lt_raisef(L, fname, "field names must be strings or numbers, got %s", lt_typename(L, 2));
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
        lt_raisef(L, fname, "cannot set field '%s': it is a method of Tensor", lua_tostring(L, 2));
    lua_pop(L, 1);
    if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, 1);
    }
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_rawset(L, -3);
    return 0;
}

/* ---- copying ---- */

/* t:copy(src): src broadcast into t; a bfloat16 or float16 src (of t's shape) is converted */
static int t_copy(lua_State *L) {
    lt_tensor *t = lt_check_tensor_anywhere(L, 1, "Tensor:copy"), *src = lt_check_tensor_any(L, 2, "Tensor:copy");
    lt_error err;
    if (lt_dtype_of(src) != LT_FLOAT32 ? lt_convert(t, src, &err) : lt_copy(t, src, &err)) lt_raise(L, "Tensor:copy", &err);
    lt_bump_version(t);
    lua_settop(L, 1);
    return 1;
}

static int t_clone(lua_State *L) {
    lt_tensor *t = lt_check_tensor_anywhere(L, 1, "Tensor:clone");
    lt_tensor *out = lt_push_tensor(L);
    lt_error err;
    if (lt_tensor_new_on(out, t->ndim, t->size, LT_FLOAT32, lt_device_of(t), &err) || lt_copy(out, t, &err))
        lt_raise(L, "Tensor:clone", &err);
    return 1;
}

static int t_fill(lua_State *L) {
    lt_tensor *t = lt_check_tensor_anywhere(L, 1, "Tensor:fill");
    float v = (float)lt_check_number(L, 2, "Tensor:fill");
    lt_error err;
    if (lt_fill(t, v, &err)) lt_raise(L, "Tensor:fill", &err);
    lt_bump_version(t);
    lua_settop(L, 1);
    return 1;
}

static int t_zero(lua_State *L) {
    lt_tensor *t = lt_check_tensor_anywhere(L, 1, "Tensor:zero");
    lt_error err;
    if (lt_fill(t, 0.0f, &err)) lt_raise(L, "Tensor:zero", &err);
    lt_bump_version(t);
    lua_settop(L, 1);
    return 1;
}

/* Fills in place from the global generator: uniform(lo, hi) and normal(mean, std). */
static int t_uniform(lua_State *L) {
    lt_tensor *t = lt_check_tensor(L, 1, "Tensor:uniform");
    double lo = lt_opt_number(L, 2, "Tensor:uniform", 0), hi = lt_opt_number(L, 3, "Tensor:uniform", 1);
    lt_error err;
    if (lt_fill_uniform(t, lo, hi, lt_rng_global(), &err)) lt_raise(L, "Tensor:uniform", &err);
    lt_bump_version(t);
    lua_settop(L, 1);
    return 1;
}

static int t_normal(lua_State *L) {
    lt_tensor *t = lt_check_tensor(L, 1, "Tensor:normal");
    double mean = lt_opt_number(L, 2, "Tensor:normal", 0), std = lt_opt_number(L, 3, "Tensor:normal", 1);
    if (!(std >= 0)) lt_raisef(L, "Tensor:normal", "standard deviation must be non-negative, got %g", std);
    lt_error err;
    if (lt_fill_normal(t, mean, std, lt_rng_global(), &err)) lt_raise(L, "Tensor:normal", &err);
    lt_bump_version(t);
    lua_settop(L, 1);
    return 1;
}

/* ---- element types ---- */

static int t_scalar_type(lua_State *L) {
    lua_pushstring(L, lt_dtype_name(lt_dtype_of(lt_check_tensor_any(L, 1, "Tensor:scalar_type"))));
    return 1;
}

/* self when it already has the type, else a contiguous copy converted to it */
static int converted(lua_State *L, const char *fname, lt_dtype to) {
    lt_tensor *t = lt_check_tensor_any(L, 1, fname);
    if (lt_dtype_of(t) == to) return lua_settop(L, 1), 1;
    lt_tensor *out = lt_push_tensor(L);
    lt_error err;
    if (lt_tensor_new_on(out, t->ndim, t->size, to, lt_device_of(t), &err) || lt_convert(out, t, &err))
        lt_raise(L, fname, &err);
    lt_account_memory(L);
    return 1;
}

static int t_float(lua_State *L) { return converted(L, "Tensor:float", LT_FLOAT32); }
static int t_bfloat16(lua_State *L) { return converted(L, "Tensor:bfloat16", LT_BFLOAT16); }
static int t_half(lua_State *L) { return converted(L, "Tensor:half", LT_FLOAT16); }

/* ---- printing and lifetime ---- */

static int t_tostring(lua_State *L) {
    lt_tensor *t = luaL_checkudata(L, 1, LT_TENSOR_MT);
    if (!t->storage) return lua_pushliteral(L, "tensor(<closed>)"), 1;
    lt_device d = lt_device_of(t);
    const lt_tensor *shown = on_host(L, 1, "Tensor:__tostring");
    void **text = lt_push_malloc_slot(L);  /* pushing the string may raise */
    if (!(*text = lt_tensor_format(shown))) return luaL_error(L, "Tensor:__tostring: out of memory");
    if (d == LT_DEVICE_CPU) lua_pushstring(L, *text);
    else lua_pushfstring(L, "%s\n[on %s, printed from a copy on the host]", *text, lt_device_name(d));
    lt_scratch_release(text);
    return 1;
}

static int t_gc(lua_State *L) {
    lt_tensor *t = luaL_checkudata(L, 1, LT_TENSOR_MT);
    lt_tensor_release(t);
    return 0;
}

void lt_open_tensor(lua_State *L, int module, int methods) {
    static const luaL_Reg module_fns[] = {
        {"empty", l_empty}, {"zeros", l_zeros}, {"ones", l_ones}, {"full", l_full}, {"rand", l_rand},
        {"randn", l_randn}, {"arange", l_arange}, {"tensor", l_tensor}, {"is_tensor", l_is_tensor}, {NULL, NULL}};
    static const luaL_Reg method_fns[] = {
        {"size", t_size}, {"stride", t_stride}, {"dim", t_dim}, {"numel", t_numel}, {"nelement", t_numel},
        {"is_contiguous", t_is_contiguous}, {"view", t_view}, {"reshape", t_reshape}, {"resize", t_resize}, {"resize_as", t_resize_as}, {"expand", t_expand},
        {"narrow", t_narrow}, {"select", t_select}, {"transpose", t_transpose}, {"t", t_t}, {"permute", t_permute},
        {"squeeze", t_squeeze}, {"unsqueeze", t_unsqueeze}, {"contiguous", t_contiguous}, {"get", t_get},
        {"set", t_set}, {"item", t_item}, {"totable", t_totable}, {"copy", t_copy}, {"clone", t_clone},
        {"fill", t_fill}, {"zero", t_zero}, {"uniform", t_uniform}, {"normal", t_normal}, {"free", t_gc},
        {"scalar_type", t_scalar_type}, {"float", t_float}, {"bfloat16", t_bfloat16},
        {"half", t_half},
        {NULL, NULL}};
    lua_pushvalue(L, module);
    luaL_setfuncs(L, module_fns, 0);
    lua_pop(L, 1);
    lua_pushvalue(L, methods);
    luaL_setfuncs(L, method_fns, 0);
    lua_pop(L, 1);

    luaL_getmetatable(L, LT_TENSOR_MT);
    lua_pushvalue(L, methods);
    lua_pushcclosure(L, t_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, methods);
    lua_pushcclosure(L, t_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, t_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, t_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, t_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, t_gc);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
}
