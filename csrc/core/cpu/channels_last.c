/* The channels-last CPU implementations' table entries (nn/channels_last.h): BatchNorm, the fused
 * BatchNorm+ReLU+pool and max pooling over (N, H, W, C) rows of float32 or bf16, computed by
 * batchnorm_channels_last.c and pool_channels_last.c. A layer's state is its BatchNorm scratch (the parts' sums). */
#include <stdlib.h>

#include "batchnorm_channels_last.h"
#include "pool_channels_last.h"

static bool supports_any(const lt_impl *self, const void *shape, lt_precision p) {
    return true;
}

typedef struct bn_state {
    double *scratch;
    int64_t capacity;  /* doubles */
} bn_state;

static void release_bn(void *state) {
    bn_state *st = state;
    if (st) free(st->scratch);
    free(st);
}

/* The layer's scratch for C channels, grown once to the size it needs. */
static double *scratch_for(lt_kernel_ctx *ctx, int64_t c) {
    if (!ctx->state) return lt_fail(ctx->err, "a channels-last BatchNorm needs its layer's kernel handle"), NULL;
    bn_state *st = *ctx->state;
    if (!st && !(st = *ctx->state = calloc(1, sizeof *st))) return lt_fail(ctx->err, "out of memory"), NULL;
    int64_t need = lt_cpu_bn_channels_last_scratch_size(c);
    if (st->capacity < need) {
        double *p = malloc((size_t)need * sizeof *p);
        if (!p) return lt_fail(ctx->err, "out of memory (BatchNorm scratch for %lld channels)", (long long)c), NULL;
        free(st->scratch);
        st->scratch = p;
        st->capacity = need;
    }
    return st->scratch;
}

static lt_channels_last_dims dims_of(lt_bn_channels_last_shape s) { return (lt_channels_last_dims){s.n, s.h, s.w, s.c}; }

static lt_cpu_bn_channels_last_forward_args forward_args(void *out, const void *in, lt_bn_vectors v, lt_bn_channels_last_shape s,
                                            lt_batchnorm_params p, double *scratch) {
    return (lt_cpu_bn_channels_last_forward_args){.out = lt_rows_of(out, s.y, s.c), .input = lt_rows_of((void *)in, s.x, s.c),
                                     .shape = dims_of(s), .weight = v.weight, .bias = v.bias,
                                     .running_mean = v.running_mean, .running_var = v.running_var,
                                     .save_mean = v.save_mean, .save_invstd = v.save_invstd, .scratch = scratch,
                                     .p = p, .act = s.act};
}

static lt_cpu_bn_channels_last_backward_args backward_args(void *dinp, float *dweight, float *dbias, const void *dout,
                                              const void *in, lt_bn_vectors v, lt_bn_channels_last_shape s, double *scratch) {
    return (lt_cpu_bn_channels_last_backward_args){.grad_input = lt_rows_of(dinp, s.dx, s.c),
                                      .grad_output = lt_rows_of((void *)dout, s.dy, s.c),
                                      .input = lt_rows_of((void *)in, s.x, s.c), .shape = dims_of(s),
                                      .weight = v.weight, .bias = v.bias, .save_mean = v.save_mean,
                                      .save_invstd = v.save_invstd, .grad_weight = dweight, .grad_bias = dbias,
                                      .scratch = scratch, .training = s.training, .act = s.act};
}

static int bn_forward(lt_kernel_ctx *ctx, void *out, const void *in, lt_bn_vectors v, lt_bn_channels_last_shape s,
                      lt_batchnorm_params p) {
    double *scratch = scratch_for(ctx, s.c);
    if (!scratch) return -1;
    lt_cpu_bn_channels_last_forward_args a = forward_args(out, in, v, s, p, scratch);
    lt_cpu_bn_channels_last_forward(&a);
    return 0;
}

static int bn_backward(lt_kernel_ctx *ctx, void *dinp, float *dweight, float *dbias, const void *dout, const void *in,
                       lt_bn_vectors v, lt_bn_channels_last_shape s) {
    double *scratch = scratch_for(ctx, s.c);
    if (!scratch) return -1;
    lt_cpu_bn_channels_last_backward_args a = backward_args(dinp, dweight, dbias, dout, in, v, s, scratch);
    lt_cpu_bn_channels_last_backward(&a);
    return 0;
}

static int pool_forward(lt_kernel_ctx *ctx, void *out, uint8_t *codes, const void *in, lt_bn_vectors v,
                        lt_bn_channels_last_shape s, lt_batchnorm_params p) {
    double *scratch = scratch_for(ctx, s.c);
    if (!scratch) return -1;
    lt_cpu_bn_channels_last_forward_args a = forward_args(out, in, v, s, p, scratch);
    lt_cpu_bn_relu_pool_channels_last_forward(&a, codes);
    return 0;
}

static int pool_backward(lt_kernel_ctx *ctx, void *dinp, float *dweight, float *dbias, const void *dout,
                         const uint8_t *codes, const void *in, lt_bn_vectors v, lt_bn_channels_last_shape s) {
    double *scratch = scratch_for(ctx, s.c);
    if (!scratch) return -1;
    lt_cpu_bn_channels_last_backward_args a = backward_args(dinp, dweight, dbias, dout, in, v, s, scratch);
    lt_cpu_bn_relu_pool_channels_last_backward(&a, codes);
    return 0;
}

const lt_batchnorm_channels_last_impl lt_batchnorm_channels_last_cpu = {
    .base = {.name = "cpu", .supports = supports_any, .release = release_bn},
    .forward = bn_forward,
    .backward = bn_backward,
    .pool_forward = pool_forward,
    .pool_backward = pool_backward,
};

static lt_pool_shape pool_shape_of(lt_maxpool_channels_last_shape s) {
    return (lt_pool_shape){{s.n, s.h, s.w, s.c}, s.ho, s.wo, s.p.kernel_h, s.p.kernel_w, s.p.stride_h, s.p.stride_w,
                           s.p.pad_h, s.p.pad_w, s.p.relu};
}

static int maxpool_forward(lt_kernel_ctx *ctx, void *out, uint8_t *codes, const void *in, lt_maxpool_channels_last_shape s) {
    lt_cpu_maxpool_channels_last_forward(lt_rows_of(out, s.y, s.c), codes, lt_rows_of((void *)in, s.x, s.c), pool_shape_of(s));
    return 0;
}

static int maxpool_backward(lt_kernel_ctx *ctx, void *dinp, const void *dout, const uint8_t *codes,
                            lt_maxpool_channels_last_shape s) {
    lt_cpu_maxpool_channels_last_backward(lt_rows_of(dinp, s.dx, s.c), lt_rows_of((void *)dout, s.dy, s.c), codes,
                             pool_shape_of(s));
    return 0;
}

const lt_maxpool2d_channels_last_impl lt_maxpool2d_channels_last_cpu = {
    .base = {.name = "cpu", .supports = supports_any},
    .forward = maxpool_forward,
    .backward = maxpool_backward,
};
