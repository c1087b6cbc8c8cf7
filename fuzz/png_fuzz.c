/* libFuzzer target: the PNG decoder (libpng's simplified API behind lt_png_decode) and the conversion of
 * the decoded pixels to float images of 1 to 4 channels, on arbitrary bytes. Each input must decode or
 * give an error; never a crash or a sanitizer report. Images are capped at 2^20 pixels here.
 * By hand: fuzz/run.sh 60 */
// sources: csrc/core/data/png_io.c csrc/core/data/image.c csrc/core/data/file_util.c csrc/core/fileio.c csrc/core/error.c
// libs: -lpng -lz
// cflags: -DLT_IMAGE_MAX_PIXELS=1048576
// seeds: spec/fixtures/data/png
#include <stdint.h>
#include <stdlib.h>

#include "data/png_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
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
    return 0;
}
