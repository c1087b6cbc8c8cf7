/* BatchNorm2d -> ReLU -> MaxPool2d(2) as one layer, with the CPU's semantics
 * (csrc/core/cpu/bn_relu_pool.c): the statistics and running statistics of BatchNorm (bn_math.cuh), each
 * 2x2 window's normalised values rounded once (fmaf), the first maximum (NaN wins), and a code per output:
 * which of the window's four values passed (0..3), or -1 when the maximum was <= 0 or NaN (nothing
 * passed the ReLU). Output, codes and grad_output share the layout s.y; an odd last row or column lies
 * in no window.
 *
 * One block per channel, as batchnorm.cu: forward reduces the channel then pools it; backward sums the
 * gradient through the codes (reading x at each passing window's maximum: exact, where the CPU may
 * derive x from the output) then writes the input gradient. */
#include "bn_math.cuh"
#include "parts.cuh"

namespace ltc {

enum { POOL_THREADS = 512 };

__device__ __forceinline__ float nan_max_f(float best, float v) { return best == best && (v > best || v != v) ? v : best; }

__global__ void bn_relu_pool_forward_kernel(float *out, float *codes, const float *in, lt_bn_vectors v,
                                            lt_bn_relu_pool_shape s, lt_batchnorm_params p) {
    int64_t c = blockIdx.x, plane = s.h * s.w, count = s.n * plane;
    const float *x = in + c * s.x.sc;
    __shared__ bn_affine shared_t;
    if (p.training) {
        double shift = x[0], sum, sumsq;
        channel_moments(x, count, plane, s.x.sn, shift, sum, sumsq);
        if (threadIdx.x == 0) {
            double dmean = sum / (double)count;
            shared_t = bn_from_batch(shift + dmean, sumsq / (double)count - dmean * dmean, c, count, v, p);
        }
    } else if (threadIdx.x == 0) {
        shared_t = bn_from_running(c, v, p);
    }
    if (threadIdx.x == 0) {
        v.save_mean[c] = shared_t.mean;
        v.save_invstd[c] = shared_t.invstd;
    }
    __syncthreads();
    bn_affine t = shared_t;
    int64_t oplane = s.ho * s.wo;
    for (int64_t e = threadIdx.x; e < s.n * oplane; e += blockDim.x) {
        int64_t b = e / oplane, r = e % oplane, oy = r / s.wo, ox = r % s.wo;
        const float *r0 = x + b * s.x.sn + 2 * oy * s.w + 2 * ox, *r1 = r0 + s.w;
        float v0 = fmaf(r0[0], t.scale, t.shift), v1 = fmaf(r0[1], t.scale, t.shift);
        float v2 = fmaf(r1[0], t.scale, t.shift), v3 = fmaf(r1[1], t.scale, t.shift);
        float m = nan_max_f(nan_max_f(nan_max_f(v0, v1), v2), v3);
        float code = v2 == m ? 2.0f : 3.0f;
        code = v1 == m ? 1.0f : code;
        code = v0 == m ? 0.0f : code;
        int64_t at = c * s.y.sc + b * s.y.sn + r;
        out[at] = m < 0 ? 0.0f : m;
        codes[at] = m > 0 ? code : -1.0f;
    }
}

__global__ void bn_relu_pool_backward_kernel(float *dinp, float *dweight, float *dbias, const float *dout,
                                             const float *codes, const float *in, lt_bn_vectors v,
                                             lt_bn_relu_pool_shape s) {
    int64_t c = blockIdx.x, plane = s.h * s.w, oplane = s.ho * s.wo;
    const float *x = in + c * s.x.sc, *g = dout + c * s.y.sc, *code = codes + c * s.y.sc;
    float mean = v.save_mean[c], invstd = v.save_invstd[c], gamma = v.weight ? v.weight[c] : 1.0f;
    double sum_dy = 0, sum_dy_xc = 0;
    for (int64_t e = threadIdx.x; e < s.n * oplane; e += blockDim.x) {
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
        if (dweight) dweight[c] += (float)(sum_dy_xc * invstd);
        if (dbias) dbias[c] += (float)sum_dy;
    }
    if (!dinp) return;
    bn_grad k = bn_grad_of(sum_dy, sum_dy_xc, s.n * plane, gamma, invstd, s.training);
    float *d = dinp + c * s.dx.sc;
    for (int64_t e = threadIdx.x; e < s.n * plane; e += blockDim.x) {
        int64_t b = e / plane, r = e % plane, iy = r / s.w, ix = r % s.w;
        float xv = x[b * s.x.sn + r];
        float value = (k.b == 0.0f ? 0.0f : k.b * (xv - mean)) + k.c;
        if (iy < 2 * s.ho && ix < 2 * s.wo) {  /* in a window: the gradient passes at its code's place */
            int64_t o = b * s.y.sn + (iy / 2) * s.wo + ix / 2;
            if (code[o] == (float)((iy % 2) * 2 + ix % 2)) value += k.a * g[o];
        }
        d[b * s.dx.sn + r] = value;
    }
}

static int bn_relu_pool_forward(lt_kernel_ctx *ctx, float *out, float *codes, const float *in, lt_bn_vectors v,
                                lt_bn_relu_pool_shape s, lt_batchnorm_params p) {
    if (s.n * s.c * s.h * s.w == 0) return 0;
    bn_relu_pool_forward_kernel<<<(unsigned)s.c, POOL_THREADS, 0, state().stream>>>(out, codes, in, v, s, p);
    LTC_LAUNCHED(ctx->err, "bn_relu_pool_forward_kernel");
    return 0;
}

static int bn_relu_pool_backward(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                                 const float *out, const float *codes, const float *in, lt_bn_vectors v,
                                 lt_bn_relu_pool_shape s) {
    if (s.n * s.c * s.h * s.w == 0) return 0;
    bn_relu_pool_backward_kernel<<<(unsigned)s.c, POOL_THREADS, 0, state().stream>>>(dinp, dweight, dbias, dout, codes,
                                                                                      in, v, s);
    LTC_LAUNCHED(ctx->err, "bn_relu_pool_backward_kernel");
    return 0;
}

static bool bn_relu_pool_supports(const lt_impl *self, const void *shape, lt_precision p) {
    return p == LT_FP32 && ((const lt_bn_relu_pool_shape *)shape)->c <= INT32_MAX;
}

const lt_bn_relu_pool_impl bn_relu_pool_cuda = {
    {"cuda", bn_relu_pool_supports, nullptr},
    bn_relu_pool_forward,
    bn_relu_pool_backward,
};

}  // namespace ltc
