/* The tensor: float32, up to LT_MAX_DIMS dimensions, a view (offset, sizes, strides) into a
 * reference-counted storage (the structs and their invariants are in tensor_storage.h). Creation,
 * lifetime, views and the copy into contiguous memory. Dimensions and indices are 0-based here; the
 * Lua bindings convert. Every size, offset and stride computed from an argument goes through
 * checked.h: a size too large is an error, never a wrapped value. */
#ifndef LT_TENSOR_H
#define LT_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"
#include "../device/tensor_storage.h"

/* A tensor and the role it plays in a call, for messages. */
typedef struct lt_named {
    const char *name;
    const lt_tensor *t;  /* may be NULL: not given */
} lt_named;

/* ---- storage and lifetime ---- */
/* Checks sizes (ndim in 1..LT_MAX_DIMS, 0 <= size, the product of the non-zero sizes at most
 * LT_MAX_NUMEL) and computes the element count. */
int lt_check_sizes(int ndim, const int64_t *size, int64_t *numel, lt_error *err);
/* A new contiguous float32 tensor with uninitialised contents (t's old storage, if any, is released). */
int lt_tensor_new(lt_tensor *t, int ndim, const int64_t *size, lt_error *err);
int lt_tensor_new_typed(lt_tensor *t, int ndim, const int64_t *size, lt_dtype dtype, lt_error *err);
/* The same on a device (backend.h): its memory comes from that device's allocator. */
int lt_tensor_new_on(lt_tensor *t, int ndim, const int64_t *size, lt_dtype dtype, lt_device device, lt_error *err);
/* Makes t a contiguous tensor of the given shape, as PyTorch's resize_: it keeps t's storage and
 * offset when offset + numel fits in the storage (views of it then see the new contents), and gets a
 * new storage otherwise, on the device of the old one (a layer moved to the GPU keeps its outputs
 * there). Used by layers that own their outputs and scratch buffers. */
int lt_tensor_resize(lt_tensor *t, int ndim, const int64_t *size, lt_error *err);
/* The same with another element type (a storage of another type is replaced). */
int lt_tensor_resize_typed(lt_tensor *t, int ndim, const int64_t *size, lt_dtype dtype, lt_error *err);
/* Makes dst another view of src's storage (shares it). */
void lt_tensor_share(lt_tensor *dst, const lt_tensor *src);
void lt_tensor_release(lt_tensor *t);

int64_t lt_numel(const lt_tensor *t);
bool lt_is_contiguous(const lt_tensor *t);
bool lt_same_shape(const lt_tensor *a, const lt_tensor *b);
/* "2x3x4" into buf. */
const char *lt_shape_str(const lt_tensor *t, char *buf, size_t len);
const char *lt_sizes_str(int ndim, const int64_t *size, char *buf, size_t len);

/* ---- views (share storage) ---- */
int lt_view(lt_tensor *out, const lt_tensor *in, int ndim, const int64_t *size, lt_error *err);
int lt_reshape(lt_tensor *out, const lt_tensor *in, int ndim, const int64_t *size, lt_error *err);
int lt_narrow(lt_tensor *out, const lt_tensor *in, int dim, int64_t start, int64_t length, lt_error *err);
int lt_select(lt_tensor *out, const lt_tensor *in, int dim, int64_t index, lt_error *err);
int lt_transpose(lt_tensor *out, const lt_tensor *in, int dim0, int dim1, lt_error *err);
int lt_permute(lt_tensor *out, const lt_tensor *in, int ndim, const int *order, lt_error *err);
int lt_squeeze(lt_tensor *out, const lt_tensor *in, int dim /* -1: all */, lt_error *err);
int lt_unsqueeze(lt_tensor *out, const lt_tensor *in, int dim, lt_error *err);
int lt_expand(lt_tensor *out, const lt_tensor *in, int ndim, const int64_t *size, lt_error *err);
/* Shares in when it is contiguous, copies otherwise (keeping its element type). */
int lt_contiguous(lt_tensor *out, const lt_tensor *in, lt_error *err);
/* dst = src element by element, converting between float32 and bfloat16; one shape, any strides. */
int lt_convert(lt_tensor *dst, const lt_tensor *src, lt_error *err);

/* ---- broadcasting ---- */
/* The shape that a and b broadcast to, PyTorch's rules. */
int lt_broadcast_shape(const lt_tensor *a, const lt_tensor *b, int *ndim, int64_t *size, lt_error *err);
/* A view of in expanded to the given shape (leading dimensions added as needed). */
int lt_broadcast_to(lt_tensor *out, const lt_tensor *in, int ndim, const int64_t *size, lt_error *err);

/* ---- element access ---- */
int lt_offset_of(const lt_tensor *t, int n, const int64_t *index, int64_t *offset, lt_error *err);

#endif
