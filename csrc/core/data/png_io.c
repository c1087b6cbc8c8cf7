#include "png_io.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../base/fileio.h"
#include "file_util.h"

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static int channels_of_format(png_uint_32 format) {
    return (format & PNG_FORMAT_FLAG_COLOR ? 3 : 1) + (format & PNG_FORMAT_FLAG_ALPHA ? 1 : 0);
}

/* Checks the signature ourselves so that a text file or an empty file gets a plain message. */
static int check_signature(const uint8_t *buf, size_t len, const char *name, lt_error *err) {
    if (len == 0) return lt_fail(err, "%s is empty (0 bytes), expected a PNG image", name);
    if (len < 8 || memcmp(buf, png_signature, 8) != 0) {
        char start[9] = {0};
        for (size_t i = 0; i < 8 && i < len; i++) start[i] = buf[i] >= 32 && buf[i] < 127 ? (char)buf[i] : '.';
        return lt_fail(err, "%s is not a PNG file (it starts with \"%s\", a PNG starts with \"\\x89PNG\")", name, start);
    }
    return 0;
}

static int begin_read(png_image *image, const void *buf, size_t len, const char *name, lt_error *err) {
    if (check_signature(buf, len, name, err)) return -1;
    memset(image, 0, sizeof *image);
    image->version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(image, buf, len)) {
        lt_fail(err, "%s is a corrupt PNG file (libpng: %s)", name, image->message);
        png_image_free(image);
        return -1;
    }
    if ((int64_t)image->width * image->height > LT_IMAGE_MAX_PIXELS) {
        lt_fail(err, "%s is %ux%u pixels, more than the %lld supported", name, image->width, image->height,
                (long long)LT_IMAGE_MAX_PIXELS);
        png_image_free(image);
        return -1;
    }
    return 0;
}

int lt_png_decode(const void *buf, size_t len, const char *name, lt_u8image *out, lt_error *err) {
    png_image image;
    out->data = NULL;
    if (begin_read(&image, buf, len, name, err)) return -1;
    /* 8 bits per channel, the file's channels, palette expanded. A 16-bit file without gAMA/sRGB is taken
     * as sRGB-coded, so its values are kept (scaled to 8 bits) rather than gamma-converted. */
    image.format &= PNG_FORMAT_FLAG_ALPHA | PNG_FORMAT_FLAG_COLOR;
    image.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
    int channels = channels_of_format(image.format);
    size_t bytes = PNG_IMAGE_SIZE(image);
    uint8_t *pixels = malloc(bytes ? bytes : 1);
    if (!pixels) {
        png_image_free(&image);
        return lt_fail(err, "out of memory decoding %s (%zu bytes)", name, bytes);
    }
    if (!png_image_finish_read(&image, NULL, pixels, 0, NULL)) {
        free(pixels);
        lt_fail(err, "%s is a corrupt or truncated PNG file (libpng: %s)", name, image.message);
        png_image_free(&image);
        return -1;
    }
    out->data = pixels;
    out->height = (int)image.height;
    out->width = (int)image.width;
    out->channels = channels;
    return 0;
}

int lt_png_read_file(const char *path, lt_u8image *out, lt_error *err) {
    uint8_t *buf;
    size_t len;
    if (lt_read_file(path, LT_PNG_MAX_FILE_BYTES, &buf, &len, err)) return -1;
    int rc = lt_png_decode(buf, len, path, out, err);
    free(buf);
    return rc;
}

int lt_png_read_header(const char *path, int *height, int *width, int *channels, lt_error *err) {
    /* libpng reads the chunks before the image data (where a palette's tRNS, which adds alpha, lives)
     * and stops: cheap even for large files. */
    char why[128];
    FILE *f = lt_fopen_regular(path, err);
    if (!f) return -1;
    uint8_t start[8];
    size_t got = fread(start, 1, sizeof start, f);
    if (ferror(f)) {
        int saved = errno;
        fclose(f);
        return lt_fail(err, "cannot read %s: %s", path, lt_strerror(saved, why, sizeof why));
    }
    if (check_signature(start, got, path, err)) {
        fclose(f);
        return -1;
    }
    rewind(f);
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    int rc = 0;
    if (!png_image_begin_read_from_stdio(&image, f)) {
        rc = lt_fail(err, "%s is a corrupt PNG file (libpng: %s)", path, image.message);
    } else {
        *height = (int)image.height;
        *width = (int)image.width;
        *channels = channels_of_format(image.format);
        if ((int64_t)image.width * image.height > LT_IMAGE_MAX_PIXELS)
            rc = lt_fail(err, "%s is %ux%u pixels, more than the %lld supported", path, image.width, image.height,
                         (long long)LT_IMAGE_MAX_PIXELS);
    }
    png_image_free(&image);
    fclose(f);
    return rc;
}

/* ---- writing ---- */

static png_uint_32 format_for_channels(int channels) {
    return (channels >= 3 ? PNG_FORMAT_FLAG_COLOR : 0) | (channels == 2 || channels == 4 ? PNG_FORMAT_FLAG_ALPHA : 0);
}

