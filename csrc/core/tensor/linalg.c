#include "linalg.h"

#include <math.h>
#include <stdlib.h>

#include "../base/blas.h"
#include "../base/parallel.h"
#include "tensor_math.h"

/* How a 2-D view reaches BLAS: its data pointer, whether it is transposed, its leading dimension.
 * Views that are neither row- nor column-major are copied into *tmp. */
typedef struct gemm_operand {
    const float *data;
    bool trans;
    int64_t ld;
} gemm_operand;

static int as_operand(const lt_tensor *t, lt_tensor *tmp, gemm_operand *op, lt_error *err) {
    int64_t rows = t->size[0], cols = t->size[1];
    int64_t s0 = t->stride[0], s1 = t->stride[1];
    if ((cols == 1 || s1 == 1) && (rows == 1 || s0 >= (cols > 1 ? cols : 1))) {
        op->trans = false;
        op->ld = rows == 1 ? (cols > 1 ? cols : 1) : s0;
    } else if ((rows == 1 || s0 == 1) && (cols == 1 || s1 >= (rows > 1 ? rows : 1))) {
        op->trans = true;
        op->ld = cols == 1 ? (rows > 1 ? rows : 1) : s1;
    } else {
        if (lt_contiguous(tmp, t, err)) return -1;
        op->data = lt_data(tmp);
        op->trans = false;
        op->ld = cols > 1 ? cols : 1;
        return 0;
    }
    op->data = lt_numel(t) ? lt_data(t) : NULL;
    return 0;
}

static int check_2d(const char *what, const lt_tensor *t, lt_error *err) {
    if (t->ndim != 2) {
        char s[160];
        return lt_fail(err, "%s must be a 2-D tensor, got a %d-D tensor of size %s", what, t->ndim, lt_shape_str(t, s, sizeof s));
    }
    return 0;
}

static int check_inner(const lt_tensor *a, const lt_tensor *b, int da, int db, lt_error *err) {
    if (a->size[da] != b->size[db]) {
        char x[160], y[160];
        return lt_fail(err, "size mismatch: %s @ %s (inner dimensions %lld and %lld differ)", lt_shape_str(a, x, sizeof x),
                       lt_shape_str(b, y, sizeof y), (long long)a->size[da], (long long)b->size[db]);
    }
    return 0;
}

/* C (contiguous rows of length ldc) = beta C + alpha A B, A and B 2-D views. lt_sgemm's blocks are the
 * same inside a parallel region (bmm's) and out of it: the same bits at any thread count. */
static int gemm(float *c, int64_t ldc, const lt_tensor *a, const lt_tensor *b, float beta, float alpha, lt_error *err) {
    lt_tensor ta = {0}, tb = {0};
    gemm_operand oa, ob;
    int rc = -1;
    if (as_operand(a, &ta, &oa, err) || as_operand(b, &tb, &ob, err)) goto done;
    int64_t M = a->size[0], K = a->size[1], N = b->size[1];
    if (M > 0 && N > 0) {
        if (K == 0) {
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
        } else {
            lt_sgemm(oa.trans, ob.trans, M, N, K, alpha, oa.data, oa.ld, ob.data, ob.ld, beta, c, ldc);
        }
    }
    rc = 0;
done:
    lt_tensor_release(&ta);
    lt_tensor_release(&tb);
    return rc;
}

int lt_addmm_into(lt_tensor *out, const lt_tensor *a, const lt_tensor *b, float beta, float alpha, lt_error *err) {
    if (check_2d("the first matrix", a, err) || check_2d("the second matrix", b, err) || check_2d("the output", out, err))
        return -1;
    if (check_inner(a, b, 1, 0, err)) return -1;
    if (out->size[0] != a->size[0] || out->size[1] != b->size[1]) {
        char s[160];
        return lt_fail(err, "the output must be %lldx%lld, got %s", (long long)a->size[0], (long long)b->size[1],
                       lt_shape_str(out, s, sizeof s));
    }
    bool rowmajor = out->size[0] <= 1 || out->size[1] <= 1 ? lt_is_contiguous(out)
                                                              : out->stride[1] == 1 && out->stride[0] >= out->size[1];
    if (rowmajor && out->storage != a->storage && out->storage != b->storage) {
        if (lt_numel(out) == 0) return 0;
        return gemm(lt_data(out), out->size[1] > 1 ? out->stride[0] : 1, a, b, beta, alpha, err);
    }
    /* an awkward or aliased output: compute into a fresh matrix, then copy */
    lt_tensor tmp = {0};
    int rc = -1;
    if (lt_contiguous(&tmp, out, err)) return -1;
    if (tmp.storage == out->storage) {
        lt_tensor fresh = {0};
        if (lt_tensor_new(&fresh, 2, out->size, err) || lt_copy(&fresh, out, err)) { lt_tensor_release(&fresh); goto done; }
        lt_tensor_release(&tmp);
        tmp = fresh;
    }
    if (lt_numel(&tmp) && gemm(lt_data(&tmp), tmp.size[1], a, b, beta, alpha, err)) goto done;
    rc = lt_copy(out, &tmp, err);
done:
    lt_tensor_release(&tmp);
    return rc;
}

