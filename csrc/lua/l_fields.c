#include "l_fields.h"

#include <string.h>

void lt_fields_open(lt_fields *f, lua_State *L, int idx, const char *fname) {
    f->L = L;
    f->idx = lua_absindex(L, idx);
    f->fname = fname;
    f->nread = 0;
    if (!lua_istable(L, f->idx))
        lt_raisef(L, fname, "expected a table of named arguments, got %s", lt_typename(L, f->idx));
    if (lua_getfield(L, f->idx, "name") == LUA_TSTRING) f->fname = lua_tostring(L, -1);  /* the table keeps it */
    lua_pop(L, 1);
    f->read[f->nread++] = "name";
    f->any_dtype = false;
}

void lt_fields_open_any(lt_fields *f, lua_State *L, int idx, const char *fname) {
    lt_fields_open(f, L, idx, fname);
    f->any_dtype = true;
}

/* Pushes field `name` and remembers that it was read. */
static int push_field(lt_fields *f, const char *name) {
    if (f->nread < LT_FIELDS_MAX) f->read[f->nread++] = name;
    return lua_getfield(f->L, f->idx, name);
}

static bool was_read(const lt_fields *f, const char *key) {
    for (int i = 0; i < f->nread; i++)
        if (!strcmp(f->read[i], key)) return true;
    return false;
}

void lt_fields_close(lt_fields *f) {
    lua_State *L = f->L;
    lua_pushnil(L);
    while (lua_next(L, f->idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING || !was_read(f, lua_tostring(L, -1))) {
            const char *names[LT_FIELDS_MAX];  /* the fields it reads, sorted */
            int n = 0;
            for (int i = 1; i < f->nread; i++) {
                int j = n++;
                for (; j > 0 && strcmp(names[j - 1], f->read[i]) > 0; j--) names[j] = names[j - 1];
                names[j] = f->read[i];
            }
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (int i = 0; i < n; i++) {
                if (i > 0) luaL_addstring(&b, ", ");
                luaL_addstring(&b, names[i]);
            }
            luaL_pushresult(&b);
            const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : luaL_typename(L, -2);
            lt_raisef(L, f->fname, "unknown field '%s' (this call reads: %s)", key, lua_tostring(L, -1));
        }
    }
}

static lt_tensor *tensor_field(lt_fields *f, const char *name, bool required) {
    lua_State *L = f->L;
    push_field(f, name);
    if (!required && lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    lt_tensor *t = luaL_testudata(L, -1, LT_TENSOR_MT);
    if (!t) lt_raisef(L, f->fname, "%s must be a tensor%s, got %s", name, required ? "" : " or nil", lt_typename(L, -1));
    if (!t->storage) lt_raisef(L, f->fname, "%s is a closed tensor (its memory was released)", name);
    lua_pop(L, 1);  /* the table keeps it alive */
    if (f->any_dtype || lt_dtype_of(t) == LT_FLOAT32) return t;
    /* a float32 copy for a float32 front, where t is; it stays on the stack until the call returns */
    lt_tensor *copy = lt_push_tensor(L);
    lt_error err;
    if (lt_tensor_new_on(copy, t->ndim, t->size, LT_FLOAT32, lt_device_of(t), &err) || lt_convert(copy, t, &err))
        lt_raise(L, f->fname, &err);
    return copy;
}

lt_tensor *lt_field_tensor(lt_fields *f, const char *name) { return tensor_field(f, name, true); }
lt_tensor *lt_field_opt_tensor(lt_fields *f, const char *name) { return tensor_field(f, name, false); }

/* The number in field `name` (also in *ivalue for an integer), or def when it is nil and optional
 * (*ivalue is then left as it is). */
static double number_field(lt_fields *f, const char *name, bool required, double def, bool integer,
                           lua_Integer *ivalue) {
    lua_State *L = f->L;
    int type = push_field(f, name);
    if (type == LUA_TNIL && !required) {
        lua_pop(L, 1);
        return def;
    }
    if (type != LUA_TNUMBER)
        lt_raisef(L, f->fname, "%s must be %s, got %s", name, integer ? "an integer" : "a number", lt_typename(L, -1));
    double v = lua_tonumber(L, -1);
    if (integer) {
        int ok;
        *ivalue = lua_tointegerx(L, -1, &ok);
        if (!ok) lt_raisef(L, f->fname, "%s must be an integer, got %s", name, lua_tostring(L, -1));
    }
    lua_pop(L, 1);
    return v;
}

lua_Integer lt_field_integer(lt_fields *f, const char *name) {
    lua_Integer v = 0;
    number_field(f, name, true, 0, true, &v);
    return v;
}

lua_Integer lt_field_opt_integer(lt_fields *f, const char *name, lua_Integer def) {
    lua_Integer v = def;
    number_field(f, name, false, 0, true, &v);
    return v;
}

double lt_field_number(lt_fields *f, const char *name) { return number_field(f, name, true, 0, false, NULL); }
double lt_field_opt_number(lt_fields *f, const char *name, double def) {
    return number_field(f, name, false, def, false, NULL);
}

bool lt_field_boolean(lt_fields *f, const char *name, bool def) {
    lua_State *L = f->L;
    int type = push_field(f, name);
    bool v = def;
    if (type == LUA_TBOOLEAN) v = lua_toboolean(L, -1);
    else if (type != LUA_TNIL) lt_raisef(L, f->fname, "%s must be a boolean, got %s", name, lt_typename(L, -1));
    lua_pop(L, 1);
    return v;
}

static const char *string_field(lt_fields *f, const char *name, bool required, const char *def) {
    lua_State *L = f->L;
    int type = push_field(f, name);
    if (type == LUA_TNIL && !required) {
        lua_pop(L, 1);
        return def;
    }
    if (type != LUA_TSTRING) lt_raisef(L, f->fname, "%s must be a string, got %s", name, lt_typename(L, -1));
    const char *s = lua_tostring(L, -1);  /* the table keeps it */
    lua_pop(L, 1);
    return s;
}

const char *lt_field_string(lt_fields *f, const char *name) { return string_field(f, name, true, NULL); }
const char *lt_field_opt_string(lt_fields *f, const char *name, const char *def) {
    return string_field(f, name, false, def);
}

void *lt_field_udata(lt_fields *f, const char *name, const char *tname, const char *what) {
    lua_State *L = f->L;
    push_field(f, name);
    void *p = luaL_testudata(L, -1, tname);
    if (!p) lt_raisef(L, f->fname, "%s must be %s, got %s", name, what, lt_typename(L, -1));
    lua_pop(L, 1);
    return p;
}
