/* Layer kernels: the fronts (this folder). A front checks its arguments, resizes outputs and scratch
 * buffers, lays tensors out as the implementations expect and picks one (kernel.h); the arithmetic is
 * in csrc/core/cpu/ (ops.h is the contract between the two).
 *
 * Each operation takes one struct of named tensors and parameters, filled by the binding from a Lua
 * table (csrc/lua/l_nn.c), so that no call counts arguments by position. A struct serves both
 * directions: forward reads input, the parameters and the outputs it fills; backward reads what is
 * marked "backward". Every struct carries the layer's kernel handle: which implementation the layer
 * runs, and the shapes of its last forward pass, against which its backward pass checks what it is
 * given ("grad_output must be 2x3x5x5, got 2x3x4x4 (the shape of the forward pass's output)"); a backward
 * pass before any forward pass is an error.
 *
 * Image tensors are 4-D (N, C, H, W) views whose H x W planes are contiguous; the batch and channel
 * strides are free. Convolutions produce their outputs in the batch-folded layout (C, N, H, W) -- an
 * ordinary (N, C, H, W) tensor with strides (H*W, N*H*W, W, 1) -- because then a whole batch is one GEMM
 * (Cout x Cin*k*k) @ (Cin*k*k x N*H*W) in both directions, and BatchNorm finds each channel contiguous.
 * The layers after a convolution keep the layout of their input (lt_resize_like), so it flows through
 * BatchNorm, ReLU and pooling to the next convolution without copies.
 *
 * Gradients of parameters are accumulated (+=), as PyTorch accumulates into .grad. Output tensors and
 * scratch buffers are resized in place (lt_tensor_resize) so that a layer allocates nothing once warm.
 */
#ifndef LT_NN_H
#define LT_NN_H

#include "../kernel/kernel.h"
#include "../tensor/tensor.h"

/* ---- layout helpers (layout.c) ---- */

/* Resizes out to in's sizes with in's dimension order (out's strides are a permutation of a dense
 * layout matching in's), or contiguous when in is not dense. */
int lt_resize_like(lt_tensor *out, const lt_tensor *in, lt_error *err);
/* The same with an element type. */
int lt_resize_like_typed(lt_tensor *out, const lt_tensor *in, lt_dtype dtype, lt_error *err);
/* Resizes out to (n, c, h, w) in the batch-folded layout (C, N, H, W). */
int lt_resize_cnhw(lt_tensor *out, int64_t n, int64_t c, int64_t h, int64_t w, lt_error *err);
/* Resizes out to (n, c, h, w) channels-last (N, H, W, C), of element type dtype: the layout of the
 * activations of mixed precision (channels_last.h). */
int lt_resize_channels_last(lt_tensor *out, int64_t n, int64_t c, int64_t h, int64_t w, lt_dtype dtype, lt_error *err);
/* out = in converted to dtype and laid out channels-last (a temporary that holds nothing yet takes in's
 * device). */
int lt_convert_channels_last(lt_tensor *out, const lt_tensor *in, lt_dtype dtype, lt_error *err);
/* True when t is 4-D (N, C, H, W) stored densely as (N, H, W, C). */
bool lt_is_channels_last(const lt_tensor *t);
/* Shares in when it is float32, else makes out (which must hold nothing, or be released by the caller)
 * a float32 copy in in's dimension order: what a float32 kernel does with a bfloat16 activation. */
int lt_as_float32(lt_tensor *out, const lt_tensor *in, lt_error *err);
/* True when t is 4-D with contiguous H x W planes. */
bool lt_planes_contiguous(const lt_tensor *t);
/* True when t is (N, C, H, W) stored as (C, N, H, W) densely. */
bool lt_is_cnhw(const lt_tensor *t);
/* True when t covers its numel elements without gaps or overlap (some permutation is contiguous). */
bool lt_is_dense(const lt_tensor *t);
/* Makes *view share t when it is float32 with contiguous planes, a contiguous float32 copy of it
 * otherwise. */
