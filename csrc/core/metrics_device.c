/* The confusion matrix's counts on a device: each batch of logits is counted where it is (no copy,
 * no wait), and the counts come to the host when they are read (lt_confusion_gather). */
#include <stdlib.h>

#include "backend.h"
#include "metrics.h"

static size_t pending_count(const lt_confusion *cm) { return (size_t)cm->num_classes * (size_t)cm->num_classes + 1; }

/* A zeroed buffer of counts on d, made the first time a batch is counted there after a gather. */
static int ensure_device_counts(lt_confusion *cm, lt_device d, const lt_backend_api *api, lt_error *err) {
    if (cm->device_counts) {
        if (cm->device == d) return 0;
        return lt_fail(err, "counts are pending on %s, got a batch on %s", lt_device_name(cm->device), lt_device_name(d));
    }
    size_t bytes = pending_count(cm) * sizeof(uint64_t);
    uint64_t *zeros = calloc(pending_count(cm), sizeof *zeros);
    if (!zeros) return lt_fail(err, "out of memory");
    uint64_t *counts = api->alloc(bytes, err);
    int rc = counts ? api->to_device(counts, zeros, bytes, err) : -1;
    free(zeros);
    if (rc) {
        if (counts) api->free(counts);
        return -1;
    }
    cm->device_counts = counts;
    cm->device = d;
    return 0;
}

int lt_confusion_update_device(lt_confusion *cm, const lt_tensor *logits, const lt_tensor *target, bool one_based,
                               lt_error *err) {
    lt_device d = lt_device_of(logits);
    const lt_backend_api *api = lt_backend(d, err);
    if (!api || ensure_device_counts(cm, d, api, err)) return -1;
    if (logits->size[0] == 0) return 0;
    lt_confusion_shape s = {logits->size[0], cm->num_classes, {logits->stride[0], logits->stride[1]},
                            target->stride[0], one_based};
    return api->confusion_update(cm->device_counts, lt_data(logits), lt_data(target), &s, err);
}

int lt_confusion_gather(lt_confusion *cm, lt_error *err) {
    if (!cm->device_counts) return 0;
    const lt_backend_api *api = lt_backend(cm->device, err);
    if (!api) return -1;
    size_t n = pending_count(cm);
    uint64_t *host = malloc(n * sizeof *host);
    if (!host) return lt_fail(err, "out of memory");
    if (api->to_host(host, cm->device_counts, n * sizeof *host, err)) {
        free(host);
        return -1;
    }
    for (size_t i = 0; i + 1 < n; i++) cm->counts[i] += (int64_t)host[i];
    uint64_t invalid = host[n - 1];
    free(host);
    api->free(cm->device_counts);
    cm->device_counts = NULL;
    if (invalid)
        return lt_fail(err, "%llu targets counted on %s were not class indices (expected integers in the classes' range)",
                       (unsigned long long)invalid, lt_device_name(cm->device));
    return 0;
}
