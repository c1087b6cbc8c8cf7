#include "kernel.h"

#include <stdlib.h>
#include <string.h>

#include "../device/backend.h"
#include "../tensor/tensor_device.h"

#ifdef LT_HAVE_DNNL
#include "../dnnl/dnnl_info.h"
#endif

lt_mixed_info lt_mixed_precision_info(void) {
#ifdef LT_HAVE_DNNL
    return (lt_mixed_info){.available = true, .backend = "oneDNN", .version = lt_dnnl_version(), .isa = lt_dnnl_isa(),
                           .runtime = lt_dnnl_runtime(), .bf16_supported = lt_dnnl_bf16_available(),
                           .bf16_native = lt_dnnl_bf16_native(), .amx_native = lt_dnnl_amx_native()};
#else
    return (lt_mixed_info){.available = false};
#endif
}

static _Atomic bool deterministic;

void lt_set_deterministic(bool on) { deterministic = on; }
bool lt_deterministic(void) { return deterministic; }

/* -1 until set or first read: then LIGHTNING_FP32_ONEDNN=0 in the environment turns it off (a run
 * started from the command line, e.g. to compare with the im2col path), anything else leaves it on. */
static _Atomic int fp32_onednn = -1;

void lt_set_fp32_onednn(bool on) { fp32_onednn = on; }
bool lt_fp32_onednn(void) {
    if (fp32_onednn < 0) {
        const char *env = getenv("LIGHTNING_FP32_ONEDNN");
        fp32_onednn = !(env && !strcmp(env, "0"));
    }
    return fp32_onednn;
}

const char *lt_precision_name(lt_precision p) { return p == LT_BF16 ? "bf16" : p == LT_FP16 ? "fp16" : "fp32"; }

int lt_precision_of(const char *name) {
    if (!strcmp(name, "fp32")) return LT_FP32;
    if (!strcmp(name, "bf16")) return LT_BF16;
    if (!strcmp(name, "fp16")) return LT_FP16;
    return -1;
}

lt_dtype lt_precision_dtype(lt_precision p) { return p == LT_BF16 ? LT_BFLOAT16 : p == LT_FP16 ? LT_FLOAT16 : LT_FLOAT32; }

bool lt_supports_fp32(const lt_impl *self, const void *shape, lt_precision p) {
    return p == LT_FP32;
}

void lt_kernel_handle_init(lt_kernel_handle *h, lt_precision precision) {
    memset(h, 0, sizeof *h);
    h->precision = precision;
}

static void release_state(lt_kernel_handle *h) {
    if (h->state && h->impl && h->impl->release) h->impl->release(h->state);
    h->state = NULL;
}

void lt_kernel_handle_release(lt_kernel_handle *h) {
    release_state(h);
    lt_kernel_handle_init(h, h->precision);
}

static const lt_impl *first_supporting(const lt_impl *const *table, const void *shape, lt_precision p) {
    for (size_t i = 0; table[i]; i++)
        if (table[i]->supports(table[i], shape, p)) return table[i];
    return NULL;
}

/* "conv2d" and "conv2d.channels_last" are one operation (a layer switches between them with its
 * precision) with two tables, whose entries are of different types. */
static bool same_operation(const char *a, const char *b) {
    size_t la = strcspn(a, "."), lb = strcspn(b, ".");
    return la == lb && !strncmp(a, b, la);
}

const lt_impl *lt_kernel_pick(lt_kernel_handle *h, const char *op, const lt_impl *const *table, const void *shape,
                              const lt_named *operands, int noperands, lt_kernel_ctx *ctx, lt_error *err) {
    if (h && h->op && !same_operation(h->op, op))
        return lt_fail(err, "the kernel handle serves %s, not %s: give each layer its own", h->op, op), NULL;
    lt_device device;
    if (lt_check_devices(op, operands, noperands, &device, err)) return NULL;
    if (device != LT_DEVICE_CPU && !(table = (const lt_impl *const *)lt_backend_impls(device, op, err))) return NULL;
    lt_precision p = h ? h->precision : LT_FP32;
    const lt_impl *impl = first_supporting(table, shape, p);
    if (!impl && p != LT_FP32) impl = first_supporting(table, shape, p = LT_FP32);
    if (!impl) return lt_fail(err, "no implementation of %s computes this shape", op), NULL;
    ctx->state = NULL;
    ctx->precision = p;
    ctx->err = err;
    if (h) {
        if (h->impl != impl || h->running != p) release_state(h);
        h->op = op;
        h->impl = impl;
        h->running = p;
        ctx->state = &h->state;
    }
    return impl;
}

