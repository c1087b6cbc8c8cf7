/* The tensor's data structures and the storage underneath: a reference-counted block of elements
 * (float32, or bfloat16 for the activations of a mixed-precision network, dtype.h) that records the
 * device it lives on and the allocator that made it, so that a second device (a GPU) is a new
 * allocator, not an edit of every place that allocates. Only the host exists today. */
#ifndef LT_TENSOR_STORAGE_H
#define LT_TENSOR_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "../base/dtype.h"
#include "../base/error.h"

#define LT_MAX_DIMS 8

/* Largest element count of a tensor (and of the product of its non-zero sizes): keeps every element
 * offset, stride and byte count far from int64 and size_t overflow. A build may lower it (the fuzz
 * targets do, to keep allocations small). */
#ifndef LT_MAX_NUMEL
#define LT_MAX_NUMEL ((int64_t)1 << 40)
#endif

/* Where a tensor's elements live: the host, or the first CUDA device (one GPU per process, as
 * Lightning's `devices = 1`; a second index is a field here when it is needed). */
typedef enum lt_device { LT_DEVICE_CPU = 0, LT_DEVICE_CUDA = 1 } lt_device;

/* Where a storage's bytes come from and go back to. alloc returns NULL after writing err when it
 * cannot (a device's allocator says how much was free). */
typedef struct lt_allocator {
    const char *name;
    lt_device device;
    void *(*alloc)(size_t bytes, lt_error *err);
    void (*free)(void *p);
} lt_allocator;

/* Host memory, 64-byte aligned (a cache line, and the widest vector load). */
extern const lt_allocator lt_host_allocator;

typedef struct lt_storage {
    void *data;                      /* numel elements of dtype; NULL when numel == 0 */
    int64_t numel;
    lt_dtype dtype;
    lt_device device;
    const lt_allocator *allocator;   /* frees data; NULL for borrowed memory (never freed) */
#ifdef __cplusplus
    int refcount;                    /* C++ (a device backend's module, csrc/cuda/) reads storages, never counts */
#else
    _Atomic int refcount;            /* storages may be shared with loader threads */
#endif
    /* Counts the changes made in place through the Lua methods (lt_bump_version), so that an autograd
     * can tell that a tensor it saved for the backward pass was overwritten. Views share it. Only the
     * Lua thread bumps or reads it, hence not atomic; kernels writing layer outputs do not bump it. */
    uint64_t version;
} lt_storage;

/* A view (offset, sizes, strides) into a storage. Every tensor the core makes keeps these true:
 *   1 <= ndim <= LT_MAX_DIMS; sizes >= 0; strides >= 0;
 *   the product of the non-zero sizes is at most LT_MAX_NUMEL (so is numel);
 *   when numel > 0, offset + sum((size - 1) * stride) < storage->numel.
 * so that indexing arithmetic within the sizes cannot overflow or leave the storage. */
typedef struct lt_tensor {
    lt_storage *storage;  /* NULL for a released (closed) tensor */
    int64_t offset;       /* in elements */
    int ndim;
    int64_t size[LT_MAX_DIMS];
    int64_t stride[LT_MAX_DIMS];  /* in elements; 0 for expanded dimensions */
} lt_tensor;

static inline lt_dtype lt_dtype_of(const lt_tensor *t) { return t->storage->dtype; }
/* The host for a tensor that holds no storage. */
static inline lt_device lt_device_of(const lt_tensor *t) { return t->storage ? t->storage->device : LT_DEVICE_CPU; }

/* The view's first element of a float32 tensor; NULL for a storage of no elements (NULL + offset
 * would be undefined). Every tensor the user sees is float32; code that may meet a bfloat16
 * activation asks lt_dtype_of first and uses lt_data_ptr. */
static inline float *lt_data(const lt_tensor *t) {
    return t->storage->data ? (float *)t->storage->data + t->offset : NULL;
}

/* The view's first element, of whatever type. */
static inline void *lt_data_ptr(const lt_tensor *t) {
    return t->storage->data ? (char *)t->storage->data + (size_t)t->offset * lt_dtype_size(t->storage->dtype) : NULL;
}

/* One more change made in place to t's elements (see lt_storage.version). */
static inline void lt_bump_version(const lt_tensor *t) {
    if (t->storage) t->storage->version++;
}

/* A storage of numel elements of dtype from allocator (uninitialised), with one reference. */
lt_storage *lt_storage_new(const lt_allocator *allocator, int64_t numel, lt_dtype dtype, lt_error *err);
void lt_storage_retain(lt_storage *s);
/* Drops one reference; the last one frees the data through the storage's allocator. NULL is fine. */
void lt_storage_release(lt_storage *s);

/* Bytes of storage allocated since the last call; lets the bindings tell Lua's collector about
 * memory it cannot see. Safe to call from any thread. */
size_t lt_take_allocated_bytes(void);

#endif
