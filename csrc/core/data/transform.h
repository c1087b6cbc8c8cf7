/* Transforms as data: each is an op code with its parameters, a pipeline is a short list of them, and
 * lt_pipeline_apply runs one on an image. Random choices come from the generator passed in, one per
 * sample (seeded from the loader's seed, the epoch and the sample index), so that a sample gets the same
 * augmentation whichever thread loads it. An op whose choice belongs to the sample across epochs (the
 * alternating flip) draws from its own seed and the sample's index instead, which the workspace
 * carries with the epoch. */
#ifndef LT_DATA_TRANSFORM_H
#define LT_DATA_TRANSFORM_H

#include <stdbool.h>

#include "../base/error.h"
#include "../base/rng.h"
#include "image.h"
#include "image_ops.h"

#define LT_PIPELINE_MAX_OPS 32

typedef enum {
    LT_OP_TO_TENSOR,     /* nothing to do: samples reach the pipeline as float (C, H, W) in [0, 1] */
    LT_OP_NORMALIZE,
    LT_OP_RESIZE,
    LT_OP_CENTER_CROP,
    LT_OP_CROP,          /* a fixed window (F.crop), zeros outside */
    LT_OP_PAD,
    LT_OP_RANDOM_CROP,
    LT_OP_HFLIP,         /* RandomHorizontalFlip(p); p = 1 flips always */
    LT_OP_VFLIP,
    LT_OP_ROTATION,      /* RandomRotation: an angle uniform in [lo, hi] */
    LT_OP_COLOR_JITTER,
    LT_OP_GRAYSCALE,
    LT_OP_ERASING,       /* RandomErasing */
    LT_OP_ERASE,         /* a fixed rectangle (F.erase) */
    LT_OP_ALT_HFLIP,     /* AlternatingHorizontalFlip: flipped at random once per sample, the other way in odd epochs */
    LT_OP_COUNT
} lt_op_kind;

enum { LT_JITTER_BRIGHTNESS, LT_JITTER_CONTRAST, LT_JITTER_SATURATION, LT_JITTER_HUE };

typedef struct lt_transform_op {
    lt_op_kind kind;
    double p;                 /* flips, erasing: probability of acting */
    int size[2];              /* resize, crops: (h, w); resize with size[1] == 0: the smaller edge */
    bool antialias;           /* resize */
    int pad[4];               /* pad, random crop: left, top, right, bottom */
    bool pad_if_needed;       /* random crop */
    lt_pad_mode pad_mode;
    int offset[2];            /* crop, erase: top, left */
    float values[LT_IMAGE_MAX_CHANNELS];  /* normalize: mean; pad/crop/rotation: fill; erase: value */
    float stds[LT_IMAGE_MAX_CHANNELS];    /* normalize */
    int nvalues;              /* entries in values (1 or the channel count); 0: none (rotation without fill,
                                 erasing with random values) */
    double range[2];          /* rotation: degrees; erasing: area scale */
    double ratio[2];          /* erasing: aspect ratio */
    bool jitter_on[4];        /* colour jitter: which adjustments, factor ranges in jitter[k] */
    double jitter[4][2];
    int out_channels;         /* grayscale */
    uint64_t seed;            /* alternating flip: which samples start flipped (with the sample's index) */
} lt_transform_op;

typedef struct lt_pipeline {
    int n;
    lt_transform_op ops[LT_PIPELINE_MAX_OPS];
} lt_pipeline;

/* Checks one op's parameters (op kinds, sizes, ranges); the Lua side checks them first with friendlier
 * names, this guards the C side. */
int lt_transform_op_check(const lt_transform_op *op, lt_error *err);

/* The shape a pipeline makes of an input (c, h, w), or an error saying which step cannot take it
 * ("step 2 (RandomCrop): crop 40x40 is larger than the padded image 36x36"). */
int lt_pipeline_out_shape(const lt_pipeline *p, int c, int h, int w, int *oc, int *oh, int *ow, lt_error *err);

/* Scratch buffers reused across samples: one per thread. */
typedef struct lt_workspace {
    lt_image a, b;     /* ping-pong images; *cur is the current one */
    lt_image *cur;
    float *tmp;        /* resize's intermediate */
    size_t tmp_capacity;
    int64_t index;     /* the sample being transformed (0-based, in its data set) and the epoch: for ops */
    int64_t epoch;     /* tied to the sample rather than to a draw (lt_load_sample sets index) */
} lt_workspace;

void lt_workspace_init(lt_workspace *ws);
void lt_workspace_free(lt_workspace *ws);

/* Runs the pipeline on *ws->cur in place of it (the result is *ws->cur again). */
int lt_pipeline_apply(const lt_pipeline *p, lt_workspace *ws, lt_rng *rng, lt_error *err);

/* ---- flips, crops and pads as geometry (image_plan.h makes whole batches of them on a device) ---- */

/* A window of an op's output: oh x ow, its (0, 0) at (top, left) of the op's input; positions outside
 * the input read through mode (the op's fill for LT_PAD_CONSTANT). */
typedef struct lt_crop_window {
    int oh, ow, top, left;
    lt_pad_mode mode;
} lt_crop_window;

/* What a flip, crop or pad does to one sample of (c, h, w): its windows in order (RandomCrop takes two
 * when pad_if_needed pads an image its own padding mirrored), the fill of its constant padding, and
 * its flips. */
typedef struct lt_op_geometry {
    int nwindows;
    lt_crop_window window[2];
    float fill[LT_IMAGE_MAX_CHANNELS];
    bool hflip, vflip;
} lt_op_geometry;

/* Whether the op only moves pixels (crops, pads, flips). */
bool lt_op_is_geometric(lt_op_kind kind);
/* The geometry of a geometric op for one sample, drawn from rng (the alternating flip: from the op's
 * seed, index and epoch) exactly as lt_pipeline_apply draws it: that function applies it through this. */
void lt_op_geometry_draw(const lt_transform_op *op, int c, int h, int w, lt_rng *rng, int64_t index, int64_t epoch,
                         lt_op_geometry *g);
/* The op's name as errors give it ("RandomCrop"). */
const char *lt_op_name(lt_op_kind kind);

#endif