int lt_planar(lt_tensor *view, const lt_tensor *t, lt_error *err);
/* True when a and b have one shape and the same strides (size-1 dimensions aside). */
bool lt_same_strides(const lt_tensor *a, const lt_tensor *b);
/* For a kernel over flat arrays: *use = t when it is laid out as `like` (a dense tensor of t's shape),
 * else a copy of t into tmp (which the caller releases) laid out so. */
int lt_laid_out_like(lt_tensor *tmp, const lt_tensor *t, const lt_tensor *like, const lt_tensor **use, lt_error *err);

/* ---- convolution (conv2d.c) ---- */

typedef struct lt_conv2d_params {
    int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
} lt_conv2d_params;

typedef struct lt_conv2d_args {
    lt_kernel_handle *handle;
    const lt_tensor *input;                /* N x Cin x H x W */
    const lt_tensor *weight, *bias;        /* Cout x Cin x kh x kw; Cout or NULL */
    lt_tensor *output;                     /* N x Cout x Ho x Wo, batch-folded */
    lt_tensor *cols, *dy;                  /* scratch: im2col buffers; grad_output in the batch-folded layout */
    const lt_tensor *grad_output;          /* backward */
    lt_tensor *grad_input;                 /* backward: NULL when not needed */
    lt_tensor *grad_weight, *grad_bias;    /* backward: += dL/dW, dL/db (grad_bias NULL without a bias) */
    lt_conv2d_params p;
} lt_conv2d_args;

int lt_conv2d_forward(const lt_conv2d_args *a, lt_error *err);
int lt_conv2d_backward(const lt_conv2d_args *a, lt_error *err);

/* ---- linear (linear.c): out (B, out) = input (B, in) @ weight (out, in)^T + bias ---- */

typedef struct lt_linear_args {
    lt_kernel_handle *handle;
    const lt_tensor *input, *weight, *bias;  /* bias may be NULL */
    lt_tensor *output;
    const lt_tensor *grad_output;            /* backward */
    lt_tensor *grad_input;                   /* backward: NULL when not needed */
    lt_tensor *grad_weight, *grad_bias;      /* backward: accumulated */
} lt_linear_args;

int lt_linear_forward(const lt_linear_args *a, lt_error *err);
int lt_linear_backward(const lt_linear_args *a, lt_error *err);

/* ---- batch normalisation (batchnorm.c) ---- */

/* Over (N, C, ...) inputs: statistics per channel C over N and the trailing dimensions.
 * training: normalise with batch statistics, store them in save_mean / save_invstd (C) and update the
 * running statistics (when given) with momentum (momentum < 0: cumulative average over
 * num_batches_tracked, which the caller has already incremented). eval: use the running statistics.
 * The backward pass differentiates what its forward pass did (the handle remembers). */
typedef struct lt_batchnorm_params {
    bool training;
    double momentum, eps;
    int64_t num_batches_tracked;
} lt_batchnorm_params;

typedef struct lt_batchnorm_args {
    lt_kernel_handle *handle;
    const lt_tensor *input;
    const lt_tensor *weight, *bias;            /* C each, NULL without affine parameters */
    lt_tensor *running_mean, *running_var;     /* C each, NULL without running statistics */
    lt_tensor *output, *save_mean, *save_invstd;
    const lt_tensor *grad_output;              /* backward */
    lt_tensor *grad_input;                     /* backward: NULL when not needed */
    lt_tensor *grad_weight, *grad_bias;        /* backward: accumulated, NULL without affine parameters */
    lt_batchnorm_params p;                     /* forward */
    const char *activation;                    /* NULL, "relu" or "gelu": fused after the normalisation, on
                                                * channels-last inputs only (channels_last.h) */
} lt_batchnorm_args;

int lt_batchnorm_forward(const lt_batchnorm_args *a, lt_error *err);
int lt_batchnorm_backward(const lt_batchnorm_args *a, lt_error *err);

