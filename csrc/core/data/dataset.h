/* Data sets in C. A source holds the samples: in memory as 8-bit planar images (CIFAR-10, IDX), or as a
 * sorted list of PNG files decoded on demand (image folders). A dataset is a view of a source: all of
 * it or a subset of its samples by index; views share the source (reference-counted, immutable once
 * built, so loader threads read it without locks). */
#ifndef LT_DATA_DATASET_H
#define LT_DATA_DATASET_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/error.h"
#include "image.h"
#include "transform.h"

typedef enum { LT_SOURCE_MEMORY, LT_SOURCE_FOLDER } lt_source_kind;

typedef struct lt_source {
    _Atomic int refcount;
    lt_source_kind kind;
    int64_t count;
    int channels, height, width;  /* the shape of every sample this source hands out */
    int num_classes;
    char **class_names;           /* num_classes strings */
    int32_t *targets;             /* count classes, 0-based */
    uint8_t *pixels;              /* memory: count x channels x height x width */
    char **paths;                 /* folder: count PNG files */
    bool resize;                  /* folder: resize decoded images to height x width */
} lt_source;

/* A memory source with room for count samples of (channels, height, width) and num_classes names
 * (pixels and targets uninitialised, names NULL). */
lt_source *lt_source_new_memory(int64_t count, int channels, int height, int width, int num_classes, lt_error *err);
/* An empty folder source (kind, classes and paths filled by the caller). */
lt_source *lt_source_new_folder(int64_t count, int num_classes, lt_error *err);
int lt_source_set_class_name(lt_source *src, int k, const char *name, lt_error *err);
void lt_source_retain(lt_source *src);
void lt_source_release(lt_source *src);

typedef struct lt_dataset {
    lt_source *src;
    int64_t count;
    int64_t *indices;  /* count source indices, or NULL for the whole source in order */
} lt_dataset;

/* A view of all of src (retains it). */
void lt_dataset_init(lt_dataset *ds, lt_source *src);
/* out = the samples of ds at the given 0-based indices (checked against ds->count). */
int lt_dataset_subset(lt_dataset *out, const lt_dataset *ds, const int64_t *indices, int64_t n, lt_error *err);
int lt_dataset_copy(lt_dataset *out, const lt_dataset *ds, lt_error *err);
void lt_dataset_release(lt_dataset *ds);

static inline int64_t lt_dataset_source_index(const lt_dataset *ds, int64_t i) { return ds->indices ? ds->indices[i] : i; }
static inline int32_t lt_dataset_target(const lt_dataset *ds, int64_t i) { return ds->src->targets[lt_dataset_source_index(ds, i)]; }

/* Sample i (0-based) as a float image (channels, height, width) in [0, 1], left in *ws->cur, and its
 * class (0-based). Safe to call from several threads at once, each with its own workspace. */
int lt_dataset_load(const lt_dataset *ds, int64_t i, lt_workspace *ws, int32_t *target, lt_error *err);

/* ---- constructors ---- */
/* CIFAR-10 from the folder holding the batches: training (data_batch_1..5.bin) or test (test_batch.bin)
 * set, class names from batches.meta.txt. Each file must hold records_per_file records (10,000 in the
 * official files). */
lt_source *lt_cifar10_load(const char *folder, bool train, int64_t records_per_file, lt_error *err);
/* An IDX image file (N, H, W) and an IDX label file (N), labels below num_classes. */
lt_source *lt_idx_dataset_load(const char *images_path, const char *labels_path, int num_classes, lt_error *err);

typedef struct lt_folder_options {
    int channels;       /* 1-4 */
    int height, width;  /* 0: the first image's size, and every image must have it */
    bool skip_bad;      /* leave out files that fail to decode (every file is decoded once to find them) */
} lt_folder_options;

typedef struct lt_folder_report {
    int64_t skipped;    /* files left out by skip_bad */
    char **messages;    /* why each was left out (skipped strings) */
    int64_t ignored;    /* files without a .png extension */
} lt_folder_report;

/* An image-folder data set: one sub-folder per class (sorted by name), the .png files under each
 * (searched recursively, sorted as torchvision's ImageFolder does). */
lt_source *lt_folder_load(const char *root, lt_folder_options opts, lt_folder_report *report, lt_error *err);
void lt_folder_report_free(lt_folder_report *report);

#endif
