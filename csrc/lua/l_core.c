/* luaopen_lightning_core: loads OpenBLAS with the right core type, then registers every binding. Also
 * lightning.core.testing, two hooks the specs use to prove that no binding leaks on an error path. */
#include <string.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "../core/base/blas.h"
#include "../core/base/cpu_features.h"
#include "../core/kernel/kernel.h"
#include "../core/base/parallel.h"
#include "../core/base/rng.h"
#include "../core/device/backend.h"
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
    lua_pushinteger(L, lt_threads_now());  /* fewer than threads while other processes use the cores */
    lua_setfield(L, -2, "threads_now");

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
    lt_mixed_info mixed = lt_mixed_precision_info();
    if (mixed.available) {  /* bf16 mixed precision: absent when the build has no oneDNN */
        lua_newtable(L);
        set_string(L, "backend", mixed.backend);
        set_string(L, "version", mixed.version);
        set_string(L, "isa", mixed.isa);
        set_string(L, "runtime", mixed.runtime);
        set_bool(L, "bf16_supported", mixed.bf16_supported);
        set_bool(L, "bf16_native", mixed.bf16_native);
        set_bool(L, "amx_native", mixed.amx_native);
        lua_setfield(L, -2, "mixed_precision");
    }
    set_bool(L, "deterministic", lt_deterministic());
#ifdef _OPENMP
    set_bool(L, "openmp", 1);
#else
    set_bool(L, "openmp", 0);
#endif
    return 1;
}

/* lightning.set_deterministic(on): results that do not depend on the thread count even where that
 * costs speed (see kernel.h) */
static int l_set_deterministic(lua_State *L) {
    luaL_checktype(L, 1, LUA_TBOOLEAN);
    lt_set_deterministic(lua_toboolean(L, 1));
    return 0;
}

/* lightning.set_fp32_onednn(on): whether float32 convolutions may run through oneDNN (see kernel.h);
 * returns the previous setting */
static int l_set_fp32_onednn(lua_State *L) {
    luaL_checktype(L, 1, LUA_TBOOLEAN);
    bool was = lt_fp32_onednn();
    lt_set_fp32_onednn(lua_toboolean(L, 1));
    return lua_pushboolean(L, was), 1;
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
    lt_manual_seed_devices((uint64_t)seed);  /* the GPU's dropout too, as torch.manual_seed */
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

/* ---- testing: allocation failures on demand, and the C heap's size ---- */

typedef struct failing_alloc {
    lua_Alloc real;
    void *real_ud;
    lua_Integer left;  /* allocations that still succeed */
} failing_alloc;

/* Lua's allocator, except that once `left` allocations (or growths) have been made, every further one
 * fails; frees and shrinks always work, as Lua requires. */
static void *failing_allocator(void *ud, void *ptr, size_t osize, size_t nsize) {
    failing_alloc *f = ud;
    if (nsize > 0 && (!ptr || nsize > osize)) {
        if (f->left <= 0) return NULL;
        f->left--;
    }
    return f->real(f->real_ud, ptr, osize, nsize);
}

/* testing.with_failing_allocations(n, f, ...) --> ok, error or first result: calls f(...) with every Lua
 * allocation after the first n failing (Lua raises "not enough memory"), then restores the allocator.
 * Run with n = 0, 1, 2, ... until ok, a binding meets an allocation failure at each of its points. */
static int l_with_failing_allocations(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    int nargs = lua_gettop(L) - 2;
    failing_alloc f = {.left = n};
    f.real = lua_getallocf(L, &f.real_ud);
    /* Finalizers must not run while allocations fail: Lua drops a finalizer that errors, and the
     * storage it would have freed would look leaked. So the garbage of earlier calls is collected
     * first, the collector waits meanwhile, and this call's garbage is collected afterwards. */
    lua_gc(L, LUA_GCCOLLECT);
    lua_gc(L, LUA_GCSTOP);
    lua_setallocf(L, failing_allocator, &f);
    int rc = lua_pcall(L, nargs, 1, 0);
    lua_setallocf(L, f.real, f.real_ud);
    lua_gc(L, LUA_GCRESTART);
    lua_gc(L, LUA_GCCOLLECT);
    lua_pushboolean(L, rc == LUA_OK);
    lua_insert(L, -2);
    return 2;
}

/* testing.heap_bytes() --> bytes the C heap has handed out (glibc's mallinfo2), or nil where unknown
 * (other C libraries; AddressSanitizer's allocator reports 0). */
static int l_heap_bytes(lua_State *L) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 m = mallinfo2();
    if (m.uordblks > 0) return lua_pushinteger(L, (lua_Integer)m.uordblks), 1;
#endif
    lua_pushnil(L);
    return 1;
}

/* testing.threads_fit(requested, cpus, others) --> the team parallel.c picks when other processes keep
 * `others` of `cpus` CPUs busy. */
static int l_threads_fit(lua_State *L) {
    lua_Integer requested = luaL_checkinteger(L, 1), cpus = luaL_checkinteger(L, 2);
    return lua_pushinteger(L, lt_threads_fit((int)requested, (int)cpus, luaL_checknumber(L, 3))), 1;
}

static void open_testing(lua_State *L, int module) {
    static const luaL_Reg fns[] = {{"with_failing_allocations", l_with_failing_allocations},
                                   {"heap_bytes", l_heap_bytes}, {"threads_fit", l_threads_fit}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, module, "testing");
}

__attribute__((visibility("default"))) int luaopen_lightning_core(lua_State *L);
int luaopen_lightning_core(lua_State *L) {
    lt_error err;
    if (lt_blas_load(&err)) return luaL_error(L, "lightning: %s", err.msg);
    lt_set_num_threads(lt_get_num_threads());

    static const luaL_Reg fns[] = {
        {"info", l_info}, {"set_deterministic", l_set_deterministic}, {"set_fp32_onednn", l_set_fp32_onednn}, {"set_num_threads", l_set_num_threads}, {"get_num_threads", l_get_num_threads},
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
    lt_open_tensor_index(L, module, methods);
    lt_open_nn(L, module);
    lt_open_optim(L, module);
    lt_open_data(L, module);
    lt_open_io(L, module);
    lt_open_metrics(L, module);
    lt_open_plot(L, module);
    lt_open_buffer(L, module);
    lt_open_device(L, module, methods);
    open_testing(L, module);
    extern void lt_open_flatten(lua_State *L, int methods); lt_open_flatten(L, methods);  /* l_flatten.c */
    extern void lt_open_interrupt(lua_State *L, int module); lt_open_interrupt(L, module);  /* l_interrupt.c */

    lua_pushvalue(L, methods);
    lua_setfield(L, module, "Tensor");  /* so Lua code can add methods */
    lua_settop(L, module);
    return 1;
}
