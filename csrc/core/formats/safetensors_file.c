/* Reading safetensors files from disk tensor by tensor: the header is read and validated first, then
 * each tensor's bytes go straight into its float32 storage (F32 on a little-endian machine) or through
 * a small conversion buffer, so loading never holds a second copy of the file. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bytebuf.h"
#include "../base/fileio.h"
#include "safetensors.h"

/* Reads exactly len bytes at offset; a short read means the file shrank under us. */
static int read_at(lt_st_reader *r, void *buf, size_t len, uint64_t offset, lt_error *err) {
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(r->fd, p, len, (off_t)offset);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return lt_fail(err, "cannot read %s: %s", r->path, LT_STRERROR(errno));
        if (n == 0) return lt_fail(err, "%s: the file ended early (was it truncated while being read?)", r->path);
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

int lt_st_open(lt_st_reader *r, const char *path, lt_error *err) {
    memset(r, 0, sizeof *r);
    r->fd = -1;
    size_t path_len = strlen(path) + 1;
    if (!(r->path = malloc(path_len))) return lt_fail(err, "out of memory");
    memcpy(r->path, path, path_len);
    uint64_t file_len;
    r->fd = lt_open_regular(path, &file_len, err);
    if (r->fd < 0) return -1;

    uint8_t prefix[8] = {0};
    uint64_t n = 0;
    lt_error why;
    if (file_len >= 8) {
        if (read_at(r, prefix, 8, 0, err)) return -1;
        n = lt_load_le64(prefix);
    }
    if (lt_st_check_header_length(n, file_len, &why)) return lt_fail(err, "%s: %s", path, why.msg);
    char *header = malloc(n ? (size_t)n : 1);
    if (!header) return lt_fail(err, "out of memory reading the header of %s", path);
    int rc = read_at(r, header, (size_t)n, 8, err);
    if (!rc && lt_st_parse_header(&r->file, header, (size_t)n, (size_t)(file_len - 8 - n), &why))
        rc = lt_fail(err, "%s: %s", path, why.msg);
    free(header);
    r->data_start = 8 + n;
    return rc;
}

int lt_st_read(lt_st_reader *r, const lt_st_entry *e, float *out, lt_error *err) {
    uint64_t at = r->data_start + e->begin;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (e->dtype == LT_DTYPE_F32) return read_at(r, out, (size_t)(e->end - e->begin), at, err);
#endif
    enum { CHUNK = 1 << 20 };
    size_t size = lt_st_dtype_size(e->dtype), per_chunk = CHUNK / size;
    uint8_t *buf = malloc(CHUNK);
    if (!buf) return lt_fail(err, "out of memory reading %s", r->path);
    int rc = 0;
    for (int64_t i = 0; i < e->numel && !rc; i += (int64_t)per_chunk) {
        int64_t m = e->numel - i < (int64_t)per_chunk ? e->numel - i : (int64_t)per_chunk;
        rc = read_at(r, buf, (size_t)m * size, at + (uint64_t)i * size, err);
        if (!rc) lt_st_convert(out + i, buf, e->dtype, m);
    }
    free(buf);
    return rc;
}

void lt_st_close(lt_st_reader *r) {
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    lt_st_free(&r->file);
    free(r->path);
    r->path = NULL;
}
