/* The emulated backend's entries for what csrc/cuda/ computes through NVIDIA's libraries, which are not
 * emulated: the float32 convolution and the linear layer (cuDNN, cuBLASLt) are the host's, the
 * mixed-precision convolution is played on the host (../host_mixed_conv.c). Each says so in its name
 * ("emu-host"): the layers that reach them are checked for their fronts and the kernels around them, not
 * for cuDNN's or cuBLASLt's arithmetic. They run on the stream as kernels do, so a CUDA graph's capture
 * records them. */
#include <stdio.h>
#include <stdlib.h>

#include "parts.cuh"

extern "C" {
#include "../../core/base/blas.h"
#include "../host_mixed_conv.h"
}

namespace ltc {

/* This module's copy of the core computes the host's convolutions: OpenBLAS loaded for it when the
 * module is (the core's own copy loaded it already; the library is the same). */
static const int blas_loaded = [] {
    lt_error err;
    return lt_blas_load(&err);
}();

/* run(ctx) now, or recorded into the graph being captured with a copy of ctx (its state slot is the
 * layer's, which outlives the graph); a recorded one that fails stops the process, naming it. */
template <class Run>
static int on_stream(lt_kernel_ctx *ctx, const char *name, Run run) {
    if (!ltc_emu_capturing()) return run(ctx);
    lt_kernel_ctx copy = *ctx;
    ltc_emu_submit([copy, name, run]() mutable {
        lt_error err;
        copy.err = &err;
        if (run(&copy)) {
            fprintf(stderr, "cuda_emu: %s in a CUDA graph's replay: %s\n", name, err.msg);
            abort();
        }
    });
    return 0;
}

static int conv_forward(lt_kernel_ctx *ctx, float *out, const float *in, const float *weight, const float *bias,
                        float *cols, lt_conv2d_shape s) {
    return on_stream(ctx, "conv2d", [=](lt_kernel_ctx *c) { return lt_conv2d_cpu.forward(c, out, in, weight, bias, cols, s); });
}
static int conv_backward(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *in, const float *weight, float *scratch, lt_conv2d_shape s) {
    return on_stream(ctx, "conv2d", [=](lt_kernel_ctx *c) {
        return lt_conv2d_cpu.backward(c, dinp, dweight, dbias, dout, in, weight, scratch, s);
    });
}
static int64_t conv_forward_scratch(const lt_conv2d_shape *s) { return lt_conv2d_cpu.forward_scratch(s); }
static int64_t conv_backward_scratch(const lt_conv2d_shape *s, bool grad_input) {
    return lt_conv2d_cpu.backward_scratch(s, grad_input);
}
const lt_conv2d_impl conv2d_cuda = {{"emu-host", lt_supports_fp32, nullptr}, conv_forward_scratch, conv_backward_scratch,
                                    conv_forward, conv_backward};

static int linear_forward(lt_kernel_ctx *ctx, float *out, const float *in, const float *weight, const float *bias,
                          lt_linear_shape s) {
    return on_stream(ctx, "linear", [=](lt_kernel_ctx *c) { return lt_linear_cpu.forward(c, out, in, weight, bias, s); });
}
static int linear_backward(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *in, const float *weight, lt_linear_shape s) {
    return on_stream(ctx, "linear", [=](lt_kernel_ctx *c) {
        return lt_linear_cpu.backward(c, dinp, dweight, dbias, dout, in, weight, s);
    });
}
const lt_linear_impl linear_cuda = {{"emu-host", lt_supports_fp32, nullptr}, linear_forward, linear_backward};

static bool mixed_conv_supports(const lt_impl *, const void *, lt_precision p) { return p == LT_BF16 || p == LT_FP16; }
static int mixed_conv_forward(lt_kernel_ctx *ctx, void *out, const void *in, const float *weight, const float *bias,
                              lt_conv2d_shape s, lt_act_desc d) {
    return on_stream(ctx, "conv2d.channels_last", [=](lt_kernel_ctx *c) {
        return host_mixed_conv_forward(c, (uint16_t *)out, in, weight, bias, s, d);
    });
}
static int mixed_conv_backward(lt_kernel_ctx *ctx, void *dinp, float *dweight, float *dbias, const void *dout,
                               const void *in, const float *weight, lt_conv2d_shape s, lt_act_desc d) {
    return on_stream(ctx, "conv2d.channels_last", [=](lt_kernel_ctx *c) {
        return host_mixed_conv_backward(c, dinp, dweight, dbias, (const uint16_t *)dout, in, weight, s, d);
    });
}
const lt_conv2d_channels_last_impl conv2d_channels_last_cuda = {{"emu-host", mixed_conv_supports, nullptr},
                                                                mixed_conv_forward, mixed_conv_backward};

}  // namespace ltc
