/* Layer kernels: forward and backward of each layer, outputs first (llm.c style).
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

#include "../tensor.h"

/* ---- layout helpers ---- */

/* Resizes out to in's sizes with in's dimension order (out's strides are a permutation of a dense
 * layout matching in's), or contiguous when in is not dense. */
int lt_resize_like(lt_tensor *out, const lt_tensor *in, lt_error *err);
/* Resizes out to (n, c, h, w) in the batch-folded layout (C, N, H, W). */
int lt_resize_cnhw(lt_tensor *out, int64_t n, int64_t c, int64_t h, int64_t w, lt_error *err);
/* True when t is 4-D with contiguous H x W planes. */
bool lt_planes_contiguous(const lt_tensor *t);
/* True when t is (N, C, H, W) stored as (C, N, H, W) densely. */
bool lt_is_cnhw(const lt_tensor *t);
/* True when t covers its numel elements without gaps or overlap (some permutation is contiguous). */
bool lt_is_dense(const lt_tensor *t);

/* ---- convolution ---- */

typedef struct lt_conv2d_params {
    int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
} lt_conv2d_params;

/* out (N, Cout, Ho, Wo) in CNHW = conv(input (N, Cin, H, W), weight (Cout, Cin, kh, kw)) + bias (Cout or
 * NULL). cols is scratch (the threads' im2col buffers). */
int lt_conv2d_forward(lt_tensor *out, lt_tensor *cols, const lt_tensor *input, const lt_tensor *weight,
                      const lt_tensor *bias, lt_conv2d_params p, lt_error *err);
/* grad_weight += dL/dW, grad_bias += dL/db (may be NULL), grad_input = dL/dx (NULL to skip). cols and dy
 * are scratch (dy holds grad_output in the batch-folded layout when it comes in another one). */
int lt_conv2d_backward(lt_tensor *grad_input, lt_tensor *grad_weight, lt_tensor *grad_bias,
                       const lt_tensor *grad_output, const lt_tensor *input, const lt_tensor *weight,
                       lt_tensor *cols, lt_tensor *dy, lt_conv2d_params p, lt_error *err);

/* ---- linear ---- */

/* out (B, out) = input (B, in) @ weight (out, in)^T + bias */
int lt_linear_forward(lt_tensor *out, const lt_tensor *input, const lt_tensor *weight, const lt_tensor *bias,
                      lt_error *err);
int lt_linear_backward(lt_tensor *grad_input, lt_tensor *grad_weight, lt_tensor *grad_bias,
                       const lt_tensor *grad_output, const lt_tensor *input, const lt_tensor *weight, lt_error *err);

/* ---- batch normalisation ---- */

/* Over (N, C, ...) inputs: statistics per channel C over N and the trailing dimensions.
 * training: normalise with batch statistics, store them in save_mean / save_invstd (C) and update the
 * running statistics (when given) with momentum (momentum < 0: cumulative average over
 * num_batches_tracked, which the caller has already incremented). eval: use the running statistics. */
typedef struct lt_batchnorm_params {
    bool training;
    double momentum, eps;
    int64_t num_batches_tracked;
} lt_batchnorm_params;

int lt_batchnorm_forward(lt_tensor *out, lt_tensor *save_mean, lt_tensor *save_invstd, const lt_tensor *input,
                         const lt_tensor *weight, const lt_tensor *bias, lt_tensor *running_mean,
                         lt_tensor *running_var, lt_batchnorm_params p, lt_error *err);
int lt_batchnorm_backward(lt_tensor *grad_input, lt_tensor *grad_weight, lt_tensor *grad_bias,
                          const lt_tensor *grad_output, const lt_tensor *input, const lt_tensor *weight,
                          const lt_tensor *save_mean, const lt_tensor *save_invstd, bool training, lt_error *err);

/* BatchNorm2d -> ReLU -> MaxPool2d(2) fused (bn_relu_pool.c): the same results as the three layers,
 * without the full-size intermediate tensors. out is (N, C, H/2, W/2); codes (the same shape) records
 * which element of each window passed; dy is scratch for a grad_output laid out unlike the output. */
int lt_bn_relu_pool_forward(lt_tensor *out, lt_tensor *codes, lt_tensor *save_mean, lt_tensor *save_invstd,
                            const lt_tensor *input, const lt_tensor *weight, const lt_tensor *bias,
                            lt_tensor *running_mean, lt_tensor *running_var, lt_batchnorm_params p, lt_error *err);
int lt_bn_relu_pool_backward(lt_tensor *grad_input, lt_tensor *grad_weight, lt_tensor *grad_bias, lt_tensor *dy,
                             const lt_tensor *grad_output, const lt_tensor *output, const lt_tensor *codes,
                             const lt_tensor *input, const lt_tensor *weight, const lt_tensor *bias,
                             const lt_tensor *save_mean, const lt_tensor *save_invstd, bool training, lt_error *err);

/* ---- activations ---- */