int lt_mm(lt_tensor *out, const lt_tensor *a, const lt_tensor *b, lt_error *err) {
    if (check_2d("the first matrix", a, err) || check_2d("the second matrix", b, err) || check_inner(a, b, 1, 0, err))
        return -1;
    int64_t size[2] = {a->size[0], b->size[1]};
    if (lt_tensor_new(out, 2, size, err)) return -1;
    if (lt_numel(out) == 0) return 0;
    return gemm(lt_data(out), size[1], a, b, 0.0f, 1.0f, err);
}

int lt_bmm(lt_tensor *out, const lt_tensor *a, const lt_tensor *b, lt_error *err) {
    char x[160], y[160];
    if (a->ndim != 3 || b->ndim != 3)
        return lt_fail(err, "expected two 3-D tensors (batch x n x k and batch x k x m), got %s and %s",
                       lt_shape_str(a, x, sizeof x), lt_shape_str(b, y, sizeof y));
    if (a->size[0] != b->size[0])
        return lt_fail(err, "batch sizes differ: %s and %s", lt_shape_str(a, x, sizeof x), lt_shape_str(b, y, sizeof y));
    if (check_inner(a, b, 2, 1, err)) return -1;
    int64_t batch = a->size[0], size[3] = {batch, a->size[1], b->size[2]};
    if (lt_tensor_new(out, 3, size, err)) return -1;
    if (lt_numel(out) == 0) return 0;
    int failed = 0;
    int threads = lt_threads_for(batch, 2);
    lt_error errs[1];
    /* one product per thread at a time: batches of small matrices are the common case */
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1) reduction(| : failed)
    for (int64_t i = 0; i < batch; i++) {
        lt_tensor ai = {0}, bi = {0};
        lt_error e;
        if (lt_select(&ai, a, 0, i, &e) || lt_select(&bi, b, 0, i, &e) ||
            gemm(lt_data(out) + i * size[1] * size[2], size[2], &ai, &bi, 0.0f, 1.0f, &e)) {
            failed |= 1;
            errs[0] = e;
        }
        lt_tensor_release(&ai);
        lt_tensor_release(&bi);
    }
    if (failed) return lt_fail(err, "%s", errs[0].msg);
    return 0;
}

int lt_matmul(lt_tensor *out, const lt_tensor *a, const lt_tensor *b, lt_error *err) {
    char x[160], y[160];
    int na = a->ndim, nb = b->ndim;
    if (na == 2 && nb == 2) return lt_mm(out, a, b, err);
    if (na == 3 && nb == 3) return lt_bmm(out, a, b, err);
    if (na <= 2 && nb <= 2) {  /* a vector is a 1 x k row on the left and a k x 1 column on the right */
        lt_tensor a2 = {0}, b2 = {0}, prod = {0};
        int64_t ra[2] = {1, a->size[0]}, rb[2] = {b->size[0], 1};
        int rc = -1;
        if (na == 1 ? lt_view(&a2, a, 2, ra, err) : (lt_tensor_share(&a2, a), 0)) goto done;
        if (nb == 1 ? lt_view(&b2, b, 2, rb, err) : (lt_tensor_share(&b2, b), 0)) goto done;
        if (lt_mm(&prod, &a2, &b2, err)) goto done;
        int64_t size[1] = {na == 1 ? prod.size[1] : prod.size[0]};
        if (na == 1 && nb == 1) size[0] = 1;
        rc = lt_view(out, &prod, 1, size, err);
    done:
        lt_tensor_release(&a2);
        lt_tensor_release(&b2);
        lt_tensor_release(&prod);
        return rc;
    }
    if (na == 3 && nb == 2) {  /* (B x n x k) @ (k x m): one product over all rows */
        lt_tensor flat = {0}, prod = {0};
        int64_t rows[2] = {a->size[0] * a->size[1], a->size[2]};
        int rc = -1;
        if (check_inner(a, b, 2, 0, err) || lt_reshape(&flat, a, 2, rows, err) || lt_mm(&prod, &flat, b, err)) goto done3;
        int64_t size[3] = {a->size[0], a->size[1], b->size[1]};
        rc = lt_view(out, &prod, 3, size, err);
    done3:
        lt_tensor_release(&flat);
        lt_tensor_release(&prod);
        return rc;
    }
    return lt_fail(err, "unsupported operand dimensions %s @ %s (1-D, 2-D and 3-D operands are supported)",
                   lt_shape_str(a, x, sizeof x), lt_shape_str(b, y, sizeof y));
}

/* ---- symmetric eigendecomposition (cyclic Jacobi) ---- */

/* Zeroes a[p][q] (and a[q][p]) of the symmetric n x n matrix a by the rotation J in the (p, q) plane:
 * a = J^T a J, v = v J (Golub & Van Loan, Algorithm 8.5.1, sym.schur2). */