static float clamp01(float v) { return v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f; }  /* NaN -> 0 */

/* Interleaved 8-bit samples from a float CHW image. */
static void float_chw_to_u8_hwc(uint8_t *out, const float *in, int channels, size_t plane) {
    for (size_t p = 0; p < plane; p++)
        for (int c = 0; c < channels; c++)
            out[p * (size_t)channels + (size_t)c] = (uint8_t)lrintf(clamp01(in[(size_t)c * plane + p]) * 255.0f);
}

/* Interleaved 16-bit linear samples; with alpha, colour is premultiplied as libpng's linear formats expect. */
static void float_chw_to_u16_hwc(uint16_t *out, const float *in, int channels, size_t plane) {
    int has_alpha = channels == 2 || channels == 4;
    for (size_t p = 0; p < plane; p++) {
        float alpha = has_alpha ? clamp01(in[(size_t)(channels - 1) * plane + p]) : 1.0f;
        for (int c = 0; c < channels; c++) {
            float v = clamp01(in[(size_t)c * plane + p]);
            if (has_alpha && c < channels - 1) v *= alpha;
            out[p * (size_t)channels + (size_t)c] = (uint16_t)lrintf(v * 65535.0f);
        }
    }
}

/* Replaces each pixel by an index into a table of its distinct colours; fails beyond 256 colours. */
static int build_palette(uint8_t *indices, uint8_t *colormap, int *entries, const uint8_t *pixels, int channels,
                         size_t plane, lt_error *err) {
    int n = 0;
    for (size_t p = 0; p < plane; p++) {
        const uint8_t *px = pixels + p * (size_t)channels;
        int k = 0;
        while (k < n && memcmp(colormap + k * channels, px, (size_t)channels) != 0) k++;
        if (k == n) {
            if (n == 256) return lt_fail(err, "a palette PNG holds at most 256 colours, the image has more");
            memcpy(colormap + n * channels, px, (size_t)channels);
            n++;
        }
        indices[p] = (uint8_t)k;
    }
    *entries = n;
    return 0;
}

int lt_png_write_float(const char *path, const float *chw, int channels, int height, int width,
                       lt_png_write_options opts, lt_error *err) {
    if (channels < 1 || channels > 4) return lt_fail(err, "expected 1 to 4 channels (gray, gray+alpha, RGB, RGBA), got %d", channels);
    if (height < 1 || width < 1 || (int64_t)height * width > LT_IMAGE_MAX_PIXELS)
        return lt_fail(err, "image size %dx%d is out of range", height, width);
    if (opts.bit_depth != 8 && opts.bit_depth != 16) return lt_fail(err, "bit_depth must be 8 or 16, got %d", opts.bit_depth);
    if (opts.palette && opts.bit_depth != 8) return lt_fail(err, "a palette PNG must have bit_depth 8");

    size_t plane = (size_t)height * (size_t)width;
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)width;
    image.height = (png_uint_32)height;
    image.format = format_for_channels(channels);

    void *buffer = NULL;
    uint8_t colormap[256 * 4];
    int rc = -1;
    if (opts.bit_depth == 16) {
        image.format |= PNG_FORMAT_FLAG_LINEAR;
        buffer = malloc(plane * (size_t)channels * sizeof(uint16_t));
        if (!buffer) return lt_fail(err, "out of memory");
        float_chw_to_u16_hwc(buffer, chw, channels, plane);
    } else {
        uint8_t *pixels = malloc(plane * (size_t)channels);
        if (!pixels) return lt_fail(err, "out of memory");
        float_chw_to_u8_hwc(pixels, chw, channels, plane);
        buffer = pixels;
        if (opts.palette) {
            uint8_t *indices = malloc(plane);
            int entries = 0;
            if (!indices || build_palette(indices, colormap, &entries, pixels, channels, plane, err)) {
                if (!indices) lt_fail(err, "out of memory");
                free(indices);
                free(pixels);
                return -1;
            }
            free(pixels);
            buffer = indices;
            image.format |= PNG_FORMAT_FLAG_COLORMAP;
            image.colormap_entries = (png_uint_32)entries;
        }
    }

    /* encode into memory, then write the file atomically */
    png_alloc_size_t size = 0;
    const void *cmap = opts.palette ? colormap : NULL;
    if (!png_image_write_get_memory_size(image, size, 0, buffer, 0, cmap)) {
        lt_fail(err, "cannot encode %s (libpng: %s)", path, image.message);
    } else {
        void *encoded = malloc(size);
        if (!encoded) {
            lt_fail(err, "out of memory encoding %s", path);
        } else if (!png_image_write_to_memory(&image, encoded, &size, 0, buffer, 0, cmap)) {
            lt_fail(err, "cannot encode %s (libpng: %s)", path, image.message);
        } else {
            rc = lt_write_file_atomic(path, encoded, size, err);
        }
        free(encoded);
    }
    png_image_free(&image);
    free(buffer);
    return rc;
}
