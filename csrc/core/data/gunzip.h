/* gzip decompression from memory (zlib), with a cap on the output so that a corrupt or hostile file
 * cannot make us allocate without bound. */
#ifndef LT_DATA_GUNZIP_H
#define LT_DATA_GUNZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"

static inline bool lt_is_gzip(const uint8_t *buf, size_t len) { return len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b; }

/* Decompresses every gzip member in buf into a malloc'd *out (the caller frees). `name` names the data
 * in messages. */
int lt_gunzip(const uint8_t *buf, size_t len, size_t max_out, const char *name, uint8_t **out, size_t *out_len,
              lt_error *err);

#endif
