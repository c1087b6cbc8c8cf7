/* luaopen_lightning_dist: the MPI transport (csrc/core/dist) for Lua, a module of its own (lightning/dist.so,
 * built when CMake finds MPI) that lua/lightning/distributed.lua loads when a run uses it.
 *   init() -> {rank, world_size, local_rank, local_world_size, thread_level, owns_mpi, library}
 *   is_initialized(), finalize(), barrier()
 *   all_reduce(x, op)          x: a contiguous tensor (float32) or an L.buffer (float64, int64), in place;
 *                              op "sum" (default), "mean", "max", "min"; returns x
 *   all_reduce_start(x, op)    the same, not blocking: a Work with wait(), test() and is_completed()
 *   broadcast(x, root)         a tensor or buffer, in place, from process root
 *   broadcast_string(s, root)  root's string (the others pass nil) on every process
 *   all_gather_strings(s)      every process's string, in rank order
 *   set_fault(flag), fault(), set_exit_timeout(seconds)
 *   set_timeout(seconds), timeout()   the progress deadline of a collective (0: none; 60 by default)
 * A collective that times out ends the job at once: its message on standard error, then MPI_Abort (MPI
 * cannot be used again in the process, and its peers are stuck too).
 * At the end of the process (the state's closing, or exit()) MPI is finalized when every process gets
 * there; a process marked as failed, or one whose peers do not arrive within the exit timeout, ends the
 * job with MPI_Abort instead (see lt_dist_exit_decision), and says why on standard error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/dist/dist.h"
#include "l_buffer.h"
#include "l_util.h"

#define WORK_MT "lightning.distributed.Work"

static double exit_timeout_s = 60;
static int exit_rank = -1;

/* The end of the process: finalize, or end the job (the fault path). Runs once. */
static void at_exit(void) {
    static bool done;
    if (done || !lt_dist_is_initialized()) return;
    done = true;
    lt_dist_exit decision = lt_dist_exit_decision(exit_timeout_s);
    if (decision == LT_DIST_EXIT_FINALIZED) return;
    if (decision == LT_DIST_EXIT_FAULT)
        fprintf(stderr, "lightning.distributed: process %d failed during a distributed run, and the others may be "
                        "waiting for it in a collective: ending the job (MPI_Abort)\n", exit_rank);
    else
        fprintf(stderr, "lightning.distributed: process %d is ending but the others did not reach their end within "
                        "%g s (they may be waiting in a collective for it): ending the job (MPI_Abort)\n",
                exit_rank, exit_timeout_s);
    fflush(stderr);
    lt_dist_abort(1);
}

/* lt_raise, but a collective that timed out ends the job: the message, then MPI_Abort. */
static int dist_raise(lua_State *L, const char *fname, const lt_error *err) {
    if (!lt_dist_timed_out()) return lt_raise(L, fname, err);
    fprintf(stderr, "lightning.distributed: %s; ending the job (MPI_Abort). The limit is "
                    "DDPStrategy{timeout = seconds} (or LIGHTNING_DIST_TIMEOUT, L.distributed.set_timeout)\n",
            err->msg);
    fflush(stderr);
    lt_dist_abort(1);
    return 0;
}

static int sentinel_gc(lua_State *L) {
    at_exit();
    return 0;
}

static void set_integer(lua_State *L, const char *key, lua_Integer v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, key);
}

static void push_info(lua_State *L, const lt_dist_info *in) {
    lua_createtable(L, 0, 7);
    set_integer(L, "rank", in->rank);
    set_integer(L, "world_size", in->world_size);
    set_integer(L, "local_rank", in->local_rank);
    set_integer(L, "local_world_size", in->local_world_size);
    set_integer(L, "thread_level", in->thread_level);
    lua_pushboolean(L, in->owns_mpi);
    lua_setfield(L, -2, "owns_mpi");
    lua_pushstring(L, in->library);
    lua_setfield(L, -2, "library");
}

static int l_init(lua_State *L) {
    const char *fname = "lightning.distributed.init";
    lt_dist_info info;
    lt_error err;
    if (lt_dist_init(&info, &err)) return dist_raise(L, fname, &err);
    exit_rank = info.rank;
    static bool registered;
    if (!registered) {
        registered = true;
        atexit(at_exit);
        /* the closing of the Lua state finalizes too (before exit(): lua.c closes the state, then returns) */
        lua_newuserdatauv(L, 1, 0);
        lua_createtable(L, 0, 1);
        lua_pushcfunction(L, sentinel_gc);
        lua_setfield(L, -2, "__gc");
        lua_setmetatable(L, -2);
        lua_setfield(L, LUA_REGISTRYINDEX, "lightning.distributed.sentinel");
    }
    push_info(L, &info);
    return 1;
}

static int l_is_initialized(lua_State *L) {
    lua_pushboolean(L, lt_dist_is_initialized());
    return 1;
}

