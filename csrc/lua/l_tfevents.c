/* lightning.core.io.EventWriter: a TensorBoard event file written from Lua (the TensorBoardLogger's
 * engine). Registered by l_io.c.
 *   local w = io.EventWriter(path[, {max_queue = 10, flush_secs = 120}])
 *   w:add_scalar(tag, value, step[, wall_time])
 *   w:add_hparams({{name, value}, ...}, {metric_tag, ...}[, wall_time])   -- value: number, string, boolean
 *   w:flush(); w:close()      -- also closed by the collector and by <close> */
#include <stdlib.h>
#include <string.h>

#include "../core/formats/json.h"
#include "../core/formats/tfevents.h"
#include "l_util.h"

#define WRITER_MT "lightning.io.EventWriter"

typedef struct event_writer {
    lt_event_writer w;
    lt_bytebuf scratch[3];  /* encoded events; owned here so that a Lua error in between leaks nothing */
} event_writer;

static event_writer *check_writer(lua_State *L, const char *fname) {
    event_writer *ew = luaL_testudata(L, 1, WRITER_MT);
    if (!ew) lt_raisef(L, fname, "self must be an EventWriter, got %s (call it as w:%s(...))", lt_typename(L, 1),
                       strchr(fname, ':') + 1);
    if (ew->w.fd < 0) lt_raisef(L, fname, "the event file is closed");
    return ew;
}

/* Methods count their arguments after self, as the Tensor methods do. */
static void check_table_arg(lua_State *L, int idx, const char *fname) {
    if (!lua_istable(L, idx)) lt_raisef(L, fname, "argument %d must be a table, got %s", idx - 1, lt_typename(L, idx));
}

static const char *check_utf8(lua_State *L, int idx, const char *fname, const char *what, size_t *len) {
    const char *s = lua_tolstring(L, idx, len);
    if (!lt_utf8_valid(s, *len)) lt_raisef(L, fname, "%s \"%s\" is not valid UTF-8 (TensorBoard requires it)", what, s);
    return s;
}

static double opt_wall_time(lua_State *L, int idx, const char *fname) {
    if (lua_isnoneornil(L, idx)) return lt_wall_time();
    int ok;
    double t = lua_tonumberx(L, idx, &ok);
    if (!ok) lt_raisef(L, fname, "wall_time must be a number (seconds since the epoch), got %s", lt_typename(L, idx));
    return t;
}

static int writer_add(lua_State *L, event_writer *ew, int n, const char *fname) {
    lt_error err;
    for (int i = 0; i < n; i++) {
        if (ew->scratch[i].failed) return lt_raisef(L, fname, "out of memory");
        if (lt_event_writer_add(&ew->w, ew->scratch[i].data, ew->scratch[i].len, &err)) return lt_raise(L, fname, &err);
    }
    return 0;
}

static int l_event_writer(lua_State *L) {
    const char *fname = "lightning.core.io.EventWriter";
    const char *path = lt_check_string(L, 1, fname);
    if (!lua_isnoneornil(L, 2)) lt_check_table(L, 2, fname);
    int max_queue = 10;
    double flush_secs = 120;
    if (lua_istable(L, 2)) {
        int ok;
        lua_getfield(L, 2, "max_queue");
        if (!lua_isnil(L, -1)) {
            lua_Integer q = lua_tointegerx(L, -1, &ok);
            if (!ok || q < 1 || q > 1000000) lt_raisef(L, fname, "max_queue must be an integer from 1 to 1000000, got %s", luaL_tolstring(L, -1, NULL));
            max_queue = (int)q;
        }
        lua_getfield(L, 2, "flush_secs");
        if (!lua_isnil(L, -1)) {
            flush_secs = lua_tonumberx(L, -1, &ok);
            if (!ok || !(flush_secs >= 0)) lt_raisef(L, fname, "flush_secs must be a number >= 0, got %s", luaL_tolstring(L, -1, NULL));
        }
        lua_pop(L, 2);
    }
    event_writer *ew = lua_newuserdatauv(L, sizeof *ew, 0);
    memset(ew, 0, sizeof *ew);
    ew->w.fd = -1;
    luaL_setmetatable(L, WRITER_MT);
    lt_error err;
    if (lt_event_writer_open(&ew->w, path, lt_wall_time(), &err)) return lt_raise(L, fname, &err);
    ew->w.max_queue = max_queue;
    ew->w.flush_secs = flush_secs;
    return 1;
}

static int w_add_scalar(lua_State *L) {
    const char *fname = "EventWriter:add_scalar";
    event_writer *ew = check_writer(L, fname);
    if (lua_type(L, 2) != LUA_TSTRING) lt_raisef(L, fname, "argument 1 (tag) must be a string, got %s", lt_typename(L, 2));
    size_t tag_len;
    const char *tag = check_utf8(L, 2, fname, "tag", &tag_len);
    int ok;
    lua_Number value = lua_tonumberx(L, 3, &ok);
    if (!ok) lt_raisef(L, fname, "argument 2 (value) must be a number, got %s", lt_typename(L, 3));
    lua_Integer step = lua_tointegerx(L, 4, &ok);
    if (!ok) lt_raisef(L, fname, "argument 3 (step) must be an integer, got %s", lua_type(L, 4) == LUA_TNUMBER ? lua_tostring(L, 4) : lt_typename(L, 4));
    double wall_time = opt_wall_time(L, 5, fname);
    lt_bytebuf_clear(&ew->scratch[0]);
    lt_event_scalar(&ew->scratch[0], wall_time, step, tag, tag_len, (float)value);
    return writer_add(L, ew, 1, fname);
}

