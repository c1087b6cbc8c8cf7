/* The contract between the layer fronts (csrc/core/nn/) and their implementations (csrc/core/cpu/, and
 * csrc/core/dnnl/ or a CUDA folder later): for each operation, the shape struct a front fills and the
 * table entry an implementation provides (kernel.h explains the tables).
 *
 * Implementations compute on raw pointers, outputs first, and take the shape struct by value: sizes,
 * the strides of the tensors whose layout is free, and the operation's constants. A front has already
 * checked every size, resized every output and scratch buffer and copied what arrived in a layout the
 * operation does not take, so an implementation checks nothing and allocates nothing; it returns 0, or
 * -1 after writing ctx->err (only a data-dependent failure, such as a class index out of range, or an
 * implementation's own, such as a failed oneDNN call). */
#ifndef LT_NN_OPS_H
#define LT_NN_OPS_H

#include "../kernel/kernel.h"
#include "nn.h"

/* The batch and channel strides of an (N, C, ...) tensor whose trailing dimensions are contiguous. */
typedef struct lt_nc_strides {
    int64_t sn, sc;
} lt_nc_strides;

/* ---- convolution ---- */

typedef struct lt_conv2d_shape {
    int64_t n, cin, h, w;     /* input N x Cin x H x W */
    int64_t cout, ho, wo;     /* output N x Cout x Ho x Wo, batch-folded (C, N, H, W) and dense */
    int64_t k;                /* Cin * kh * kw: the rows of the im2col matrix */
    lt_conv2d_params p;
    lt_nc_strides x, dx;      /* input and grad_input (planes contiguous); grad_output comes batch-folded */
} lt_conv2d_shape;

typedef struct lt_conv2d_impl {
    lt_impl base;
    /* floats of scratch (the layer's cols buffer) a pass needs */
    int64_t (*forward_scratch)(const lt_conv2d_shape *s);
    int64_t (*backward_scratch)(const lt_conv2d_shape *s, bool grad_input);
    /* weight dense Cout x K; bias Cout or NULL */
    int (*forward)(lt_kernel_ctx *ctx, float *out, const float *in, const float *weight, const float *bias,
                   float *cols, lt_conv2d_shape s);
    /* dweight += dL/dW, dbias += dL/db (NULL: none), dinp = dL/dx (NULL: not needed) */
    int (*backward)(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout, const float *in,
                    const float *weight, float *scratch, lt_conv2d_shape s);
} lt_conv2d_impl;

/* ---- channels-last convolution (mixed precision, see channels_last.h) ---- */

/* An activation's element type and its (n, c, h, w) strides. */
typedef struct lt_act_desc {
    lt_dtype dtype;
    int64_t stride[4];
} lt_act_desc;

/* The output (and grad_output) is dense channels-last, bf16 at LT_BF16 and float32 at LT_FP32; the
 * input (and grad_input) as in_desc describes. Weight, its gradient and bias are float32. */
typedef struct lt_conv2d_channels_last_impl {
    lt_impl base;
    int (*forward)(lt_kernel_ctx *ctx, void *out, const void *in, const float *weight, const float *bias,
                   lt_conv2d_shape s, lt_act_desc in_desc);
    /* dinp NULL: not needed; dbias NULL: no bias */
    int (*backward)(lt_kernel_ctx *ctx, void *dinp, float *dweight, float *dbias, const void *dout, const void *in,
                    const float *weight, lt_conv2d_shape s, lt_act_desc in_desc);
} lt_conv2d_channels_last_impl;

/* ---- linear: every tensor contiguous ---- */

typedef struct lt_linear_shape {
    int64_t batch, in, out;
} lt_linear_shape;

typedef struct lt_linear_impl {
    lt_impl base;
    int (*forward)(lt_kernel_ctx *ctx, float *out, const float *in, const float *weight, const float *bias,
                   lt_linear_shape s);
    int (*backward)(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout, const float *in,
                    const float *weight, lt_linear_shape s);
} lt_linear_impl;

/* ---- batch normalisation ---- */

/* The per-channel vectors of a BatchNorm layer, C floats each. */
typedef struct lt_bn_vectors {
    const float *weight, *bias;          /* NULL without affine parameters */
    float *save_mean, *save_invstd;      /* written by the forward pass, read by the backward pass */
    float *running_mean, *running_var;   /* NULL without running statistics */
} lt_bn_vectors;

