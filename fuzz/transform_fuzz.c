/* libFuzzer target: the transform pipeline. The input's bytes choose an image size and a short list of
 * ops with arbitrary parameters; every op's check and shape rule must keep the kernels inside their
 * buffers, whatever the parameters. Each input must run or give an error; never a crash or a sanitizer
 * report. Where the pipeline is one an image plan can hold (flips, crops, pads, one Normalize: a GPU's
 * batches, data/image_plan.h), the plan's result must be the pipeline's, bit for bit.
 * By hand: fuzz/run.sh 60 */
// sources: csrc/core/data/transform.c csrc/core/data/resize.c csrc/core/data/geometry.c csrc/core/data/color.c csrc/core/data/image.c csrc/core/data/image_plan.c csrc/core/base/rng.c csrc/core/base/error.c
// cflags: -DLT_IMAGE_MAX_PIXELS=65536 -ffp-contract=off
// seeds: fuzz/seeds/transform
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/image_plan.h"
#include "data/transform.h"

typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader;

static int next_byte(reader *r) {
    if (!r->left) return 0;
    r->left--;
    return *r->p++;
}

/* A signed integer: mostly small (near the interesting edges), sometimes up to 16 bits. */
static int next_int(reader *r) {
    int b = next_byte(r);
    if (b == 0x80) return (int16_t)(next_byte(r) << 8 | next_byte(r));
    return (int8_t)b;
}

static double next_real(reader *r) { return next_int(r) / 16.0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    reader r = {data, size};
    int c = 1 + next_byte(&r) % 4, h = 1 + next_byte(&r) % 40, w = 1 + next_byte(&r) % 40;
    lt_pipeline p;
    memset(&p, 0, sizeof p);
    int nops = next_byte(&r) % 6;
    for (int i = 0; i < nops; i++) {
        lt_transform_op *op = &p.ops[p.n];
        memset(op, 0, sizeof *op);
        op->kind = (lt_op_kind)(next_byte(&r) % LT_OP_COUNT);
        op->p = (next_byte(&r) % 5) / 4.0;
        op->size[0] = next_int(&r);
        op->size[1] = next_int(&r);
        op->antialias = next_byte(&r) & 1;
        for (int k = 0; k < 4; k++) op->pad[k] = next_int(&r);
        op->pad_if_needed = next_byte(&r) & 1;
        op->pad_mode = (lt_pad_mode)(next_byte(&r) % 5);
        op->offset[0] = next_int(&r);
        op->offset[1] = next_int(&r);
        op->nvalues = next_byte(&r) % 6;
        for (int k = 0; k < LT_IMAGE_MAX_CHANNELS; k++) {
            op->values[k] = (float)next_real(&r);
            op->stds[k] = (float)next_real(&r);
        }
        op->range[0] = next_real(&r);
        op->range[1] = op->range[0] + next_byte(&r) / 16.0;
        op->ratio[0] = next_real(&r);
        op->ratio[1] = op->ratio[0] + next_byte(&r) / 16.0;
        for (int k = 0; k < 4; k++) {
            op->jitter_on[k] = next_byte(&r) & 1;
            op->jitter[k][0] = next_real(&r);
            op->jitter[k][1] = op->jitter[k][0] + next_byte(&r) / 64.0;
        }
        op->out_channels = next_byte(&r) % 4;
        lt_error err;
        if (lt_transform_op_check(op, &err) == 0) p.n++;
    }
    int64_t index = next_byte(&r), epoch = next_byte(&r) % 3;
    uint64_t aug_seed = size;
    lt_workspace ws;
    lt_workspace_init(&ws);
    ws.index = index, ws.epoch = epoch;
    lt_error err;
    uint8_t *bytes = NULL;
    if (lt_image_reserve(ws.cur, c, h, w, &err) == 0 && (bytes = malloc(lt_image_numel(ws.cur)))) {
        for (size_t i = 0; i < lt_image_numel(ws.cur); i++) bytes[i] = (uint8_t)(i * 37 % 256);
        lt_u8_to_float(ws.cur->data, bytes, lt_image_numel(ws.cur));  /* as a data set loads a sample */
        lt_rng rng;
        lt_rng_seed_stream(&rng, aug_seed, (uint64_t)index);  /* as the loader seeds it */
        int oc, oh, ow;
        int shape_ok = lt_pipeline_out_shape(&p, c, h, w, &oc, &oh, &ow, &err) == 0;
        int ran = lt_pipeline_apply(&p, &ws, &rng, &err) == 0;
        /* the shape rule and the run agree */
        if (shape_ok != ran) __builtin_trap();
        if (ran && (ws.cur->channels != oc || ws.cur->height != oh || ws.cur->width != ow)) __builtin_trap();
        /* the image plan of the same pipeline gives the same bits */
        lt_image_plan plan;
        if (ran && lt_image_plan_init(&plan, &p, c, h, w, &err) == 0) {
            if (plan.c != oc || plan.h != oh || plan.w != ow) __builtin_trap();
            lt_sample_draw d;
            lt_image_plan_draw(&plan, &p, index, 0, aug_seed, epoch, &d);
            size_t n = lt_image_numel(ws.cur);
            float *out = malloc(n * sizeof *out);
            if (out) {
                lt_image_plan_run(out, &plan, &d, 1, bytes);
                if (memcmp(out, ws.cur->data, n * sizeof *out) != 0) __builtin_trap();
                free(out);
            }
        }
    }
    free(bytes);
    lt_workspace_free(&ws);
    return 0;
}
