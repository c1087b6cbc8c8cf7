#include "l_util.h"

#include "../core/device/backend.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lt_raise(lua_State *L, const char *fname, const lt_error *err) {
    return luaL_error(L, "%s: %s", fname, err->msg);
}

int lt_raisef(lua_State *L, const char *fname, const char *fmt, ...) {
    lt_error err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof err.msg, fmt, ap);
    va_end(ap);
    return lt_raise(L, fname, &err);
}

void lt_account_memory(lua_State *L) {
    size_t bytes = lt_take_allocated_bytes();
    if (bytes >= 1024) lua_gc(L, LUA_GCSTEP, (int)(bytes / 1024 > 1 << 30 ? 1 << 30 : bytes / 1024));
}

#define SCRATCH_MT "lightning.scratch"

/* Lua aligns userdata for pointers, doubles and integers only, hence this payload type (not max_align_t). */
typedef struct scratch_header {
    void (*release)(void *);
    union { void *p; double d; int64_t i; } payload[];
} scratch_header;

static int scratch_gc(lua_State *L) {
    scratch_header *h = luaL_checkudata(L, 1, SCRATCH_MT);
    if (h->release) h->release(h->payload);
    h->release = NULL;
    return 0;
}

void *lt_push_scratch(lua_State *L, size_t size, void (*release)(void *)) {
    if (size > SIZE_MAX - sizeof(scratch_header)) luaL_error(L, "scratch buffer of %zu bytes is too large", size);
    scratch_header *h = lua_newuserdatauv(L, sizeof(scratch_header) + size, 0);
    h->release = NULL;  /* nothing to release until the payload is set up */
    memset(h->payload, 0, size);
    if (luaL_newmetatable(L, SCRATCH_MT)) {
        lua_pushcfunction(L, scratch_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, scratch_gc);
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, -2);
    h->release = release;
    return h->payload;
}

void lt_scratch_release(void *scratch) {
    scratch_header *h = (scratch_header *)((char *)scratch - offsetof(scratch_header, payload));
    if (h->release) h->release(scratch);
    h->release = NULL;
}

static void free_slot(void *slot) {
    free(*(void **)slot);
    *(void **)slot = NULL;
}

void **lt_push_malloc_slot(lua_State *L) { return lt_push_scratch(L, sizeof(void *), free_slot); }

lt_tensor *lt_push_tensor(lua_State *L) {
    lt_account_memory(L);
    lt_tensor *t = lua_newuserdatauv(L, sizeof(lt_tensor), 1);
    memset(t, 0, sizeof *t);
    luaL_setmetatable(L, LT_TENSOR_MT);
    return t;
}

const char *lt_typename(lua_State *L, int idx) {
    if (luaL_testudata(L, idx, LT_TENSOR_MT)) return "tensor";
    return luaL_typename(L, idx);
}

int lt_argerror(lua_State *L, int idx, const char *fname, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    int is_method = strncmp(fname, "Tensor:", 7) == 0;
    if (is_method && idx == 1) return luaL_error(L, "%s: self %s (call it as t:%s(...))", fname, what, fname + 7);
    return luaL_error(L, "%s: argument %d %s", fname, is_method ? idx - 1 : idx, what);
}

lt_tensor *lt_test_tensor_any(lua_State *L, int idx, const char *fname) {
    lt_tensor *t = luaL_testudata(L, idx, LT_TENSOR_MT);
    if (t && !t->storage) lt_argerror(L, idx, fname, "is a closed tensor (its memory was released)");
    return t;
}

lt_tensor *lt_test_tensor(lua_State *L, int idx, const char *fname) {
    lt_tensor *t = lt_test_tensor_any(L, idx, fname);
    if (t && lt_dtype_of(t) != LT_FLOAT32)
        lt_argerror(L, idx, fname, "is a %s tensor (an activation of a mixed-precision layer): call :float() first",
                    lt_dtype_name(lt_dtype_of(t)));
    if (t && lt_device_of(t) != LT_DEVICE_CPU)
        lt_argerror(L, idx, fname, "is on %s, expected cpu (this function computes on the host: call :cpu() first)",
                    lt_device_name(lt_device_of(t)));
    return t;
}

lt_tensor *lt_check_tensor_any(lua_State *L, int idx, const char *fname) {
    lt_tensor *t = lt_test_tensor_any(L, idx, fname);
    if (!t) lt_argerror(L, idx, fname, "must be a tensor, got %s", lt_typename(L, idx));
    return t;
}

