/* Devices from Lua: where a tensor lives and moving it (t:device(), t:to(), t:cuda(), t:cpu(),
 * t:_move_to_()), and lightning.core.cuda (is_available, device_count, get_device_properties,
 * synchronize, manual_seed, memory_stats, empty_cache; its collectives, comm, are l_comm.c's). The core decides everything (backend.h,
 * tensor_device.h); this file converts. */
#include <stdio.h>
#include <string.h>

#include "../core/device/backend.h"
#include "../core/kernel/kernel.h"
#include "../core/tensor/tensor_device.h"
#include "../core/tensor/tensor_math.h"
#include "l_util.h"

lt_device lt_check_device(lua_State *L, int idx, const char *fname) {
    const char *name = lt_check_string(L, idx, fname);
    lt_device d;
    lt_error err;
    if (lt_device_parse(name, &d, &err)) lt_raise(L, fname, &err);
    return d;
}

static int t_device(lua_State *L) {
    lua_pushstring(L, lt_device_name(lt_device_of(lt_check_tensor_any(L, 1, "Tensor:device"))));
    return 1;
}

/* self when it is on d already, else a new tensor there */
static int moved(lua_State *L, const char *fname, lt_device d) {
    lt_tensor *t = lt_check_tensor_any(L, 1, fname);
    if (lt_device_of(t) == d) return lua_settop(L, 1), 1;
    lt_tensor *out = lt_push_tensor(L);
    lt_error err;
    if (lt_to_device(out, t, d, &err)) lt_raise(L, fname, &err);
    lt_account_memory(L);
    return 1;
}

static int t_to(lua_State *L) { return moved(L, "Tensor:to", lt_check_device(L, 2, "Tensor:to")); }
static int t_cuda(lua_State *L) { return moved(L, "Tensor:cuda", LT_DEVICE_CUDA); }
static int t_cpu(lua_State *L) { return moved(L, "Tensor:cpu", LT_DEVICE_CPU); }

/* t:_move_to_(dev): t's values on dev, in t itself (Module:to moves parameters so, keeping the objects
 * an optimizer holds). Other views of t's old storage stay where they were. */
static int t_move_to_(lua_State *L) {
    const char *fname = "Tensor:_move_to_";
    lt_tensor *t = lt_check_tensor_any(L, 1, fname);
    lt_device d = lt_check_device(L, 2, fname);
    lt_tensor moved_t = {0};
    lt_error err;
    if (lt_to_device(&moved_t, t, d, &err)) lt_raise(L, fname, &err);
    lt_tensor_release(t);
    *t = moved_t;
    lt_bump_version(t);
    lt_account_memory(L);
    lua_settop(L, 1);
    return 1;
}

/* t:new_empty(sizes), t:new_zeros(sizes), t:new_ones(sizes): a float32 tensor made on t's device, as
 * PyTorch's, without a copy from the host (so a CUDA graph's capture may make one). */
static int new_on_device_of(lua_State *L, const char *fname, bool fill, float value) {
    lt_tensor *t = lt_check_tensor_any(L, 1, fname);
    int64_t size[LT_MAX_DIMS];
    int n = lt_check_sizes_arg(L, 2, fname, size, 0);
    lt_tensor *out = lt_push_tensor(L);
    lt_error err;
    if (lt_tensor_new_on(out, n, size, LT_FLOAT32, lt_device_of(t), &err) || (fill && lt_fill(out, value, &err)))
        lt_raise(L, fname, &err);
    lt_account_memory(L);
    return 1;
}

static int t_new_empty(lua_State *L) { return new_on_device_of(L, "Tensor:new_empty", false, 0.0f); }
static int t_new_zeros(lua_State *L) { return new_on_device_of(L, "Tensor:new_zeros", true, 0.0f); }
static int t_new_ones(lua_State *L) { return new_on_device_of(L, "Tensor:new_ones", true, 1.0f); }

/* ---- lightning.core.cuda ---- */

/* A yes-or-no question's answer: true, or false and why. */
static int push_answer(lua_State *L, bool yes, const lt_error *why) {
    lua_pushboolean(L, yes);
    if (yes) return 1;
    lua_pushstring(L, why->msg);
    return 2;
}

static int c_is_available(lua_State *L) {
    lt_error why;
    return push_answer(L, lt_device_available(LT_DEVICE_CUDA, &why), &why);
}

/* is_bf16_supported() / is_fp16_supported(): true, or false and why (layers on the GPU then compute
 * in float32). */
static int c_is_bf16_supported(lua_State *L) {
    lt_error why;
    return push_answer(L, lt_device_computes_mixed(LT_DEVICE_CUDA, LT_BF16, &why), &why);
}

