/* Classification metrics from a confusion matrix: the matrix is updated per batch (argmax of the
 * logits against the targets) and the scores are derived from it at the end of an epoch, as
 * torchmetrics does. Class labels are 0-based here; the bindings convert from Lua's 1-based ones. */
#ifndef LT_METRICS_H
#define LT_METRICS_H

#include <stdint.h>

#include "../base/error.h"
#include "metrics_device.h"
#include "../tensor/tensor.h"

#define LT_MAX_CLASSES 100000

typedef struct lt_confusion {
    int num_classes;
    int64_t *counts;  /* num_classes x num_classes, row = target, column = prediction */
    /* Batches of logits on a device are counted there (metrics_device.h); lt_confusion_gather adds
     * them to counts. */
    lt_device_counts pending;
} lt_confusion;

typedef enum { LT_AVERAGE_MACRO, LT_AVERAGE_MICRO, LT_AVERAGE_WEIGHTED } lt_average;

typedef struct lt_class_scores {
    double accuracy;   /* correct / total (0 for an empty matrix) */
    double precision;  /* averaged as asked */
    double recall;
    double f1;
} lt_class_scores;

int lt_confusion_init(lt_confusion *cm, int num_classes, lt_error *err);
void lt_confusion_free(lt_confusion *cm);
/* dst (uninitialised) becomes a copy of src, the counts pending on a device copied there (no wait). */
int lt_confusion_copy(lt_confusion *dst, const lt_confusion *src, lt_error *err);
void lt_confusion_reset(lt_confusion *cm);
int64_t lt_confusion_total(const lt_confusion *cm);

/* Adds one batch. target: (B) class indices as floats, 0-based when `one_based` is false.
 * Either logits (B, K) with K = num_classes (the prediction is the argmax, NaN counting as the
 * largest value and the first maximum winning, as torch.argmax) or predictions (B) as class indices. */
int lt_confusion_update_logits(lt_confusion *cm, const lt_tensor *logits, const lt_tensor *target, bool one_based,
                               lt_error *err);
/* Moves the counts pending on a device into counts (a copy that waits for the device): call it before
 * reading counts (the scores, total, per_class). Fails, after adding the valid samples, when targets
 * counted on the device were not class indices. */
int lt_confusion_gather(lt_confusion *cm, lt_error *err);
int lt_confusion_update_labels(lt_confusion *cm, const lt_tensor *pred, const lt_tensor *target, bool one_based,
                               lt_error *err);

/* Per class (arrays of num_classes): precision tp/(tp+fp), recall tp/(tp+fn), f1 2tp/(2tp+fp+fn),
 * 0 where the denominator is 0 (scikit-learn's zero_division=0); support = tp + fn. */
void lt_confusion_per_class(const lt_confusion *cm, double *precision, double *recall, double *f1, int64_t *support);

/* Averaged scores. Macro averages over the classes that occur in the targets or the predictions
 * (classes with tp + fp + fn = 0 are left out, as scikit-learn and torchmetrics do); weighted
 * averages by support; micro pools the counts (all three equal the accuracy). */
int lt_confusion_scores(const lt_confusion *cm, lt_average average, lt_class_scores *out, lt_error *err);

/* Number of NaN and infinite elements of t (for anomaly detection). */
int64_t lt_count_nonfinite(const lt_tensor *t);

#endif
