/* BatchNorm2d -> ReLU -> MaxPool2d(2) as one layer, with the CPU's semantics
 * (csrc/core/cpu/bn_relu_pool.c): the statistics and running statistics of BatchNorm (bn_math.cuh), each
 * 2x2 window's normalised values rounded once (fmaf), the first maximum (NaN wins), and a code per output:
 * which of the window's four values passed (0..3), or -1 when the maximum was <= 0 or NaN (nothing
 * passed the ReLU). Output, codes and grad_output share the layout s.y; an odd last row or column lies
 * in no window.
 *
 * The statistics as batchnorm.cu's, in parts (bn_stats.cu); the gradient's sums run through the codes,
 * reading x at each passing window's maximum (exact, where the CPU may derive x from the output). */
#include "bn_math.cuh"
#include "parts.cuh"
#include "pool_math.cuh"

namespace ltc {

enum { GRAD_THREADS = 256 };

/* Output (c, b, oy, ox): its window's normalised values (rounded once: fmaf), their first maximum
 * through the ReLU, and the code. */
__global__ void bn_relu_pool_kernel(float *out, float *codes, const float *in, const bn_affine *aff,
                                    lt_bn_relu_pool_shape s) {
    int64_t oplane = s.ho * s.wo, per_channel = s.n * oplane;
    LTC_FOR(i, s.c * per_channel) {
        int64_t c = i / per_channel, e = i % per_channel, b = e / oplane, r = e % oplane, oy = r / s.wo, ox = r % s.wo;
        bn_affine t = aff[c];
        const float *r0 = in + c * s.x.sc + b * s.x.sn + 2 * oy * s.w + 2 * ox, *r1 = r0 + s.w;
        float v0 = fmaf(r0[0], t.scale, t.shift), v1 = fmaf(r0[1], t.scale, t.shift);
        float v2 = fmaf(r1[0], t.scale, t.shift), v3 = fmaf(r1[1], t.scale, t.shift);
        int place;
        float m = window_max(v0, v1, v2, v3, place);
        int64_t at = c * s.y.sc + b * s.y.sn + r;
        out[at] = m < 0 ? 0.0f : m;
        codes[at] = m > 0 ? (float)place : -1.0f;
    }
}

/* Block (c, q): sum(dy) and sum(dy * (x - mean)) over part q of channel c's outputs, where dy (the
 * normalised values' gradient) is the output's gradient at the value its code names and 0 elsewhere. */
__global__ void bn_relu_pool_grad_parts_kernel(double *part_sums, const float *dout, const float *codes,
                                               const float *in, const float *save_mean, lt_bn_relu_pool_shape s,
                                               int parts) {
    int64_t c = blockIdx.x / parts, oplane = s.ho * s.wo, begin, end;
    part_range(s.n * oplane, parts, (int)(blockIdx.x % parts), &begin, &end);
    const float *x = in + c * s.x.sc, *g = dout + c * s.y.sc, *code = codes + c * s.y.sc;
    float mean = save_mean[c];
    double sum_dy = 0, sum_dy_xc = 0;
    for (int64_t e = begin + threadIdx.x; e < end; e += blockDim.x) {
        int64_t b = e / oplane, r = e % oplane, oy = r / s.wo, ox = r % s.wo;
        float k = code[b * s.y.sn + r];
        if (k < 0) continue;
        int q = (int)k;
        float xv = x[b * s.x.sn + (2 * oy + q / 2) * s.w + 2 * ox + q % 2];
        double gv = g[b * s.y.sn + r];
        sum_dy += gv;
        sum_dy_xc += gv * (double)(xv - mean);
    }
    block_sum2(sum_dy, sum_dy_xc);
    if (threadIdx.x == 0) {
        part_sums[2 * blockIdx.x] = sum_dy;
        part_sums[2 * blockIdx.x + 1] = sum_dy_xc;
    }
}

/* Input element (c, b, iy, ix): b * (x - mean) + c, plus a * dy where its window's code names it (an odd
 * last row or column lies in no window). */
__global__ void bn_relu_pool_grad_input_kernel(float *dinp, const float *dout, const float *codes, const float *in,
                                               const bn_grad *coefficients, const float *save_mean,
                                               lt_bn_relu_pool_shape s) {
    int64_t plane = s.h * s.w, per_channel = s.n * plane;
    LTC_FOR(i, s.c * per_channel) {
        int64_t c = i / per_channel, e = i % per_channel, b = e / plane, r = e % plane, iy = r / s.w, ix = r % s.w;
        bn_grad k = coefficients[c];
        float xv = in[c * s.x.sc + b * s.x.sn + r], mean = save_mean[c];
        float value = (k.b == 0.0f ? 0.0f : k.b * (xv - mean)) + k.c;
        if (iy < 2 * s.ho && ix < 2 * s.wo) {
            int64_t o = c * s.y.sc + b * s.y.sn + (iy / 2) * s.wo + ix / 2;
            if (codes[o] == (float)((iy % 2) * 2 + ix % 2)) value += k.a * dout[o];
        }
        dinp[c * s.dx.sc + b * s.dx.sn + r] = value;
    }
}

static int bn_relu_pool_forward(lt_kernel_ctx *ctx, float *out, float *codes, const float *in, lt_bn_vectors v,
                                lt_bn_relu_pool_shape s, lt_batchnorm_params p) {
    if (s.n * s.c * s.h * s.w == 0) return 0;
    bn_affine *aff = (bn_affine *)device_alloc(sizeof(bn_affine) * (size_t)s.c, ctx->err);
    if (!aff) return -1;
    int rc =
        bn_forward_stats(ctx->err, aff, in, chan_view_of(s.n, s.h * s.w, s.x), s.c, v, p, nullptr, s.n * s.h * s.w);
    if (!rc && s.ho * s.wo > 0) {
        bn_relu_pool_kernel<<<grid_for(s.c * s.n * s.ho * s.wo), 256, 0, state().stream>>>(out, codes, in, aff, s);
        rc = launch_check(ctx->err, "bn_relu_pool_kernel");
    }
    device_free(aff);
    return rc;
}

static int bn_relu_pool_backward(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                                 const float *out, const float *codes, const float *in, lt_bn_vectors v,
                                 lt_bn_relu_pool_shape s) {
    if (s.n * s.c * s.h * s.w == 0) return 0;
    int parts = bn_parts(s.c, s.n * s.ho * s.wo);
    bn_grad_scratch scratch;
    if (scratch.make(ctx->err, s.c, parts, false)) return -1;
    bn_grad *k = scratch.k;
    double *part_sums = scratch.part_sums;
    bn_relu_pool_grad_parts_kernel<<<(unsigned)(s.c * parts), GRAD_THREADS, 0, state().stream>>>(
        part_sums, dout, codes, in, v.save_mean, s, parts);
    int rc = launch_check(ctx->err, "bn_relu_pool_grad_parts_kernel");
    if (!rc)
        rc = bn_backward_coefficients(ctx->err, k, part_sums, parts, nullptr, s.n * s.h * s.w, s.c, dweight, dbias,
                                      nullptr, v, s.training);
    if (!rc && dinp) {
        bn_relu_pool_grad_input_kernel<<<grid_for(s.c * s.n * s.h * s.w), 256, 0, state().stream>>>(
            dinp, dout, codes, in, k, v.save_mean, s);
        rc = launch_check(ctx->err, "bn_relu_pool_grad_input_kernel");
    }
    return rc;
}

static bool bn_relu_pool_supports(const lt_impl *self, const void *shape, lt_precision p) {
    return p == LT_FP32 && ((const lt_bn_relu_pool_shape *)shape)->c <= (1 << 22);
}

const lt_bn_relu_pool_impl bn_relu_pool_cuda = {
    {"cuda", bn_relu_pool_supports, nullptr},
    bn_relu_pool_forward,
    bn_relu_pool_backward,
};

}  // namespace ltc
