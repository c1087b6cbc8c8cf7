#include "gunzip.h"

#include <stdlib.h>
#include <zlib.h>

int lt_gunzip(const uint8_t *buf, size_t len, size_t max_out, const char *name, uint8_t **out, size_t *out_len,
              lt_error *err) {
    *out = NULL;
    *out_len = 0;
    z_stream zs = {0};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return lt_fail(err, "%s: zlib could not start", name);
    size_t cap = len * 4 < 4096 ? 4096 : len * 4, used = 0;
    if (cap > max_out + 1) cap = max_out + 1;
    uint8_t *dst = malloc(cap);
    if (!dst) {
        inflateEnd(&zs);
        return lt_fail(err, "out of memory decompressing %s", name);
    }
    size_t consumed = 0;
    int rc = -1;
    for (;;) {
        if (used == cap) {
            if (cap > max_out) {
                lt_fail(err, "%s decompresses to more than %zu bytes, the most expected", name, max_out);
                break;
            }
            size_t bigger = cap * 2 > max_out + 1 ? max_out + 1 : cap * 2;
            uint8_t *p = realloc(dst, bigger);
            if (!p) {
                lt_fail(err, "out of memory decompressing %s", name);
                break;
            }
            dst = p;
            cap = bigger;
        }
        /* zlib counts in uInt: feed and drain in pieces below 4 GiB */
        size_t in_left = len - consumed, out_left = cap - used;
        zs.next_in = (Bytef *)(buf + consumed);
        zs.avail_in = (uInt)(in_left > (1u << 30) ? (1u << 30) : in_left);
        zs.next_out = dst + used;
        zs.avail_out = (uInt)(out_left > (1u << 30) ? (1u << 30) : out_left);
        uInt avail_in = zs.avail_in, avail_out = zs.avail_out;
        int z = inflate(&zs, Z_NO_FLUSH);
        consumed += avail_in - zs.avail_in;
        used += avail_out - zs.avail_out;
        if (z == Z_STREAM_END) {
            if (consumed == len) {
                rc = 0;
                break;
            }
            if (!lt_is_gzip(buf + consumed, len - consumed)) {
                lt_fail(err, "%s has %zu bytes of trailing data after the gzip stream", name, len - consumed);
                break;
            }
            inflateReset(&zs);  /* another gzip member follows */
            continue;
        }
        if (z == Z_DATA_ERROR || z == Z_NEED_DICT || z == Z_STREAM_ERROR) {
            lt_fail(err, "%s is corrupt gzip data (zlib: %s)", name, zs.msg ? zs.msg : "invalid data");
            break;
        }
        if (z == Z_MEM_ERROR) {
            lt_fail(err, "out of memory decompressing %s", name);
            break;
        }
        if (consumed == len && used < cap) {  /* all input used, room left, no end: truncated */
            lt_fail(err, "%s is truncated: the gzip stream ends early (%zu bytes in, %zu bytes out)", name, len, used);
            break;
        }
    }
    inflateEnd(&zs);
    if (rc) {
        free(dst);
        return -1;
    }
    *out = dst;
    *out_len = used;
    return 0;
}
