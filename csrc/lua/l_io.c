/* Bindings for file formats and files: safetensors (L.save_safetensors / L.load_safetensors, also in
 * lightning.core.io), TensorBoard event writers, atomic writes and the folder helpers the loggers need
 * (lightning.core.io). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/base/fileio.h"
#include "../core/formats/safetensors.h"
#include "l_util.h"

void lt_open_tfevents(lua_State *L, int io);  /* l_tfevents.c */

/* ---- safetensors ---- */

#define SAVE_ST "lightning.save_safetensors"
#define LOAD_ST "lightning.load_safetensors"

/* The dtype a tensor asks to be saved as (its field t.dtype; F32 when absent). */
static lt_st_dtype tensor_dtype(lua_State *L, int idx, const char *name) {
    lua_getfield(L, idx, "dtype");
    lt_st_dtype dtype = LT_DTYPE_F32;
    if (!lua_isnil(L, -1)) {
        size_t len;
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (!s || lt_st_dtype_from_name(s, len, &dtype))
            lt_raisef(L, SAVE_ST, "tensor \"%s\" has dtype %s%s%s; expected one of F64, F32, F16, BF16, I64, I32, I16, I8, "
                      "U64, U32, U16, U8, BOOL", name, s ? "\"" : "a ", s ? s : lt_typename(L, -1), s ? "\"" : "");
    }
    lua_pop(L, 1);
    return dtype;
}

static bool tensor_scalar(lua_State *L, int idx, const char *name) {
    lua_getfield(L, idx, "scalar");
    if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
        lt_raisef(L, SAVE_ST, "tensor \"%s\" has field scalar = %s; expected true, false or nil", name, lt_typename(L, -1));
    bool scalar = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return scalar;
}

/* L.save_safetensors(path, {name = tensor, ...}[, {key = "value", ...}]) */
static int l_save_safetensors(lua_State *L) {
    const char *path = lt_check_string(L, 1, SAVE_ST);
    lt_check_table(L, 2, SAVE_ST);
    if (!lua_isnoneornil(L, 3)) lt_check_table(L, 3, SAVE_ST);
    lua_settop(L, 3);

    size_t count = 0;
    for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) count++;
    /* scratch arrays as userdata, so an error raised halfway leaks nothing */
    lt_st_write_entry *entries = lua_newuserdatauv(L, (count ? count : 1) * sizeof *entries, 0);
    size_t n = 0;
    for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            lt_raisef(L, SAVE_ST, "argument 2 must map names (strings) to tensors, got a key of type %s", lt_typename(L, -2));
        const char *name = lua_tolstring(L, -2, &entries[n].name_len);
        entries[n].name = name;
        lt_tensor *t = lt_test_tensor(L, -1, SAVE_ST);
        if (!t) lt_raisef(L, SAVE_ST, "argument 2: \"%s\" must be a tensor, got %s", name, lt_typename(L, -1));
        entries[n].tensor = t;
        entries[n].dtype = tensor_dtype(L, lua_gettop(L), name);
        entries[n].scalar = tensor_scalar(L, lua_gettop(L), name);
        n++;
    }

    size_t num_meta = 0;
    lt_st_meta *meta = NULL;
    if (!lua_isnil(L, 3)) {
        for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) num_meta++;
        meta = lua_newuserdatauv(L, (num_meta ? num_meta : 1) * sizeof *meta, 0);
        size_t i = 0;
        for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                lt_raisef(L, SAVE_ST, "argument 3 (metadata) must map strings to strings, got a key of type %s", lt_typename(L, -2));
            if (lua_type(L, -1) != LUA_TSTRING)
                lt_raisef(L, SAVE_ST, "argument 3 (metadata): the value of \"%s\" must be a string, got %s (safetensors "
                          "metadata holds strings only: use tostring)", lua_tostring(L, -2), lt_typename(L, -1));
            meta[i].key = (char *)lua_tolstring(L, -2, &meta[i].key_len);
            meta[i].value = (char *)lua_tolstring(L, -1, &meta[i].value_len);
            i++;
        }
    }
    lt_error err;
    if (lt_st_save(path, entries, n, meta, num_meta, &err)) return lt_raise(L, SAVE_ST, &err);
    return 0;
}

