#include "dataset.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cifar.h"
#include "../base/checked.h"
#include "../base/fileio.h"
#include "file_util.h"
#include "idx.h"
#include "png_io.h"

static lt_source *source_alloc(lt_source_kind kind, int64_t count, int num_classes, lt_error *err) {
    lt_source *src = calloc(1, sizeof *src);
    if (!src) {
        lt_fail(err, "out of memory");
        return NULL;
    }
    atomic_init(&src->refcount, 1);
    src->kind = kind;
    src->count = count;
    src->num_classes = num_classes;
    size_t target_bytes;
    src->class_names = calloc((size_t)num_classes + 1, sizeof(char *));
    src->targets = lt_bytes_ok(count ? count : 1, sizeof(int32_t), &target_bytes) ? malloc(target_bytes) : NULL;
    if (!src->class_names || !src->targets) {
        lt_source_release(src);
        lt_fail(err, "out of memory for %lld samples", (long long)count);
        return NULL;
    }
    return src;
}

lt_source *lt_source_new_memory(int64_t count, int channels, int height, int width, int num_classes, lt_error *err) {
    lt_source *src = source_alloc(LT_SOURCE_MEMORY, count, num_classes, err);
    if (!src) return NULL;
    src->channels = channels;
    src->height = height;
    src->width = width;
    int64_t dims[4] = {count, channels, height, width}, total;
    size_t bytes = 0;
    if (!lt_product_ok(4, dims, INT64_MAX, &total) || !lt_bytes_ok(total, 1, &bytes)) {
        lt_source_release(src);
        lt_fail(err, "%lld images of %dx%dx%d bytes are too many to hold in memory", (long long)count, channels, height, width);
        return NULL;
    }
    src->pixels = malloc(bytes ? bytes : 1);
    if (!src->pixels) {
        lt_source_release(src);
        lt_fail(err, "out of memory for %lld images (%zu bytes)", (long long)count, bytes);
        return NULL;
    }
    return src;
}

lt_source *lt_source_new_folder(int64_t count, int num_classes, lt_error *err) {
    lt_source *src = source_alloc(LT_SOURCE_FOLDER, count, num_classes, err);
    if (!src) return NULL;
    src->paths = calloc((size_t)(count ? count : 1), sizeof(char *));
    if (!src->paths) {
        lt_source_release(src);
        lt_fail(err, "out of memory");
        return NULL;
    }
    return src;
}

int lt_source_set_class_name(lt_source *src, int k, const char *name, lt_error *err) {
    char *copy = strdup(name);
    if (!copy) return lt_fail(err, "out of memory");
    free(src->class_names[k]);
    src->class_names[k] = copy;
    return 0;
}

void lt_source_retain(lt_source *src) { atomic_fetch_add(&src->refcount, 1); }

void lt_source_release(lt_source *src) {
    if (!src || atomic_fetch_sub(&src->refcount, 1) != 1) return;
    if (src->class_names)
        for (int k = 0; k < src->num_classes; k++) free(src->class_names[k]);
    if (src->paths)
        for (int64_t i = 0; i < src->count; i++) free(src->paths[i]);
    free(src->class_names);
    free(src->paths);
    free(src->targets);
    free(src->pixels);
    free(src);
}

/* ---- views ---- */

void lt_dataset_init(lt_dataset *ds, lt_source *src) {
    lt_source_retain(src);
    ds->src = src;
    ds->count = src->count;
    ds->indices = NULL;
}

/* A new index map of n entries, or NULL. */
static int64_t *index_map_new(int64_t n) {
    size_t bytes;
    return lt_bytes_ok(n ? n : 1, sizeof(int64_t), &bytes) ? malloc(bytes) : NULL;
}

int lt_dataset_subset(lt_dataset *out, const lt_dataset *ds, const int64_t *indices, int64_t n, lt_error *err) {
    int64_t *map = index_map_new(n);
    if (!map) return lt_fail(err, "out of memory for %lld indices", (long long)n);
    for (int64_t k = 0; k < n; k++) {
        if (indices[k] < 0 || indices[k] >= ds->count) {
            free(map);
            return lt_fail(err, "index %lld (position %lld) is out of range for a data set of %lld samples",
                           (long long)indices[k] + 1, (long long)k + 1, (long long)ds->count);
        }
        map[k] = lt_dataset_source_index(ds, indices[k]);
    }
    lt_source_retain(ds->src);
    out->src = ds->src;
    out->count = n;
    out->indices = map;
    return 0;
}

