#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../tensor/iter.h"
#include "../tensor/tensor_device.h"

int lt_confusion_init(lt_confusion *cm, int num_classes, lt_error *err) {
    cm->num_classes = 0;
    cm->counts = NULL;
    cm->pending = (lt_device_counts){NULL, LT_DEVICE_CPU};
    if (num_classes < 1 || num_classes > LT_MAX_CLASSES)
        return lt_fail(err, "expected 1 to %d classes, got %d", LT_MAX_CLASSES, num_classes);
    cm->counts = calloc((size_t)num_classes * (size_t)num_classes, sizeof *cm->counts);
    if (!cm->counts) return lt_fail(err, "out of memory for a %dx%d confusion matrix", num_classes, num_classes);
    cm->num_classes = num_classes;
    return 0;
}

void lt_confusion_free(lt_confusion *cm) {
    lt_device_counts_drop(&cm->pending);
    free(cm->counts);
    cm->counts = NULL;
    cm->num_classes = 0;
}

int lt_confusion_copy(lt_confusion *dst, const lt_confusion *src, lt_error *err) {
    if (lt_confusion_init(dst, src->num_classes, err)) return -1;
    memcpy(dst->counts, src->counts, (size_t)src->num_classes * (size_t)src->num_classes * sizeof *dst->counts);
    if (lt_device_counts_copy(&dst->pending, &src->pending, src->num_classes, err)) {
        lt_confusion_free(dst);
        return -1;
    }
    return 0;
}

void lt_confusion_reset(lt_confusion *cm) {
    if (lt_device_counts_zero(&cm->pending, cm->num_classes, NULL)) lt_device_counts_drop(&cm->pending);
    memset(cm->counts, 0, (size_t)cm->num_classes * (size_t)cm->num_classes * sizeof *cm->counts);
}

int64_t lt_confusion_total(const lt_confusion *cm) {
    int64_t total = 0;
    for (int64_t i = 0; i < (int64_t)cm->num_classes * cm->num_classes; i++) total += cm->counts[i];
    return total;
}

/* Class index of a label value, or -1 when it is not an integer in range. */
static int class_of(float value, int num_classes, bool one_based) {
    if (!(value == floorf(value))) return -1;  /* also rejects NaN */
    double c = (double)value - (one_based ? 1.0 : 0.0);
    if (c < 0 || c >= num_classes) return -1;
    return (int)c;
}

static int check_labels(const lt_confusion *cm, const lt_tensor *t, const char *what, int64_t batch, bool one_based,
                        int *classes, lt_error *err) {
    const float *data = lt_data(t);
    for (int64_t i = 0; i < batch; i++) {  /* i: sample */
        float v = data[i * t->stride[0]];
        classes[i] = class_of(v, cm->num_classes, one_based);
        if (classes[i] < 0)
            return lt_fail(err, "%s %lld is %g, expected a class index in %d..%d", what, (long long)(i + (one_based ? 1 : 0)),
                           (double)v, one_based ? 1 : 0, cm->num_classes - (one_based ? 0 : 1));
    }
    return 0;
}

static int check_target(const lt_confusion *cm, const lt_tensor *target, int64_t batch, lt_error *err) {
    char shape[64];
    if (target->ndim != 1) return lt_fail(err, "target must be 1-D (B), got %s", lt_shape_str(target, shape, sizeof shape));
    if (target->size[0] != batch)
        return lt_fail(err, "target has %lld elements but the batch has %lld", (long long)target->size[0], (long long)batch);
    return 0;
}

/* Adds the pairs once every label is known to be valid, so a bad batch leaves the matrix unchanged. */
static int add_pairs(lt_confusion *cm, const lt_tensor *target, const int *pred, int64_t batch, bool one_based,
                     lt_error *err) {
    int *truth = malloc((size_t)(batch > 0 ? batch : 1) * sizeof *truth);
    if (!truth) return lt_fail(err, "out of memory");
    if (check_labels(cm, target, "target", batch, one_based, truth, err)) {
        free(truth);
        return -1;
    }
    for (int64_t i = 0; i < batch; i++) cm->counts[(int64_t)truth[i] * cm->num_classes + pred[i]]++;  /* i: sample */
    free(truth);
    return 0;
}

int lt_confusion_update_logits(lt_confusion *cm, const lt_tensor *logits, const lt_tensor *target, bool one_based,
                               lt_error *err) {
    char shape[64];
    if (logits->ndim != 2 || logits->size[1] != cm->num_classes)
        return lt_fail(err, "logits must be (B, %d), got %s", cm->num_classes, lt_shape_str(logits, shape, sizeof shape));
    int64_t batch = logits->size[0];
    if (check_target(cm, target, batch, err)) return -1;
    lt_named ts[2] = {{"logits", logits}, {"target", target}};
    lt_device d;
    if (lt_check_devices("ConfusionMatrix:update", ts, 2, &d, err)) return -1;
    if (d != LT_DEVICE_CPU) return lt_device_counts_add(&cm->pending, cm->num_classes, logits, target, one_based, err);
    int *pred = malloc((size_t)(batch > 0 ? batch : 1) * sizeof *pred);
    if (!pred) return lt_fail(err, "out of memory");
    const float *data = lt_data(logits);
    for (int64_t i = 0; i < batch; i++) {  /* i: sample, (B, K) row i */
        const float *row = data + i * logits->stride[0];
        int best = 0;
        float best_value = row[0];
        for (int k = 1; k < cm->num_classes && !isnan(best_value); k++) {  /* k: class */
            float v = row[(int64_t)k * logits->stride[1]];
            if (isnan(v) || v > best_value) {
                best = k;
                best_value = v;
            }
        }
        pred[i] = best;
    }
    int rc = add_pairs(cm, target, pred, batch, one_based, err);
    free(pred);
    return rc;
}

