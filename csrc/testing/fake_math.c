/* The fake device's tensor arithmetic (backend_api.h's binary, scalar, unary, addcmul, reduce and
 * confusion_update): the host's own functions of tensor_math.c, from the static core linked into this
 * module, run on host views of the fake's memory, so that the specs compare the device path with the
 * host's bit for bit; recorded instead of run while a CUDA graph is captured (fake_graph.c). */
#include <math.h>

#include "fake.h"

#include "../core/tensor/tensor_math.h"

/* A borrowed host storage behind a fake device pointer: a view of it is an ordinary host tensor. */
typedef struct host_view {
    lt_storage storage;
    lt_tensor t;
} host_view;

static void view_of(host_view *v, const float *device, int ndim, const int64_t *size, const int64_t *stride) {
    memset(v, 0, sizeof *v);
    int64_t last = 0;
    for (int d = 0; d < ndim; d++) last += size[d] > 0 ? (size[d] - 1) * stride[d] : 0;
    v->storage.data = fake_host_of(device);
    v->storage.numel = last + 1;
    v->storage.dtype = LT_FLOAT32;
    v->storage.device = LT_DEVICE_CPU;
    v->storage.refcount = 1 << 20;  /* borrowed: never released to 0 */
    v->t.storage = &v->storage;
    v->t.ndim = ndim;
    for (int d = 0; d < ndim; d++) {
        v->t.size[d] = size[d];
        v->t.stride[d] = stride[d];
    }
}

static int binary_now(float *out, const float *a, const float *b, int op, float alpha, const lt_elementwise_shape *s,
                      lt_error *err) {
    host_view o, x, y;
    view_of(&o, out, s->ndim, s->size, s->out_stride);
    view_of(&x, a, s->ndim, s->size, s->a_stride);
    view_of(&y, b, s->ndim, s->size, s->b_stride);
    return lt_binary_into(&o.t, &x.t, &y.t, (lt_binop)op, alpha, err);
}
FAKE_DEFERRED(binary_deferred, binary_now(a.out, a.a, a.b, a.op, a.alpha, &a.s, err), (float *, out),
              (const float *, a), (const float *, b), (int, op), (float, alpha), (lt_elementwise_shape, s))
int fake_binary(float *out, const float *a, const float *b, int op, float alpha, const lt_elementwise_shape *s,
                lt_error *err) {
    return binary_deferred(out, a, b, op, alpha, *s, err);
}

static int scalar_now(float *out, const float *a, float value, int op, int reversed, const lt_elementwise_shape *s,
                      lt_error *err) {
    host_view o, x;
    view_of(&o, out, s->ndim, s->size, s->out_stride);
    view_of(&x, a, s->ndim, s->size, s->a_stride);
    return lt_scalar_into(&o.t, &x.t, value, (lt_binop)op, reversed != 0, err);
}
FAKE_DEFERRED(scalar_deferred, scalar_now(a.out, a.a, a.value, a.op, a.reversed, &a.s, err), (float *, out),
              (const float *, a), (float, value), (int, op), (int, reversed), (lt_elementwise_shape, s))
int fake_scalar(float *out, const float *a, float value, int op, int reversed, const lt_elementwise_shape *s,
                lt_error *err) {
    return scalar_deferred(out, a, value, op, reversed, *s, err);
}

static int unary_now(float *out, const float *a, int op, float p1, float p2, const lt_elementwise_shape *s,
                     lt_error *err) {
    host_view o, x;
    view_of(&o, out, s->ndim, s->size, s->out_stride);
    view_of(&x, a, s->ndim, s->size, s->a_stride);
    return lt_unary_into(&o.t, &x.t, (lt_unop)op, p1, p2, err);
}
FAKE_DEFERRED(unary_deferred, unary_now(a.out, a.a, a.op, a.p1, a.p2, &a.s, err), (float *, out), (const float *, a),
              (int, op), (float, p1), (float, p2), (lt_elementwise_shape, s))