int lt_dataset_copy(lt_dataset *out, const lt_dataset *ds, lt_error *err) {
    if (!ds->indices) {
        lt_dataset_init(out, ds->src);
        return 0;
    }
    int64_t *map = index_map_new(ds->count);
    if (!map) return lt_fail(err, "out of memory");
    memcpy(map, ds->indices, sizeof(int64_t) * (size_t)ds->count);
    lt_source_retain(ds->src);
    out->src = ds->src;
    out->count = ds->count;
    out->indices = map;
    return 0;
}

void lt_dataset_release(lt_dataset *ds) {
    lt_source_release(ds->src);
    free(ds->indices);
    ds->src = NULL;
    ds->indices = NULL;
    ds->count = 0;
}

/* ---- loading one sample ---- */

static int load_folder_image(const lt_source *src, int64_t s, lt_workspace *ws, lt_error *err) {
    lt_u8image img;
    if (lt_png_read_file(src->paths[s], &img, err)) return -1;
    int rc = -1;
    if (!src->resize && (img.height != src->height || img.width != src->width)) {
        lt_fail(err, "%s is %dx%d pixels, the data set's images are %dx%d (give image_size to resize them)",
                src->paths[s], img.height, img.width, src->height, src->width);
    } else {
        lt_image *full = src->resize ? &ws->b : &ws->a;
        if (lt_image_reserve(full, src->channels, img.height, img.width, err) == 0) {
            lt_u8_hwc_to_float_chw(full->data, src->channels, img.data, img.channels, img.height, img.width);
            ws->cur = full;
            rc = 0;
            if (src->resize && (img.height != src->height || img.width != src->width)) {
                lt_transform_op resize = {.kind = LT_OP_RESIZE, .size = {src->height, src->width}, .antialias = true};
                lt_pipeline p = {.n = 1};
                p.ops[0] = resize;
                rc = lt_pipeline_apply(&p, ws, NULL, err);
            }
        }
    }
    lt_u8image_free(&img);
    return rc;
}

int lt_dataset_load(const lt_dataset *ds, int64_t i, lt_workspace *ws, int32_t *target, lt_error *err) {
    if (i < 0 || i >= ds->count)
        return lt_fail(err, "index %lld is out of range for a data set of %lld samples", (long long)i + 1, (long long)ds->count);
    const lt_source *src = ds->src;
    int64_t s = lt_dataset_source_index(ds, i);
    *target = src->targets[s];
    if (src->kind == LT_SOURCE_FOLDER) return load_folder_image(src, s, ws, err);
    if (lt_image_reserve(&ws->a, src->channels, src->height, src->width, err)) return -1;
    size_t n = lt_image_numel(&ws->a);
    lt_u8_to_float(ws->a.data, src->pixels + (size_t)s * n, n);
    ws->cur = &ws->a;
    return 0;
}

/* ---- CIFAR-10 ---- */

static const char *cifar_train_files[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                          "data_batch_4.bin", "data_batch_5.bin"};
static const char *cifar_test_files[] = {"test_batch.bin"};

static int join_path(char *out, size_t len, const char *folder, const char *file, lt_error *err) {
    size_t fl = strlen(folder);
    int n = snprintf(out, len, "%s%s%s", folder, fl && folder[fl - 1] == '/' ? "" : "/", file);
    if (n < 0 || (size_t)n >= len) return lt_fail(err, "path too long: %s/%s", folder, file);
    return 0;
}

static int read_cifar_meta(lt_source *src, const char *folder, lt_error *err) {
    char path[4096];
    if (join_path(path, sizeof path, folder, "batches.meta.txt", err)) return -1;
    uint8_t *text;
    size_t len;
    if (lt_read_file(path, 1 << 16, &text, &len, err)) return -1;
    char names[LT_CIFAR_CLASSES][LT_CIFAR_NAME_MAX];
    int rc = lt_cifar_parse_meta((const char *)text, len, path, names, err);
    free(text);
    for (int k = 0; rc == 0 && k < LT_CIFAR_CLASSES; k++) rc = lt_source_set_class_name(src, k, names[k], err);
    return rc;
}