lt_tensor *lt_check_tensor_anywhere(lua_State *L, int idx, const char *fname) {
    lt_tensor *t = lt_check_tensor_any(L, idx, fname);
    if (lt_dtype_of(t) != LT_FLOAT32) lt_test_tensor(L, idx, fname);  /* raises */
    return t;
}

lt_tensor *lt_test_tensor_anywhere(lua_State *L, int idx, const char *fname) {
    lt_tensor *t = lt_test_tensor_any(L, idx, fname);
    if (t && lt_dtype_of(t) != LT_FLOAT32) lt_test_tensor(L, idx, fname); /* raises */
    return t;
}

lt_tensor *lt_check_tensor(lua_State *L, int idx, const char *fname) {
    lt_tensor *t = lt_check_tensor_any(L, idx, fname);
    if (lt_dtype_of(t) != LT_FLOAT32 || lt_device_of(t) != LT_DEVICE_CPU) lt_test_tensor(L, idx, fname);  /* raises */
    return t;
}

lua_Number lt_check_number(lua_State *L, int idx, const char *fname) {
    int ok;
    lua_Number v = lua_tonumberx(L, idx, &ok);
    if (!ok) lt_argerror(L, idx, fname, "must be a number, got %s", lt_typename(L, idx));
    return v;
}

lua_Number lt_opt_number(lua_State *L, int idx, const char *fname, lua_Number def) {
    return lua_isnoneornil(L, idx) ? def : lt_check_number(L, idx, fname);
}

lua_Integer lt_check_integer(lua_State *L, int idx, const char *fname) {
    int ok;
    lua_Integer v = lua_tointegerx(L, idx, &ok);
    if (!ok) {
        if (lua_type(L, idx) == LUA_TNUMBER) lt_argerror(L, idx, fname, "must be an integer, got %s", lua_tostring(L, idx));
        lt_argerror(L, idx, fname, "must be an integer, got %s", lt_typename(L, idx));
    }
    return v;
}

lua_Integer lt_opt_integer(lua_State *L, int idx, const char *fname, lua_Integer def) {
    return lua_isnoneornil(L, idx) ? def : lt_check_integer(L, idx, fname);
}

/* What the value at idx is, for a message: the number itself, or the type name. */
static const char *shown_value(lua_State *L, int idx) {
    return lua_type(L, idx) == LUA_TNUMBER ? lua_tostring(L, idx) : lt_typename(L, idx);
}

lua_Integer lt_check_int_arg(lua_State *L, int idx, const char *fname, const char *what) {
    int ok;
    lua_Integer v = lua_tointegerx(L, idx, &ok);
    if (!ok) lt_raisef(L, fname, "%s must be an integer, got %s", what, shown_value(L, idx));
    return v;
}

