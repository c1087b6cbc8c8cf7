/* CUDA graphs from Lua (core.cuda.capture_begin, capture_end, is_capturing; a graph's replay and reset):
 * lightning/cuda.lua's CUDAGraph wraps them. The core decides what a capture may do (device/graph.h). */
#include "../core/device/graph.h"
#include "l_util.h"

#define GRAPH_MT "lightning.cuda.graph"

typedef struct graph_box {
    lt_graph *g;  /* NULL once reset */
} graph_box;

static int c_capture_begin(lua_State *L) {
    lt_error err;
    if (lt_graph_capture_begin(LT_DEVICE_CUDA, &err)) lt_raise(L, "cuda.capture_begin", &err);
    return 0;
}

/* The graph, or an error after which no capture goes on. */
static int c_capture_end(lua_State *L) {
    graph_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->g = NULL;
    luaL_setmetatable(L, GRAPH_MT);
    lt_error err;
    if (lt_graph_capture_end(LT_DEVICE_CUDA, &box->g, &err)) lt_raise(L, "cuda.capture_end", &err);
    lt_account_memory(L);
    return 1;
}

static int c_is_capturing(lua_State *L) {
    lua_pushboolean(L, lt_device_capturing(LT_DEVICE_CUDA));
    return 1;
}

static graph_box *check_graph(lua_State *L, const char *fname) {
    graph_box *box = luaL_testudata(L, 1, GRAPH_MT);
    if (!box) lt_argerror(L, 1, fname, "expected a CUDA graph, got %s", lt_typename(L, 1));
    return box;
}

static int g_replay(lua_State *L) {
    const char *fname = "CUDAGraph:replay";
    graph_box *box = check_graph(L, fname);
    if (!box->g) return lt_raisef(L, fname, "the graph was reset (capture it again)");
    lt_error err;
    if (lt_graph_replay(box->g, &err)) lt_raise(L, fname, &err);
    return 0;
}

static int g_reset(lua_State *L) {
    graph_box *box = check_graph(L, "CUDAGraph:reset");
    lt_graph_free(box->g);
    box->g = NULL;
    return 0;
}

void lt_open_graph(lua_State *L, int idx) {
    static const luaL_Reg fns[] = {
        {"capture_begin", c_capture_begin}, {"capture_end", c_capture_end}, {"is_capturing", c_is_capturing},
        {NULL, NULL}};
    static const luaL_Reg methods[] = {{"replay", g_replay}, {"reset", g_reset}, {NULL, NULL}};
    idx = lua_absindex(L, idx);
    lua_pushvalue(L, idx);
    luaL_setfuncs(L, fns, 0);
    lua_pop(L, 1);
    luaL_newmetatable(L, GRAPH_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, g_reset);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}
