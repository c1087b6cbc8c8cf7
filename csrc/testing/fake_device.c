/* A device backend for the specs of machines without a GPU: lightning/cuda.so's interface
 * (csrc/core/device/backend_api.h) over host memory, loaded through LIGHTNING_CUDA_MODULE. It lets the specs
 * drive the core's device seam end to end (loading, allocation, copies, the choice of a backend's
 * implementation, mixed-device errors, running out of memory) where no CUDA device exists.
 *
 * Its "device pointers" are host addresses moved by DEVICE_BIAS into the non-canonical range of
 * x86-64 and AArch64, so the core's pointer arithmetic works on them as on real ones while any host
 * code that reads device memory by mistake faults at once, as it would with a GPU. Never installed.
 *
 * Operations: the host's own implementations behind the fake's pointers (fake_ops.c), every
 * operation but the channels-last and bf16 variants; tensor arithmetic likewise (fake_math.c); image
 * batches through the image plan's host executor (data/image_plan.c); collectives between processes
 * over MPI (fake_comm.c); CUDA graphs by recording calls and running them again (fake_graph.c).
 * Knobs (environment):
 *   LIGHTNING_FAKE_DEVICE_BYTES  the pool's size (default 1 GiB): allocations beyond fail
 *   LIGHTNING_FAKE_DEVICE_COUNT  devices reported (default 1; 0 tests "no device") */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/base/half.h"
#include "../core/data/image_plan.h"
#include "fake.h"

#define EXPORT __attribute__((visibility("default")))

#define host_of fake_host_of
static void *device_of(void *host) { return (void *)((uintptr_t)host + FAKE_DEVICE_BIAS); }

int fake_fail(lt_error *err, const char *msg) {
    if (err) snprintf(err->msg, sizeof err->msg, "fake device: %s", msg);
    return -1;
}

static long env_long(const char *name, long def) {
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : def;
}

/* ---- devices ---- */

static int device_count(int *count, lt_error *err) {
    *count = (int)env_long("LIGHTNING_FAKE_DEVICE_COUNT", 1);
    return 0;
}

/* Any of the devices it reports (one process uses one). */
static int init(int index, lt_error *err) {
    if (index < 0 || index >= env_long("LIGHTNING_FAKE_DEVICE_COUNT", 1)) return fake_fail(err, "no such device");
    return fake_ops_init(err);
}

static uint64_t in_use, peak;

static int props(int index, lt_device_props *p, lt_error *err) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "fake device (host memory, for tests)");
    p->index = index;
    p->cc_major = (int)env_long("LIGHTNING_FAKE_DEVICE_CC_MAJOR", 9);  /* below 8: no bf16 tensor cores */
    p->multiprocessors = 1;
    p->total_bytes = (uint64_t)env_long("LIGHTNING_FAKE_DEVICE_BYTES", 1L << 30);
    p->free_bytes = p->total_bytes - in_use;
    p->driver_version = p->runtime_version = 13000;
    p->cudnn_version = 91000;
    p->cublaslt_version = 130000;
    return 0;
}

/* ---- memory: each block remembers its size in front of it ---- */

static void *alloc(size_t bytes, lt_error *err) {
    uint64_t limit = (uint64_t)env_long("LIGHTNING_FAKE_DEVICE_BYTES", 1L << 30);
    if (in_use + bytes > limit) {
        if (err)
            snprintf(err->msg, sizeof err->msg, "out of memory on cuda:0 allocating %zu bytes (%llu bytes free of %llu)",
                     bytes, (unsigned long long)(limit - in_use), (unsigned long long)limit);
        return NULL;
    }
    size_t *block = malloc(sizeof(size_t) * 8 + bytes);  /* 64 bytes in front keep the data aligned */
    if (!block) return fake_fail(err, "malloc failed"), NULL;
    block[0] = bytes;
    block[1] = (size_t)fake_serial();
    in_use += bytes;
    if (in_use > peak) peak = in_use;
    return device_of(block + 8);
}

static void release_now(void *p) {
    size_t *block = (size_t *)host_of(p) - 8;
    in_use -= block[0];
    free(block);
}

static void release(void *p) {
    if (!p) return;
    size_t *block = (size_t *)host_of(p) - 8;
    if (!fake_keep_for_graphs(p, (uint64_t)block[1])) release_now(p);
}

static int memory(lt_device_memory *m, lt_error *err) {
    *m = (lt_device_memory){in_use, in_use, peak};
    return 0;
}

static int empty_cache(lt_error *err) { return 0; }
static void *host_alloc(size_t bytes, lt_error *err) { return malloc(bytes); }
static void host_free(void *p) { free(p); }

/* What the contract forbids during a capture. */
static int not_in_capture(const char *call, lt_error *err) {
    if (!fake_capturing()) return 0;
    char msg[128];
    snprintf(msg, sizeof msg, "%s cannot be captured in a graph", call);
    return fake_fail(err, msg);
}

static int to_device(void *dst, const void *src, size_t bytes, lt_error *err) {
    if (not_in_capture("to_device", err)) return -1;
    memcpy(host_of(dst), src, bytes);
    return 0;
}

static int to_host(void *dst, const void *src, size_t bytes, lt_error *err) {
    if (not_in_capture("to_host", err)) return -1;
    memcpy(dst, host_of(src), bytes);
    return 0;
}

FAKE_DEFERRED(on_device, (memmove(host_of(a.dst), host_of(a.src), a.bytes), 0), (void *, dst), (const void *, src),
              (size_t, bytes))

