/* MD5 (RFC 1321), to check downloaded archives against their published digests. Not for security. */
#ifndef LT_DATA_MD5_H
#define LT_DATA_MD5_H

#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"

typedef struct lt_md5 {
    uint32_t state[4];
    uint64_t length;      /* bytes seen so far */
    uint8_t block[64];    /* a partial block waiting for more input */
} lt_md5;

void lt_md5_init(lt_md5 *m);
void lt_md5_update(lt_md5 *m, const void *data, size_t len);
/* Writes the 16-byte digest. */
void lt_md5_final(lt_md5 *m, uint8_t digest[16]);

/* The digest of a buffer or a whole file as 32 lowercase hex digits and a terminating NUL. */
void lt_md5_hex(const void *data, size_t len, char hex[33]);
int lt_md5_file_hex(const char *path, char hex[33], lt_error *err);

#endif
