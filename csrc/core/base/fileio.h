/* Files on disk: atomic writes (a crash never leaves a half-written file in place of the old one),
 * whole-file reads with a size limit, and the few file-system helpers Lua lacks (mkdir -p, listing a
 * folder). POSIX. */
#ifndef LT_FILEIO_H
#define LT_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

/* Writing path atomically: the data goes to a temporary file in the same folder, which is flushed to
 * disk and renamed over path only when everything was written. On any failure the temporary file is
 * removed and path is untouched. A writer killed before the rename leaves its temporary behind; it is
 * named .<name>.tmp.<host>.<pid>.<random>, and the next atomic write into that folder removes the
 * temporaries of this host whose process is gone (never those of a live writer). */
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

/* Removes the temporaries that atomic writers of this host left in folder dir when they were killed
 * (their process is gone); lt_atomic_open calls it. Errors are ignored: this is housekeeping. */
void lt_remove_stale_temporaries(const char *dir);

/* Writes all of data to fd, retrying short writes and EINTR. */
int lt_write_all(int fd, const void *data, size_t len, const char *path, lt_error *err);

/* Opens path for reading only if it is a regular file: a FIFO, a device, a socket or a folder is
 * refused before anything could block (the open itself does not wait for a FIFO's writer). Returns
 * the descriptor (blocking, close-on-exec) and the file's size, or -1 with a message. */
int lt_open_regular(const char *path, uint64_t *size, lt_error *err);
/* The same as a stdio stream ("rb"), for readers that use one (libpng's, md5's). */
FILE *lt_fopen_regular(const char *path, lt_error *err);
/* "a folder", "a FIFO", "a device", ...: what a file of this st_mode is, for messages. */
const char *lt_file_kind(unsigned mode);

/* Reads a whole regular file into a new buffer (free() it); files larger than max_size are an error. */
int lt_read_file(const char *path, size_t max_size, uint8_t **data, size_t *len, lt_error *err);

/* mkdir -p: creates path and its missing parents (mode 0777 minus umask). */
int lt_mkdirs(const char *path, lt_error *err);

/* The names in a folder (without "." and ".."), sorted bytewise; release them with lt_free_names. */
int lt_list_dir(const char *path, char ***names, size_t *count, lt_error *err);
void lt_free_names(char **names, size_t count);

#endif