/* out = x > 0 ? x : slope * x (slope 0: ReLU). out may be input (in place). */
int lt_leaky_relu_forward(lt_tensor *out, const lt_tensor *input, float slope, lt_error *err);
/* grad_input = grad_output where the layer's output (or input) was positive, slope * grad_output elsewhere. */
int lt_leaky_relu_backward(lt_tensor *grad_input, const lt_tensor *grad_output, const lt_tensor *output,
                           float slope, lt_error *err);

/* Dropout: mask holds 0 or 1 / (1 - p) per element, drawn from the global generator in order. */
int lt_dropout_forward(lt_tensor *out, lt_tensor *mask, const lt_tensor *input, double p, lt_error *err);
int lt_dropout_backward(lt_tensor *grad_input, const lt_tensor *grad_output, const lt_tensor *mask, lt_error *err);

/* ---- pooling ---- */

typedef struct lt_pool2d_params {
    int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
    bool count_include_pad;  /* average pooling */
    bool relu;               /* max pooling: ReLU fused in front (relu(max(x)) = max(relu(x))) */
} lt_pool2d_params;

/* indices: for each output element, the position (h * W + w) of the maximum in its input plane; the
 * 2x2 stride-2 case keeps none (its backward pass finds the maximum again from input and output). */
int lt_maxpool2d_forward(lt_tensor *out, lt_tensor *indices, const lt_tensor *input, lt_pool2d_params p,
                         lt_error *err);
int lt_maxpool2d_backward(lt_tensor *grad_input, const lt_tensor *grad_output, const lt_tensor *output,
                          const lt_tensor *indices, const lt_tensor *input, lt_pool2d_params p, lt_error *err);
int lt_avgpool2d_forward(lt_tensor *out, const lt_tensor *input, lt_pool2d_params p, lt_error *err);
int lt_avgpool2d_backward(lt_tensor *grad_input, const lt_tensor *grad_output, const lt_tensor *input,
                          lt_pool2d_params p, lt_error *err);
int lt_adaptive_avgpool2d_forward(lt_tensor *out, const lt_tensor *input, int64_t out_h, int64_t out_w, lt_error *err);
int lt_adaptive_avgpool2d_backward(lt_tensor *grad_input, const lt_tensor *grad_output, const lt_tensor *input,
                                   lt_error *err);

/* ---- softmax and losses ---- */

/* Along dimension dim of any tensor. */
int lt_softmax_forward(lt_tensor *out, const lt_tensor *input, int dim, bool log, lt_error *err);
/* grad_input from the forward output: softmax y: g_in = y * (g - sum(g * y)); log-softmax y:
 * g_in = g - exp(y) * sum(g). */
int lt_softmax_backward(lt_tensor *grad_input, const lt_tensor *grad_output, const lt_tensor *output, int dim,
                        bool log, lt_error *err);

typedef enum { LT_REDUCE_MEAN, LT_REDUCE_SUM, LT_REDUCE_NONE } lt_reduction;

typedef struct lt_class_loss_params {
    const lt_tensor *weight;  /* (K) or NULL */
    double label_smoothing;
    lt_reduction reduction;
    int64_t ignore_index;     /* a 0-based class that contributes nothing, or -1 */
} lt_class_loss_params;

/* Cross entropy of logits (B, K) against targets (B) holding 0-based class indices as floats.
 * log_probs (B, K) receives log_softmax(logits) for the backward pass; losses (B) the per-sample losses
 * (the result when reduction is none). *loss is the reduced loss. */
int lt_cross_entropy_forward(double *loss, lt_tensor *losses, lt_tensor *log_probs, const lt_tensor *logits,
                             const lt_tensor *target, lt_class_loss_params p, lt_error *err);
/* grad_input (B, K) = d loss / d logits, scaled by grad_output (B) for reduction none, else by scale. */
int lt_cross_entropy_backward(lt_tensor *grad_input, const lt_tensor *log_probs, const lt_tensor *target,
                              lt_class_loss_params p, const lt_tensor *grad_output, double scale, lt_error *err);
/* Negative log-likelihood of log-probabilities (B, K). */
int lt_nll_loss_forward(double *loss, lt_tensor *losses, const lt_tensor *log_probs, const lt_tensor *target,
                        lt_class_loss_params p, lt_error *err);
int lt_nll_loss_backward(lt_tensor *grad_input, const lt_tensor *log_probs, const lt_tensor *target,
                         lt_class_loss_params p, const lt_tensor *grad_output, double scale, lt_error *err);
/* Mean (or summed) squared error; losses receives the elementwise errors. */
int lt_mse_loss_forward(double *loss, lt_tensor *losses, const lt_tensor *input, const lt_tensor *target,
                        lt_reduction reduction, lt_error *err);
int lt_mse_loss_backward(lt_tensor *grad_input, const lt_tensor *input, const lt_tensor *target,
                         lt_reduction reduction, const lt_tensor *grad_output, double scale, lt_error *err);

#endif
