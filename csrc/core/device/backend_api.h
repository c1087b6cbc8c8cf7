/* The interface between the core and a device backend that it loads at run time (ggml's backend
 * interface, GGML_BACKEND_DL, is the model): csrc/cuda/ builds lightning/cuda.so, which exports one
 * symbol, LT_BACKEND_ENTRY, returning an lt_backend_api. The core (backend.c) loads the module the
 * first time a tensor or a layer asks for the device, and says why when it cannot.
 *
 * The module is compiled by nvcc as C++ and shares no code with the core: it sees the core's headers
 * for their types (shape structs, lt_kernel_ctx, lt_error) and static inline helpers, never calls a
 * core function (they are hidden in the core's shared object), and writes its errors into the
 * caller's lt_error itself. Every function returns 0, or -1 after writing err.
 *
 * Raw device pointers throughout, one stream (the backend's), as in llm.c: a call is ordered after the
 * previous ones on that stream; copy_to_host and synchronize wait for it. */
#ifndef LT_BACKEND_API_H
#define LT_BACKEND_API_H

#include <stddef.h>
#include <stdint.h>

#include "../base/dtype.h"
#include "../base/error.h"

#define LT_BACKEND_API_VERSION 7
/* The most bytes of a generator state's text, its NUL included (get_rng_state). */
#define LT_BACKEND_RNG_STATE_LEN 128
#define LT_BACKEND_ENTRY "lt_backend_entry"

