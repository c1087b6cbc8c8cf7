#include "bytebuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(lt_bytebuf *b, size_t extra) {
    if (b->failed) return false;
    if (extra <= b->cap - b->len) return true;
    if (extra > SIZE_MAX / 2 - b->len) return b->failed = true, false;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < extra) cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return b->failed = true, false;
    b->data = p;
    b->cap = cap;
    return true;
}

void lt_bytebuf_append(lt_bytebuf *b, const void *data, size_t len) {
    if (len == 0 || !reserve(b, len)) return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void lt_bytebuf_putc(lt_bytebuf *b, uint8_t c) { lt_bytebuf_append(b, &c, 1); }

void lt_bytebuf_puts(lt_bytebuf *b, const char *s) { lt_bytebuf_append(b, s, strlen(s)); }

void lt_bytebuf_printf(lt_bytebuf *b, const char *fmt, ...) {
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) { b->failed = true; return; }
    if ((size_t)n < sizeof small) { lt_bytebuf_append(b, small, (size_t)n); return; }
    if (!reserve(b, (size_t)n + 1)) return;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void lt_bytebuf_clear(lt_bytebuf *b) {
    b->len = 0;
    b->failed = false;
}

void lt_bytebuf_free(lt_bytebuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}
