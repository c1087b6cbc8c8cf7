#define _GNU_SOURCE  /* dladdr */
#include "backend.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *lt_device_name(lt_device d) { return d == LT_DEVICE_CUDA ? "cuda:0" : "cpu"; }

int lt_device_parse(const char *name, lt_device *d, lt_error *err) {
    if (!strcmp(name, "cpu")) *d = LT_DEVICE_CPU;
    else if (!strcmp(name, "cuda") || !strcmp(name, "cuda:0") || !strcmp(name, "gpu")) *d = LT_DEVICE_CUDA;
    else if (!strncmp(name, "cuda:", 5))
        return lt_fail(err, "device %s: one GPU a process is supported, cuda:0 (start a process per GPU)", name);
    else return lt_fail(err, "unknown device '%s' (expected cpu, cuda, cuda:0 or gpu)", name);
    return 0;
}

/* ---- the CUDA module: loaded once, its outcome (the API, or why not) kept ---- */

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static bool load_tried;
static const lt_backend_api *cuda_api;  /* non-NULL once loaded and its device initialised */
static lt_error cuda_why;               /* why not, when load_tried and !cuda_api */
static int cuda_index;                  /* the machine's GPU that is this process's cuda:0 */

/* Which of the machine's `count` GPUs this process drives: LIGHTNING_CUDA_DEVICE (0-based) when set; else,
 * under mpirun, the process's rank among those of its host modulo the GPUs (a process per GPU, as
 * Lightning's DDP takes its local rank); else the first. */
static int process_gpu(int count, int *index, lt_error *err) {
    const char *chosen = getenv("LIGHTNING_CUDA_DEVICE"), *local = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    if (chosen && *chosen) {
        char *end;
        long i = strtol(chosen, &end, 10);
        if (*end || i < 0 || i >= count)
            return lt_fail(err, "LIGHTNING_CUDA_DEVICE=%s: expected a GPU's index from 0 to %d", chosen, count - 1);
        *index = (int)i;
    } else {
        long r = local && *local ? strtol(local, NULL, 10) : 0;
        *index = r > 0 ? (int)(r % count) : 0;
    }
    return 0;
}

/* lightning/cuda.so beside the module this core is linked into (lightning/core.so), unless
 * LIGHTNING_CUDA_MODULE names another file. */
static int module_path(char *buf, size_t len, lt_error *err) {
    const char *env = getenv("LIGHTNING_CUDA_MODULE");
    if (env && *env) {
        if ((size_t)snprintf(buf, len, "%s", env) >= len) return lt_fail(err, "LIGHTNING_CUDA_MODULE is too long");
        return 0;
    }
    Dl_info info;
    if (!dladdr((void *)&lt_backend, &info) || !info.dli_fname)
        return lt_fail(err, "cannot find where the lightning core was loaded from");
    const char *slash = strrchr(info.dli_fname, '/');
    int dir = slash ? (int)(slash - info.dli_fname) : 1;
    const char *base = slash ? info.dli_fname : ".";
    if ((size_t)snprintf(buf, len, "%.*s/cuda.so", dir, base) >= len) return lt_fail(err, "the module path is too long");
    return 0;
}

static const lt_backend_api *load_cuda(lt_error *err) {
    char path[4096];
    if (module_path(path, sizeof path, err)) return NULL;
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        FILE *f = fopen(path, "rb");
        if (!f) return lt_fail(err, "lightning was built without CUDA (no %s)", path), NULL;
        fclose(f);
        return lt_fail(err, "cannot load the CUDA backend %s: %s", path, why ? why : "unknown error"), NULL;
    }
    lt_backend_entry_fn entry;
    *(void **)&entry = dlsym(handle, LT_BACKEND_ENTRY);
    if (!entry) {
        dlclose(handle);
        return lt_fail(err, "%s exports no %s", path, LT_BACKEND_ENTRY), NULL;
    }
    const lt_backend_api *api = entry(LT_BACKEND_API_VERSION, err);
    int count = 0;
    err->msg[0] = '\0';
    if (!api || api->device_count(&count, err)) return NULL;  /* kept loaded: its libraries may have threads */
    if (count < 1) {  /* the module says why (no driver, a driver too old) when it knows */
        if (!err->msg[0]) lt_fail(err, "no CUDA device is present");
        return NULL;
    }
    if (process_gpu(count, &cuda_index, err) || api->init(cuda_index, err)) return NULL;
    return api;
}

int lt_device_index(lt_device d) { return d == LT_DEVICE_CUDA ? cuda_index : 0; }

/* The seed lightning.manual_seed gave, for a backend loaded after it (seeded_all: one was given). */
static uint64_t seed_for_all;
static bool seeded_all;

static const lt_backend_api *cuda_backend(lt_error *err) {
    pthread_mutex_lock(&load_lock);
    if (!load_tried) {
        cuda_api = load_cuda(&cuda_why);
        load_tried = true;
        if (cuda_api && seeded_all) cuda_api->manual_seed(seed_for_all);
    }
    const lt_backend_api *api = cuda_api;
    pthread_mutex_unlock(&load_lock);
    if (!api) lt_fail(err, "%s", cuda_why.msg);
    return api;
}

const lt_backend_api *lt_backend(lt_device d, lt_error *err) {
    if (d == LT_DEVICE_CUDA) return cuda_backend(err);
    return lt_fail(err, "the host has no backend module"), NULL;
}

bool lt_device_available(lt_device d, lt_error *why) {
    return d == LT_DEVICE_CPU || lt_backend(d, why) != NULL;
}