int fake_unary(float *out, const float *a, int op, float p1, float p2, const lt_elementwise_shape *s, lt_error *err) {
    return unary_deferred(out, a, op, p1, p2, *s, err);
}

static int addcmul_now(float *out, const float *a, const float *b, float value, const lt_elementwise_shape *s,
                       lt_error *err) {
    host_view o, x, y;
    view_of(&o, out, s->ndim, s->size, s->out_stride);
    view_of(&x, a, s->ndim, s->size, s->a_stride);
    view_of(&y, b, s->ndim, s->size, s->b_stride);
    return lt_addcmul_into(&o.t, &x.t, &y.t, value, err);
}
FAKE_DEFERRED(addcmul_deferred, addcmul_now(a.out, a.a, a.b, a.value, &a.s, err), (float *, out), (const float *, a),
              (const float *, b), (float, value), (lt_elementwise_shape, s))
int fake_addcmul(float *out, const float *a, const float *b, float value, const lt_elementwise_shape *s,
                 lt_error *err) {
    return addcmul_deferred(out, a, b, value, *s, err);
}

/* The (outer, n, inner) array reduced over its middle dimension by the host's lt_reduce_dim. */
static int reduce_now(float *values, float *indices, const float *in, const lt_reduce_shape *s, lt_error *err) {
    int64_t size[3] = {s->outer, s->n, s->inner}, stride[3] = {s->n * s->inner, s->inner, 1};
    host_view x;
    view_of(&x, in, 3, size, stride);
    lt_tensor v = {0}, at = {0};
    lt_reduce_args args = {(lt_reduce_op)s->op, s->unbiased != 0, s->p};
    int rc = lt_reduce_dim(&v, indices ? &at : NULL, &x.t, 1, false, args, err);
    if (rc == 0) {
        size_t bytes = (size_t)(s->outer * s->inner) * sizeof(float);
        memcpy(fake_host_of(values), lt_data(&v), bytes);
        if (indices) memcpy(fake_host_of(indices), lt_data(&at), bytes);
    }
    lt_tensor_release(&v);
    lt_tensor_release(&at);
    return rc;
}
FAKE_DEFERRED(reduce_deferred, reduce_now(a.values, a.indices, a.in, &a.s, err), (float *, values),
              (float *, indices), (const float *, in), (lt_reduce_shape, s))
int fake_reduce(float *values, float *indices, const float *in, const lt_reduce_shape *s, lt_error *err) {
    return reduce_deferred(values, indices, in, *s, err);
}

/* As the CUDA kernel: each sample's argmax (first on ties, NaN the largest) against its target. */
static int confusion_update_now(uint64_t *counts, const float *logits, const float *target, const lt_confusion_shape *s,
                                lt_error *err) {
    uint64_t *c = fake_host_of(counts);
    const float *x = fake_host_of(logits), *t = fake_host_of(target);
    for (int64_t i = 0; i < s->batch; i++) {
        const float *row = x + i * s->logit_stride[0];
        int64_t best = 0;
        for (int64_t k = 1; k < s->classes && !isnan(row[best * s->logit_stride[1]]); k++) {
            float v = row[k * s->logit_stride[1]], b = row[best * s->logit_stride[1]];
            if (isnan(v) || v > b) best = k;
        }
        float label = t[i * s->target_stride];
        double cls = (double)label - (s->one_based ? 1.0 : 0.0);
        if (label == floorf(label) && cls >= 0 && cls < (double)s->classes)
            c[(int64_t)cls * s->classes + best]++;
        else
            c[s->classes * s->classes]++;
    }
    return 0;
}
FAKE_DEFERRED(confusion_update_deferred, confusion_update_now(a.counts, a.logits, a.target, &a.s, err),
              (uint64_t *, counts), (const float *, logits), (const float *, target), (lt_confusion_shape, s))
int fake_confusion_update(uint64_t *counts, const float *logits, const float *target, const lt_confusion_shape *s,
                          lt_error *err) {
    return confusion_update_deferred(counts, logits, target, *s, err);
}