static int c_is_fp16_supported(lua_State *L) {
    lt_error why;
    return push_answer(L, lt_device_computes_mixed(LT_DEVICE_CUDA, LT_FP16, &why), &why);
}

/* get_rng_state() -> the GPU generator's state (text); set_rng_state(state) */
static int c_get_rng_state(lua_State *L) {
    char state[LT_BACKEND_RNG_STATE_LEN];
    lt_error err;
    if (lt_device_get_rng_state(LT_DEVICE_CUDA, state, &err)) lt_raise(L, "cuda.get_rng_state", &err);
    lua_pushstring(L, state);
    return 1;
}

static int c_set_rng_state(lua_State *L) {
    const char *state = lt_check_string(L, 1, "cuda.set_rng_state");
    lt_error err;
    if (lt_device_set_rng_state(LT_DEVICE_CUDA, state, &err)) lt_raise(L, "cuda.set_rng_state", &err);
    return 0;
}

static int c_device_count(lua_State *L) {
    lt_error why;
    lua_pushinteger(L, lt_device_count(LT_DEVICE_CUDA, &why));
    return 1;
}

static const lt_backend_api *cuda_or_raise(lua_State *L, const char *fname) {
    lt_error err;
    const lt_backend_api *api = lt_backend(LT_DEVICE_CUDA, &err);
    if (!api) lt_raise(L, fname, &err);
    return api;
}

/* 13000 -> "13.0"; cuDNN's 91000 -> "9.10.0" (major * 10000 + minor * 100 + patch since 9.0). */
static void push_cuda_version(lua_State *L, int v) { lua_pushfstring(L, "%d.%d", v / 1000, (v % 1000) / 10); }
static void push_cudnn_version(lua_State *L, int v) { lua_pushfstring(L, "%d.%d.%d", v / 10000, (v % 10000) / 100, v % 100); }