int lt_device_count(lt_device d, lt_error *why) {
    if (d == LT_DEVICE_CPU) return 1;
    /* One process drives device 0; the count is what is present, for the device block. */
    const lt_backend_api *api = lt_backend(d, why);
    int count = 0;
    if (!api || api->device_count(&count, why)) return 0;
    return count;
}

/* ---- device memory ---- */

static void (*oom_hook)(void *);
static void *oom_hook_ud;

void lt_set_out_of_memory_hook(void (*hook)(void *ud), void *ud) {
    oom_hook = hook;
    oom_hook_ud = ud;
}

/* The pool's memory; when it runs out, Lua's collector frees what is unreachable and the pool is
 * asked once more (the second failure's message names the bytes asked for and free). */
static void *cuda_alloc(size_t bytes, lt_error *err) {
    const lt_backend_api *api = cuda_backend(err);
    if (!api) return NULL;
    void *p = api->alloc(bytes, err);
    if (!p && oom_hook) {
        oom_hook(oom_hook_ud);
        p = api->alloc(bytes, err);
    }
    return p;
}

static void cuda_free(void *p) {
    if (cuda_api) cuda_api->free(p);  /* storages on the device exist only once the API does */
}

static const lt_allocator cuda_allocator = {"cuda:0", LT_DEVICE_CUDA, cuda_alloc, cuda_free};

const lt_allocator *lt_device_allocator(lt_device d, lt_error *err) {
    if (d == LT_DEVICE_CPU) return &lt_host_allocator;
    return cuda_backend(err) ? &cuda_allocator : NULL;
}

/* ---- sync debug mode ---- */

static lt_sync_debug_mode sync_mode;
static void (*sync_hook)(void *, const char *);
static void *sync_hook_ud;

void lt_set_sync_debug_mode(lt_sync_debug_mode mode) { sync_mode = mode; }
lt_sync_debug_mode lt_get_sync_debug_mode(void) { return sync_mode; }

void lt_set_sync_warning_hook(void (*hook)(void *ud, const char *what), void *ud) {
    sync_hook = hook;
    sync_hook_ud = ud;
}

int lt_device_sync_point(lt_device d, const char *what, lt_error *err) {
    if (lt_refuse_in_capture(d, what, "it makes the host wait for the GPU", err)) return -1;
    if (d == LT_DEVICE_CPU || sync_mode == LT_SYNC_DEBUG_DEFAULT) return 0;
    if (sync_mode == LT_SYNC_DEBUG_ERROR)
        return lt_fail(err, "%s makes the host wait for %s, and the sync debug mode is 'error' "
                       "(L.cuda.set_sync_debug_mode)", what, lt_device_name(d));
    if (sync_hook) sync_hook(sync_hook_ud, what);
    return 0;
}

/* ---- CUDA graphs' captures ---- */

static bool capturing;  /* one device a process: cuda:0 */

bool lt_device_capturing(lt_device d) { return d != LT_DEVICE_CPU && capturing; }

int lt_refuse_in_capture(lt_device d, const char *what, const char *why, lt_error *err) {
    if (!lt_device_capturing(d)) return 0;
    return lt_fail(err, "%s cannot be captured in a CUDA graph (%s)", what, why);
}

int lt_device_capture_begin(lt_device d, lt_error *err) {
    if (d == LT_DEVICE_CPU) return lt_fail(err, "CUDA graphs capture the work of a GPU, not of the host");
    if (capturing) return lt_fail(err, "a CUDA graph is being captured already (one capture at a time)");
    const lt_backend_api *api = lt_backend(d, err);
    if (!api || api->capture_begin(err)) return -1;
    capturing = true;
    return 0;
}

int lt_device_capture_end(lt_device d, void **handle, lt_error *err) {
    *handle = NULL;
    if (!lt_device_capturing(d)) return lt_fail(err, "no CUDA graph is being captured");
    capturing = false;
    return cuda_api->capture_end(handle, err);  /* loaded: the capture began */
}

int lt_device_synchronize(lt_device d, lt_error *err) {
    if (d == LT_DEVICE_CPU) return 0;
    const lt_backend_api *api = lt_backend(d, err);
    if (!api || lt_refuse_in_capture(d, "synchronize", "it makes the host wait for the GPU", err)) return -1;
    return api->synchronize(err);
}

void lt_manual_seed_devices(uint64_t seed) {
    pthread_mutex_lock(&load_lock);
    seed_for_all = seed;
    seeded_all = true;
    const lt_backend_api *api = load_tried ? cuda_api : NULL;
    pthread_mutex_unlock(&load_lock);
    if (api) api->manual_seed(seed);
}

int lt_device_get_rng_state(lt_device d, char out[LT_BACKEND_RNG_STATE_LEN], lt_error *err) {
    const lt_backend_api *api = lt_backend(d, err);
    if (!api) return -1;
    api->get_rng_state(out);
    return 0;
}

int lt_device_set_rng_state(lt_device d, const char *state, lt_error *err) {
    const lt_backend_api *api = lt_backend(d, err);
    if (!api || lt_refuse_in_capture(d, "setting the generator's state", "a replay would not set it again", err))
        return -1;
    return api->set_rng_state(state, err);
}

const void *const *lt_backend_impls(lt_device d, const char *op, lt_error *err) {
    const lt_backend_api *api = lt_backend(d, err);
    if (!api) return NULL;
    for (const lt_backend_op *o = api->ops; o && o->op; o++)
        if (!strcmp(o->op, op)) return o->impls;
    return lt_fail(err, "%s has no implementation on %s yet (move the tensors to the host with :cpu())", op,
                   lt_device_name(d)), NULL;
}
