/* The fully connected layer through cuBLASLt (with the backend's workspace, as llm.c):
 *   forward:  out[B, O] = x[B, I] @ W[O, I]^T + b        (the bias in the GEMM's epilogue)
 *   backward: dx[B, I]  = dY[B, O] @ W[O, I]
 *             dW[O, I] += dY^T @ x                        (beta = 1: gradients accumulate)
 *             db[O]    += column sums of dY               (a kernel of its own, summing in double)
 * cuBLASLt is column-major: a row-major [R, C] matrix is its column-major [C, R] with leading dimension
 * C, so each product below is written for the transposes. float32 storage; TF32 compute when the
 * module's switch allows it (tf32_allowed). */
#include "parts.cuh"

namespace ltc {

/* The largest power of two (at most 256) dividing the address: cuBLASLt assumes 256-byte aligned
 * operands unless told, and a view's data may start anywhere. */
static uint32_t alignment_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    uint32_t align = 256;
    while (align > 4 && a % align) align /= 2;
    return align;
}

/* Destroys the descriptors of one matmul whatever path leaves the function. */
struct matmul_descs {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulPreference_t pref = nullptr;
    ~matmul_descs() {
        if (pref) cublasLtMatmulPreferenceDestroy(pref);
        if (c) cublasLtMatrixLayoutDestroy(c);
        if (b) cublasLtMatrixLayoutDestroy(b);
        if (a) cublasLtMatrixLayoutDestroy(a);
        if (op) cublasLtMatmulDescDestroy(op);
    }
};

enum { NO_ALGORITHM = 1 };

/* Column-major C[m, n] = op(A) @ op(B) + beta * C (+ bias[m] per column when bias is given), op(X) = X^T
 * when its flag is set. A is stored [m, k] (or [k, m] transposed), B [k, n] (or [n, k]). Returns 0, -1
 * (err written), or NO_ALGORITHM (err written too) when cuBLASLt's heuristics offer none. */
static int gemm(lt_error *err, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                const float *B, int64_t ldb, float *C, int64_t ldc, float beta, const float *bias) {
    backend_state &s = state();
    matmul_descs d;
    cublasComputeType_t compute = tf32_allowed() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    LTC_CUBLAS(err, cublasLtMatmulDescCreate(&d.op, compute, CUDA_R_32F));
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    LTC_CUBLAS(err, cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    LTC_CUBLAS(err, cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
    if (bias) {
        cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
        LTC_CUBLAS(err,
                   cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
        LTC_CUBLAS(err, cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    }
    LTC_CUBLAS(err, cublasLtMatrixLayoutCreate(&d.a, CUDA_R_32F, ta ? k : m, ta ? m : k, lda));
    LTC_CUBLAS(err, cublasLtMatrixLayoutCreate(&d.b, CUDA_R_32F, tb ? n : k, tb ? k : n, ldb));
    LTC_CUBLAS(err, cublasLtMatrixLayoutCreate(&d.c, CUDA_R_32F, m, n, ldc));
    LTC_CUBLAS(err, cublasLtMatmulPreferenceCreate(&d.pref));
    LTC_CUBLAS(err, cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                         &s.blaslt_workspace_bytes, sizeof s.blaslt_workspace_bytes));
    uint32_t align_a = alignment_of(A), align_b = alignment_of(B), align_c = alignment_of(C);
    LTC_CUBLAS(err, cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a,
                                                         sizeof align_a));
    LTC_CUBLAS(err, cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b,
                                                         sizeof align_b));
    LTC_CUBLAS(err, cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c,
                                                         sizeof align_c));
    LTC_CUBLAS(err, cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_c,
                                                         sizeof align_c));
    cublasLtMatmulHeuristicResult_t heuristic;
    int found = 0;
    LTC_CUBLAS(err, cublasLtMatmulAlgoGetHeuristic(s.blaslt, d.op, d.a, d.b, d.c, d.c, d.pref, 1, &heuristic, &found));
    if (found == 0) {
        fail(err, "cublasLtMatmulAlgoGetHeuristic: no algorithm for a %lldx%lldx%lld float32 product%s", (long long)m,
             (long long)n, (long long)k, bias ? " with a bias epilogue" : "");
        return NO_ALGORITHM;
    }
    const float alpha = 1.0f;
    LTC_CUBLAS(err, cublasLtMatmul(s.blaslt, d.op, &alpha, A, d.a, B, d.b, &beta, C, d.c, C, d.c, &heuristic.algo,
                                   s.blaslt_workspace, s.blaslt_workspace_bytes, s.stream));
    return 0;
}