static void set_integer(lua_State *L, const char *k, lua_Integer v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static int c_get_device_properties(lua_State *L) {
    const char *fname = "cuda.get_device_properties";
    const lt_backend_api *api = cuda_or_raise(L, fname);
    lt_error why;
    int count = lt_device_count(LT_DEVICE_CUDA, &why);  /* this process computes on device 0; all are described */
    lua_Integer index = lt_opt_int_in(L, 1, fname, "device", 0, count - 1, 0);
    lt_device_props p;
    lt_error err;
    if (api->props((int)index, &p, &err)) lt_raise(L, fname, &err);
    lua_createtable(L, 0, 10);
    lua_pushstring(L, p.name);
    lua_setfield(L, -2, "name");
    set_integer(L, "index", p.index);
    set_integer(L, "total_memory", (lua_Integer)p.total_bytes);
    set_integer(L, "free_memory", (lua_Integer)p.free_bytes);
    set_integer(L, "major", p.cc_major);
    set_integer(L, "minor", p.cc_minor);
    set_integer(L, "multi_processor_count", p.multiprocessors);
    push_cuda_version(L, p.driver_version);
    lua_setfield(L, -2, "driver_version");
    push_cuda_version(L, p.runtime_version);
    lua_setfield(L, -2, "runtime_version");
    push_cudnn_version(L, p.cudnn_version);
    lua_setfield(L, -2, "cudnn_version");
    push_cudnn_version(L, p.cublaslt_version);
    lua_setfield(L, -2, "cublaslt_version");
    return 1;
}

/* current_device(): the machine's index of the GPU this process computes on (its cuda:0). */
static int c_current_device(lua_State *L) {
    cuda_or_raise(L, "cuda.current_device");
    lua_pushinteger(L, lt_device_index(LT_DEVICE_CUDA));
    return 1;
}

static int c_synchronize(lua_State *L) {
    lt_error err;
    cuda_or_raise(L, "cuda.synchronize");
    if (lt_device_synchronize(LT_DEVICE_CUDA, &err)) lt_raise(L, "cuda.synchronize", &err);
    return 0;
}

static int c_manual_seed(lua_State *L) {
    lua_Integer seed = lt_check_int_arg(L, 1, "cuda.manual_seed", "seed");
    cuda_or_raise(L, "cuda.manual_seed")->manual_seed((uint64_t)seed);
    return 0;
}

/* allow_tf32([on]): whether float32 products and convolutions may use TF32; sets it when given. */
static int c_allow_tf32(lua_State *L) {
    const lt_backend_api *api = cuda_or_raise(L, "cuda.allow_tf32");
    if (!lua_isnoneornil(L, 1)) api->set_allow_tf32(lt_opt_boolean(L, 1, "cuda.allow_tf32", 1));
    lua_pushboolean(L, api->allow_tf32());
    return 1;
}

static int c_memory_stats(lua_State *L) {
    lt_device_memory m;
    lt_error err;
    if (cuda_or_raise(L, "cuda.memory_stats")->memory(&m, &err)) lt_raise(L, "cuda.memory_stats", &err);
    lua_createtable(L, 0, 3);
    set_integer(L, "in_use", (lua_Integer)m.in_use);
    set_integer(L, "reserved", (lua_Integer)m.reserved);
    set_integer(L, "peak_in_use", (lua_Integer)m.peak_in_use);
    return 1;
}

static int c_empty_cache(lua_State *L) {
    lt_error err;
    if (cuda_or_raise(L, "cuda.empty_cache")->empty_cache(&err)) lt_raise(L, "cuda.empty_cache", &err);
    return 0;
}

/* set_sync_debug_mode(mode): PyTorch's "default" (0), "warn" (1) or "error" (2): what an operation that
 * makes the host wait for the GPU does (backend.h, lt_device_sync_point). Needs no GPU. */
static const char *const sync_modes[] = {"default", "warn", "error", NULL};

static int c_set_sync_debug_mode(lua_State *L) {
    const char *fname = "cuda.set_sync_debug_mode";
    int mode = -1;
    if (lua_type(L, 1) == LUA_TNUMBER && lua_isinteger(L, 1) && lua_tointeger(L, 1) >= 0 && lua_tointeger(L, 1) <= 2)
        mode = (int)lua_tointeger(L, 1);
    else if (lua_type(L, 1) == LUA_TSTRING)
        for (int i = 0; sync_modes[i]; i++)
            if (!strcmp(lua_tostring(L, 1), sync_modes[i])) mode = i;
    if (mode < 0)
        return lt_raisef(L, fname, "mode must be 'default', 'warn' or 'error' (or 0, 1, 2), got %s",
                         lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : luaL_typename(L, 1));
    lt_set_sync_debug_mode((lt_sync_debug_mode)mode);
    return 0;
}

static int c_get_sync_debug_mode(lua_State *L) {
    lua_pushstring(L, sync_modes[lt_get_sync_debug_mode()]);
    return 1;
}

/* Mode warn: one line on stderr for each operation that waits. */
static void sync_warning(void *ud, const char *what) {
    (void)ud;
    fprintf(stderr, "lightning: warning: %s makes the host wait for the GPU (sync debug mode 'warn')\n", what);
}

/* Device memory ran out: a full collection frees the storages of unreachable tensors. */
static void collect_garbage(void *ud) { lua_gc((lua_State *)ud, LUA_GCCOLLECT); }

void lt_open_device(lua_State *L, int module, int methods) {
    static const luaL_Reg method_fns[] = {{"device", t_device},         {"to", t_to}, {"cuda", t_cuda},
                                          {"cpu", t_cpu},               {"_move_to_", t_move_to_},
                                          {"new_empty", t_new_empty},   {"new_zeros", t_new_zeros},
                                          {"new_ones", t_new_ones},     {NULL, NULL}};
    static const luaL_Reg cuda_fns[] = {{"is_available", c_is_available},
                                        {"device_count", c_device_count},
                                        {"is_bf16_supported", c_is_bf16_supported},
                                        {"is_fp16_supported", c_is_fp16_supported},
                                        {"get_device_properties", c_get_device_properties},
                                        {"current_device", c_current_device},
                                        {"synchronize", c_synchronize},
                                        {"manual_seed", c_manual_seed},
                                        {"get_rng_state", c_get_rng_state},
                                        {"set_rng_state", c_set_rng_state},
                                        {"allow_tf32", c_allow_tf32},
                                        {"memory_stats", c_memory_stats},
                                        {"empty_cache", c_empty_cache},
                                        {"set_sync_debug_mode", c_set_sync_debug_mode},
                                        {"get_sync_debug_mode", c_get_sync_debug_mode},
                                        {NULL, NULL}};
    lua_pushvalue(L, methods);
    luaL_setfuncs(L, method_fns, 0);
    lua_pop(L, 1);
    luaL_newlib(L, cuda_fns);
    lt_open_comm(L, -1);
    lt_open_graph(L, -1);
    lua_setfield(L, module, "cuda");
    /* the main thread's state: collections run there whichever coroutine allocates */
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    lt_set_out_of_memory_hook(collect_garbage, lua_tothread(L, -1));
    lua_pop(L, 1);
    lt_set_sync_warning_hook(sync_warning, NULL);
}
