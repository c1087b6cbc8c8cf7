#define _POSIX_C_SOURCE 200809L
#include "file_util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

const char *lt_strerror(int errnum, char *buf, size_t len) {
    if (strerror_r(errnum, buf, len) != 0) snprintf(buf, len, "error %d", errnum);
    return buf;
}

int64_t lt_data_file_size(const char *path, lt_error *err) {
    struct stat st;
    char why[128];
    if (stat(path, &st) != 0) return lt_fail(err, "cannot open %s: %s", path, lt_strerror(errno, why, sizeof why));
    if (S_ISDIR(st.st_mode)) return lt_fail(err, "%s is a folder, expected a file", path);
    return (int64_t)st.st_size;
}
