/* The seam between a kernel's front and its implementations.
 *
 * A heavy operation (a convolution, a pooling, an optimizer's update) has
 *   - a front (csrc/core/nn/<op>.c, csrc/core/optim/optim.c): checks shapes, resizes outputs and scratch
 *     buffers, lays tensors out as the implementations expect, and picks an implementation;
 *   - implementations that compute on raw pointers and the operation's shape struct, llm.c style
 *     (csrc/core/cpu/ today; csrc/core/dnnl/ and a CUDA folder next);
 *   - one table of implementations, in the front's file, tried in order: the first entry whose
 *     supports() accepts the shape and the precision asked for runs. The CPU's entry comes last and
 *     supports every shape at fp32, so a call always finds one.
 * Adding an implementation is one file that defines the operation's table entry (an lt_<op>_impl whose
 * first member is an lt_impl) and one line in the front's table.
 *
 * A layer owns an lt_kernel_handle (a Lua userdata in the bindings), passed to every call of its
 * operation. It holds the precision the layer asks for, the implementation its last call ran, the
 * state that implementation keeps for the layer between calls (oneDNN primitives, weights in a
 * blocked layout: created at a layer's first call, reused at the next ones, released when the layer
 * goes or its shape moves it to another implementation), and what its last forward pass saw, which
 * the backward pass checks its arguments against. */
#ifndef LT_KERNEL_H
#define LT_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../tensor/tensor.h"

/* The precision a layer computes in: fp32, or bf16 or fp16 with fp32 accumulation ("bf16-mixed",
 * "16-mixed"). A request an operation has no implementation for runs at fp32. */
typedef enum { LT_FP32, LT_BF16, LT_FP16 } lt_precision;

const char *lt_precision_name(lt_precision p);
/* "fp32" / "bf16" / "fp16" to the enum; -1 when the name is none of them. */
int lt_precision_of(const char *name);
/* The element type a layer computing at p keeps its activations in: float32, bfloat16 or float16. */
lt_dtype lt_precision_dtype(lt_precision p);

/* Whether the user asked for results that do not depend on the thread count even where that costs
 * speed (Lightning's `deterministic`): implementations whose sums are split by thread count (oneDNN's
 * weight gradients) then split them by a fixed rule. The library's own kernels always do. */
void lt_set_deterministic(bool on);
bool lt_deterministic(void);

/* Whether float32 convolutions on the host may run through oneDNN's channels-last kernels (on by
 * default, where oneDNN runs on OpenMP and the CPU has AVX-512: dnnl/dnnl_common.c) rather than the library's
 * im2col + OpenBLAS path. Both give the same bits at any thread count; they differ by float rounding.
 * LIGHTNING_FP32_ONEDNN=0 in the environment makes off the default. */
void lt_set_fp32_onednn(bool on);
bool lt_fp32_onednn(void);

/* What mixed precision runs on in this build: oneDNN (its version, the instruction set its kernels use,
 * whether bf16 and AMX are native on this CPU), or nothing (available false: bf16 requests run fp32). */
typedef struct lt_mixed_info {
    bool available;
    const char *backend, *version, *isa;
    const char *runtime;         /* what oneDNN's kernels run on: "OpenMP" (Debian's, our threads), "SYCL" (PyPI's), ... */
    bool bf16_supported;         /* oneDNN has bf16 kernels for this CPU (native, or emulated on AVX-512) */
    bool bf16_native, amx_native;
} lt_mixed_info;
lt_mixed_info lt_mixed_precision_info(void);
/* Whether layers on GPU d compute at precision p, LT_BF16 or LT_FP16 (its backend has mixed
 * precision's tables at p, and for bf16 the GPU has bf16 tensor cores: compute capability 8.0 or
 * later); when not, why. */
bool lt_device_computes_mixed(lt_device d, lt_precision p, lt_error *why);

/* What an implementation runs with besides its data. */
typedef struct lt_kernel_ctx {
    void **state;            /* the layer's slot for this implementation's state; NULL outside a layer */
    lt_precision precision;  /* the one it was picked for */
    lt_error *err;           /* where a failing implementation writes why (then it returns -1) */
} lt_kernel_ctx;

/* The first member of every table entry. */
typedef struct lt_impl lt_impl;
struct lt_impl {
    const char *name;  /* "cpu", "dnnl", "cuda": what a handle reports */
    /* Whether this entry computes the operation for `shape` (the operation's shape struct) at precision p. */
    bool (*supports)(const lt_impl *self, const void *shape, lt_precision p);
    /* Frees the state the entry keeps for a layer; NULL when it keeps none. */
    void (*release)(void *state);
};