static int w_add_hparams(lua_State *L) {
    const char *fname = "EventWriter:add_hparams";
    event_writer *ew = check_writer(L, fname);
    check_table_arg(L, 2, fname);
    check_table_arg(L, 3, fname);
    lua_settop(L, 4);
    double wall_time = opt_wall_time(L, 4, fname);
    size_t n = (size_t)lt_len_in(L, 2, fname, "argument 1", 1000000), m = (size_t)lt_len_in(L, 3, fname, "argument 2", 1000000);
    lt_hparam *hp = lua_newuserdatauv(L, (n ? n : 1) * sizeof *hp, 0);
    const char **tags = lua_newuserdatauv(L, (m ? m : 1) * sizeof *tags, 0);
    size_t *tag_lens = lua_newuserdatauv(L, (m ? m : 1) * sizeof *tag_lens, 0);
    for (size_t i = 0; i < n; i++) {
        lt_hparam *h = &hp[i];
        memset(h, 0, sizeof *h);
        /* the pair table stays referenced by argument 2, so its strings outlive this call's use */
        if (lua_geti(L, 2, (lua_Integer)i + 1) != LUA_TTABLE)
            lt_raisef(L, fname, "argument 1: entry %zu must be a {name, value} pair, got %s", i + 1, lt_typename(L, -1));
        if (lua_geti(L, -1, 1) != LUA_TSTRING)
            lt_raisef(L, fname, "argument 1: entry %zu: the name must be a string, got %s", i + 1, lt_typename(L, -1));
        h->name = check_utf8(L, -1, fname, "hyperparameter name", &h->name_len);
        switch (lua_geti(L, -2, 2)) {
        case LUA_TNUMBER: h->type = LT_HPARAM_NUMBER; h->number = lua_tonumber(L, -1); break;
        case LUA_TBOOLEAN: h->type = LT_HPARAM_BOOL; h->boolean = lua_toboolean(L, -1); break;
        case LUA_TSTRING: h->type = LT_HPARAM_STRING; h->string = check_utf8(L, -1, fname, "hyperparameter value", &h->string_len); break;
        default:
            lt_raisef(L, fname, "hyperparameter \"%s\" must be a number, a string or a boolean, got %s", h->name, lt_typename(L, -1));
        }
        lua_pop(L, 3);
    }
    for (size_t i = 0; i < m; i++) {
        if (lua_geti(L, 3, (lua_Integer)i + 1) != LUA_TSTRING)
            lt_raisef(L, fname, "argument 2: metric tag %zu must be a string, got %s", i + 1, lt_typename(L, -1));
        tags[i] = check_utf8(L, -1, fname, "metric tag", &tag_lens[i]);
        lua_pop(L, 1);
    }
    for (int i = 0; i < 3; i++) lt_bytebuf_clear(&ew->scratch[i]);
    lt_event_hparams(&ew->scratch[0], &ew->scratch[1], &ew->scratch[2], wall_time, hp, n, tags, tag_lens, m);
    return writer_add(L, ew, 3, fname);
}

static int w_flush(lua_State *L) {
    event_writer *ew = check_writer(L, "EventWriter:flush");
    lt_error err;
    if (lt_event_writer_flush(&ew->w, &err)) return lt_raise(L, "EventWriter:flush", &err);
    return 0;
}

static void release(event_writer *ew) {
    for (int i = 0; i < 3; i++) lt_bytebuf_free(&ew->scratch[i]);
}

/* Closing twice is fine. */
static int w_close(lua_State *L) {
    event_writer *ew = luaL_checkudata(L, 1, WRITER_MT);
    lt_error err;
    int rc = lt_event_writer_close(&ew->w, &err);
    release(ew);
    if (rc) return lt_raise(L, "EventWriter:close", &err);
    return 0;
}

static int w_gc(lua_State *L) {
    event_writer *ew = luaL_checkudata(L, 1, WRITER_MT);
    lt_event_writer_close(&ew->w, NULL);
    release(ew);
    return 0;
}

static int w_is_open(lua_State *L) {
    event_writer *ew = luaL_checkudata(L, 1, WRITER_MT);
    lua_pushboolean(L, ew->w.fd >= 0);
    return 1;
}

static int w_tostring(lua_State *L) {
    event_writer *ew = luaL_checkudata(L, 1, WRITER_MT);
    lua_pushfstring(L, "EventWriter(%s)", ew->w.path ? ew->w.path : "closed");
    return 1;
}

static int l_wall_time(lua_State *L) { return lua_pushnumber(L, lt_wall_time()), 1; }

void lt_open_tfevents(lua_State *L, int io);
void lt_open_tfevents(lua_State *L, int io) {
    static const luaL_Reg methods[] = {
        {"add_scalar", w_add_scalar}, {"add_hparams", w_add_hparams}, {"flush", w_flush}, {"close", w_close},
        {"is_open", w_is_open}, {NULL, NULL}};
    luaL_newmetatable(L, WRITER_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, w_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, w_gc);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, w_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_event_writer);
    lua_setfield(L, io, "EventWriter");
    lua_pushcfunction(L, l_wall_time);
    lua_setfield(L, io, "wall_time");
}
