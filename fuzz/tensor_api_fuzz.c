/* libFuzzer target: the tensor API through the Lua bindings. Each input runs in a fresh Lua 5.4 state
 * that has the module built from these sources (lightning.core, the C library alone); the driver
 * fuzz/tensor_api_fuzz.lua turns the input's bytes into a sequence of tensor operations on a pool of
 * small tensors, with extreme arguments (math.mininteger/maxinteger, 0, -1, 2^31, 2^32, 2^62, NaN, inf,
 * fractions, wrong types, nil, closed tensors). Any Lua error is fine; a crash, a sanitizer report or a
 * leak (each state is closed, so LeakSanitizer sees what the bindings lost) is a finding.
 * Tensors are capped at 2^20 elements here (LT_MAX_NUMEL) and the Lua state at 256 MB, so that every
 * input stays small and fast; the checks that refuse larger sizes are the same code.
 * The sources are the core without its optional parts (csrc/core/dnnl: oneDNN; csrc/core/dist and
 * csrc/lua/l_dist.c: MPI), as a build with -DLIGHTNING_WITH_DNNL=OFF -DLIGHTNING_WITH_MPI=OFF has them.
 * By hand: fuzz/run.sh 60 tensor_api_fuzz */
// sources: csrc/core/base/*.c csrc/core/device/*.c csrc/core/tensor/*.c csrc/core/kernel/*.c
// sources: csrc/core/optim/*.c csrc/core/metrics/*.c csrc/core/formats/*.c
// sources: csrc/core/cpu/*.c csrc/core/data/*.c csrc/core/nn/*.c csrc/core/plot/*.c
// sources: csrc/lua/l_[!d]*.c csrc/lua/l_data.c csrc/lua/l_device.c
// libs: -llua5.4 -lpng -lz -ldl
// cflags: -fopenmp -I/usr/include/lua5.4 -DLT_MAX_NUMEL=1048576 -DTENSOR_API_DRIVER="fuzz/tensor_api_fuzz.lua"
// seeds: fuzz/seeds/tensor_api
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int luaopen_lightning_core(lua_State *L);

#define STATE_LIMIT ((size_t)256 << 20)

typedef struct budget {
    size_t used;
} budget;

/* Lua's allocator with a cap: past it Lua raises "not enough memory", an ordinary error. */
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    budget *b = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        b->used -= old;
        return NULL;
    }
    if (nsize > old && b->used - old + nsize > STATE_LIMIT) return NULL;
    void *p = realloc(ptr, nsize);
    if (p) b->used = b->used - old + nsize;
    return p;
}

static char *driver;  /* the driver's source, read once */
static size_t driver_len;

static void read_driver(void) {
    FILE *f = fopen(TENSOR_API_DRIVER, "rb");
    if (!f) {
        fprintf(stderr, "tensor_api_fuzz: cannot open %s (run from the repository root)\n", TENSOR_API_DRIVER);
        abort();
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    driver = malloc((size_t)n + 1);
    if (!driver || fread(driver, 1, (size_t)n, f) != (size_t)n) abort();
    driver_len = (size_t)n;
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!driver) read_driver();
    budget b = {0};
    lua_State *L = lua_newstate(capped_alloc, &b);
    if (!L) return 0;
    luaL_openlibs(L);
    luaL_requiref(L, "lightning.core", luaopen_lightning_core, 0);
    lua_pop(L, 1);
    if (luaL_loadbuffer(L, driver, driver_len, "@" TENSOR_API_DRIVER) != LUA_OK) {
        fprintf(stderr, "tensor_api_fuzz: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_pushlstring(L, (const char *)data, size);
    /* The driver catches the errors of the operations it runs; only running out of the state's memory
     * may escape it. Anything else is a bug in the driver, which must not go unnoticed. */
    int rc = lua_pcall(L, 1, 0, 0);
    if (rc != LUA_OK && rc != LUA_ERRMEM) {
        const char *msg = lua_tostring(L, -1);
        if (!msg || !strstr(msg, "not enough memory")) {
            fprintf(stderr, "tensor_api_fuzz: the driver failed: %s\n", msg ? msg : "(no message)");
            abort();
        }
    }
    lua_close(L);
    return 0;
}