lt_source *lt_cifar10_load(const char *folder, bool train, int64_t records_per_file, lt_error *err) {
    const char **files = train ? cifar_train_files : cifar_test_files;
    int nfiles = train ? 5 : 1;
    if (records_per_file < 1 || records_per_file > 1000000)
        return lt_fail(err, "records per file must be 1 to 1000000, got %lld", (long long)records_per_file), NULL;
    size_t file_bytes = (size_t)records_per_file * LT_CIFAR_RECORD_BYTES;
    /* check every file's size before reading any, so a broken download is reported at once */
    char path[4096];
    for (int f = 0; f < nfiles; f++) {
        if (join_path(path, sizeof path, folder, files[f], err)) return NULL;
        lt_error why;
        int64_t size = lt_data_file_size(path, &why);
        if (size < 0)
            return lt_fail(err, "%s is missing (%s); a CIFAR-10 folder holds data_batch_1.bin ... data_batch_5.bin, "
                           "test_batch.bin (%zu bytes each) and batches.meta.txt", path, why.msg, file_bytes), NULL;
        if ((size_t)size != file_bytes)
            return lt_fail(err, "%s is %lld bytes, expected %zu (%lld records of %d bytes): the file is %s", path,
                           (long long)size, file_bytes, (long long)records_per_file, LT_CIFAR_RECORD_BYTES,
                           (size_t)size < file_bytes ? "truncated" : "longer than a CIFAR-10 batch"), NULL;
    }
    lt_source *src = lt_source_new_memory(records_per_file * nfiles, 3, 32, 32, LT_CIFAR_CLASSES, err);
    if (!src) return NULL;
    if (read_cifar_meta(src, folder, err)) goto fail;
    for (int f = 0; f < nfiles; f++) {
        if (join_path(path, sizeof path, folder, files[f], err)) goto fail;
        uint8_t *buf;
        size_t len;
        if (lt_read_file(path, file_bytes, &buf, &len, err)) goto fail;
        int64_t records, first = records_per_file * f;
        int rc = lt_cifar_parse_batch(buf, len, path, records_per_file, src->pixels + (size_t)first * LT_CIFAR_IMAGE_BYTES,
                                      src->targets + first, &records, err);
        free(buf);
        if (rc) goto fail;
    }
    return src;
fail:
    lt_source_release(src);
    return NULL;
}

/* ---- IDX (MNIST, Fashion-MNIST) ---- */

lt_source *lt_idx_dataset_load(const char *images_path, const char *labels_path, int num_classes, lt_error *err) {
    lt_idx images, labels;
    if (lt_idx_read_file(images_path, &images, err)) return NULL;
    if (lt_idx_read_file(labels_path, &labels, err)) {
        lt_idx_free(&images);
        return NULL;
    }
    lt_source *src = NULL;
    int64_t pixels;
    if (images.ndim != 3) {
        lt_fail(err, "%s has %d dimensions, expected 3 (images x rows x columns)", images_path, images.ndim);
    } else if (labels.ndim != 1) {
        lt_fail(err, "%s has %d dimensions, expected 1 (one label per image)", labels_path, labels.ndim);
    } else if (images.dims[0] != labels.dims[0]) {
        lt_fail(err, "%s holds %lld images but %s holds %lld labels", images_path, (long long)images.dims[0], labels_path,
                (long long)labels.dims[0]);
    } else if (images.dims[1] < 1 || images.dims[2] < 1 || !lt_mul_ok(images.dims[1], images.dims[2], &pixels) ||
               pixels > LT_IMAGE_MAX_PIXELS) {
        lt_fail(err, "%s: images of %lldx%lld pixels are out of range", images_path, (long long)images.dims[1], (long long)images.dims[2]);
    } else {
        src = lt_source_new_memory(images.dims[0], 1, (int)images.dims[1], (int)images.dims[2], num_classes, err);
        if (src) {
            memcpy(src->pixels, images.values, (size_t)images.count);
            for (int64_t i = 0; i < labels.count; i++) {
                if (labels.values[i] >= num_classes) {
                    lt_fail(err, "%s: label %lld is %d, expected 0 to %d", labels_path, (long long)i + 1, labels.values[i],
                            num_classes - 1);
                    lt_source_release(src);
                    src = NULL;
                    break;
                }
                src->targets[i] = labels.values[i];
            }
        }
    }
    lt_idx_free(&images);
    lt_idx_free(&labels);
    return src;
}
