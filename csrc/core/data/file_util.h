/* Small file helpers for the data readers (the general ones, lt_read_file and atomic writes, are in
 * ../fileio.h). */
#ifndef LT_DATA_FILE_UTIL_H
#define LT_DATA_FILE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "../error.h"

/* The size of a regular file in bytes, or -1 with a message naming it. */
int64_t lt_data_file_size(const char *path, lt_error *err);

/* strerror that is safe in threads: the text for errnum, in buf. */
const char *lt_strerror(int errnum, char *buf, size_t len);

#endif