/* A channel's elements are n runs of `inner` contiguous floats, found through each tensor's strides. */
typedef struct lt_batchnorm_shape {
    int64_t n, c, inner;
    bool training;                       /* batch statistics (forward), and their gradient (backward) */
    lt_nc_strides x, y, dy, dx;          /* input, output, grad_output, grad_input */
} lt_batchnorm_shape;

typedef struct lt_batchnorm_impl {
    lt_impl base;
    int (*forward)(lt_kernel_ctx *ctx, float *out, const float *in, lt_bn_vectors v, lt_batchnorm_shape s,
                   lt_batchnorm_params p);
    /* dinp NULL: not needed; dweight, dbias (accumulated) NULL without affine parameters */
    int (*backward)(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout, const float *in,
                    lt_bn_vectors v, lt_batchnorm_shape s);
    /* The split for a reduction between processes (nn.h, lt_batchnorm_statistics): sums has 2C + 1 doubles. */
    int (*statistics)(lt_kernel_ctx *ctx, double *sums, const float *in, lt_batchnorm_shape s);
    int (*normalize)(lt_kernel_ctx *ctx, float *out, const float *in, const double *sums, lt_bn_vectors v,
                     lt_batchnorm_shape s, lt_batchnorm_params p);
    int (*grad_sums)(lt_kernel_ctx *ctx, double *sums, float *dweight, float *dbias, const float *dout,
                     const float *in, lt_bn_vectors v, lt_batchnorm_shape s);
    int (*grad_input)(lt_kernel_ctx *ctx, float *dinp, const double *sums, int64_t count, const float *dout,
                      const float *in, lt_bn_vectors v, lt_batchnorm_shape s);
} lt_batchnorm_impl;

/* BatchNorm -> ReLU -> 2x2 max pooling. The output, its codes and grad_output share one layout (y). */
typedef struct lt_bn_relu_pool_shape {
    int64_t n, c, h, w, ho, wo;          /* ho = h / 2, wo = w / 2 */
    bool training;
    lt_nc_strides x, y, dx;              /* input (planes contiguous), output, grad_input */
} lt_bn_relu_pool_shape;

typedef struct lt_bn_relu_pool_impl {
    lt_impl base;
    int (*forward)(lt_kernel_ctx *ctx, float *out, float *codes, const float *in, lt_bn_vectors v,
                   lt_bn_relu_pool_shape s, lt_batchnorm_params p);
    int (*backward)(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout, const float *out,
                    const float *codes, const float *in, lt_bn_vectors v, lt_bn_relu_pool_shape s);
} lt_bn_relu_pool_impl;

/* ---- channels-last BatchNorm, BatchNorm -> ReLU -> 2x2 max pooling, and max pooling (mixed
 * precision, see channels_last.h): every activation dense (N, H, W, C), of the element types given ---- */

typedef enum lt_bn_act { LT_BN_ACT_NONE, LT_BN_ACT_RELU, LT_BN_ACT_GELU } lt_bn_act;

typedef struct lt_bn_channels_last_shape {
    int64_t n, h, w, c;          /* the input */
    bool training;
    lt_bn_act act;               /* applied after the normalisation (BatchNorm; the fused pool has ReLU) */
    lt_dtype x, y, dy, dx;       /* element types of input, output, grad_output, grad_input */
} lt_bn_channels_last_shape;

typedef struct lt_batchnorm_channels_last_impl {
    lt_impl base;
    int (*forward)(lt_kernel_ctx *ctx, void *out, const void *in, lt_bn_vectors v, lt_bn_channels_last_shape s,
                   lt_batchnorm_params p);
    /* dinp NULL: not needed */
    int (*backward)(lt_kernel_ctx *ctx, void *dinp, float *dweight, float *dbias, const void *dout, const void *in,
                    lt_bn_vectors v, lt_bn_channels_last_shape s);
    /* the fused pool: out (N, H/2, W/2, C); codes one byte per output element (the window's winner) */
    int (*pool_forward)(lt_kernel_ctx *ctx, void *out, uint8_t *codes, const void *in, lt_bn_vectors v,
                        lt_bn_channels_last_shape s, lt_batchnorm_params p);
    int (*pool_backward)(lt_kernel_ctx *ctx, void *dinp, float *dweight, float *dbias, const void *dout,
                         const uint8_t *codes, const void *in, lt_bn_vectors v, lt_bn_channels_last_shape s);
} lt_batchnorm_channels_last_impl;

