#include "metrics_device.h"

#include <stdlib.h>

#include "../device/backend.h"

static size_t slots(int classes) { return (size_t)classes * (size_t)classes + 1; }

static int zero_counts(uint64_t *counts, int classes, const lt_backend_api *api, lt_error *err) {
    uint64_t *zeros = calloc(slots(classes), sizeof *zeros);
    if (!zeros) return lt_fail(err, "out of memory");
    int rc = api->to_device(counts, zeros, slots(classes) * sizeof *zeros, err);
    free(zeros);
    return rc;
}

/* A zeroed buffer on d, made the first time a batch is counted there. It stays (taking the counts and
 * resetting zero it): a CUDA graph that counts its batches keeps counting into it. */
static int ensure_counts(lt_device_counts *pending, int classes, lt_device d, const lt_backend_api *api,
                         lt_error *err) {
    if (pending->counts) {
        if (pending->device == d) return 0;
        return lt_fail(err, "counts are pending on %s, got a batch on %s", lt_device_name(pending->device),
                       lt_device_name(d));
    }
    uint64_t *counts = api->alloc(slots(classes) * sizeof(uint64_t), err);
    if (!counts || zero_counts(counts, classes, api, err)) {
        if (counts) api->free(counts);
        return -1;
    }
    pending->counts = counts;
    pending->device = d;
    return 0;
}

int lt_device_counts_add(lt_device_counts *pending, int classes, const lt_tensor *logits, const lt_tensor *target,
                         bool one_based, lt_error *err) {
    lt_device d = lt_device_of(logits);
    const lt_backend_api *api = lt_backend(d, err);
    if (!api || ensure_counts(pending, classes, d, api, err)) return -1;
    if (logits->size[0] == 0) return 0;
    lt_confusion_shape s = {logits->size[0], classes, {logits->stride[0], logits->stride[1]}, target->stride[0],
                            one_based};
    return api->confusion_update(pending->counts, lt_data(logits), lt_data(target), &s, err);
}

int lt_device_counts_take(lt_device_counts *pending, int classes, int64_t *counts, lt_error *err) {
    if (!pending->counts) return 0;
    const lt_backend_api *api = lt_backend(pending->device, err);
    if (!api || lt_device_sync_point(pending->device, "reading a metric's counts", err)) return -1;
    size_t n = slots(classes);
    uint64_t *host = malloc(n * sizeof *host);
    if (!host) return lt_fail(err, "out of memory");
    if (api->to_host(host, pending->counts, n * sizeof *host, err)) {
        free(host);
        return -1;
    }
    for (size_t i = 0; i + 1 < n; i++) counts[i] += (int64_t)host[i];
    uint64_t invalid = host[n - 1];
    free(host);
    if (lt_device_counts_zero(pending, classes, err)) return -1;
    if (invalid)
        return lt_fail(err, "%llu targets counted on %s were not class indices (expected integers in the classes' range)",
                       (unsigned long long)invalid, lt_device_name(pending->device));
    return 0;
}

int lt_device_counts_copy(lt_device_counts *dst, const lt_device_counts *src, int classes, lt_error *err) {
    if (!src->counts) return 0;
    const lt_backend_api *api = lt_backend(src->device, err);
    if (!api) return -1;
    size_t bytes = slots(classes) * sizeof(uint64_t);
    uint64_t *counts = api->alloc(bytes, err);
    if (!counts) return -1;
    if (api->on_device(counts, src->counts, bytes, err)) {
        api->free(counts);
        return -1;
    }
    dst->counts = counts;
    dst->device = src->device;
    return 0;
}

int lt_device_counts_zero(lt_device_counts *pending, int classes, lt_error *err) {
    if (!pending->counts) return 0;
    const lt_backend_api *api = lt_backend(pending->device, err);
    if (!api || zero_counts(pending->counts, classes, api, err)) {
        lt_device_counts_drop(pending);  /* the next batch makes a new buffer */
        return -1;
    }
    return 0;
}

void lt_device_counts_drop(lt_device_counts *pending) {
    if (!pending->counts) return;
    const lt_backend_api *api = lt_backend(pending->device, NULL);
    if (api) api->free(pending->counts);
    pending->counts = NULL;
}
