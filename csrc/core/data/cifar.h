/* CIFAR-10 binary batches: records of one label byte (0-9) and 3072 pixel bytes (1024 red, 1024 green,
 * 1024 blue, each 32x32 row-major), 10,000 records to a file; class names in batches.meta.txt, one a line. */
#ifndef LT_DATA_CIFAR_H
#define LT_DATA_CIFAR_H

#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"

#define LT_CIFAR_IMAGE_BYTES 3072
#define LT_CIFAR_RECORD_BYTES 3073
#define LT_CIFAR_RECORDS_PER_FILE 10000
#define LT_CIFAR_CLASSES 10
#define LT_CIFAR_NAME_MAX 64

/* Splits a batch held in memory into pixels (records x 3072) and 0-based targets. With expected_records
 * > 0 the buffer must hold exactly that many records; with 0, any whole number of them. `name` names the
 * data in messages. The caller sizes pixels and targets for *records (LT_CIFAR_RECORD_BYTES per record). */
int lt_cifar_parse_batch(const uint8_t *buf, size_t len, const char *name, int64_t expected_records, uint8_t *pixels,
                         int32_t *targets, int64_t *records, lt_error *err);
/* Reads the 10 class names of batches.meta.txt (blank lines at the end are ignored). */
int lt_cifar_parse_meta(const char *text, size_t len, const char *name, char names[LT_CIFAR_CLASSES][LT_CIFAR_NAME_MAX],
                        lt_error *err);

#endif