static void jacobi_rotate(double *a, double *v, int64_t n, int64_t p, int64_t q) {
    double apq = a[p * n + q];
    if (apq == 0) return;
    double tau = (a[q * n + q] - a[p * n + p]) / (2 * apq);
    double t = (tau >= 0 ? 1.0 : -1.0) / (fabs(tau) + sqrt(1 + tau * tau));
    double c = 1 / sqrt(1 + t * t), s = t * c;
    for (int64_t k = 0; k < n; k++) {         /* columns p and q */
        double akp = a[k * n + p], akq = a[k * n + q];
        a[k * n + p] = c * akp - s * akq;
        a[k * n + q] = s * akp + c * akq;
    }
    for (int64_t k = 0; k < n; k++) {         /* rows p and q */
        double apk = a[p * n + k], aqk = a[q * n + k];
        a[p * n + k] = c * apk - s * aqk;
        a[q * n + k] = s * apk + c * aqk;
    }
    a[p * n + q] = a[q * n + p] = 0;
    for (int64_t k = 0; k < n; k++) {         /* the eigenvectors' columns p and q */
        double vkp = v[k * n + p], vkq = v[k * n + q];
        v[k * n + p] = c * vkp - s * vkq;
        v[k * n + q] = s * vkp + c * vkq;
    }
}

static double off_diagonal_norm2(const double *a, int64_t n) {
    double off = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            if (i != j) off += a[i * n + j] * a[i * n + j];
    return off;
}

int lt_eigh(lt_tensor *values, lt_tensor *vectors, const lt_tensor *a, lt_error *err) {
    char s[160];
    if (a->ndim != 2 || a->size[0] != a->size[1])
        return lt_fail(err, "expected a square matrix, got %s", lt_shape_str(a, s, sizeof s));
    int64_t n = a->size[0];
    if (n > LT_EIGH_MAX_N)
        return lt_fail(err, "the matrix is %lldx%lld; this Jacobi solver is for matrices up to %dx%d",
                       (long long)n, (long long)n, LT_EIGH_MAX_N, LT_EIGH_MAX_N);
    lt_tensor src = {0};
    if (lt_contiguous(&src, a, err)) return -1;
    const float *x = n ? lt_data(&src) : NULL;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++)
            if (!isfinite(x[i * n + j])) {
                lt_tensor_release(&src);
                return lt_fail(err, "the matrix has a non-finite value at (%lld, %lld)", (long long)i + 1, (long long)j + 1);
            }
    int64_t vsize[1] = {n}, msize[2] = {n, n};
    double *w = calloc((size_t)(2 * n * n + 1), sizeof(double));
    int64_t *order = calloc((size_t)(n + 1), sizeof(int64_t));
    int rc = -1;
    if (!w || !order) {
        lt_fail(err, "out of memory");
        goto done;
    }
    double *m = w, *v = w + n * n;
    double norm2 = 0;
    for (int64_t i = 0; i < n; i++) {         /* the lower triangle, mirrored */
        for (int64_t j = 0; j <= i; j++) {
            m[i * n + j] = m[j * n + i] = x[i * n + j];
            norm2 += (i == j ? 1.0 : 2.0) * m[i * n + j] * m[i * n + j];
        }
        v[i * n + i] = 1;
    }
    /* quadratic convergence: a handful of sweeps reach double rounding; 100 is a safety bound */
    for (int sweep = 0; sweep < 100 && off_diagonal_norm2(m, n) > 1e-30 * norm2; sweep++)
        for (int64_t p = 0; p < n - 1; p++)
            for (int64_t q = p + 1; q < n; q++) jacobi_rotate(m, v, n, p, q);
    for (int64_t i = 0; i < n; i++) order[i] = i;
    for (int64_t i = 1; i < n; i++) {         /* insertion sort by eigenvalue, ascending (stable) */
        int64_t k = order[i], j = i;
        for (; j > 0 && m[order[j - 1] * n + order[j - 1]] > m[k * n + k]; j--) order[j] = order[j - 1];
        order[j] = k;
    }
    if (lt_tensor_new(values, 1, vsize, err) || lt_tensor_new(vectors, 2, msize, err)) goto done;
    float *ov = n ? lt_data(values) : NULL, *ovec = n ? lt_data(vectors) : NULL;
    for (int64_t j = 0; j < n; j++) {         /* each eigenvector, a column of the output */
        int64_t k = order[j], big = 0;
        for (int64_t i = 1; i < n; i++)
            if (fabs(v[i * n + k]) > fabs(v[big * n + k])) big = i;
        double sign = v[big * n + k] < 0 ? -1.0 : 1.0;
        ov[j] = (float)m[k * n + k];
        for (int64_t i = 0; i < n; i++) ovec[i * n + j] = (float)(sign * v[i * n + k]);
    }
    rc = 0;
done:
    free(w);
    free(order);
    lt_tensor_release(&src);
    return rc;
}
