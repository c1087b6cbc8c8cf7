/* Internal to the specs' fake device (fake_device.c: memory and the interface; fake_ops.c: the host's
 * implementations behind its tables). */
#ifndef LT_TESTING_FAKE_H
#define LT_TESTING_FAKE_H

#include <stdint.h>
#include <string.h>

#include "../core/device/backend_api.h"
#include "../core/nn/ops.h"

/* A device pointer is a host address moved into the non-canonical range (fake_device.c); NULL stays NULL. */
#define FAKE_DEVICE_BIAS ((uintptr_t)1 << 62)
static inline void *fake_host_of(const void *device) {
    return device ? (void *)((uintptr_t)device - FAKE_DEVICE_BIAS) : NULL;
}

/* p at its host address, of p's type (what the host's kernels take). */
#define FAKE_HOST(p) ((__typeof__(p))fake_host_of(p))

/* A BatchNorm layer's vectors at their host addresses. */
static inline lt_bn_vectors fake_host_vectors(lt_bn_vectors v) {
    return (lt_bn_vectors){FAKE_HOST(v.weight),      FAKE_HOST(v.bias),         FAKE_HOST(v.save_mean),
                           FAKE_HOST(v.save_invstd), FAKE_HOST(v.running_mean), FAKE_HOST(v.running_var)};
}

/* Writes "fake device: <msg>" into err (when not NULL) and returns -1. */
int fake_fail(lt_error *err, const char *msg);

/* ---- CUDA graphs (fake_graph.c): while a capture goes on, calls are recorded instead of run ---- */

/* A call's arguments, copied, and what runs it. */
typedef int (*fake_call_fn)(const void *args, lt_error *err);
/* Runs fn(args) now, or records a copy of the `bytes` bytes of args for the graph being captured. */
int fake_call(fake_call_fn fn, const void *args, size_t bytes, lt_error *err);
int fake_capturing(void);
/* What the fake's memory does with a block during a capture and while graphs live (the rule of
 * csrc/cuda/graph.cu): each block has a serial number (fake_serial() when it was made), and free keeps a
 * block a live graph may use (returns 1) until no graph lives. */
uint64_t fake_serial(void);
int fake_keep_for_graphs(void *block, uint64_t serial);
/* Blocks kept until the last graph went: freed through release_now. */
void fake_set_release(void (*release_now)(void *p));
int fake_capture_begin(lt_error *err);
int fake_capture_end(void **graph, lt_error *err);
int fake_graph_launch(void *graph, lt_error *err);
void fake_graph_destroy(void *graph);

/* Defines `name`, a call that fake_call runs or records: its parameters as (type, name) pairs, copied
 * into a struct, and `run`, an expression over them (as a.<name>) and err. */
