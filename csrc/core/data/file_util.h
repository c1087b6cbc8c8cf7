/* Small file helpers for the data readers (the general ones, lt_read_file and atomic writes, are in
 * ../fileio.h). */
#ifndef LT_DATA_FILE_UTIL_H
#define LT_DATA_FILE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"

/* The size of a regular file in bytes, or -1 with a message naming it (also for a folder, a FIFO or a
 * device: nothing is opened). lt_strerror is in ../error.h. */
int64_t lt_data_file_size(const char *path, lt_error *err);

#endif