/* The open file and its parsed header, closed by the collector if loading raises halfway. */
static int st_reader_gc(lua_State *L) {
    lt_st_close(lua_touserdata(L, 1));
    return 0;
}

static void push_loaded_tensor(lua_State *L, lt_st_reader *r, const lt_st_entry *e) {
    int64_t one = 1;
    lt_tensor *t = lt_push_tensor(L);
    lt_error err;
    if (lt_tensor_new(t, e->ndim ? e->ndim : 1, e->ndim ? e->shape : &one, &err))
        lt_raisef(L, LOAD_ST, "%s: tensor \"%s\": %s", r->path, e->name, err.msg);
    if (e->numel && lt_st_read(r, e, lt_data(t), &err)) lt_raise(L, LOAD_ST, &err);
    if (e->dtype != LT_DTYPE_F32) {
        lua_pushstring(L, lt_st_dtype_name(e->dtype));
        lua_setfield(L, -2, "dtype");
    }
    if (e->ndim == 0) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "scalar");
    }
}

/* Opens path with lt_st_open (a regular file only: a FIFO or a folder is refused before anything can
 * block; the whole header validated) into a reader on the stack that the collector closes. */
static lt_st_reader *open_reader(lua_State *L, const char *fname) {
    const char *path = lt_check_string(L, 1, fname);
    lt_st_reader *r = lua_newuserdatauv(L, sizeof *r, 0);
    memset(r, 0, sizeof *r);
    r->fd = -1;
    if (luaL_newmetatable(L, "lightning.io.st_reader")) {
        lua_pushcfunction(L, st_reader_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    lt_error err;
    if (lt_st_open(r, path, &err)) lt_raise(L, fname, &err);
    return r;
}

static void push_metadata(lua_State *L, const lt_st_reader *r) {
    lua_createtable(L, 0, lt_table_hint((int64_t)r->file.num_meta));
    for (size_t i = 0; i < r->file.num_meta; i++) {
        lua_pushlstring(L, r->file.meta[i].key, r->file.meta[i].key_len);
        lua_pushlstring(L, r->file.meta[i].value, r->file.meta[i].value_len);
        lua_rawset(L, -3);
    }
}

/* L.load_safetensors(path) --> {name = tensor}, {key = "value"} */
static int l_load_safetensors(lua_State *L) {
    lt_st_reader *r = open_reader(L, LOAD_ST);
    lua_createtable(L, 0, lt_table_hint((int64_t)r->file.num_entries));
    for (size_t i = 0; i < r->file.num_entries; i++) {
        const lt_st_entry *e = &r->file.entries[i];
        lua_pushlstring(L, e->name, e->name_len);
        push_loaded_tensor(L, r, e);
        lua_rawset(L, -3);
    }
    push_metadata(L, r);
    lt_st_close(r);
    return 2;
}

/* io.safetensors_metadata(path) --> {key = "value"}: the header alone, read and checked as
 * load_safetensors reads it (the same open: never blocks on a FIFO), without the tensors. */
static int l_safetensors_metadata(lua_State *L) {
    lt_st_reader *r = open_reader(L, "lightning.core.io.safetensors_metadata");
    push_metadata(L, r);
    lt_st_close(r);
    return 1;
}

/* ---- files and folders ---- */

/* io.write_file(path, data): atomic (temporary file, fsync, rename). */
static int l_write_file(lua_State *L) {
    const char *fname = "lightning.core.io.write_file";
    const char *path = lt_check_string(L, 1, fname);
    size_t len;
    lt_check_string(L, 2, fname);
    const char *data = lua_tolstring(L, 2, &len);
    lt_error err;
    if (lt_write_file_atomic(path, data, len, &err)) return lt_raise(L, fname, &err);
    return 0;
}

/* io.append_file(path, data): one write, then fsync. */
static int l_append_file(lua_State *L) {
    const char *fname = "lightning.core.io.append_file";
    const char *path = lt_check_string(L, 1, fname);
    size_t len;
    lt_check_string(L, 2, fname);
    const char *data = lua_tolstring(L, 2, &len);
    lt_error err;
    if (lt_append_file(path, data, len, &err)) return lt_raise(L, fname, &err);
    return 0;
}

/* io.mkdirs(path) (also io.mkdir): creates the folder and each missing parent with mkdir(2), as
 * `mkdir -p` does; a folder that exists is fine, a file in the way is an error naming it. */
static int mkdirs(lua_State *L, const char *fname) {
    const char *path = lt_check_string(L, 1, fname);
    lt_error err;
    if (lt_mkdirs(path, &err)) return lt_raise(L, fname, &err);
    return 0;
}
static int l_mkdirs(lua_State *L) { return mkdirs(L, "lightning.core.io.mkdirs"); }
static int l_mkdir(lua_State *L) { return mkdirs(L, "lightning.core.io.mkdir"); }

typedef struct name_list {
    char **names;
    size_t count;
} name_list;

static void free_name_list(void *p) {
    name_list *list = p;
    lt_free_names(list->names, list->count);
    list->names = NULL;
}

/* io.listdir(path) --> sorted list of names; raises if the folder cannot be read. */
static int l_listdir(lua_State *L) {
    const char *fname = "lightning.core.io.listdir";
    const char *path = lt_check_string(L, 1, fname);
    name_list *list = lt_push_scratch(L, sizeof *list, free_name_list);  /* building the table may raise */
    lt_error err;
    if (lt_list_dir(path, &list->names, &list->count, &err)) return lt_raise(L, fname, &err);
    lua_createtable(L, lt_table_hint((int64_t)list->count), 0);
    for (size_t i = 0; i < list->count; i++) {
        lua_pushstring(L, list->names[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lt_scratch_release(list);
    return 1;
}

/* io.file_type(path) --> "file", "directory", "fifo", "device", "socket", "other", or nil when nothing is
 * there. Asks stat: nothing is opened, so a FIFO cannot block it. */
static int l_file_type(lua_State *L) {
    const char *path = lt_check_string(L, 1, "lightning.core.io.file_type");
    struct stat st;
    if (stat(path, &st) != 0) return lua_pushnil(L), 1;
    const char *kind = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : S_ISFIFO(st.st_mode) ? "fifo"
                     : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "device" : S_ISSOCK(st.st_mode) ? "socket" : "other";
    lua_pushstring(L, kind);
    return 1;
}

static int l_hostname(lua_State *L) {
    char name[256];
    if (gethostname(name, sizeof name) != 0) strcpy(name, "localhost");
    name[sizeof name - 1] = '\0';
    lua_pushstring(L, name);
    return 1;
}

static int l_pid(lua_State *L) { return lua_pushinteger(L, (lua_Integer)getpid()), 1; }

void lt_open_io(lua_State *L, int module) {
    static const luaL_Reg fns[] = {
        {"save_safetensors", l_save_safetensors}, {"load_safetensors", l_load_safetensors},
        {"safetensors_metadata", l_safetensors_metadata},
        {"write_file", l_write_file}, {"append_file", l_append_file}, {"mkdir", l_mkdir}, {"mkdirs", l_mkdirs},
        {"listdir", l_listdir}, {"file_type", l_file_type},
        {"hostname", l_hostname}, {"pid", l_pid}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lt_open_tfevents(L, lua_gettop(L));
    lua_setfield(L, module, "io");
    /* also at the top of lightning.core, so that `require "lightning"` gives L.save_safetensors */
    lua_pushcfunction(L, l_save_safetensors);
    lua_setfield(L, module, "save_safetensors");
    lua_pushcfunction(L, l_load_safetensors);
    lua_setfield(L, module, "load_safetensors");
}
