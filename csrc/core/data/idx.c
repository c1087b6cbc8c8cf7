#include "idx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/checked.h"
#include "../base/fileio.h"
#include "gunzip.h"

static const char *type_name(int type) {
    switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "unknown";
    }
}

static int parse_raw(const uint8_t *buf, size_t len, const char *name, lt_idx *out, lt_error *err) {
    if (len < 4) return lt_fail(err, "%s is too short for an IDX file (%zu bytes; the header alone is at least 4)", name, len);
    if (buf[0] != 0 || buf[1] != 0)
        return lt_fail(err, "%s is not an IDX file: wrong magic number %02x %02x %02x %02x (expected 00 00, a type and a dimension count)",
                       name, buf[0], buf[1], buf[2], buf[3]);
    int type = buf[2], ndim = buf[3];
    if (type != 0x08)
        return lt_fail(err, "%s holds IDX type 0x%02X (%s); only 0x08 (unsigned byte) is supported", name, type, type_name(type));
    if (ndim < 1 || ndim > LT_IDX_MAX_DIMS)
        return lt_fail(err, "%s has %d dimensions in its IDX header, expected 1 to %d", name, ndim, LT_IDX_MAX_DIMS);
    size_t header = 4 + 4 * (size_t)ndim;
    if (len < header) return lt_fail(err, "%s is truncated inside its IDX header (%zu bytes, the header needs %zu)", name, len, header);
    for (int d = 0; d < ndim; d++) {
        const uint8_t *p = buf + 4 + 4 * d;
        out->dims[d] = (int64_t)p[0] << 24 | (int64_t)p[1] << 16 | (int64_t)p[2] << 8 | (int64_t)p[3];
    }
    int64_t count;
    if (!lt_product_ok(ndim, out->dims, (int64_t)LT_IDX_MAX_BYTES, &count))
        return lt_fail(err, "%s declares dimensions too large to hold in memory (more than %lld values)", name,
                       (long long)LT_IDX_MAX_BYTES);
    size_t have = len - header;
    if ((uint64_t)count != have) {
        char dims[128] = "";
        size_t used = 0;
        for (int d = 0; d < ndim && used < sizeof dims; d++)
            used += (size_t)snprintf(dims + used, sizeof dims - used, d ? "x%lld" : "%lld", (long long)out->dims[d]);
        if ((uint64_t)count > have)
            return lt_fail(err, "%s is truncated: its header declares %s = %lld values, the file holds %zu", name, dims,
                           (long long)count, have);
        return lt_fail(err, "%s is longer than its header declares: %s = %lld values, the file holds %zu", name, dims,
                       (long long)count, have);
    }
    out->values = malloc(count ? (size_t)count : 1);
    if (!out->values) return lt_fail(err, "out of memory reading %s", name);
    memcpy(out->values, buf + header, (size_t)count);
    out->ndim = ndim;
    out->count = count;
    return 0;
}

int lt_idx_parse(const uint8_t *buf, size_t len, const char *name, size_t max_bytes, lt_idx *out, lt_error *err) {
    memset(out, 0, sizeof *out);
    if (len == 0) return lt_fail(err, "%s is empty (0 bytes), expected an IDX file", name);
    if (!lt_is_gzip(buf, len)) return parse_raw(buf, len, name, out, err);
    uint8_t *raw;
    size_t raw_len;
    if (lt_gunzip(buf, len, max_bytes, name, &raw, &raw_len, err)) return -1;
    int rc = parse_raw(raw, raw_len, name, out, err);
    free(raw);
    return rc;
}

int lt_idx_read_file(const char *path, lt_idx *out, lt_error *err) {
    uint8_t *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    if (lt_read_file(path, LT_IDX_MAX_BYTES, &buf, &len, err)) return -1;
    int rc = lt_idx_parse(buf, len, path, LT_IDX_MAX_BYTES, out, err);
    free(buf);
    return rc;
}

void lt_idx_free(lt_idx *idx) {
    free(idx->values);
    idx->values = NULL;
}
