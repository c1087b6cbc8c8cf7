/* Elementwise arithmetic, comparisons, reductions and random fills on tensors of any layout.
 * "into" functions write into an existing out tensor (which may be the same tensor as an input: the
 * in-place methods); inputs are broadcast to out's shape. "new" functions allocate out. */
#ifndef LT_TENSOR_MATH_H
#define LT_TENSOR_MATH_H

#include "../base/rng.h"
#include "tensor.h"

typedef enum {
    LT_ADD, LT_SUB, LT_MUL, LT_DIV, LT_POW, LT_MAXIMUM, LT_MINIMUM,
    LT_EQ, LT_NE, LT_GT, LT_LT, LT_GE, LT_LE,
} lt_binop;

typedef enum { LT_NEG, LT_ABS, LT_SQRT, LT_EXP, LT_LOG, LT_CLAMP, LT_FILL, LT_SIGN, LT_TANH, LT_SIGMOID } lt_unop;

/* out = a op (alpha * b) for LT_ADD/LT_SUB, a op b otherwise. */
int lt_binary_into(lt_tensor *out, const lt_tensor *a, const lt_tensor *b, lt_binop op, float alpha, lt_error *err);
int lt_binary_new(lt_tensor *out, const lt_tensor *a, const lt_tensor *b, lt_binop op, float alpha, lt_error *err);
/* out = a op s, or s op a when reversed. */
int lt_scalar_into(lt_tensor *out, const lt_tensor *a, float s, lt_binop op, bool reversed, lt_error *err);
int lt_scalar_new(lt_tensor *out, const lt_tensor *a, float s, lt_binop op, bool reversed, lt_error *err);
/* out = f(a); LT_CLAMP uses p1 as the lower and p2 as the upper bound (NAN: none); LT_FILL sets p1. */
int lt_unary_into(lt_tensor *out, const lt_tensor *a, lt_unop op, float p1, float p2, lt_error *err);
/* out += value * a * b */
int lt_addcmul_into(lt_tensor *out, const lt_tensor *a, const lt_tensor *b, float value, lt_error *err);
/* dst = src, src broadcast to dst's shape. */
int lt_copy(lt_tensor *dst, const lt_tensor *src, lt_error *err);
int lt_fill(lt_tensor *t, float value, lt_error *err);
/* An error unless every element of out is its own memory (an expanded dimension, stride 0, is not). */
int lt_check_writable(const lt_tensor *out, lt_error *err);

typedef enum { LT_RSUM, LT_RMEAN, LT_RMAX, LT_RMIN, LT_RVAR, LT_RSTD, LT_RNORM } lt_reduce_op;
typedef struct lt_reduce_args {
    lt_reduce_op op;
    bool unbiased;  /* var, std: divide by n - 1 */
    double p;       /* norm: the order; INFINITY for the max norm */
} lt_reduce_args;
/* Over all elements. For max and min, *index gets the flat 0-based position of the result. */
int lt_reduce_all(const lt_tensor *t, lt_reduce_args args, double *result, int64_t *index, lt_error *err);
/* Over one dimension; indices (0-based, as floats) only for max and min, and may be NULL. */
int lt_reduce_dim(lt_tensor *values, lt_tensor *indices, const lt_tensor *in, int dim, bool keepdim,
                  lt_reduce_args args, lt_error *err);

/* Random fills in row-major order from one generator: the same numbers at any thread count. */
int lt_fill_uniform(lt_tensor *t, double lo, double hi, lt_rng *rng, lt_error *err);
int lt_fill_normal(lt_tensor *t, double mean, double std, lt_rng *rng, lt_error *err);
int lt_arange(lt_tensor *out, double start, double end, double step, lt_error *err);

#endif
