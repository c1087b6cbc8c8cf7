/* Internal to the specs' fake device (fake_device.c: memory and the interface; fake_ops.c: the host's
 * implementations behind its tables). */
#ifndef LT_TESTING_FAKE_H
#define LT_TESTING_FAKE_H

#include <stdint.h>
#include <string.h>

#include "../core/device/backend_api.h"

/* A device pointer is a host address moved into the non-canonical range (fake_device.c); NULL stays NULL. */
#define FAKE_DEVICE_BIAS ((uintptr_t)1 << 62)
static inline void *fake_host_of(const void *device) {
    return device ? (void *)((uintptr_t)device - FAKE_DEVICE_BIAS) : NULL;
}

/* Writes "fake device: <msg>" into err (when not NULL) and returns -1. */
int fake_fail(lt_error *err, const char *msg);

extern const lt_backend_op fake_ops[];
extern const lt_backend_comm fake_comm;  /* fake_comm.c */
void fake_manual_seed(uint64_t seed);
int fake_ops_init(lt_error *err);

/* fake_math.c: the API's tensor arithmetic */
int fake_binary(float *out, const float *a, const float *b, int op, float alpha, const lt_elementwise_shape *s,
                lt_error *err);
int fake_scalar(float *out, const float *a, float value, int op, int reversed, const lt_elementwise_shape *s,
                lt_error *err);
int fake_unary(float *out, const float *a, int op, float p1, float p2, const lt_elementwise_shape *s, lt_error *err);
int fake_addcmul(float *out, const float *a, const float *b, float value, const lt_elementwise_shape *s,
                 lt_error *err);
int fake_reduce(float *values, float *indices, const float *in, const lt_reduce_shape *s, lt_error *err);
int fake_confusion_update(uint64_t *counts, const float *logits, const float *target, const lt_confusion_shape *s,
                          lt_error *err);

#endif
