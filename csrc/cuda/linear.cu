/* The fully connected layer through cuBLASLt (with the backend's workspace, as llm.c):
 *   forward:  out[B, O] = x[B, I] @ W[O, I]^T + b        (the bias in the GEMM's epilogue)
 *   backward: dx[B, I]  = dY[B, O] @ W[O, I]
 *             dW[O, I] += dY^T @ x                        (beta = 1: gradients accumulate)
 *             db[O]    += column sums of dY               (a kernel of its own, summing in double)
 * cuBLASLt is column-major: a row-major [R, C] matrix is its column-major [C, R] with leading dimension
 * C, so each product below is written for the transposes. float32 storage; TF32 compute when the
 * module's switch allows it (tf32_allowed). A layer's state keeps each product's descriptors and the
 * algorithm cuBLASLt's heuristics chose for it, so that a warm layer only launches. */
#include <new>

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

/* What a product's descriptors and algorithm depend on. */
struct gemm_key {
    bool ta, tb, bias, tf32;
    int64_t m, n, k, lda, ldb, ldc;
    uint32_t align_a, align_b, align_c;
    bool operator==(const gemm_key &o) const {
        return ta == o.ta && tb == o.tb && bias == o.bias && tf32 == o.tf32 && m == o.m && n == o.n && k == o.k &&
               lda == o.lda && ldb == o.ldb && ldc == o.ldc && align_a == o.align_a && align_b == o.align_b &&
               align_c == o.align_c;
    }
};

/* One product's descriptors and the algorithm cuBLASLt's heuristics chose (found false: none). */
struct gemm_plan {
    bool used = false, found = false;
    gemm_key key;
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo;
    void destroy() {
        if (c) cublasLtMatrixLayoutDestroy(c);
        if (b) cublasLtMatrixLayoutDestroy(b);
        if (a) cublasLtMatrixLayoutDestroy(a);
        if (op) cublasLtMatmulDescDestroy(op);
        op = nullptr;
        a = b = c = nullptr;
        used = found = false;
    }
    ~gemm_plan() { destroy(); }
};

/* A layer's plans: its forward product, dW's and dx's, for a shape or two (the last batch of an epoch). */
enum { GEMM_PLANS = 6 };
struct linear_state {
    gemm_plan plans[GEMM_PLANS];
    int next = 0; /* the plan a new product replaces */
};

static void linear_release(void *state) { delete (linear_state *)state; }

enum { NO_ALGORITHM = 1 };