/* out[B, O] = bias (or 0) in every row: the product of an empty inner dimension. */
__global__ void rows_of_bias_kernel(float *out, const float *bias, int64_t rows, int64_t cols) {
    LTC_FOR(i, rows * cols) out[i] = bias ? bias[i % cols] : 0.0f;
}

/* db[o] += sum over rows of dY[row, o]: a block of 32 columns x 8 row-lanes, summed in double. */
__global__ void column_sums_kernel(float *db, const float *dy, int64_t rows, int64_t cols) {
    __shared__ double part[8][33];
    int64_t col = (int64_t)blockIdx.x * 32 + threadIdx.x;
    double acc = 0;
    if (col < cols)
        for (int64_t r = threadIdx.y; r < rows; r += 8) acc += dy[r * cols + col];
    part[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && col < cols) {
        double total = 0;
        for (int y = 0; y < 8; y++) total += part[y][threadIdx.x];
        db[col] += (float)total;
    }
}

static int add_column_sums(lt_error *err, float *db, const float *dy, int64_t rows, int64_t cols) {
    if (rows * cols <= 0) return 0;
    int64_t blocks = (cols + 31) / 32;
    if (blocks > INT32_MAX) return fail(err, "column sums: %lld columns", (long long)cols);
    column_sums_kernel<<<(unsigned)blocks, dim3(32, 8), 0, state().stream>>>(db, dy, rows, cols);
    LTC_LAUNCHED(err, "column_sums_kernel");
    return 0;
}

static int linear_forward(lt_kernel_ctx *ctx, float *out, const float *in, const float *weight, const float *bias,
                          lt_linear_shape s) {
    int64_t B = s.batch, I = s.in, O = s.out;
    if (B * O == 0) return 0;
    /* out^T[O, B] = (W stored [I, O])^T @ (x stored [I, B]) + bias[O] per column */
    int rc = I > 0 ? gemm(ctx->err, true, false, O, B, I, weight, I, in, I, out, O, 0.0f, bias) : NO_ALGORITHM;
    if (rc != NO_ALGORITHM || (I > 0 && !bias)) return rc ? -1 : 0;
    /* no inner dimension, or no epilogue for these operands: start from the bias rows, as the CPU does,
     * and let the product add to them */
    rows_of_bias_kernel<<<grid_for(B * O), 256, 0, state().stream>>>(out, bias, B, O);
    LTC_LAUNCHED(ctx->err, "rows_of_bias_kernel");
    if (I == 0) return 0;
    return gemm(ctx->err, true, false, O, B, I, weight, I, in, I, out, O, 1.0f, nullptr) ? -1 : 0;
}

static int linear_backward(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *in, const float *weight, lt_linear_shape s) {
    int64_t B = s.batch, I = s.in, O = s.out;
    if (B * O * I > 0) {
        /* dW^T[I, O] += (x stored [I, B]) @ (dY stored [O, B])^T */
        if (gemm(ctx->err, false, true, I, O, B, in, I, dout, O, dweight, I, 1.0f, nullptr)) return -1;
        /* dx^T[I, B] = (W stored [I, O]) @ (dY stored [O, B]) */
        if (dinp && gemm(ctx->err, false, false, I, B, O, weight, I, dout, O, dinp, I, 0.0f, nullptr)) return -1;
    } else if (dinp && B * I > 0) {
        LTC_CUDA(ctx->err, cudaMemsetAsync(dinp, 0, sizeof(float) * (size_t)(B * I), state().stream));
    }
    if (dbias) return add_column_sums(ctx->err, dbias, dout, B, O);
    return 0;
}

const lt_linear_impl linear_cuda = {
    {"cuda", supports_fp32, nullptr},
    linear_forward,
    linear_backward,
};

}  // namespace ltc