int lt_confusion_gather(lt_confusion *cm, lt_error *err) {
    return lt_device_counts_take(&cm->pending, cm->num_classes, cm->counts, err);
}

int lt_confusion_update_labels(lt_confusion *cm, const lt_tensor *pred, const lt_tensor *target, bool one_based,
                               lt_error *err) {
    char shape[64];
    if (pred->ndim != 1) return lt_fail(err, "predictions must be 1-D (B), got %s", lt_shape_str(pred, shape, sizeof shape));
    if (lt_require_host("the confusion matrix of predictions", pred, err) ||
        lt_require_host("the confusion matrix of predictions", target, err))
        return -1;
    int64_t batch = pred->size[0];
    if (check_target(cm, target, batch, err)) return -1;
    int *classes = malloc((size_t)(batch > 0 ? batch : 1) * sizeof *classes);
    if (!classes) return lt_fail(err, "out of memory");
    int rc = check_labels(cm, pred, "prediction", batch, one_based, classes, err);
    if (rc == 0) rc = add_pairs(cm, target, classes, batch, one_based, err);
    free(classes);
    return rc;
}

static double ratio(int64_t num, int64_t den) { return den > 0 ? (double)num / (double)den : 0.0; }

/* tp, fp, fn of class c. */
static void class_counts(const lt_confusion *cm, int c, int64_t *tp, int64_t *fp, int64_t *fn) {
    int k = cm->num_classes;
    *tp = cm->counts[(int64_t)c * k + c];
    *fp = 0;
    *fn = 0;
    for (int j = 0; j < k; j++) {  /* j: the other class */
        if (j == c) continue;
        *fp += cm->counts[(int64_t)j * k + c];
        *fn += cm->counts[(int64_t)c * k + j];
    }
}

void lt_confusion_per_class(const lt_confusion *cm, double *precision, double *recall, double *f1, int64_t *support) {
    for (int c = 0; c < cm->num_classes; c++) {  /* c: class */
        int64_t tp, fp, fn;
        class_counts(cm, c, &tp, &fp, &fn);
        if (precision) precision[c] = ratio(tp, tp + fp);
        if (recall) recall[c] = ratio(tp, tp + fn);
        if (f1) f1[c] = ratio(2 * tp, 2 * tp + fp + fn);
        if (support) support[c] = tp + fn;
    }
}

int lt_confusion_scores(const lt_confusion *cm, lt_average average, lt_class_scores *out, lt_error *err) {
    int64_t total = lt_confusion_total(cm), correct = 0;
    for (int c = 0; c < cm->num_classes; c++) correct += cm->counts[(int64_t)c * cm->num_classes + c];
    out->accuracy = ratio(correct, total);
    if (average == LT_AVERAGE_MICRO) {
        /* pooled tp = correct, pooled fp = pooled fn = total - correct */
        out->precision = out->recall = out->f1 = out->accuracy;
        return 0;
    }
    if (average != LT_AVERAGE_MACRO && average != LT_AVERAGE_WEIGHTED) return lt_fail(err, "unknown average %d", (int)average);
    double sum_p = 0, sum_r = 0, sum_f = 0, sum_w = 0;
    for (int c = 0; c < cm->num_classes; c++) {  /* c: class */
        int64_t tp, fp, fn;
        class_counts(cm, c, &tp, &fp, &fn);
        double w = average == LT_AVERAGE_MACRO ? (tp + fp + fn > 0 ? 1.0 : 0.0) : (double)(tp + fn);
        sum_p += w * ratio(tp, tp + fp);
        sum_r += w * ratio(tp, tp + fn);
        sum_f += w * ratio(2 * tp, 2 * tp + fp + fn);
        sum_w += w;
    }
    out->precision = sum_w > 0 ? sum_p / sum_w : 0.0;
    out->recall = sum_w > 0 ? sum_r / sum_w : 0.0;
    out->f1 = sum_w > 0 ? sum_f / sum_w : 0.0;
    return 0;
}

int64_t lt_count_nonfinite(const lt_tensor *t) {
    if (lt_numel(t) == 0) return 0;
    lt_iter it;
    const lt_tensor *ts[1] = {t};
    lt_iter_init(&it, 1, ts);
    int64_t bad = 0;
    for (int64_t r = 0; r < it.rows; r++) {  /* r: row of the merged layout */
        float *row;
        lt_iter_row(&it, r, &row);
        int64_t stride = it.stride[0][it.ndim - 1];
        for (int64_t i = 0; i < it.row_len; i++) bad += !isfinite(row[i * stride]);  /* i: element */
    }
    return bad;
}
