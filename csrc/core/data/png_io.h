/* PNG through libpng's simplified API (png_image_*), which reports errors by return code: no setjmp
 * crosses our frames, so Lua's longjmp and libpng's cannot collide. */
#ifndef LT_DATA_PNG_IO_H
#define LT_DATA_PNG_IO_H

#include <stdbool.h>
#include <stddef.h>

#include "image.h"

/* Largest PNG file we read (bytes). */
#define LT_PNG_MAX_FILE_BYTES ((size_t)1 << 30)

/* Decodes a PNG held in memory into 8-bit pixels with the file's own channels (gray, gray+alpha, RGB or
 * RGBA; palettes are expanded, 16-bit samples reduced to 8). `name` names the data in messages. */
int lt_png_decode(const void *buf, size_t len, const char *name, lt_u8image *out, lt_error *err);
int lt_png_read_file(const char *path, lt_u8image *out, lt_error *err);
/* Reads only the header: size and the channels that lt_png_decode would produce. */
int lt_png_read_header(const char *path, int *height, int *width, int *channels, lt_error *err);

typedef struct lt_png_write_options {
    int bit_depth;  /* 8, or 16 (written as 16-bit linear light, libpng's only 16-bit format) */
    bool palette;   /* an indexed-colour file (8-bit, at most 256 distinct colours) */
} lt_png_write_options;

/* Writes a float image (channels x height x width, values clamped to [0, 1]) atomically. Channels 1-4:
 * gray, gray+alpha, RGB, RGBA. */
int lt_png_write_float(const char *path, const float *chw, int channels, int height, int width,
                       lt_png_write_options opts, lt_error *err);

#endif