static int strided_copy_now(void *dst, const void *src, const lt_strided_copy *c) {
    char *d = host_of(dst);
    const char *s = host_of(src);
    int64_t n = 1, index[8] = {0};
    for (int i = 0; i < c->ndim; i++) n *= c->size[i];
    for (int64_t e = 0; e < n; e++) {
        int64_t rest = e, doff = 0, soff = 0;
        for (int i = c->ndim - 1; i >= 0; i--) {
            index[i] = rest % c->size[i];
            rest /= c->size[i];
            doff += index[i] * c->dst_stride[i];
            soff += index[i] * c->src_stride[i];
        }
        memcpy(d + doff * c->elem_size, s + soff * c->elem_size, (size_t)c->elem_size);
    }
    return 0;
}
FAKE_DEFERRED(strided_copy_deferred, strided_copy_now(a.dst, a.src, &a.c), (void *, dst), (const void *, src),
              (lt_strided_copy, c))
static int strided_copy(void *dst, const void *src, const lt_strided_copy *c, lt_error *err) {
    return strided_copy_deferred(dst, src, *c, err);
}

static int fill_now(float *dst, int64_t n, float value) {
    float *d = host_of(dst);
    for (int64_t i = 0; i < n; i++) d[i] = value;
    return 0;
}
FAKE_DEFERRED(fill, fill_now(a.dst, a.n, a.value), (float *, dst), (int64_t, n), (float, value))

/* Dense float arrays of two types, element by element with the core's rounding (half.h). */
static int convert_now(void *dst, lt_dtype dt, const void *src, lt_dtype st, int64_t n) {
    void *d = host_of(dst);
    const void *s = host_of(src);
    for (int64_t i = 0; i < n; i++) lt_store_float(d, dt, i, lt_load_float(s, st, i));
    return 0;
}
FAKE_DEFERRED(convert, convert_now(a.dst, a.dt, a.src, a.st, a.n), (void *, dst), (lt_dtype, dt), (const void *, src),
              (lt_dtype, st), (int64_t, n))

/* The host's own batch maker (image_plan.c) behind the fake's pointers. */
static int image_batch(float *out, const void *pixels, const struct lt_image_plan *plan,
                       const struct lt_sample_draw *draws, int64_t n, lt_error *err) {
    if (not_in_capture("image_batch", err)) return -1;
    lt_image_plan_run(host_of(out), plan, draws, n, host_of(pixels));
    return 0;
}

static int synchronize(lt_error *err) { return not_in_capture("synchronize", err); }
static void manual_seed(uint64_t seed) { fake_manual_seed(seed); }
static void get_rng_state(char *out) { fake_get_rng_state(out); }
static int set_rng_state(const char *state, lt_error *err) { return fake_set_rng_state(state, err); }

static int tf32 = 1;  /* kept and reported; the host's kernels compute float32 either way */
static void set_allow_tf32(int allowed) { tf32 = allowed != 0; }
static int allow_tf32(void) { return tf32; }

static const lt_backend_api api = {
    .version = LT_BACKEND_API_VERSION, .name = "fake", .device_count = device_count, .init = init, .props = props,
    .alloc = alloc, .free = release, .memory = memory, .empty_cache = empty_cache, .host_alloc = host_alloc,
    .host_free = host_free, .to_device = to_device, .to_host = to_host, .on_device = on_device,
    .strided_copy = strided_copy, .fill = fill, .convert = convert, .binary = fake_binary,
    .scalar = fake_scalar, .unary = fake_unary, .addcmul = fake_addcmul, .reduce = fake_reduce,
    .confusion_update = fake_confusion_update, .image_batch = image_batch, .synchronize = synchronize,
    .manual_seed = manual_seed, .get_rng_state = get_rng_state, .set_rng_state = set_rng_state,
    .set_allow_tf32 = set_allow_tf32, .allow_tf32 = allow_tf32,
    .capture_begin = fake_capture_begin, .capture_end = fake_capture_end, .graph_launch = fake_graph_launch,
    .graph_destroy = fake_graph_destroy, .ops = fake_ops, .comm = &fake_comm};

/* LIGHTNING_FAKE_WITHOUT: tables (comma-separated names) the fake leaves out, as a backend without them
 * would be ("conv2d.channels_last": one without bf16 kernels). */
static bool left_out(const char *names, const char *op) {
    size_t n = strlen(op);
    for (const char *p = names; (p = strstr(p, op)); p += n)
        if ((p == names || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return true;
    return false;
}

static const lt_backend_op *ops_kept(void) {
    static lt_backend_op kept[64];
    const char *without = getenv("LIGHTNING_FAKE_WITHOUT");
    if (!without || !*without) return fake_ops;
    size_t n = 0;
    for (const lt_backend_op *o = fake_ops; o->op && n + 1 < sizeof kept / sizeof *kept; o++)
        if (!left_out(without, o->op)) kept[n++] = *o;
    kept[n] = (lt_backend_op){NULL, NULL};
    return kept;
}

EXPORT const lt_backend_api *lt_backend_entry(int version, lt_error *err) {
    if (version != LT_BACKEND_API_VERSION) {
        snprintf(err->msg, sizeof err->msg, "fake device: built for interface %d, the core speaks %d",
                 LT_BACKEND_API_VERSION, version);
        return NULL;
    }
    fake_set_release(release_now);
    static lt_backend_api with_ops;
    with_ops = api;
    with_ops.ops = ops_kept();
    return &with_ops;
}
