/* libFuzzer target: the safetensors parser (and through it the JSON parser) on arbitrary bytes. Every
 * input must give either a valid file whose tensors convert, or an error; never a crash or a sanitizer
 * report. The same bytes also go to the JSON parser alone.
 * By hand: clang -g -O1 -fsanitize=fuzzer,address,undefined -Icsrc/core fuzz/safetensors_fuzz.c <sources> -lm
 *          ./a.out -max_total_time=60 <corpus folder with spec/fixtures/io/ *.safetensors> */
// sources: csrc/core/formats/safetensors.c csrc/core/formats/json.c csrc/core/formats/bytebuf.c csrc/core/base/error.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/json.h"
#include "formats/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lt_error err;
    lt_st_file f;
    if (lt_st_parse(&f, data, size, &err) == 0) {
        for (size_t i = 0; i < f.num_entries; i++) {
            const lt_st_entry *e = &f.entries[i];
            float *out = malloc((size_t)(e->numel ? e->numel : 1) * sizeof *out);
            if (out) lt_st_to_float(out, &f, e);
            free(out);
        }
    }
    lt_st_free(&f);

    lt_json v;
    lt_json_parse(&v, (const char *)data, size, &err);
    lt_json_free(&v);
    return 0;
}
