/* Error reporting for the C core: functions return 0 on success and -1 on failure, after writing a
 * message into the caller's lt_error. The core never prints, exits or longjmps; the Lua bindings turn
 * the message into a Lua error that names the function. */
#ifndef LT_ERROR_H
#define LT_ERROR_H

#include <stddef.h>

typedef struct lt_error {
    char msg[512];
} lt_error;

/* Formats the message into err (when err is not NULL) and returns -1, so callers can write
 * `return lt_fail(err, "...", ...);`. */
int lt_fail(lt_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* strerror that is safe in threads (the loader's workers read files): the text for errnum, in buf. */
const char *lt_strerror(int errnum, char *buf, size_t len);
/* The same with a buffer that lives until the end of the enclosing full expression's block, for
 * lt_fail(err, "cannot open %s: %s", path, LT_STRERROR(errno)). */
#define LT_STRERROR(errnum) lt_strerror((errnum), (char[128]){0}, 128)

#endif
