/* IDX files (MNIST, Fashion-MNIST): a 4-byte magic (0, 0, type, number of dimensions), the dimensions as
 * big-endian 32-bit integers, then the values. Plain or gzip-compressed. Only unsigned bytes (type 0x08),
 * the type of every MNIST-style image and label file, are read. */
#ifndef LT_DATA_IDX_H
#define LT_DATA_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"

#define LT_IDX_MAX_DIMS 4
/* Largest decompressed IDX file we accept. */
#define LT_IDX_MAX_BYTES ((size_t)1 << 31)

typedef struct lt_idx {
    uint8_t *values;  /* count bytes, malloc'd */
    int ndim;
    int64_t dims[LT_IDX_MAX_DIMS];
    int64_t count;
} lt_idx;

/* Parses an IDX file held in memory (gzip or not). `name` names it in messages. */
int lt_idx_parse(const uint8_t *buf, size_t len, const char *name, size_t max_bytes, lt_idx *out, lt_error *err);
int lt_idx_read_file(const char *path, lt_idx *out, lt_error *err);
void lt_idx_free(lt_idx *idx);

#endif