typedef struct lt_maxpool_channels_last_shape {
    int64_t n, h, w, c, ho, wo;
    lt_pool2d_params p;
    lt_dtype x, y, dy, dx;
} lt_maxpool_channels_last_shape;

typedef struct lt_maxpool2d_channels_last_impl {
    lt_impl base;
    /* codes: one byte per output element, the maximum's place in its window */
    int (*forward)(lt_kernel_ctx *ctx, void *out, uint8_t *codes, const void *in, lt_maxpool_channels_last_shape s);
    int (*backward)(lt_kernel_ctx *ctx, void *dinp, const void *dout, const uint8_t *codes, lt_maxpool_channels_last_shape s);
} lt_maxpool2d_channels_last_impl;

/* ---- pooling: planes contiguous, batch and channel strides per tensor ---- */

typedef struct lt_pool2d_shape {
    int64_t n, c, h, w, ho, wo;
    lt_pool2d_params p;
    lt_nc_strides x, y, dy, dx, idx;     /* input, output, grad_output, grad_input, indices */
    /* input and output (and in backward their gradients) store their planes consecutively in the same
     * order, with an even height: all planes are one tall image whose 2x2 windows never straddle two */
    bool stacked;
} lt_pool2d_shape;

/* Whether max pooling with windows p keeps indices: every window but the common 2x2 stride 2 without
 * padding, whose backward pass finds the maximum again from input and output. */
static inline bool lt_maxpool2d_keeps_indices(lt_pool2d_params p) {
    return !(p.kernel_h == 2 && p.kernel_w == 2 && p.stride_h == 2 && p.stride_w == 2 && p.pad_h == 0 && p.pad_w == 0);
}

typedef struct lt_maxpool2d_impl {
    lt_impl base;
    /* indices NULL for the 2x2 stride-2 window (the backward pass finds the maximum again) */
    int (*forward)(lt_kernel_ctx *ctx, float *out, float *indices, const float *in, lt_pool2d_shape s);
    int (*backward)(lt_kernel_ctx *ctx, float *dinp, const float *dout, const float *out, const float *indices,
                    const float *in, lt_pool2d_shape s);
} lt_maxpool2d_impl;

/* average pooling, fixed windows (avgpool2d) or adaptive ones (adaptive_avgpool2d: ho, wo = p.out_h, p.out_w) */
typedef struct lt_avgpool2d_impl {
    lt_impl base;
    int (*forward)(lt_kernel_ctx *ctx, float *out, const float *in, lt_pool2d_shape s);
    int (*backward)(lt_kernel_ctx *ctx, float *dinp, const float *dout, lt_pool2d_shape s);
} lt_avgpool2d_impl;

/* ---- elementwise: every tensor dense and laid out alike, so that they are flat arrays of n ---- */

typedef struct lt_activation_shape {
    const char *activation;  /* the entry's name must match it */
    int64_t n;
    float negative_slope;
} lt_activation_shape;

typedef struct lt_activation_impl {
    lt_impl base;
    const char *activation;
    /* out may be in */
    int (*forward)(lt_kernel_ctx *ctx, float *out, const float *in, lt_activation_shape s);
    /* in: the forward pass's input, or its output when the pass ran in place; out: its output */
    int (*backward)(lt_kernel_ctx *ctx, float *dinp, const float *dout, const float *in, const float *out,
                    lt_activation_shape s);
} lt_activation_impl;

/* Activations of any element types (mixed precision): each tensor dense and laid out alike. */
typedef struct lt_activation_mixed_shape {
    lt_activation_shape a;
    lt_dtype x, y, dy, dx;   /* input, output, grad_output, grad_input */
} lt_activation_mixed_shape;

typedef struct lt_activation_mixed_impl {
    lt_impl base;
    /* whether it computes activation `name` */
    bool (*computes)(const char *name);
    int (*forward)(lt_kernel_ctx *ctx, void *out, const void *in, lt_activation_mixed_shape s);
    /* in: the forward pass's input (its output when it ran in place) */
    int (*backward)(lt_kernel_ctx *ctx, void *dinp, const void *dout, const void *in, lt_activation_mixed_shape s);
} lt_activation_mixed_impl;

/* supports() of the CPU activations: the entry's activation at fp32. */
bool lt_activation_supports_fp32(const lt_impl *self, const void *shape, lt_precision p);

typedef struct lt_dropout_shape {
    int64_t n;
    double p;
} lt_dropout_shape;

