/* L.buffer(dtype, n) (see l_buffer.h): #b, b[i] (1-based, read and write), b:fill(v), b:totable(),
 * b:dtype(), tostring(b); L.is_buffer(x). */
#include <stdalign.h>
#include <string.h>

#include "l_buffer.h"
#include "l_util.h"

#define MAX_LEN ((int64_t)1 << 32)

static const char *const DTYPES[] = {"float64", "int64", NULL};

static lt_buffer *check_buffer(lua_State *L, int idx, const char *fname) {
    lt_buffer *b = lt_test_buffer(L, idx);
    if (!b) lt_argerror(L, idx, fname, "must be a buffer (L.buffer), got %s", lt_typename(L, idx));
    return b;
}

/* buffer(dtype, n): zeros */
static int l_buffer(lua_State *L) {
    const char *fname = "lightning.buffer";
    const char *name = lt_check_string(L, 1, fname);
    int dtype = -1;
    for (int i = 0; DTYPES[i]; i++)
        if (strcmp(name, DTYPES[i]) == 0) dtype = i;
    if (dtype < 0) return lt_raisef(L, fname, "dtype must be \"float64\" or \"int64\", got \"%s\"", name);
    lua_Integer n = lt_check_integer(L, 2, fname);
    if (n < 0 || n > MAX_LEN) return lt_raisef(L, fname, "size must be 0 to %lld, got %lld", (long long)MAX_LEN, (long long)n);
    size_t header = (sizeof(lt_buffer) + alignof(max_align_t) - 1) / alignof(max_align_t) * alignof(max_align_t);
    lt_buffer *b = lua_newuserdatauv(L, header + 8 * (size_t)n, 0);
    b->len = n;
    b->dtype = (lt_buffer_dtype)dtype;
    b->data = (char *)b + header;
    memset(b->data, 0, 8 * (size_t)n);
    luaL_setmetatable(L, LT_BUFFER_MT);
    return 1;
}

static int64_t check_index(lua_State *L, const lt_buffer *b, const char *fname) {
    int is_integer = 0;
    lua_Integer i = lua_tointegerx(L, 2, &is_integer);
    if (!is_integer || lua_type(L, 2) != LUA_TNUMBER)
        lt_raisef(L, fname, "the index must be an integer, got %s", luaL_tolstring(L, 2, NULL));
    if (i < 1 || i > b->len) lt_raisef(L, fname, "index %lld is out of range 1..%lld", (long long)i, (long long)b->len);
    return i - 1;
}

static void push_element(lua_State *L, const lt_buffer *b, int64_t i) {
    if (b->dtype == LT_BUFFER_FLOAT64) lua_pushnumber(L, ((const double *)b->data)[i]);
    else lua_pushinteger(L, ((const int64_t *)b->data)[i]);
}

/* v at idx into element i: an int64 buffer takes integers only (a float would lose its fraction) */
static void store_element(lua_State *L, lt_buffer *b, int64_t i, int idx, const char *fname) {
    if (b->dtype == LT_BUFFER_FLOAT64) {
        ((double *)b->data)[i] = lt_check_number(L, idx, fname);
        return;
    }
    int is_integer = 0;
    lua_Integer v = lua_tointegerx(L, idx, &is_integer);
    if (!is_integer || lua_type(L, idx) != LUA_TNUMBER)
        lt_raisef(L, fname, "an int64 buffer takes integers, got %s", luaL_tolstring(L, idx, NULL));
    ((int64_t *)b->data)[i] = v;
}

static int buffer_index(lua_State *L) {
    lt_buffer *b = check_buffer(L, 1, "Buffer[i]");
    if (lua_type(L, 2) == LUA_TSTRING) {  /* methods */
        luaL_getmetatable(L, LT_BUFFER_MT);
        lua_getfield(L, -1, "methods");
        lua_pushvalue(L, 2);
        lua_rawget(L, -2);
        return 1;
    }
    push_element(L, b, check_index(L, b, "Buffer[i]"));
    return 1;
}

static int buffer_newindex(lua_State *L) {
    lt_buffer *b = check_buffer(L, 1, "Buffer[i] = v");
    store_element(L, b, check_index(L, b, "Buffer[i] = v"), 3, "Buffer[i] = v");
    return 0;
}

static int buffer_len(lua_State *L) {
    lua_pushinteger(L, check_buffer(L, 1, "Buffer:__len")->len);
    return 1;
}

static int buffer_fill(lua_State *L) {
    lt_buffer *b = check_buffer(L, 1, "Buffer:fill");
    for (int64_t i = 0; i < b->len; i++) store_element(L, b, i, 2, "Buffer:fill");
    lua_settop(L, 1);
    return 1;
}

static int buffer_totable(lua_State *L) {
    lt_buffer *b = check_buffer(L, 1, "Buffer:totable");
    if (b->len > INT32_MAX) return lt_raisef(L, "Buffer:totable", "%lld elements are too many for a table", (long long)b->len);
    lua_createtable(L, (int)b->len, 0);
    for (int64_t i = 0; i < b->len; i++) {
        push_element(L, b, i);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int buffer_dtype(lua_State *L) {
    lua_pushstring(L, DTYPES[check_buffer(L, 1, "Buffer:dtype")->dtype]);
    return 1;
}

static int buffer_tostring(lua_State *L) {
    lt_buffer *b = check_buffer(L, 1, "Buffer:__tostring");
    lua_pushfstring(L, "Buffer(%s, %I)", DTYPES[b->dtype], (lua_Integer)b->len);
    return 1;
}

static int l_is_buffer(lua_State *L) {
    lua_pushboolean(L, lt_test_buffer(L, 1) != NULL);
    return 1;
}

void lt_open_buffer(lua_State *L, int module) {
    lua_pushcfunction(L, l_buffer);
    lua_setfield(L, module, "buffer");
    lua_pushcfunction(L, l_is_buffer);
    lua_setfield(L, module, "is_buffer");
    luaL_newmetatable(L, LT_BUFFER_MT);
    static const luaL_Reg meta[] = {{"__index", buffer_index}, {"__newindex", buffer_newindex}, {"__len", buffer_len},
                                    {"__tostring", buffer_tostring}, {NULL, NULL}};
    luaL_setfuncs(L, meta, 0);
    static const luaL_Reg methods[] = {{"fill", buffer_fill}, {"totable", buffer_totable}, {"dtype", buffer_dtype},
                                       {NULL, NULL}};
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "methods");
    lua_pop(L, 1);
}
