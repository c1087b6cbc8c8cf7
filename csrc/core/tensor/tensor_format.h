#ifndef LT_TENSOR_FORMAT_H
#define LT_TENSOR_FORMAT_H

#include "tensor.h"

/* The printed form of t, malloc'd (the caller frees), or NULL when out of memory. */
char *lt_tensor_format(const lt_tensor *t);

#endif