/* A training pass split where a reduction between processes goes (nn.SyncBatchNorm adds the sums of
 * every process's batch): statistics, then normalisation with the added sums; and going back, the
 * gradient's sums, then the input gradient. `sums` holds 2C + 1 doubles (len, checked):
 *   lt_batchnorm_statistics  sums = [sum of x per channel (C), sum of x^2 per channel (C), elements per
 *                            channel]; reads input, weight, bias and the running statistics' sizes.
 *   lt_batchnorm_normalize   the training forward pass (a->p.training must be true) with the mean and the
 *                            (biased) variance these sums give: output, save_mean, save_invstd, running
 *                            statistics (their unbiased variance over all the elements counted).
 *   lt_batchnorm_grad_sums   sums = [sum of dy (C), sum of dy * (x - mean) (C), unchanged]; grad_weight and
 *                            grad_bias get this batch's part (what lt_batchnorm_backward adds).
 *   lt_batchnorm_grad_input  grad_input from added sums over `count` elements per channel (the count of
 *                            the statistics the forward pass used).
 * With one process's sums the four give lt_batchnorm_forward's and lt_batchnorm_backward's results to
 * float rounding. */
int lt_batchnorm_statistics(const lt_batchnorm_args *a, double *sums, int64_t len, lt_error *err);
int lt_batchnorm_normalize(const lt_batchnorm_args *a, const double *sums, int64_t len, lt_error *err);
int lt_batchnorm_grad_sums(const lt_batchnorm_args *a, double *sums, int64_t len, lt_error *err);
int lt_batchnorm_grad_input(const lt_batchnorm_args *a, const double *sums, int64_t len, int64_t count, lt_error *err);

/* BatchNorm2d -> ReLU -> MaxPool2d(2) fused (bn_relu_pool.c): the same results as the three layers,
 * without the full-size intermediate tensors. output is (N, C, H/2, W/2); codes (the same shape) records
 * which element of each window passed; dy is scratch for a grad_output laid out unlike the output. */
typedef struct lt_bn_relu_pool_args {
    lt_batchnorm_args bn;
    lt_tensor *codes, *dy;
} lt_bn_relu_pool_args;

int lt_bn_relu_pool_forward(const lt_bn_relu_pool_args *a, lt_error *err);
int lt_bn_relu_pool_backward(const lt_bn_relu_pool_args *a, lt_error *err);

/* ---- activations (activation.c): elementwise functions chosen by name ---- */

typedef struct lt_activation_args {
    lt_kernel_handle *handle;
    const char *activation;        /* "relu", "leaky_relu" (see activation.c's table) */
    float negative_slope;          /* leaky_relu */
    const lt_tensor *input;        /* backward: overwritten by the output when the forward pass ran in place */
    lt_tensor *output;             /* may be input (in place) */
    const lt_tensor *grad_output;  /* backward */
    lt_tensor *grad_input;         /* backward; may be grad_output */
} lt_activation_args;

int lt_activation_forward(const lt_activation_args *a, lt_error *err);
int lt_activation_backward(const lt_activation_args *a, lt_error *err);

/* ---- dropout (dropout.c): mask holds 0 or 1 / (1 - p) per element, drawn from the global generator in
 * order. Outside training, or with p = 0, the layer is the identity: *result is the tensor that holds
 * the result (output or input; grad_input or grad_output). ---- */

typedef struct lt_dropout_args {
    lt_kernel_handle *handle;
    double p;
    bool training;
    const lt_tensor *input;
    lt_tensor *output, *mask;
    const lt_tensor *grad_output;  /* backward */
    lt_tensor *grad_input;         /* backward */
} lt_dropout_args;

int lt_dropout_forward(const lt_dropout_args *a, const lt_tensor **result, lt_error *err);
int lt_dropout_backward(const lt_dropout_args *a, const lt_tensor **result, lt_error *err);

/* ---- pooling (pool.c) ---- */

typedef struct lt_pool2d_params {
    int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
    bool count_include_pad;  /* average pooling */
    bool relu;               /* max pooling: ReLU fused in front (relu(max(x)) = max(relu(x))) */
    int64_t out_h, out_w;    /* adaptive pooling: the output's planes */
} lt_pool2d_params;

