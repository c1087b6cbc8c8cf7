/* libFuzzer target: the IDX parser, plain and gzip-compressed (zlib), on arbitrary bytes. Each input must
 * parse or give an error; never a crash, a sanitizer report or an unbounded allocation (decompression is
 * capped at 16 MB here).
 * By hand: fuzz/run.sh 60 */
// sources: csrc/core/data/idx.c csrc/core/data/gunzip.c csrc/core/base/fileio.c csrc/core/base/error.c
// libs: -lz
// seeds: fuzz/seeds/idx
#include <stdint.h>
#include <stdlib.h>

#include "data/gunzip.h"
#include "data/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lt_error err;
    lt_idx idx;
    if (lt_idx_parse(data, size, "input", (size_t)16 << 20, &idx, &err) == 0) {
        volatile uint8_t sum = 0;  /* touch every value */
        for (int64_t i = 0; i < idx.count; i++) sum += idx.values[i];
        lt_idx_free(&idx);
    }
    return 0;
}