static int l_finalize(lua_State *L) {
    lt_error err;
    if (lt_dist_finalize(&err)) return dist_raise(L, "lightning.distributed.finalize", &err);
    return 0;
}

static int l_barrier(lua_State *L) {
    lt_error err;
    if (lt_dist_barrier(&err)) return dist_raise(L, "lightning.distributed.barrier", &err);
    return 0;
}

/* The memory of a tensor or buffer argument. */
typedef struct reducible {
    void *data;
    int64_t count;
    lt_dist_dtype dtype;
} reducible;

static reducible check_reducible(lua_State *L, int idx, const char *fname) {
    lt_buffer *b = lt_test_buffer(L, idx);
    if (b) return (reducible){b->data, b->len, b->dtype == LT_BUFFER_FLOAT64 ? LT_DIST_FLOAT64 : LT_DIST_INT64};
    lt_tensor *t = lt_test_tensor(L, idx, fname);
    if (!t) lt_argerror(L, idx, fname, "must be a tensor or a buffer (L.buffer), got %s", lt_typename(L, idx));
    if (!lt_is_contiguous(t))
        lt_argerror(L, idx, fname, "must be a contiguous tensor (reduce a :contiguous() copy and copy it back)");
    int64_t n = lt_numel(t);
    return (reducible){n ? lt_data(t) : NULL, n, LT_DIST_FLOAT32};
}

static lt_dist_op check_op(lua_State *L, int idx, const char *fname) {
    static const lt_dist_op ops[] = {LT_DIST_SUM, LT_DIST_MEAN, LT_DIST_MAX, LT_DIST_MIN};
    return ops[lt_check_reduce_op(L, idx, fname)];
}

static int l_all_reduce(lua_State *L) {
    const char *fname = "lightning.distributed.all_reduce";
    reducible x = check_reducible(L, 1, fname);
    lt_dist_op op = check_op(L, 2, fname);
    lt_error err;
    if (lt_dist_all_reduce(x.data, x.count, x.dtype, op, &err)) return dist_raise(L, fname, &err);
    lua_settop(L, 1);
    return 1;
}

/* ---- Work: a reduction in flight; its uservalue keeps the tensor or buffer alive ---- */

typedef struct work_ud {
    lt_dist_request *req;
} work_ud;