/* supports() of an implementation that computes every shape at fp32 (the CPU's). */
bool lt_supports_fp32(const lt_impl *self, const void *shape, lt_precision p);

/* A tensor's data as an implementation takes it: NULL for a missing or empty tensor. */
static inline float *lt_ptr(const lt_tensor *t) { return t && t->storage && lt_numel(t) ? lt_data(t) : NULL; }

/* Sizes of a tensor a forward pass saw. */
typedef struct lt_dims {
    int ndim;
    int64_t size[LT_MAX_DIMS];
} lt_dims;

typedef struct lt_kernel_handle {
    const char *op;          /* the operation it serves, fixed at its first call ("conv2d") */
    lt_precision precision;  /* asked for */
    const lt_impl *impl;     /* the entry of the last call, NULL before */
    lt_precision running;    /* the precision impl was picked for */
    void *state;             /* impl's state for this layer, NULL when it keeps none */
    /* the last forward pass: set when it succeeds, cleared when one starts */
    bool forwarded;
    bool training;           /* BatchNorm used the batch's statistics; Dropout applied a mask */
    lt_dims input, target, output;  /* target: a loss's */
} lt_kernel_handle;

void lt_kernel_handle_init(lt_kernel_handle *h, lt_precision precision);
/* Frees what the implementation keeps; h can be initialised again. */
void lt_kernel_handle_release(lt_kernel_handle *h);

/* Picks the implementation for one call of operation `op`: the first entry that supports the shape at
 * h's precision, else the first at fp32, from the table of the device the operation's tensors are on:
 * `table` (NULL-terminated) for the host, the backend's table for `op` for a GPU (backend.h). A table
 * whose entries are of another type than the operation's main one is named "<op>.<variant>" (e.g.
 * "conv2d.channels_last"), so that a backend is never handed entries of the wrong type.
 * `operands` are every tensor the implementation reads or writes (NULL entries skipped); they must all
 * be on one device ("expected cuda:0, got cpu for weight"). Binds the entry to h (NULL outside a
 * layer), releasing state another entry kept, and fills ctx. Errors when h serves another operation. */
const lt_impl *lt_kernel_pick(lt_kernel_handle *h, const char *op, const lt_impl *const *table, const void *shape,
                              const lt_named *operands, int noperands, lt_kernel_ctx *ctx, lt_error *err);

/* Whether operation op's table on device d (`host`, NULL-terminated, for the host; the backend's for a
 * GPU, none when it has no such table) has an entry that computes `shape` at precision p; with shape
 * NULL, whether it has any entry. The fronts ask it before they take a variant's branch
 * ("conv2d.channels_last"), so that a GPU whose backend has no such table stays on the main one. */
bool lt_kernel_computes(lt_device d, const char *op, const lt_impl *const *host, const void *shape, lt_precision p);

/* ---- what a forward pass saw, for its backward pass ---- */

/* At a forward pass's start: until it succeeds there is nothing to go back through. */
void lt_kernel_forward_begin(lt_kernel_handle *h);
/* At its end: records the shapes (target may be NULL) and the mode. */
void lt_kernel_forward_done(lt_kernel_handle *h, const lt_tensor *input, const lt_tensor *target,
                            const lt_tensor *output, bool training);
/* At a backward pass's start: fails unless a forward pass succeeded, input has the shape it was given
 * and grad_output that of its output (either may be NULL: not checked). Messages say what was expected
 * and what was given: "grad_output must be 2x3x5x5, got 2x3x4x4 (the shape of the forward pass's output)". */
int lt_kernel_backward_check(const lt_kernel_handle *h, const lt_tensor *input, const lt_tensor *grad_output,
                             lt_error *err);
/* A tensor must have the shape `dims` (what = its name, whose = what dims are, for the message). */
int lt_check_dims(const char *what, const lt_tensor *t, const lt_dims *dims, const char *whose, lt_error *err);
lt_dims lt_dims_of(const lt_tensor *t);

/* No tensor a kernel writes may share its storage with one it reads: "output shares its storage with
 * input; give the layer its own output". */
int lt_check_apart(const lt_named *written, int nwritten, const lt_named *read, int nread, lt_error *err);

#endif