bool lt_device_computes_mixed(lt_device d, lt_precision precision, lt_error *why) {
    if (d == LT_DEVICE_CPU) return lt_fail(why, "the host is not a GPU (lt_mixed_precision_info says what it runs)"), false;
    const lt_backend_api *api = lt_backend(d, why);
    if (!api) return false;
    lt_device_props p;
    if (api->props(lt_device_index(d), &p, why)) return false;
    if (precision == LT_BF16 && p.cc_major < 8)
        return lt_fail(why, "%s (compute capability %d.%d) has no bf16 tensor cores (8.0 or later)", p.name, p.cc_major,
                       p.cc_minor), false;
    if (!lt_kernel_computes(d, "conv2d.channels_last", NULL, NULL, precision))
        return lt_fail(why, "the %s backend has no %s kernels", api->name, lt_precision_name(precision)), false;
    return true;
}

bool lt_kernel_computes(lt_device d, const char *op, const lt_impl *const *host, const void *shape, lt_precision p) {
    const lt_impl *const *table = host;
    if (d != LT_DEVICE_CPU) {
        lt_error ignored;
        if (!(table = (const lt_impl *const *)lt_backend_impls(d, op, &ignored))) return false;
    }
    if (!shape) return table[0] != NULL;
    for (size_t i = 0; table[i]; i++)
        if (table[i]->supports(table[i], shape, p)) return true;
    return false;
}

lt_dims lt_dims_of(const lt_tensor *t) {
    lt_dims d = {t->ndim, {0}};
    memcpy(d.size, t->size, sizeof(int64_t) * (size_t)t->ndim);
    return d;
}

void lt_kernel_forward_begin(lt_kernel_handle *h) { h->forwarded = false; }

void lt_kernel_forward_done(lt_kernel_handle *h, const lt_tensor *input, const lt_tensor *target,
                            const lt_tensor *output, bool training) {
    h->input = lt_dims_of(input);
    h->target = target ? lt_dims_of(target) : (lt_dims){0, {0}};
    h->output = lt_dims_of(output);
    h->training = training;
    h->forwarded = true;
}

static bool same_dims(const lt_tensor *t, const lt_dims *d) {
    if (t->ndim != d->ndim) return false;
    for (int i = 0; i < d->ndim; i++)
        if (t->size[i] != d->size[i]) return false;
    return true;
}

int lt_check_dims(const char *what, const lt_tensor *t, const lt_dims *dims, const char *whose, lt_error *err) {
    if (same_dims(t, dims)) return 0;
    char want[160], got[160];
    lt_sizes_str(dims->ndim, dims->size, want, sizeof want);
    return lt_fail(err, "%s must be %s, got %s (%s)", what, want, lt_shape_str(t, got, sizeof got), whose);
}

int lt_check_apart(const lt_named *written, int nwritten, const lt_named *read, int nread, lt_error *err) {
    for (int i = 0; i < nwritten; i++)
        for (int j = 0; j < nread; j++) {
            const lt_tensor *w = written[i].t, *r = read[j].t;
            if (w && r && w->storage && w->storage == r->storage)
                return lt_fail(err, "%s shares its storage with %s; give the layer its own %s", written[i].name,
                               read[j].name, written[i].name);
        }
    return 0;
}

int lt_kernel_backward_check(const lt_kernel_handle *h, const lt_tensor *input, const lt_tensor *grad_output,
                             lt_error *err) {
    if (!h->forwarded)
        return lt_fail(err, "backward before forward: there is no successful forward pass to go back through");
    if (input && lt_check_dims("input", input, &h->input, "the shape of the forward pass's input", err)) return -1;
    if (grad_output && lt_check_dims("grad_output", grad_output, &h->output, "the shape of the forward pass's output", err))
        return -1;
    return 0;
}