#define FAKE_DEFERRED(name, run, ...)                                                    \
    struct name##_args {                                                                 \
        FAKE_EACH(FAKE_MEMBER, __VA_ARGS__)                                              \
    };                                                                                   \
    static int name##_run(const void *p_, lt_error *err) {                               \
        struct name##_args a = *(const struct name##_args *)p_;                          \
        return run;                                                                      \
    }                                                                                    \
    static int name(FAKE_EACH_COMMA(FAKE_PARAM, __VA_ARGS__), lt_error *err) {           \
        struct name##_args a_ = {FAKE_EACH_COMMA(FAKE_NAME, __VA_ARGS__)};               \
        return fake_call(name##_run, &a_, sizeof a_, err);                               \
    }
/* The same for an implementation's entry (its first parameter an lt_kernel_ctx *c, copied too): `run`
 * sees c, with its error going where the launch's does. */
#define FAKE_DEFERRED_OP(name, run, ...)                                                 \
    struct name##_args {                                                                 \
        lt_kernel_ctx ctx;                                                               \
        FAKE_EACH(FAKE_MEMBER, __VA_ARGS__)                                              \
    };                                                                                   \
    static int name##_run(const void *p_, lt_error *err) {                               \
        struct name##_args a = *(const struct name##_args *)p_;                          \
        lt_kernel_ctx ctx_ = a.ctx, *c = &ctx_;                                          \
        c->err = err;                                                                    \
        return run;                                                                      \
    }                                                                                    \
    static int name(lt_kernel_ctx *c, FAKE_EACH_COMMA(FAKE_PARAM, __VA_ARGS__)) {        \
        struct name##_args a_ = {*c, FAKE_EACH_COMMA(FAKE_NAME, __VA_ARGS__)};           \
        return fake_call(name##_run, &a_, sizeof a_, c->err);                            \
    }
#define FAKE_MEMBER(t, n) t n;
#define FAKE_PARAM(t, n) t n
#define FAKE_NAME(t, n) n
/* m applied to each (type, name) pair, joined by nothing or by commas (up to 10 pairs). */
#define FAKE_EACH(m, ...) FAKE_PICK(__VA_ARGS__, FAKE_E10, FAKE_E9, FAKE_E8, FAKE_E7, FAKE_E6, FAKE_E5, FAKE_E4, \
                                    FAKE_E3, FAKE_E2, FAKE_E1)(m, , __VA_ARGS__)
#define FAKE_EACH_COMMA(m, ...) FAKE_PICK(__VA_ARGS__, FAKE_E10, FAKE_E9, FAKE_E8, FAKE_E7, FAKE_E6, FAKE_E5,  \
                                          FAKE_E4, FAKE_E3, FAKE_E2, FAKE_E1)(m, COMMA, __VA_ARGS__)
#define FAKE_PICK(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, which, ...) which
#define FAKE_E1(m, sep, x) m x
#define FAKE_E2(m, sep, x, ...) m x FAKE_SEP_OF(sep) FAKE_E1(m, sep, __VA_ARGS__)
#define FAKE_E3(m, sep, x, ...) m x FAKE_SEP_OF(sep) FAKE_E2(m, sep, __VA_ARGS__)
#define FAKE_E4(m, sep, x, ...) m x FAKE_SEP_OF(sep) FAKE_E3(m, sep, __VA_ARGS__)
#define FAKE_E5(m, sep, x, ...) m x FAKE_SEP_OF(sep) FAKE_E4(m, sep, __VA_ARGS__)
#define FAKE_E6(m, sep, x, ...) m x FAKE_SEP_OF(sep) FAKE_E5(m, sep, __VA_ARGS__)
#define FAKE_E7(m, sep, x, ...) m x FAKE_SEP_OF(sep) FAKE_E6(m, sep, __VA_ARGS__)
#define FAKE_E8(m, sep, x, ...) m x FAKE_SEP_OF(sep) FAKE_E7(m, sep, __VA_ARGS__)
#define FAKE_E9(m, sep, x, ...) m x FAKE_SEP_OF(sep) FAKE_E8(m, sep, __VA_ARGS__)
#define FAKE_E10(m, sep, x, ...) m x FAKE_SEP_OF(sep) FAKE_E9(m, sep, __VA_ARGS__)
#define FAKE_SEP_OF(sep) FAKE_SEP_##sep()
#define FAKE_SEP_COMMA() ,
#define FAKE_SEP_() 

extern const lt_backend_op fake_ops[];
/* fake_mixed.c: the mixed-precision (channels-last) entries of fake_ops' tables */
extern const struct lt_conv2d_channels_last_impl fake_conv2d_channels_last;
extern const struct lt_batchnorm_channels_last_impl fake_batchnorm_channels_last;
extern const struct lt_maxpool2d_channels_last_impl fake_maxpool2d_channels_last;
extern const struct lt_activation_mixed_impl fake_activation_mixed;
extern const lt_backend_comm fake_comm;  /* fake_comm.c */
void fake_manual_seed(uint64_t seed);
void fake_get_rng_state(char *out);
int fake_set_rng_state(const char *state, lt_error *err);
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
