/* Files on disk: atomic writes (a crash never leaves a half-written file in place of the old one),
 * whole-file reads with a size limit, and the few file-system helpers Lua lacks (mkdir -p, listing a
 * folder). POSIX. */
#ifndef LT_FILEIO_H
#define LT_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Writing path atomically: the data goes to a temporary file in the same folder, which is flushed to
 * disk and renamed over path only when everything was written. On any failure the temporary file is
 * removed and path is untouched. */
typedef struct lt_atomic_file {
    int fd;           /* -1 when closed */
    char *path;
    char *tmp_path;
} lt_atomic_file;

int lt_atomic_open(lt_atomic_file *f, const char *path, lt_error *err);
int lt_atomic_write(lt_atomic_file *f, const void *data, size_t len, lt_error *err);
/* fsync, close, rename over path, fsync the folder. Removes the temporary file if that fails. */
int lt_atomic_commit(lt_atomic_file *f, lt_error *err);
/* Closes and removes the temporary file; path keeps its old contents. Safe to call twice. */
void lt_atomic_abort(lt_atomic_file *f);
/* All of the above for one buffer. */
int lt_write_file_atomic(const char *path, const void *data, size_t len, lt_error *err);

/* Appends data to path (created if missing) in one write, then fsyncs: for line-oriented logs, whose
 * earlier lines a crash must not damage. */
int lt_append_file(const char *path, const void *data, size_t len, lt_error *err);

/* Writes all of data to fd, retrying short writes and EINTR. */
int lt_write_all(int fd, const void *data, size_t len, const char *path, lt_error *err);

/* Reads a whole regular file into a new buffer (free() it); files larger than max_size are an error. */
int lt_read_file(const char *path, size_t max_size, uint8_t **data, size_t *len, lt_error *err);

/* mkdir -p: creates path and its missing parents (mode 0777 minus umask). */
int lt_mkdirs(const char *path, lt_error *err);

/* The names in a folder (without "." and ".."), sorted bytewise; release them with lt_free_names. */
int lt_list_dir(const char *path, char ***names, size_t *count, lt_error *err);
void lt_free_names(char **names, size_t count);

#endif