typedef struct lt_dropout_impl {
    lt_impl base;
    /* draws the mask from the global generator, in order */
    int (*forward)(lt_kernel_ctx *ctx, float *out, float *mask, const float *in, lt_dropout_shape s);
    int (*backward)(lt_kernel_ctx *ctx, float *dinp, const float *dout, const float *mask, lt_dropout_shape s);
} lt_dropout_impl;

/* ---- softmax and losses: contiguous tensors ---- */

/* A contiguous tensor seen as outer x n x inner, normalised along n. */
typedef struct lt_softmax_shape {
    int64_t outer, n, inner;
    bool log;
} lt_softmax_shape;

typedef struct lt_softmax_impl {
    lt_impl base;
    int (*forward)(lt_kernel_ctx *ctx, float *out, const float *in, lt_softmax_shape s);
    int (*backward)(lt_kernel_ctx *ctx, float *dinp, const float *dout, const float *out, lt_softmax_shape s);
} lt_softmax_impl;

/* Classification over batch x classes scores; targets hold 1-based classes as floats. */
typedef struct lt_class_loss_shape {
    int64_t batch, classes;
    double label_smoothing;
    lt_reduction reduction;
    int64_t ignore_index;    /* 0-based, or -1 */
} lt_class_loss_shape;

/* Cross entropy of logits, and NLL of log-probabilities: one table type. For cross entropy the forward
 * pass writes log_softmax(scores) into log_probs; NLL reads its input there (scores is unused).
 * The reduced loss goes into *loss, one float32 where the operands are (NULL for reduction none), so
 * that on a GPU the forward pass does not wait: a target that is not a class index fails it on the host,
 * and on a GPU at the next wait for the device (backend_api.h), the loss being NaN.
 * weight: class weights or NULL; dout: per-sample gradients (reduction none) or NULL, then the gradient
 * of the loss is scale, times *dscale when dscale is not NULL (one float32 where the operands are:
 * autograd's gradient, which stays on the GPU). */
typedef struct lt_class_loss_impl {
    lt_impl base;
    int (*forward)(lt_kernel_ctx *ctx, float *loss, float *losses, float *log_probs, const float *scores,
                   const float *target, const float *weight, lt_class_loss_shape s);
    int (*backward)(lt_kernel_ctx *ctx, float *dinp, const float *log_probs, const float *target, const float *weight,
                    const float *dout, const float *dscale, double scale, lt_class_loss_shape s);
} lt_class_loss_impl;

typedef struct lt_mse_shape {
    int64_t n;
    lt_reduction reduction;
} lt_mse_shape;

typedef struct lt_mse_impl {
    lt_impl base;
    /* loss, dscale: as the classification losses' */
    int (*forward)(lt_kernel_ctx *ctx, float *loss, float *losses, const float *in, const float *target,
                   lt_mse_shape s);
    int (*backward)(lt_kernel_ctx *ctx, float *dinp, const float *in, const float *target, const float *dout,
                    const float *dscale, double scale, lt_mse_shape s);
} lt_mse_impl;

/* ---- the implementations (one line per file that provides one) ---- */

/* csrc/core/cpu/ */
extern const lt_conv2d_impl lt_conv2d_cpu;
extern const lt_linear_impl lt_linear_cpu;
extern const lt_batchnorm_impl lt_batchnorm_cpu;
extern const lt_bn_relu_pool_impl lt_bn_relu_pool_cpu;
extern const lt_maxpool2d_impl lt_maxpool2d_cpu;
extern const lt_avgpool2d_impl lt_avgpool2d_cpu, lt_adaptive_avgpool2d_cpu;
extern const lt_activation_impl lt_relu_cpu, lt_leaky_relu_cpu, lt_gelu_cpu;
extern const lt_activation_mixed_impl lt_activation_mixed_cpu;
extern const lt_dropout_impl lt_dropout_cpu;
extern const lt_softmax_impl lt_softmax_cpu;
extern const lt_class_loss_impl lt_cross_entropy_cpu, lt_nll_loss_cpu;
extern const lt_mse_impl lt_mse_loss_cpu;
extern const lt_batchnorm_channels_last_impl lt_batchnorm_channels_last_cpu;
extern const lt_maxpool2d_channels_last_impl lt_maxpool2d_channels_last_cpu;

/* csrc/core/dnnl/ (when built with oneDNN) */
#ifdef LT_HAVE_DNNL
extern const lt_conv2d_channels_last_impl lt_conv2d_dnnl;
extern const lt_linear_impl lt_linear_dnnl;
#endif

#endif