/* all_reduce_start(x, op[, wire]): wire "bf16" sends a float32 tensor's values as bfloat16. */
static int l_all_reduce_start(lua_State *L) {
    const char *fname = "lightning.distributed.all_reduce";
    reducible x = check_reducible(L, 1, fname);
    lt_dist_op op = check_op(L, 2, fname);
    bool bf16 = false;
    if (!lua_isnoneornil(L, 3)) {
        const char *wire = lua_type(L, 3) == LUA_TSTRING ? lua_tostring(L, 3) : NULL;
        if (!wire || (strcmp(wire, "bf16") && strcmp(wire, "float32")))
            lt_argerror(L, 3, fname, "wire must be \"bf16\" or \"float32\", got %s", wire ? wire : lt_typename(L, 3));
        bf16 = strcmp(wire, "bf16") == 0;
        if (bf16 && x.dtype != LT_DIST_FLOAT32) lt_argerror(L, 1, fname, "must be a float32 tensor to travel as bf16");
    }
    work_ud *w = lua_newuserdatauv(L, sizeof *w, 1);
    w->req = NULL;
    luaL_setmetatable(L, WORK_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    lt_error err;
    w->req = bf16 ? lt_dist_all_reduce_bf16_start(x.data, x.count, op, &err)
                  : lt_dist_all_reduce_start(x.data, x.count, x.dtype, op, &err);
    if (!w->req) return dist_raise(L, fname, &err);
    return 1;
}

static work_ud *check_work(lua_State *L, const char *fname) {
    work_ud *w = luaL_testudata(L, 1, WORK_MT);
    if (!w) lt_argerror(L, 1, fname, "must be a Work (from all_reduce with {async = true}), got %s", lt_typename(L, 1));
    return w;
}

static int work_wait(lua_State *L) {
    const char *fname = "Work:wait";
    work_ud *w = check_work(L, fname);
    lt_error err;
    if (w->req && lt_dist_wait(w->req, &err)) return dist_raise(L, fname, &err);
    lua_getiuservalue(L, 1, 1);
    return 1;
}

static int work_test(lua_State *L) {
    const char *fname = "Work:test";
    work_ud *w = check_work(L, fname);
    bool done = true;
    lt_error err;
    if (w->req && lt_dist_test(w->req, &done, &err)) return dist_raise(L, fname, &err);
    lua_pushboolean(L, done);
    return 1;
}

static int work_is_completed(lua_State *L) {
    work_ud *w = check_work(L, "Work:is_completed");
    lua_pushboolean(L, !w->req || lt_dist_request_done(w->req));
    return 1;
}

static int work_gc(lua_State *L) {
    work_ud *w = luaL_checkudata(L, 1, WORK_MT);
    lt_dist_request_free(w->req);  /* waits for one still in flight: MPI writes into its buffer until then */
    w->req = NULL;
    return 0;
}

/* ---- broadcast and gather ---- */

static int check_root(lua_State *L, int idx, const char *fname) {
    lua_Integer root = lua_isnoneornil(L, idx) ? 0 : lt_check_integer(L, idx, fname);
    if (root < 0 || root > 1 << 24) lt_argerror(L, idx, fname, "root must be a rank (an integer >= 0), got %lld", (long long)root);
    return (int)root;
}

static int l_broadcast(lua_State *L) {
    const char *fname = "lightning.distributed.broadcast";
    reducible x = check_reducible(L, 1, fname);
    int root = check_root(L, 2, fname);
    lt_error err;
    if (lt_dist_broadcast(x.data, x.count * (int64_t)lt_dist_dtype_size(x.dtype), root, &err)) return dist_raise(L, fname, &err);
    lua_settop(L, 1);
    return 1;
}

static int l_broadcast_string(lua_State *L) {
    const char *fname = "lightning.distributed.broadcast";
    size_t len = 0;
    const char *s = lua_isnoneornil(L, 1) ? "" : (lt_check_string(L, 1, fname), lua_tolstring(L, 1, &len));
    int root = check_root(L, 2, fname);
    void *out;
    int64_t out_len;
    lt_error err;
    if (lt_dist_broadcast_bytes(s, (int64_t)len, root, &out, &out_len, &err)) return dist_raise(L, fname, &err);
    lua_pushlstring(L, out, (size_t)out_len);
    free(out);
    return 1;
}

static int l_all_gather_strings(lua_State *L) {
    const char *fname = "lightning.distributed.all_gather";
    size_t len;
    lt_check_string(L, 1, fname);
    const char *s = lua_tolstring(L, 1, &len);
    lt_dist_info info;
    lt_error err;
    if (lt_dist_init(&info, &err)) return dist_raise(L, fname, &err);
    int64_t *lens = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)info.world_size, 0);
    void *out;
    if (lt_dist_all_gather_bytes(s, (int64_t)len, &out, lens, &err)) return dist_raise(L, fname, &err);
    lua_createtable(L, info.world_size, 0);
    const char *at = out;
    for (int r = 0; r < info.world_size; r++) {
        lua_pushlstring(L, at, (size_t)lens[r]);
        lua_rawseti(L, -2, r + 1);
        at += lens[r];
    }
    free(out);
    return 1;
}

/* ---- the end of the process ---- */

static int l_set_fault(lua_State *L) {
    lt_dist_set_fault(lua_toboolean(L, 1));
    return 0;
}

static int l_fault(lua_State *L) {
    lua_pushboolean(L, lt_dist_fault());
    return 1;
}

static int l_set_exit_timeout(lua_State *L) {
    lua_Number s = lt_check_number(L, 1, "lightning.distributed.set_exit_timeout");
    if (!(s >= 0 && s <= 86400))
        return lt_argerror(L, 1, "lightning.distributed.set_exit_timeout", "must be seconds from 0 to 86400, got %g", s);
    exit_timeout_s = s;
    return 0;
}

static int l_set_timeout(lua_State *L) {
    const char *fname = "lightning.distributed.set_timeout";
    lua_Number s = lt_check_number(L, 1, fname);
    if (!(s >= 0 && s <= 86400 * 7)) return lt_argerror(L, 1, fname, "must be seconds from 0 (no limit) to 604800, got %g", s);
    lt_dist_set_timeout(s);
    return 0;
}

static int l_timeout(lua_State *L) {
    lua_pushnumber(L, lt_dist_timeout());
    return 1;
}

__attribute__((visibility("default"))) int luaopen_lightning_dist(lua_State *L);
int luaopen_lightning_dist(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"init", l_init}, {"is_initialized", l_is_initialized}, {"finalize", l_finalize}, {"barrier", l_barrier},
        {"all_reduce", l_all_reduce}, {"all_reduce_start", l_all_reduce_start}, {"broadcast", l_broadcast},
        {"broadcast_string", l_broadcast_string}, {"all_gather_strings", l_all_gather_strings},
        {"set_fault", l_set_fault}, {"fault", l_fault}, {"set_exit_timeout", l_set_exit_timeout},
        {"set_timeout", l_set_timeout}, {"timeout", l_timeout}, {NULL, NULL}};
    luaL_newlib(L, fns);
    static const luaL_Reg work_methods[] = {
        {"wait", work_wait}, {"test", work_test}, {"is_completed", work_is_completed}, {NULL, NULL}};
    luaL_newmetatable(L, WORK_MT);
    luaL_newlib(L, work_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, work_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    return 1;
}