#ifdef __cplusplus
extern "C" {
#endif

/* What the device block prints (the original's device detection). Versions in CUDA's encoding:
 * 13000 is 13.0; cuDNN's 91000 is 9.10.0. */
typedef struct lt_device_props {
    char name[256];
    int index;
    int cc_major, cc_minor;       /* compute capability */
    int multiprocessors;
    uint64_t total_bytes, free_bytes;
    int driver_version, runtime_version, cudnn_version, cublaslt_version;
} lt_device_props;

/* Memory the backend's pool holds: in use by tensors, and reserved from the driver. */
typedef struct lt_device_memory {
    uint64_t in_use, reserved, peak_in_use;
} lt_device_memory;

/* A strided copy between two views of device memory of one element size (1, 2 or 4 bytes): the
 * contiguous(), clone and layout changes of device tensors. Element offsets already applied to the
 * pointers; ndim at most 8; strides in elements. */
typedef struct lt_strided_copy {
    int ndim;
    int elem_size;
    int64_t size[8];
    int64_t dst_stride[8], src_stride[8];
} lt_strided_copy;

/* The operands of an elementwise operation laid over its output's shape (ndim at most 8): strides in
 * elements for each operand, 0 along a dimension an input is broadcast over (and for every dimension
 * of an operand the operation does not have). Element offsets already applied to the pointers. The
 * output never overlaps an input through another view (the core copies such an input first), so
 * the elements may be computed in any order. */
typedef struct lt_elementwise_shape {
    int ndim;
    int64_t size[8];
    int64_t out_stride[8], a_stride[8], b_stride[8];
} lt_elementwise_shape;

/* A reduction of a dense (outer, n, inner) array over its middle dimension into dense (outer, inner)
 * results: one dimension of a tensor (made contiguous by the core), or all of it (outer = inner = 1). */
typedef struct lt_reduce_shape {
    int64_t outer, n, inner;  /* n >= 1: the core answers empty reductions itself */
    int op;                   /* an lt_reduce_op (tensor_math.h): sum, mean, max, min, var, std, norm */
    int unbiased;             /* var, std: divide by n - 1 */
    double p;                 /* norm: the order (INFINITY: the max norm) */
} lt_reduce_shape;

/* A batch for the confusion matrix: logits (batch, classes) with their two strides, targets (batch)
 * as float class indices with their stride. */
typedef struct lt_confusion_shape {
    int64_t batch, classes;
    int64_t logit_stride[2], target_stride;
    int one_based;  /* targets count from 1 (Lua's labels) */
} lt_confusion_shape;

/* An operation's implementations on the device, looked up by the name the core's fronts pick with
 * ("conv2d", "linear", "batchnorm", "maxpool2d", "activation", ...): each entry points at the
 * lt_<op>_impl struct that csrc/core/nn/ops.h (or optim_ops.h) defines for the operation, whose
 * first member is an lt_impl. The list ends with {NULL, NULL}. */
/* data/image_plan.h's (a layer above this one: the backend sees them only through pointers). */
struct lt_image_plan;
struct lt_sample_draw;

typedef struct lt_backend_op {
    const char *op;
    const void *const *impls;  /* NULL-terminated, tried in order like the core's tables */
} lt_backend_op;

/* Collectives between processes that each drive one device of this backend (NCCL on CUDA): the
 * data-parallel strategy's gradients are averaged where they are, never through the host. Every
 * process of the group makes the same calls in the same order, as MPI's collectives.
 *
 * A collective is queued: it starts once the work queued on the stream before it is done (the
 * backward pass that wrote the gradients), runs beside the work queued after it, and join() makes the
 * work queued after the join wait for it. The host waits for none of them. */
#define LT_COMM_ID_BYTES 128
typedef enum lt_comm_op { LT_COMM_SUM, LT_COMM_MEAN, LT_COMM_MAX, LT_COMM_MIN } lt_comm_op;

typedef struct lt_backend_comm {
    /* Whether this process can take part (the library loads: NCCL's libnccl.so.2); why not in err. */
    int (*ready)(lt_error *err);
    /* A new group's identity: one process makes it, and every process of the group is given it (the
     * strategy sends it over MPI). */
    int (*unique_id)(unsigned char id[LT_COMM_ID_BYTES], lt_error *err);
    /* Joins the group as process `rank` of `world_size`: blocks until every process has joined. Once
     * a process; a second call fails. */
    int (*init)(const unsigned char id[LT_COMM_ID_BYTES], int rank, int world_size, lt_error *err);
    /* In place over n float32 values on the device; mean is the sum divided by world_size. Queued. */
    int (*all_reduce)(float *buf, int64_t n, lt_comm_op op, lt_error *err);
    /* root's `bytes` bytes of buf into every process's buf. Queued. */
    int (*broadcast)(void *buf, size_t bytes, int root, lt_error *err);
    /* *done: every collective queued so far has finished (no waiting). */
    int (*query)(int *done, lt_error *err);
    /* The work queued from now on waits for the collectives queued so far. */
    int (*join)(lt_error *err);
} lt_backend_comm;

typedef struct lt_backend_api {
    int version;       /* LT_BACKEND_API_VERSION */
    const char *name;  /* "cuda" */

    /* Devices present (0 is not an error: err says why, e.g. "no CUDA driver"). */
    int (*device_count)(int *count, lt_error *err);
    /* Makes device `index` current and creates the stream, the pool and the library handles. */
    int (*init)(int index, lt_error *err);
    int (*props)(int index, lt_device_props *out, lt_error *err);

    /* Device memory from the stream-ordered pool. alloc returns NULL (err set) when it cannot; the
     * core then runs Lua's collector (through its hook) and asks once more. */
    void *(*alloc)(size_t bytes, lt_error *err);
    void (*free)(void *p);
    int (*memory)(lt_device_memory *out, lt_error *err);
    /* Gives the pool's unused memory back to the driver. */
    int (*empty_cache)(lt_error *err);
    /* Page-locked host memory, from which host-to-device copies overlap compute. */
    void *(*host_alloc)(size_t bytes, lt_error *err);
    void (*host_free)(void *p);

    /* Copies of `bytes` bytes: host to device (from pageable or page-locked memory), device to host
     * (waits for the stream), and device to device. A call that waits (to_host, synchronize) also reports
     * what a queued operation found wrong after it was queued: a loss's target that is not a class. */
    int (*to_device)(void *dst, const void *src, size_t bytes, lt_error *err);
    int (*to_host)(void *dst, const void *src, size_t bytes, lt_error *err);
    int (*on_device)(void *dst, const void *src, size_t bytes, lt_error *err);
    int (*strided_copy)(void *dst, const void *src, const lt_strided_copy *c, lt_error *err);
    /* Elementwise on n elements of a dense array: float32 fill; conversion between two different float
     * types (float32, bfloat16, float16; to a 16-bit type rounding to nearest even, as the core's bf16.h
     * and fp16.h). */
    int (*fill)(float *dst, int64_t n, float value, lt_error *err);
    int (*convert)(void *dst, lt_dtype dst_type, const void *src, lt_dtype src_type, int64_t n, lt_error *err);

    /* Tensor arithmetic on float32 views (tensor_math.h's functions for device tensors), each queued
     * on the stream like every other call. op is an lt_binop or lt_unop of tensor_math.h (that enum's
     * values are the interface), computed as the host's loops in tensor_math.c compute it:
     *   binary:  out = a op b (a + alpha * b, a - alpha * b for add and sub; comparisons give 1 or 0;
     *            maximum/minimum propagate a NaN of a)
     *   scalar:  out = a op value, or value op a when reversed (value is a host number)
     *   unary:   out = f(a); clamp's bounds p1, p2 (NaN: no bound)
     *   addcmul: out += value * a * b */
    int (*binary)(float *out, const float *a, const float *b, int op, float alpha, const lt_elementwise_shape *s,
                  lt_error *err);
    int (*scalar)(float *out, const float *a, float value, int op, int reversed, const lt_elementwise_shape *s,
                  lt_error *err);
    int (*unary)(float *out, const float *a, int op, float p1, float p2, const lt_elementwise_shape *s, lt_error *err);
    int (*addcmul)(float *out, const float *a, const float *b, float value, const lt_elementwise_shape *s,
                   lt_error *err);
    /* values (outer, inner) = the reduction of in; for max and min, indices (may be NULL) the 0-based
     * position along n as floats, the first on ties, a NaN winning over every number (the host's rule).
     * Results stay on the device. */
    int (*reduce)(float *values, float *indices, const float *in, const lt_reduce_shape *s, lt_error *err);
    /* The confusion matrix's counts of one batch, added on the device: counts[t * classes + p] += 1 for
     * each sample of target class t and predicted class p (the argmax of its logits, first on ties, NaN
     * the largest), counts being (classes * classes + 1) uint64 whose last one counts the targets that
     * are not class indices (the core reports them when it reads the counts: no synchronisation per
     * batch). */
    int (*confusion_update)(uint64_t *counts, const float *logits, const float *target, const lt_confusion_shape *s,
                            lt_error *err);

    /* A batch of augmented images made from a data set the device holds as bytes (data/image_plan.h),
     * or images mirrored or shifted (float sources: test-time augmentation):
     * out (n, plan->c, plan->h, plan->w) float32 on the device, pixels the samples on the device,
     * plan and draws (n of them) in host memory, which the call copies before it returns. The values are
     * the host's bits (lt_image_plan_value). */
    int (*image_batch)(float *out, const void *pixels, const struct lt_image_plan *plan,
                       const struct lt_sample_draw *draws, int64_t n, lt_error *err);

    int (*synchronize)(lt_error *err);
    /* The counter-based generator's seed (dropout): results depend on the seed and the element's
     * index, not on the launch shape. */
    void (*manual_seed)(uint64_t seed);
    /* That generator's state as text (NUL-terminated, shorter than LT_BACKEND_RNG_STATE_LEN), and the
     * state set again from such text (an error for any other): a checkpoint resumes a GPU's dropout
     * where it stopped. */
    void (*get_rng_state)(char *out);
    int (*set_rng_state)(const char *state, lt_error *err);
    /* Whether float32 matrix products and convolutions may run in TF32 (PyTorch's allow_tf32; on by
     * default): a GPU's fast path at about 10 bits of mantissa, off for exact float32. */
    void (*set_allow_tf32)(int allowed);
    int (*allow_tf32)(void);

    /* CUDA graphs: the calls made between capture_begin and capture_end are recorded, not run, and a
     * launch of the graph runs them all again, in order, on the same memory, with the same arguments.
     * One capture at a time, on the backend's stream. Memory:
     *   - alloc during a capture gives memory that the graph owns, at an address its launches keep,
     *     never reused within the capture;
     *   - while a graph lives (or a capture goes on), free of memory that existed when the newest
     *     capture ended is put off until no graph lives (a launch may write it); memory allocated after
     *     that is freed at once.
     * While capturing:
     *   - to_host, to_device, image_batch and synchronize fail (the host cannot wait for, or be read
     *     by, a graph; copy into the graph's input memory before a launch instead), leaving the capture
     *     going;
     *   - dropout draws from the counter a launch gives it, so each launch draws new numbers: the same
     *     ones as the calls it recorded would have drawn, run in its place.
     * capture_end ends the capture and returns the graph, ready to launch (or fails, the capture ended
     * all the same, and a graph it returns then is only to destroy). graph_launch queues one run of it; graph_destroy frees it once its runs are done. */
    int (*capture_begin)(lt_error *err);
    int (*capture_end)(void **graph, lt_error *err);
    int (*graph_launch)(void *graph, lt_error *err);
    void (*graph_destroy)(void *graph);

    /* One table per operation (see lt_backend_op). */
    const lt_backend_op *ops;
    /* The collectives between processes (above), or NULL when the backend has none. */
    const lt_backend_comm *comm;
} lt_backend_api;

/* The symbol the module exports: the API for version `version`, or NULL with err set (the module
 * was built for another version of the interface). Never fails for a missing GPU: device_count says
 * so. */
typedef const lt_backend_api *(*lt_backend_entry_fn)(int version, lt_error *err);

#ifdef __cplusplus
}
#endif

#endif
