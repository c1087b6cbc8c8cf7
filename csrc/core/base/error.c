#define _POSIX_C_SOURCE 200809L  /* the XSI strerror_r, which returns an int */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int lt_fail(lt_error *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *lt_strerror(int errnum, char *buf, size_t len) {
    if (strerror_r(errnum, buf, len) != 0) snprintf(buf, len, "error %d", errnum);
    return buf;
}
