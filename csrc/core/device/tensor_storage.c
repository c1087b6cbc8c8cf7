#include "tensor_storage.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "../base/checked.h"
#include "../base/heap.h"

static _Atomic size_t allocated_bytes;

size_t lt_take_allocated_bytes(void) { return atomic_exchange(&allocated_bytes, 0); }

static void *host_alloc(size_t bytes, lt_error *err) {
    size_t rounded;
    void *p = NULL;
    if (lt_size_add_ok(bytes, 63, &rounded) && posix_memalign(&p, 64, rounded & ~(size_t)63) == 0) return p;
    lt_fail(err, "out of memory allocating %zu bytes (host)", bytes);
    return NULL;
}

static void host_free(void *p) { lt_heap_free(p); }

const lt_allocator lt_host_allocator = {"host", LT_DEVICE_CPU, host_alloc, host_free};

lt_storage *lt_storage_new(const lt_allocator *allocator, int64_t numel, lt_dtype dtype, lt_error *err) {
    size_t bytes;
    if (numel < 0 || numel > LT_MAX_NUMEL || !lt_bytes_ok(numel, lt_dtype_size(dtype), &bytes)) {
        lt_fail(err, "cannot allocate %lld elements: at most %lld", (long long)numel, (long long)LT_MAX_NUMEL);
        return NULL;
    }
    lt_storage *s = malloc(sizeof *s);
    if (!s) { lt_fail(err, "out of memory"); return NULL; }
    s->data = NULL;
    s->numel = numel;
    s->dtype = dtype;
    s->device = allocator->device;
    s->allocator = allocator;
    atomic_init(&s->refcount, 1);
    s->version = 0;
    if (numel > 0) {
        s->data = allocator->alloc(bytes, err);
        if (!s->data) {
            free(s);
            return NULL;
        }
        atomic_fetch_add(&allocated_bytes, bytes);
    }
    return s;
}

void lt_storage_retain(lt_storage *s) { atomic_fetch_add(&s->refcount, 1); }

void lt_storage_release(lt_storage *s) {
    if (s && atomic_fetch_sub(&s->refcount, 1) == 1) {
        if (s->allocator && s->data) s->allocator->free(s->data);
        free(s);
    }
}
