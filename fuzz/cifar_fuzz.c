/* libFuzzer target: the CIFAR-10 batch parser and the class-list parser on arbitrary bytes. Each input
 * must parse or give an error; never a crash or a sanitizer report.
 * By hand: fuzz/run.sh 60 (builds every target), or clang -g -O1 -fsanitize=fuzzer,address,undefined
 *          -Icsrc/core fuzz/cifar_fuzz.c <sources> */
// sources: csrc/core/data/cifar.c csrc/core/base/error.c
// seeds: fuzz/seeds/cifar
#include <stdint.h>
#include <stdlib.h>

#include "data/cifar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lt_error err;
    size_t records = size / LT_CIFAR_RECORD_BYTES + 1;
    uint8_t *pixels = malloc(records * LT_CIFAR_IMAGE_BYTES);
    int32_t *targets = malloc(records * sizeof *targets);
    int64_t n;
    if (pixels && targets) {
        lt_cifar_parse_batch(data, size, "input", 0, pixels, targets, &n, &err);
        lt_cifar_parse_batch(data, size, "input", 1, pixels, targets, &n, &err);
    }
    free(pixels);
    free(targets);
    char names[LT_CIFAR_CLASSES][LT_CIFAR_NAME_MAX];
    lt_cifar_parse_meta((const char *)data, size, "input", names, &err);
    return 0;
}
