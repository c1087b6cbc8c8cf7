/* Fully connected layer: out[B, O] = x[B, I] @ W[O, I]^T + b[O]. */
#include "../blas.h"
#include "../parallel.h"
#include "../tensor_math.h"
#include "nn.h"

static int check(const lt_tensor *input, const lt_tensor *weight, const lt_tensor *bias, lt_error *err) {
    char a[160], b[160];
    if (input->ndim != 2) return lt_fail(err, "expected a 2-D input (batch x features), got %s", lt_shape_str(input, a, sizeof a));
    if (weight->ndim != 2 || input->size[1] != weight->size[1])
        return lt_fail(err, "input has %lld features but the layer expects %lld (input %s, weight %s)",
                       (long long)input->size[1], (long long)(weight->ndim == 2 ? weight->size[1] : -1),
                       lt_shape_str(input, a, sizeof a), lt_shape_str(weight, b, sizeof b));
    if (bias && (bias->ndim != 1 || bias->size[0] != weight->size[0]))
        return lt_fail(err, "bias must have %lld elements, got %s", (long long)weight->size[0], lt_shape_str(bias, a, sizeof a));
    return 0;
}

int lt_linear_forward(lt_tensor *out, const lt_tensor *input, const lt_tensor *weight, const lt_tensor *bias,
                      lt_error *err) {
    if (check(input, weight, bias, err)) return -1;
    int64_t B = input->size[0], I = input->size[1], O = weight->size[0];
    int64_t size[2] = {B, O};
    lt_tensor x = {0};
    if (lt_contiguous(&x, input, err)) return -1;
    int rc = lt_tensor_resize(out, 2, size, err);
    if (rc == 0 && B * O > 0) {
        float *y = lt_data(out);
        if (bias) {  /* start from the bias, let the GEMM accumulate */
            const float *bd = lt_data(bias);
            for (int64_t i = 0; i < B; i++)
                for (int64_t o = 0; o < O; o++) y[i * O + o] = bd[o];
        }
        lt_sgemm(false, true, B, O, I, 1.0f, I ? lt_data(&x) : NULL, I, I ? lt_data(weight) : NULL, I, bias ? 1.0f : 0.0f,
                 y, O);
        if (I == 0 && !bias) lt_fill(out, 0.0f, NULL);
    }
    lt_tensor_release(&x);
    return rc;
}

int lt_linear_backward(lt_tensor *grad_input, lt_tensor *grad_weight, lt_tensor *grad_bias,
                       const lt_tensor *grad_output, const lt_tensor *input, const lt_tensor *weight, lt_error *err) {
    char a[160];
    if (check(input, weight, grad_bias, err)) return -1;
    int64_t B = input->size[0], I = input->size[1], O = weight->size[0];
    if (grad_output->ndim != 2 || grad_output->size[0] != B || grad_output->size[1] != O)
        return lt_fail(err, "grad_output must be %lldx%lld, got %s", (long long)B, (long long)O,
                       lt_shape_str(grad_output, a, sizeof a));
    if (!lt_same_shape(grad_weight, weight) || !lt_is_contiguous(grad_weight))
        return lt_fail(err, "grad_weight must be a contiguous tensor shaped like the weight");
    lt_tensor x = {0}, g = {0};
    int rc = -1;
    if (lt_contiguous(&x, input, err) || lt_contiguous(&g, grad_output, err)) goto done;
    if (grad_input && lt_tensor_resize(grad_input, 2, input->size, err)) goto done;
    if (B * O * I > 0) {
        const float *gd = lt_data(&g), *xd = lt_data(&x);
        /* dW[O, I] += dY^T[O, B] @ x[B, I] */
        lt_sgemm(true, false, O, I, B, 1.0f, gd, O, xd, I, 1.0f, lt_data(grad_weight), I);
        /* dx[B, I] = dY[B, O] @ W[O, I] */
        if (grad_input) lt_sgemm(false, false, B, I, O, 1.0f, gd, O, lt_data(weight), I, 0.0f, lt_data(grad_input), I);
    } else if (grad_input && lt_numel(grad_input)) {
        lt_fill(grad_input, 0.0f, NULL);
    }
    if (grad_bias && B * O > 0) {
        const float *gd = lt_data(&g);
        float *gb = lt_data(grad_bias);
        for (int64_t o = 0; o < O; o++) {
            double acc = 0;
            for (int64_t i = 0; i < B; i++) acc += gd[i * O + o];
            gb[o] += (float)acc;
        }
    }
    rc = 0;
done:
    lt_tensor_release(&x);
    lt_tensor_release(&g);
    return rc;
}
