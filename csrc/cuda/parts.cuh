/* What backend.cu assembles into the lt_backend_api: the memory functions (memory.cu) and each
 * operation file's table entries. */
#ifndef LTC_PARTS_CUH
#define LTC_PARTS_CUH

#include "common.cuh"

namespace ltc {

/* memory.cu */
int memory_init(lt_error *err);
void *alloc(size_t bytes, lt_error *err);
void free_device(void *p);
int memory(lt_device_memory *out, lt_error *err);
int empty_cache(lt_error *err);
void *host_alloc(size_t bytes, lt_error *err);
void host_free(void *p);
int to_device(void *dst, const void *src, size_t bytes, lt_error *err);
int to_host(void *dst, const void *src, size_t bytes, lt_error *err);
int on_device(void *dst, const void *src, size_t bytes, lt_error *err);
int strided_copy(void *dst, const void *src, const lt_strided_copy *c, lt_error *err);
int fill(float *dst, int64_t n, float value, lt_error *err);
int convert(void *dst, lt_dtype dst_type, const void *src, lt_dtype src_type, int64_t n, lt_error *err);

/* tensor arithmetic: elementwise.cu, reduce_ops.cu, metrics.cu; the data path: image_batch.cu */
int binary(float *out, const float *a, const float *b, int op, float alpha, const lt_elementwise_shape *s,
           lt_error *err);
int scalar(float *out, const float *a, float value, int op, int reversed, const lt_elementwise_shape *s,
           lt_error *err);
int unary(float *out, const float *a, int op, float p1, float p2, const lt_elementwise_shape *s, lt_error *err);
int addcmul(float *out, const float *a, const float *b, float value, const lt_elementwise_shape *s, lt_error *err);
int reduce(float *values, float *indices, const float *in, const lt_reduce_shape *s, lt_error *err);
int confusion_update(uint64_t *counts, const float *logits, const float *target, const lt_confusion_shape *s,
                     lt_error *err);
/* image_batch.cu */
int image_batch(float *out, const void *pixels, const struct lt_image_plan *plan,
                const struct lt_sample_draw *draws, int64_t n, lt_error *err);

/* graph.cu: CUDA graphs */
int capture_begin(lt_error *err);
int capture_end(void **graph, lt_error *err);
int graph_launch(void *graph, lt_error *err);
void graph_destroy(void *graph);

/* collectives.cu: NCCL's collectives between processes, or NULL when built without nccl.h */
const lt_backend_comm *collectives();

/* one file per operation family */
extern const lt_linear_impl linear_cuda;                                /* linear.cu */
extern const lt_conv2d_impl conv2d_cuda;                                /* conv2d.cu */
extern const lt_batchnorm_impl batchnorm_cuda;                          /* batchnorm.cu */
extern const lt_bn_relu_pool_impl bn_relu_pool_cuda;                    /* bn_relu_pool.cu */
extern const lt_activation_impl relu_cuda, leaky_relu_cuda, gelu_cuda;  /* activation.cu */
extern const lt_maxpool2d_impl maxpool2d_cuda;                          /* maxpool.cu */
extern const lt_avgpool2d_impl avgpool2d_cuda, adaptive_avgpool2d_cuda; /* avgpool.cu */
extern const lt_dropout_impl dropout_cuda;                              /* dropout.cu */
extern const lt_softmax_impl softmax_cuda;                              /* softmax.cu */
extern const lt_class_loss_impl cross_entropy_cuda, nll_loss_cuda;      /* loss.cu */
extern const lt_mse_impl mse_loss_cuda;                                 /* loss.cu */
extern const lt_sgd_impl sgd_cuda;                                      /* optim.cu */
extern const lt_adam_impl adam_cuda;                                    /* optim.cu */
extern const lt_norm_impl grad_norm_cuda;                               /* optim.cu */
extern const lt_amp_unscale_impl amp_unscale_cuda;                      /* amp.cu */
extern const lt_amp_update_impl amp_update_cuda;                        /* amp.cu */

/* mixed precision (ops.h's channels-last tables): bf16, fp16 or float32 activations, channels-last */
extern const lt_conv2d_channels_last_impl conv2d_channels_last_cuda;         /* conv2d_channels_last.cu */
extern const lt_batchnorm_channels_last_impl batchnorm_channels_last_cuda;   /* bn_channels_last.cu */
extern const lt_maxpool2d_channels_last_impl maxpool2d_channels_last_cuda;   /* maxpool_channels_last.cu */
extern const lt_activation_mixed_impl activation_mixed_cuda;                 /* activation_mixed.cu */

}  // namespace ltc

#endif
