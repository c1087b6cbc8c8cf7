#define _POSIX_C_SOURCE 200809L
#include "file_util.h"

#include <errno.h>
#include <sys/stat.h>

#include "../base/fileio.h"

int64_t lt_data_file_size(const char *path, lt_error *err) {
    struct stat st;
    if (stat(path, &st) != 0) return lt_fail(err, "cannot open %s: %s", path, LT_STRERROR(errno));
    if (!S_ISREG(st.st_mode)) return lt_fail(err, "%s is %s, expected a file", path, lt_file_kind(st.st_mode));
    return (int64_t)st.st_size;
}
