/* luaopen_lightning_core: loads OpenBLAS with the right core type, then registers every binding. */
#include <string.h>
#include <time.h>

#include "../core/blas.h"
#include "../core/cpu.h"
#include "../core/parallel.h"
#include "../core/rng.h"
#include "l_util.h"

#define LT_VERSION "0.1.0"

static void set_bool(lua_State *L, const char *key, int value) {
    lua_pushboolean(L, value);
    lua_setfield(L, -2, key);
}

static void set_string(lua_State *L, const char *key, const char *value) {
    lua_pushstring(L, value);
    lua_setfield(L, -2, key);
}

static int l_info(lua_State *L) {
    const lt_cpu_info *cpu = lt_cpu();
    lt_blas_info blas = lt_blas_get_info();
    lua_newtable(L);
    set_string(L, "version", LT_VERSION);
    set_string(L, "blas_core", blas.core);
    set_string(L, "blas_core_chosen_by", blas.chosen_by);
    set_string(L, "blas_library", blas.library);
    set_string(L, "blas_config", blas.config);
    lua_pushinteger(L, lt_get_num_threads());
    lua_setfield(L, -2, "threads");

    lua_newtable(L);
    set_string(L, "model", cpu->model);
    set_string(L, "vendor", cpu->vendor);
    set_string(L, "simd", lt_cpu_simd_level(cpu));
    lua_pushinteger(L, cpu->logical_cpus);
    lua_setfield(L, -2, "logical_cpus");
    lua_newtable(L);
    struct { const char *name; bool on; } features[] = {
        {"sse4.2", cpu->sse42}, {"avx", cpu->avx}, {"avx2", cpu->avx2}, {"fma", cpu->fma},
        {"avx512f", cpu->avx512f}, {"avx512dq", cpu->avx512dq}, {"avx512bw", cpu->avx512bw},
        {"avx512vl", cpu->avx512vl}, {"avx512_vnni", cpu->avx512_vnni}, {"avx512_bf16", cpu->avx512_bf16},
        {"amx", cpu->amx}};
    int n = 0;
    for (size_t i = 0; i < sizeof features / sizeof *features; i++)
        if (features[i].on) {
            lua_pushstring(L, features[i].name);
            lua_rawseti(L, -2, ++n);
        }
    lua_setfield(L, -2, "features");
    lua_setfield(L, -2, "cpu");
#ifdef _OPENMP
    set_bool(L, "openmp", 1);
#else
    set_bool(L, "openmp", 0);
#endif
    return 1;
}

static int l_set_num_threads(lua_State *L) {
    lua_Integer n = lt_check_integer(L, 1, "lightning.set_num_threads");
    if (n < 1 || n > 1024) return lt_raisef(L, "lightning.set_num_threads", "expected 1 to 1024 threads, got %lld", (long long)n);
    lt_set_num_threads((int)n);
    return 0;
}

static int l_get_num_threads(lua_State *L) { return lua_pushinteger(L, lt_get_num_threads()), 1; }

static int l_manual_seed(lua_State *L) {
    lua_Integer seed = lt_check_integer(L, 1, "lightning.manual_seed");
    lt_rng_seed(lt_rng_global(), (uint64_t)seed);
    return 0;
}

static int l_get_rng_state(lua_State *L) {
    char state[LT_RNG_STATE_LEN];
    lt_rng_get_state(lt_rng_global(), state);
    lua_pushstring(L, state);
    return 1;
}

static int l_set_rng_state(lua_State *L) {
    const char *state = lt_check_string(L, 1, "lightning.set_rng_state");
    lt_error err;
    if (lt_rng_set_state(lt_rng_global(), state, &err)) return lt_raise(L, "lightning.set_rng_state", &err);
    return 0;
}

/* Seconds on a monotonic clock, for timing (os.clock counts CPU time of all threads). */
static int l_now(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + 1e-9 * (lua_Number)ts.tv_nsec);
    return 1;
}

__attribute__((visibility("default"))) int luaopen_lightning_core(lua_State *L);
int luaopen_lightning_core(lua_State *L) {
    lt_error err;
    if (lt_blas_load(&err)) return luaL_error(L, "lightning: %s", err.msg);
    lt_set_num_threads(lt_get_num_threads());

    static const luaL_Reg fns[] = {
        {"info", l_info}, {"set_num_threads", l_set_num_threads}, {"get_num_threads", l_get_num_threads},
        {"manual_seed", l_manual_seed}, {"get_rng_state", l_get_rng_state}, {"set_rng_state", l_set_rng_state},
        {"now", l_now}, {NULL, NULL}};
    luaL_newlib(L, fns);
    int module = lua_gettop(L);
    lua_newtable(L);  /* Tensor methods */
    int methods = lua_gettop(L);
    luaL_newmetatable(L, LT_TENSOR_MT);
    lua_pop(L, 1);

    lt_open_tensor(L, module, methods);
    lt_open_tensor_math(L, module, methods);
    lt_open_nn(L, module);
    lt_open_optim(L, module);
    lt_open_data(L, module);
    lt_open_io(L, module);
    lt_open_metrics(L, module);
    lt_open_plot(L, module);
    extern void lt_open_flatten(lua_State *L, int methods); lt_open_flatten(L, methods);  /* l_flatten.c */
    extern void lt_open_interrupt(lua_State *L, int module); lt_open_interrupt(L, module);  /* l_interrupt.c */

    lua_pushvalue(L, methods);
    lua_setfield(L, module, "Tensor");  /* so Lua code can add methods */
    lua_settop(L, module);
    return 1;
}
