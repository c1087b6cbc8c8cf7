/* Checked arithmetic for sizes, offsets, strides and byte counts. Every helper returns true when the
 * exact result fits (and stores it in *r), false when it would overflow or a precondition fails; it
 * never wraps. Callers turn false into an error that names the function, the argument and the limit:
 *
 *     int64_t numel;
 *     if (!lt_product_ok(ndim, size, LT_MAX_NUMEL, &numel))
 *         return lt_fail(err, "sizes %s hold more than 2^40 elements", ...);
 *
 * Any code that multiplies sizes or adds offsets and strides computed from user input goes through
 * these, so that a Lua number such as math.maxinteger or 2^62 gives an error, never a wrapped value.
 * Built on the GCC/Clang __builtin_*_overflow intrinsics (exact, and cheap: one flag test). */
#ifndef LT_CHECKED_H
#define LT_CHECKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- int64 ---- */
static inline bool lt_add_ok(int64_t a, int64_t b, int64_t *r) { return !__builtin_add_overflow(a, b, r); }
static inline bool lt_mul_ok(int64_t a, int64_t b, int64_t *r) { return !__builtin_mul_overflow(a, b, r); }

/* a + b * c, the shape of "offset + index * stride". */
static inline bool lt_mul_add_ok(int64_t a, int64_t b, int64_t c, int64_t *r) {
    int64_t bc;
    return lt_mul_ok(b, c, &bc) && lt_add_ok(a, bc, r);
}

/* The product of n values, each non-negative, when it is at most limit. A zero anywhere makes the
 * product 0 even if the other values alone would overflow. */
static inline bool lt_product_ok(int n, const int64_t *v, int64_t limit, int64_t *r) {
    for (int i = 0; i < n; i++)
        if (v[i] < 0) return false;
    for (int i = 0; i < n; i++)
        if (v[i] == 0) return *r = 0, limit >= 0;
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        if (!lt_mul_ok(p, v[i], &p) || p > limit) return false;
    *r = p;
    return true;
}

/* The element offset of the last element of a strided view: offset + sum of (size[d] - 1) * stride[d].
 * Every size must be at least 1 (an empty view reaches no element) and every stride non-negative. */
static inline bool lt_span_ok(int64_t offset, int ndim, const int64_t *size, const int64_t *stride, int64_t *last) {
    int64_t end = offset;
    for (int d = 0; d < ndim; d++) {
        if (size[d] < 1 || stride[d] < 0) return false;
        if (!lt_mul_add_ok(end, size[d] - 1, stride[d], &end)) return false;
    }
    *last = end;
    return true;
}

/* A double (a Lua number, a tensor element used as an index or a class label) that is an integer
 * within int64's range; NaN, infinities and fractions are not. The cast alone would be undefined. */
static inline bool lt_int64_of_double_ok(double v, int64_t *r) {
    if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0) || v != (double)(int64_t)v) return false;
    *r = (int64_t)v;
    return true;
}

/* ---- byte counts (size_t) ---- */
static inline bool lt_size_add_ok(size_t a, size_t b, size_t *r) { return !__builtin_add_overflow(a, b, r); }
static inline bool lt_size_mul_ok(size_t a, size_t b, size_t *r) { return !__builtin_mul_overflow(a, b, r); }

/* count elements of elem_size bytes each, in bytes; count must be non-negative. */
static inline bool lt_bytes_ok(int64_t count, size_t elem_size, size_t *bytes) {
    if (count < 0 || (uint64_t)count > SIZE_MAX) return false;
    return lt_size_mul_ok((size_t)count, elem_size, bytes);
}

#endif