int lt_check_reduce_op(lua_State *L, int idx, const char *fname) {
    static const char *const names[] = {"sum", "mean", "max", "min", NULL};
    if (lua_isnoneornil(L, idx)) return 0;
    const char *name = lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : NULL;
    for (int i = 0; name && names[i]; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return lt_argerror(L, idx, fname, "the operation must be \"sum\", \"mean\", \"max\" or \"min\", got %s",
                       name ? name : lt_typename(L, idx));
}

lua_Integer lt_check_int_in(lua_State *L, int idx, const char *fname, const char *what, lua_Integer lo, lua_Integer hi) {
    int ok;
    lua_Integer v = lua_tointegerx(L, idx, &ok);
    if (!ok || v < lo || v > hi)
        lt_raisef(L, fname, "%s must be an integer in %lld..%lld, got %s", what, (long long)lo, (long long)hi, shown_value(L, idx));
    return v;
}

lua_Integer lt_opt_int_in(lua_State *L, int idx, const char *fname, const char *what, lua_Integer lo, lua_Integer hi,
                          lua_Integer def) {
    return lua_isnoneornil(L, idx) ? def : lt_check_int_in(L, idx, fname, what, lo, hi);
}

int64_t lt_check_index_arg(lua_State *L, int idx, const char *fname, const char *what) {
    lua_Integer v = lt_check_int_arg(L, idx, fname, what);
    if (v == LUA_MININTEGER) lt_raisef(L, fname, "%s %lld out of range (indices start at 1)", what, (long long)v);
    return (int64_t)v - 1;
}

lua_Integer lt_len_in(lua_State *L, int idx, const char *fname, const char *what, lua_Integer max) {
    lua_Integer n = luaL_len(L, idx);
    if (n < 0 || n > max) lt_raisef(L, fname, "%s has length %lld, expected 0..%lld", what, (long long)n, (long long)max);
    return n;
}

int lt_opt_boolean(lua_State *L, int idx, const char *fname, int def) {
    if (lua_isnoneornil(L, idx)) return def;
    if (!lua_isboolean(L, idx)) lt_argerror(L, idx, fname, "must be a boolean, got %s", lt_typename(L, idx));
    return lua_toboolean(L, idx);
}

const char *lt_check_string(lua_State *L, int idx, const char *fname) {
    if (lua_type(L, idx) != LUA_TSTRING) lt_argerror(L, idx, fname, "must be a string, got %s", lt_typename(L, idx));
    return lua_tostring(L, idx);
}

void lt_check_table(lua_State *L, int idx, const char *fname) {
    if (!lua_istable(L, idx)) lt_argerror(L, idx, fname, "must be a table, got %s", lt_typename(L, idx));
}

static int64_t check_size(lua_State *L, int idx, const char *fname, int position, int allow_minus_one) {
    int ok;
    lua_Integer v = lua_tointegerx(L, idx, &ok);
    if (!ok) lt_raisef(L, fname, "size %d must be an integer, got %s", position, shown_value(L, idx));
    if (v < 0 && !(allow_minus_one && v == -1))
        lt_raisef(L, fname, "size %d must be non-negative%s, got %lld", position, allow_minus_one ? " or -1" : "", (long long)v);
    return v;
}

int lt_check_sizes_arg(lua_State *L, int idx, const char *fname, int64_t *sizes, int allow_minus_one) {
    int n;
    if (lua_istable(L, idx)) {
        lua_Integer len = luaL_len(L, idx);
        if (len < 1 || len > LT_MAX_DIMS) lt_raisef(L, fname, "expected 1 to %d sizes, got %lld", LT_MAX_DIMS, (long long)len);
        n = (int)len;
        for (int i = 0; i < n; i++) {
            lua_geti(L, idx, i + 1);
            sizes[i] = check_size(L, -1, fname, i + 1, allow_minus_one);
            lua_pop(L, 1);
        }
        return n;
    }
    n = lua_gettop(L) - idx + 1;
    if (n < 1) lt_raisef(L, fname, "expected sizes (numbers or a table of numbers), got none");
    if (n > LT_MAX_DIMS) lt_raisef(L, fname, "expected 1 to %d sizes, got %d", LT_MAX_DIMS, n);
    for (int i = 0; i < n; i++) sizes[i] = check_size(L, idx + i, fname, i + 1, allow_minus_one);
    return n;
}

int lt_check_dim(lua_State *L, int idx, const lt_tensor *t, const char *fname) {
    int ok;
    lua_Integer d = lua_tointegerx(L, idx, &ok);
    if (!ok) lt_raisef(L, fname, "dimension must be an integer, got %s", shown_value(L, idx));
    if (d < 0) d += t->ndim + 1;
    if (d < 1 || d > t->ndim) lt_raisef(L, fname, "dimension %lld out of range for a %d-D tensor (1..%d)",
                                        (long long)lua_tointeger(L, idx), t->ndim, t->ndim);
    return (int)d - 1;
}

static int size_tostring(lua_State *L) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_Integer n = luaL_len(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        if (i > 1) luaL_addchar(&b, 'x');
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    return 1;
}

static int size_eq(lua_State *L) {
    lua_Integer n = luaL_len(L, 1);
    int equal = n == luaL_len(L, 2);
    for (lua_Integer i = 1; equal && i <= n; i++) {
        lua_geti(L, 1, i);
        lua_geti(L, 2, i);
        equal = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }
    lua_pushboolean(L, equal);
    return 1;
}

void lt_push_size(lua_State *L, int ndim, const int64_t *size) {
    lua_createtable(L, ndim, 0);
    for (int d = 0; d < ndim; d++) {
        lua_pushinteger(L, size[d]);
        lua_rawseti(L, -2, d + 1);
    }
    if (luaL_newmetatable(L, "lightning.Size")) {
        lua_pushcfunction(L, size_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushcfunction(L, size_eq);
        lua_setfield(L, -2, "__eq");
    }
    lua_setmetatable(L, -2);
}
