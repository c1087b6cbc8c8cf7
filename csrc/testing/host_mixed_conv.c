/* Mixed precision's convolution played on the host with its float32 kernel (host_mixed_conv.h). */
#include "host_mixed_conv.h"

#include <stdlib.h>

#include "../core/base/half.h"

/* v rounded to the 16-bit type t */
static float rounded(float v, lt_dtype t) { return lt_half_to_f32(lt_f32_to_half(v, t), t); }

/* The host buffers one pass works in: x packed NCHW and w, both rounded to the layer's type t; y or dy batch-folded
 * (C, N, H, W); cols the host kernel's scratch; dx packed NCHW and dw. */
typedef struct conv_buffers {
    float *x, *w, *y, *cols, *dx, *dw;
} conv_buffers;

static void free_buffers(conv_buffers *b) {
    free(b->x);
    free(b->w);
    free(b->y);
    free(b->cols);
    free(b->dx);
    free(b->dw);
}

static float *floats(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }

/* x and w as the host kernel reads them; s's input strides made packed */
static int open_buffers(lt_kernel_ctx *c, conv_buffers *b, const void *in, lt_act_desc d, const float *weight,
                        lt_conv2d_shape *s, int64_t scratch, lt_dtype t) {
    int64_t xn = s->n * s->cin * s->h * s->w, wn = s->cout * s->k, yn = s->n * s->cout * s->ho * s->wo;
    *b = (conv_buffers){floats(xn), floats(wn), floats(yn), floats(scratch), NULL, NULL};
    if (!b->x || !b->w || !b->y || !b->cols) return lt_fail(c->err, "conv2d.channels_last: out of host memory");
    for (int64_t i = 0; i < xn; i++) {
        int64_t x = i % s->w, y = i / s->w % s->h, ch = i / (s->w * s->h) % s->cin, n = i / (s->w * s->h * s->cin);
        b->x[i] = rounded(lt_load_float(in, d.dtype, n * d.stride[0] + ch * d.stride[1] + y * d.stride[2] + x * d.stride[3]), t);
    }
    for (int64_t i = 0; i < wn; i++) b->w[i] = rounded(weight[i], t);
    s->x = (lt_nc_strides){s->cin * s->h * s->w, s->h * s->w};
    return 0;
}

/* Element (n, c, y, x) of a dense channels-last (N, H, W, C) tensor, and of the batch-folded one. */
static int64_t nhwc_at(const lt_conv2d_shape *s, int64_t n, int64_t c, int64_t yx) {
    return (n * s->ho * s->wo + yx) * s->cout + c;
}
static int64_t cnhw_at(const lt_conv2d_shape *s, int64_t n, int64_t c, int64_t yx) {
    return (c * s->n + n) * s->ho * s->wo + yx;
}

int host_mixed_conv_forward(lt_kernel_ctx *c, uint16_t *out, const void *in, const float *weight, const float *bias,
                            lt_conv2d_shape s, lt_act_desc d) {
    conv_buffers b;
    lt_dtype t = lt_precision_dtype(c->precision);
    int rc = open_buffers(c, &b, in, d, weight, &s, lt_conv2d_cpu.forward_scratch(&s), t);
    if (!rc) rc = lt_conv2d_cpu.forward(c, b.y, b.x, b.w, NULL, b.cols, s);
    for (int64_t n = 0; !rc && n < s.n; n++)
        for (int64_t ch = 0; ch < s.cout; ch++)
            for (int64_t yx = 0; yx < s.ho * s.wo; yx++) {
                float v = rounded(b.y[cnhw_at(&s, n, ch, yx)], t);
                out[nhwc_at(&s, n, ch, yx)] = lt_f32_to_half(bias ? v + bias[ch] : v, t);
            }
    free_buffers(&b);
    return rc;
}

int host_mixed_conv_backward(lt_kernel_ctx *c, void *dinp, float *dweight, float *dbias, const uint16_t *dout,
                             const void *in, const float *weight, lt_conv2d_shape s, lt_act_desc d) {
    conv_buffers b;
    int64_t xn = s.n * s.cin * s.h * s.w, wn = s.cout * s.k;
    lt_dtype t = lt_precision_dtype(c->precision);
    int rc = open_buffers(c, &b, in, d, weight, &s, lt_conv2d_cpu.backward_scratch(&s, dinp != NULL), t);
    if (!rc && (!(b.dw = floats(wn)) || (dinp && !(b.dx = floats(xn)))))
        rc = lt_fail(c->err, "conv2d.channels_last: out of host memory");
    if (rc) goto done;
    for (int64_t n = 0; n < s.n; n++)  /* dy into the host kernel's batch-folded layout */
        for (int64_t ch = 0; ch < s.cout; ch++) {
            double sum = 0;
            for (int64_t yx = 0; yx < s.ho * s.wo; yx++) {
                float g = lt_half_to_f32(dout[nhwc_at(&s, n, ch, yx)], t);
                b.y[cnhw_at(&s, n, ch, yx)] = g;
                sum += g;
            }
            if (dbias) dbias[ch] += (float)sum;
        }
    s.dx = s.x;
    if ((rc = lt_conv2d_cpu.backward(c, b.dx, b.dw, NULL, b.y, b.x, b.w, b.cols, s))) goto done;
    for (int64_t i = 0; i < wn; i++) dweight[i] += rounded(b.dw[i], t);
    for (int64_t i = 0; dinp && i < xn; i++) {
        int64_t x = i % s.w, y = i / s.w % s.h, ch = i / (s.w * s.h) % s.cin, n = i / (s.w * s.h * s.cin);
        lt_store_float(dinp, d.dtype, n * d.stride[0] + ch * d.stride[1] + y * d.stride[2] + x * d.stride[3],
              rounded(b.dx[i], t));
    }
done:
    free_buffers(&b);
    return rc;
}