typedef struct lt_pool2d_args {
    lt_kernel_handle *handle;
    const lt_tensor *input;
    lt_tensor *output;
    lt_tensor *indices;            /* max pooling: for each output element, the position (h * W + w) of the
                                    * maximum in its input plane; the 2x2 stride-2 case keeps none (its
                                    * backward pass finds the maximum again from input and output) */
    const lt_tensor *grad_output;  /* backward */
    lt_tensor *grad_input;         /* backward */
    lt_pool2d_params p;
} lt_pool2d_args;

int lt_maxpool2d_forward(const lt_pool2d_args *a, lt_error *err);
int lt_maxpool2d_backward(const lt_pool2d_args *a, lt_error *err);
int lt_avgpool2d_forward(const lt_pool2d_args *a, lt_error *err);
int lt_avgpool2d_backward(const lt_pool2d_args *a, lt_error *err);
int lt_adaptive_avgpool2d_forward(const lt_pool2d_args *a, lt_error *err);
int lt_adaptive_avgpool2d_backward(const lt_pool2d_args *a, lt_error *err);

/* ---- softmax (softmax.c), along dimension dim of any tensor ---- */

typedef struct lt_softmax_args {
    lt_kernel_handle *handle;
    int dim;                       /* 0-based */
    bool log;                      /* log-softmax */
    const lt_tensor *input;
    lt_tensor *output;
    const lt_tensor *grad_output;  /* backward (from the forward output: softmax y: g_in = y * (g - sum(g * y));
                                    * log-softmax y: g_in = g - exp(y) * sum(g)) */
    lt_tensor *grad_input;         /* backward */
} lt_softmax_args;

int lt_softmax_forward(const lt_softmax_args *a, lt_error *err);
int lt_softmax_backward(const lt_softmax_args *a, lt_error *err);

/* ---- losses (loss.c) ---- */

typedef enum { LT_REDUCE_MEAN, LT_REDUCE_SUM, LT_REDUCE_NONE } lt_reduction;

typedef struct lt_class_loss_params {
    const lt_tensor *weight;  /* (K) or NULL */
    double label_smoothing;
    lt_reduction reduction;
    int64_t ignore_index;     /* a 0-based class that contributes nothing, or -1 */
} lt_class_loss_params;

typedef struct lt_loss_args {
    lt_kernel_handle *handle;
    const lt_tensor *input;        /* logits (cross entropy), log-probabilities (NLL), predictions (MSE) */
    const lt_tensor *target;       /* classes 1..K as floats (cross entropy, NLL), values (MSE) */
    lt_tensor *losses;             /* per-sample (MSE: per-element) losses: the result for reduction none */
    lt_tensor *loss;               /* forward, other reductions: the reduced loss, one element where the input is */
    lt_tensor *log_probs;          /* cross entropy: log_softmax(logits), for the backward pass */
    lt_class_loss_params p;        /* MSE reads only p.reduction */
    const lt_tensor *grad_output;  /* backward, reduction none: the gradient of each loss */
    double scale;                  /* backward, other reductions: the gradient of the loss, */
    const lt_tensor *scale_tensor; /* times this one-element tensor's value when given (autograd's gradient) */
    lt_tensor *grad_input;         /* backward */
} lt_loss_args;

/* The forward passes write a->losses, and the reduced loss into a->loss (reduction mean or sum). */
int lt_cross_entropy_forward(const lt_loss_args *a, lt_error *err);
int lt_cross_entropy_backward(const lt_loss_args *a, lt_error *err);
int lt_nll_loss_forward(const lt_loss_args *a, lt_error *err);
int lt_nll_loss_backward(const lt_loss_args *a, lt_error *err);
int lt_mse_loss_forward(const lt_loss_args *a, lt_error *err);
int lt_mse_loss_backward(const lt_loss_args *a, lt_error *err);

#endif
