#include "device_batches.h"

#include <stdlib.h>
#include <string.h>

#include "../device/backend.h"

int lt_device_batches_init(lt_device_batches *db, const lt_dataset *ds, const lt_pipeline *p, lt_device d,
                           lt_error *err) {
    memset(db, 0, sizeof *db);
    db->device = d;
    const lt_source *src = ds->src;
    if (src->kind != LT_SOURCE_MEMORY || !src->pixels)
        return lt_fail(err, "batches on %s need a data set held in memory (CIFAR-10, MNIST, Fashion-MNIST); an "
                       "image folder is decoded file by file on the host", lt_device_name(d));
    lt_error why;
    if (lt_image_plan_init(&db->plan, p, src->channels, src->height, src->width, &why))
        return lt_fail(err, "the transforms cannot run on %s: %s", lt_device_name(d), why.msg);
    const lt_backend_api *api = lt_backend(d, err);
    if (!api) return -1;
    if (!api->image_batch) return lt_fail(err, "the %s backend makes no image batches", api->name);
    db->allocator = lt_device_allocator(d, err);
    if (!db->allocator) return -1;
    /* the view's samples only, in its order (a validation split holds its share, not the source) */
    size_t sample = (size_t)src->channels * (size_t)src->height * (size_t)src->width, bytes = (size_t)ds->count * sample;
    if (!bytes) return 0;
    const uint8_t *host = src->pixels;
    uint8_t *gathered = NULL;
    if (ds->indices) {
        if (!(gathered = malloc(bytes))) return lt_fail(err, "out of memory gathering %zu bytes of images", bytes);
        for (int64_t i = 0; i < ds->count; i++) memcpy(gathered + (size_t)i * sample, host + (size_t)ds->indices[i] * sample, sample);
        host = gathered;
    }
    db->pixels = db->allocator->alloc(bytes, err);
    int rc = db->pixels ? api->to_device(db->pixels, host, bytes, err) : -1;
    free(gathered);
    if (rc) lt_device_batches_free(db);
    return rc;
}

void lt_device_batches_free(lt_device_batches *db) {
    if (db->pixels) db->allocator->free(db->pixels);
    free(db->draws);
    free(db->targets);
    memset(db, 0, sizeof *db);
}

static int reserve(lt_device_batches *db, int64_t n, lt_error *err) {
    if (n <= db->capacity) return 0;
    lt_sample_draw *draws = realloc(db->draws, sizeof *draws * (size_t)n);
    if (draws) db->draws = draws;
    float *targets = realloc(db->targets, sizeof *targets * (size_t)n);
    if (targets) db->targets = targets;
    if (!draws || !targets) return lt_fail(err, "out of memory for a batch of %lld draws", (long long)n);
    db->capacity = n;
    return 0;
}

int lt_device_batches_make(lt_device_batches *db, const lt_dataset *ds, const lt_pipeline *p, const int64_t *indices,
                           int64_t n, uint64_t aug_seed, int64_t epoch, lt_tensor *input, lt_tensor *target,
                           lt_error *err) {
    const lt_backend_api *api = lt_backend(db->device, err);
    if (!api || lt_refuse_in_capture(db->device, "a batch of images", "its draws come from the host", err) ||
        reserve(db, n, err))
        return -1;
    for (int64_t j = 0; j < n; j++) {  /* each sample: its draw and class, on the host */
        int64_t i = indices[j];
        lt_image_plan_draw(&db->plan, p, i, i, aug_seed, epoch, &db->draws[j]);
        db->targets[j] = (float)(lt_dataset_target(ds, i) + 1);
    }
    const lt_image_plan *plan = &db->plan;
    int64_t in_size[4] = {n, plan->c, plan->h, plan->w}, tg_size[1] = {n};
    if (lt_tensor_new_on(input, 4, in_size, LT_FLOAT32, db->device, err) ||
        lt_tensor_new_on(target, 1, tg_size, LT_FLOAT32, db->device, err))
        return -1;
    if (n == 0) return 0;
    if (api->to_device(lt_data(target), db->targets, sizeof(float) * (size_t)n, err)) return -1;
    return api->image_batch(lt_data(input), db->pixels, plan, db->draws, n, err);
}

int lt_device_images_remap(lt_tensor *out, const lt_tensor *in, int64_t planes, int h, int w, bool hflip, int dy,
                           int dx, lt_pad_mode mode, lt_error *err) {
    const lt_backend_api *api = lt_backend(lt_device_of(in), err);
    if (!api || lt_refuse_in_capture(lt_device_of(in), "mirroring or shifting images", "its draws come from the host",
                                     err))
        return -1;
    if (!api->image_batch) return lt_fail(err, "the %s backend mirrors and shifts no images", api->name);
    if (planes == 0) return 0;
    lt_image_plan plan;
    lt_sample_draw one;
    lt_image_plan_remap(&plan, &one, h, w, hflip, dy, dx, mode);
    lt_sample_draw *draws = malloc(sizeof *draws * (size_t)planes);
    if (!draws) return lt_fail(err, "out of memory for %lld draws", (long long)planes);
    for (int64_t i = 0; i < planes; i++) {
        draws[i] = one;
        draws[i].src = i;
    }
    int rc = api->image_batch(lt_data(out), lt_data(in), &plan, draws, planes, err);
    free(draws);
    return rc;
}
