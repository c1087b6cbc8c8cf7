/* libFuzzer target: the PNG decoder (libpng's simplified API behind lt_png_decode) and the conversion of
 * the decoded pixels to float images of 1 to 4 channels, on arbitrary bytes. Each input must decode or
 * give an error; never a crash or a sanitizer report. Each input is tried as it is and with its chunk CRCs
 * made right. Images are capped at 2^20 pixels here.
 * By hand: fuzz/run.sh 60 */
// sources: csrc/core/data/png_io.c csrc/core/data/image.c csrc/core/data/file_util.c csrc/core/base/fileio.c csrc/core/base/error.c
// libs: -lpng -lz
// cflags: -DLT_IMAGE_MAX_PIXELS=1048576
// seeds: spec/fixtures/data/png
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/png_io.h"

/* Rewrites every chunk's CRC to match its contents, so that mutations reach libpng's chunk and image
 * parsing instead of stopping at the checksum. */
static void fix_crcs(uint8_t *p, size_t size) {
    size_t pos = 8;
    while (pos + 12 <= size) {
        uint32_t len = (uint32_t)p[pos] << 24 | (uint32_t)p[pos + 1] << 16 | (uint32_t)p[pos + 2] << 8 | p[pos + 3];
        if (len > size - pos - 12) break;
        uint32_t crc = (uint32_t)crc32(0L, p + pos + 4, len + 4);
        uint8_t *c = p + pos + 8 + len;
        c[0] = (uint8_t)(crc >> 24), c[1] = (uint8_t)(crc >> 16), c[2] = (uint8_t)(crc >> 8), c[3] = (uint8_t)crc;
        pos += 12 + (size_t)len;
    }
}

static void decode(const uint8_t *data, size_t size) {
    lt_error err;
    lt_u8image img;
    if (lt_png_decode(data, size, "input", &img, &err) == 0) {
        size_t plane = (size_t)img.height * (size_t)img.width;
        float *out = malloc(plane * 4 * sizeof(float));
        if (out)
            for (int c = 1; c <= 4; c++) lt_u8_hwc_to_float_chw(out, c, img.data, img.channels, img.height, img.width);
        free(out);
        lt_u8image_free(&img);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    decode(data, size);
    uint8_t *fixed = malloc(size ? size : 1);
    if (fixed) {
        memcpy(fixed, data, size);
        fix_crcs(fixed, size);
        decode(fixed, size);
        free(fixed);
    }
    return 0;
}
