/* Matrix products on tensors through lt_sgemm. Transposed views are passed to BLAS as transposed
 * operands without copying; other layouts are copied to contiguous first. */
#ifndef LT_LINALG_H
#define LT_LINALG_H

#include "tensor.h"

/* out = beta * out + alpha * a @ b, with a (n x k), b (k x m) and out (n x m) already shaped. */
int lt_addmm_into(lt_tensor *out, const lt_tensor *a, const lt_tensor *b, float beta, float alpha, lt_error *err);
/* out (allocated) = a @ b for 2-D a and b. */
int lt_mm(lt_tensor *out, const lt_tensor *a, const lt_tensor *b, lt_error *err);
/* out (allocated) = a[i] @ b[i] for 3-D a (B x n x k) and b (B x k x m). */
int lt_bmm(lt_tensor *out, const lt_tensor *a, const lt_tensor *b, lt_error *err);
/* torch.matmul for 1-D and 2-D operands and batched 3-D ones. A 1-D @ 1-D product is a 1-element tensor. */
int lt_matmul(lt_tensor *out, const lt_tensor *a, const lt_tensor *b, lt_error *err);

/* torch.linalg.eigh for a symmetric n x n matrix a (float32; only its lower triangle is read, as
 * torch's default UPLO = "L"): values (allocated, n) in ascending order and vectors (allocated, n x n)
 * whose column j is the unit eigenvector of values[j]. Computed in double precision by cyclic Jacobi
 * rotations, for small matrices (n <= LT_EIGH_MAX_N; a 12 x 12 covariance takes microseconds). Each
 * eigenvector's sign is fixed: its component of largest magnitude (the first of equals) is positive;
 * LAPACK's sign, and so torch's, is arbitrary. */
#define LT_EIGH_MAX_N 1024
int lt_eigh(lt_tensor *values, lt_tensor *vectors, const lt_tensor *a, lt_error *err);

#endif
