/* lightning.core.cuda.comm: the device collectives of tensor_comm.h, for lua/lightning/distributed,
 * which routes a GPU tensor's all_reduce and broadcast here (and host tensors to MPI).
 *   ready()                     true, or false and why this process cannot join a group (no GPU, no NCCL)
 *   unique_id()                 a new group's identity (a string of LT_COMM_ID_BYTES bytes)
 *   init(id, rank, world_size)  joins the group (every process, once)
 *   joined()                    rank, world_size; or nil before init
 *   all_reduce(t, op)           in place, queued; op "sum" (default), "mean", "max", "min"; returns t
 *   broadcast(t, root)          in place, queued; returns t
 *   query()                     whether the collectives queued so far have finished
 *   join()                      the work queued from now on waits for them (the host does not) */
#include "../core/device/backend.h"
#include "../core/tensor/tensor_comm.h"
#include "l_util.h"

/* One device type has collectives: the GPU. */
#define COMM_DEVICE LT_DEVICE_CUDA

static int c_ready(lua_State *L) {
    lt_error err;
    if (!lt_comm_ready(COMM_DEVICE, &err)) return lua_pushboolean(L, 1), 1;
    lua_pushboolean(L, 0);
    lua_pushstring(L, err.msg);
    return 2;
}

static int c_unique_id(lua_State *L) {
    unsigned char id[LT_COMM_ID_BYTES];
    lt_error err;
    if (lt_comm_unique_id(COMM_DEVICE, id, &err)) lt_raise(L, "cuda.comm.unique_id", &err);
    lua_pushlstring(L, (const char *)id, sizeof id);
    return 1;
}

static int c_init(lua_State *L) {
    const char *fname = "cuda.comm.init";
    size_t len;
    const char *id = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &len) : NULL;
    if (!id || len != LT_COMM_ID_BYTES)
        lt_argerror(L, 1, fname, "must be a group's identity (the %d bytes unique_id gives), got %s", LT_COMM_ID_BYTES,
                    id ? "a string of another length" : lt_typename(L, 1));
    lua_Integer world = lt_check_int_in(L, 3, fname, "world_size", 1, 1 << 20);
    lua_Integer rank = lt_check_int_in(L, 2, fname, "rank", 0, world - 1);
    lt_error err;
    if (lt_comm_init(COMM_DEVICE, (const unsigned char *)id, (int)rank, (int)world, &err)) lt_raise(L, fname, &err);
    return 0;
}

static int c_joined(lua_State *L) {
    int rank, world;
    if (!lt_comm_joined(COMM_DEVICE, &rank, &world)) return 0;
    lua_pushinteger(L, rank);
    lua_pushinteger(L, world);
    return 2;
}


static int c_all_reduce(lua_State *L) {
    const char *fname = "cuda.comm.all_reduce";
    lt_tensor *t = lt_check_tensor_anywhere(L, 1, fname);
    lt_comm_op op = (lt_comm_op)lt_check_reduce_op(L, 2, fname);
    lt_error err;
    if (lt_comm_all_reduce(t, op, &err)) lt_raise(L, fname, &err);
    lua_settop(L, 1);
    return 1;
}

static int c_broadcast(lua_State *L) {
    const char *fname = "cuda.comm.broadcast";
    lt_tensor *t = lt_check_tensor_anywhere(L, 1, fname);
    lua_Integer root = lt_check_int_in(L, 2, fname, "root", 0, 1 << 20);
    lt_error err;
    if (lt_comm_broadcast(t, (int)root, &err)) lt_raise(L, fname, &err);
    lua_settop(L, 1);
    return 1;
}

static int c_query(lua_State *L) {
    bool done;
    lt_error err;
    if (lt_comm_query(COMM_DEVICE, &done, &err)) lt_raise(L, "cuda.comm.query", &err);
    lua_pushboolean(L, done);
    return 1;
}

static int c_join(lua_State *L) {
    lt_error err;
    if (lt_comm_join(COMM_DEVICE, &err)) lt_raise(L, "cuda.comm.join", &err);
    return 0;
}

/* Sets the table at idx's field "comm". */
void lt_open_comm(lua_State *L, int idx) {
    static const luaL_Reg fns[] = {{"ready", c_ready}, {"unique_id", c_unique_id}, {"init", c_init},   {"joined", c_joined},
                                   {"all_reduce", c_all_reduce}, {"broadcast", c_broadcast}, {"query", c_query},
                                   {"join", c_join},           {NULL, NULL}};
    idx = lua_absindex(L, idx);
    luaL_newlib(L, fns);
    lua_setfield(L, idx, "comm");
}