static int make_plan(lt_error *err, gemm_plan &p, const gemm_key &key) {
    backend_state &s = state();
    p.destroy();
    p.used = true;
    p.key = key;
    cublasComputeType_t compute = key.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    LTC_CUBLAS(err, cublasLtMatmulDescCreate(&p.op, compute, CUDA_R_32F));
    cublasOperation_t opa = key.ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = key.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    LTC_CUBLAS(err, cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    LTC_CUBLAS(err, cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
    if (key.bias) {
        cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
        LTC_CUBLAS(err,
                   cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
    }
    LTC_CUBLAS(err,
               cublasLtMatrixLayoutCreate(&p.a, CUDA_R_32F, key.ta ? key.k : key.m, key.ta ? key.m : key.k, key.lda));
    LTC_CUBLAS(err,
               cublasLtMatrixLayoutCreate(&p.b, CUDA_R_32F, key.tb ? key.n : key.k, key.tb ? key.k : key.n, key.ldb));
    LTC_CUBLAS(err, cublasLtMatrixLayoutCreate(&p.c, CUDA_R_32F, key.m, key.n, key.ldc));
    /* the preference only serves the heuristic's query */
    cublasLtMatmulPreference_t pref = nullptr;
    LTC_CUBLAS(err, cublasLtMatmulPreferenceCreate(&pref));
    cublasStatus_t e = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                            &s.blaslt_workspace_bytes, sizeof s.blaslt_workspace_bytes);
    const uint32_t aligns[4] = {key.align_a, key.align_b, key.align_c, key.align_c};
    const cublasLtMatmulPreferenceAttributes_t which[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4 && e == CUBLAS_STATUS_SUCCESS; i++)
        e = cublasLtMatmulPreferenceSetAttribute(pref, which[i], &aligns[i], sizeof aligns[i]);
    cublasLtMatmulHeuristicResult_t heuristic;
    int found = 0;
    if (e == CUBLAS_STATUS_SUCCESS)
        e = cublasLtMatmulAlgoGetHeuristic(s.blaslt, p.op, p.a, p.b, p.c, p.c, pref, 1, &heuristic, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (e != CUBLAS_STATUS_SUCCESS) return cublas_fail(err, e, "cublasLtMatmulAlgoGetHeuristic");
    p.found = found > 0;
    if (p.found) p.algo = heuristic.algo;
    return 0;
}

/* The plan for key: the layer's (made when new), or *local outside a layer. */
static gemm_plan *plan_for(lt_kernel_ctx *ctx, const gemm_key &key, gemm_plan *local) {
    linear_state *st = ctx->state ? (linear_state *)*ctx->state : nullptr;
    if (ctx->state && !st) {
        st = new (std::nothrow) linear_state(); /* no exception may cross into the core's C */
        if (!st) {
            fail(ctx->err, "linear on cuda: out of host memory for the layer's state");
            return nullptr;
        }
        *ctx->state = st;
    }
    gemm_plan *p = local;
    if (st) {
        for (gemm_plan &q : st->plans)
            if (q.used && q.key == key) return &q;
        p = &st->plans[st->next];
        st->next = (st->next + 1) % GEMM_PLANS;
    }
    if (make_plan(ctx->err, *p, key)) {
        p->destroy();
        return nullptr;
    }
    return p;
}

/* Column-major C[m, n] = op(A) @ op(B) + beta * C (+ bias[m] per column when bias is given), op(X) = X^T
 * when its flag is set. A is stored [m, k] (or [k, m] transposed), B [k, n] (or [n, k]). Returns 0, -1
 * (err written), or NO_ALGORITHM (err written too) when cuBLASLt's heuristics offer none. */
static int gemm(lt_kernel_ctx *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                const float *B, int64_t ldb, float *C, int64_t ldc, float beta, const float *bias) {
    backend_state &s = state();
    gemm_key key = {ta,
                    tb,
                    bias != nullptr,
                    tf32_allowed(),
                    m,
                    n,
                    k,
                    lda,
                    ldb,
                    ldc,
                    alignment_of(A),
                    alignment_of(B),
                    alignment_of(C)};
    gemm_plan local;
    gemm_plan *p = plan_for(ctx, key, &local);
    if (!p) return -1;
    if (!p->found) {
        fail(ctx->err, "cublasLtMatmulAlgoGetHeuristic: no algorithm for a %lldx%lldx%lld float32 product%s",
             (long long)m, (long long)n, (long long)k, bias ? " with a bias epilogue" : "");
        return NO_ALGORITHM;
    }
    if (bias) /* the one attribute that changes from call to call */
        LTC_CUBLAS(ctx->err,
                   cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    const float alpha = 1.0f;
    LTC_CUBLAS(ctx->err, cublasLtMatmul(s.blaslt, p->op, &alpha, A, p->a, B, p->b, &beta, C, p->c, C, p->c, &p->algo,
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
    int rc = I > 0 ? gemm(ctx, true, false, O, B, I, weight, I, in, I, out, O, 0.0f, bias) : NO_ALGORITHM;
    if (rc != NO_ALGORITHM || (I > 0 && !bias)) return rc ? -1 : 0;
    /* no inner dimension, or no epilogue for these operands: start from the bias rows, as the CPU does,
     * and let the product add to them */
    rows_of_bias_kernel<<<grid_for(B * O), 256, 0, state().stream>>>(out, bias, B, O);
    LTC_LAUNCHED(ctx->err, "rows_of_bias_kernel");
    if (I == 0) return 0;
    return gemm(ctx, true, false, O, B, I, weight, I, in, I, out, O, 1.0f, nullptr) ? -1 : 0;
}

static int linear_backward(lt_kernel_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *in, const float *weight, lt_linear_shape s) {
    int64_t B = s.batch, I = s.in, O = s.out;
    if (B * O * I > 0) {
        /* dW^T[I, O] += (x stored [I, B]) @ (dY stored [O, B])^T */
        if (gemm(ctx, false, true, I, O, B, in, I, dout, O, dweight, I, 1.0f, nullptr)) return -1;
        /* dx^T[I, B] = (W stored [I, O]) @ (dY stored [O, B]) */
        if (dinp && gemm(ctx, false, false, I, B, O, weight, I, dout, O, dinp, I, 0.0f, nullptr)) return -1;
    } else if (dinp && B * I > 0) {
        LTC_CUDA(ctx->err, cudaMemsetAsync(dinp, 0, sizeof(float) * (size_t)(B * I), state().stream));
    }
    if (dbias) return add_column_sums(ctx->err, dbias, dout, B, O);
    return 0;
}

const lt_linear_impl linear_cuda = {
    {"cuda", supports_fp32, linear_release},
    linear_forward,
    linear_backward,
};

}  // namespace ltc
