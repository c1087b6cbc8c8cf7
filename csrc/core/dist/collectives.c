/* The collectives of dist.h over the run's communicator: reductions (blocking and not), broadcast,
 * barrier, gathering bytes. Buffers beyond MPI's int counts go in pieces of PIECE elements. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/bf16.h"
#include "dist.h"
#include "mpi_util.h"

#define PIECE ((int64_t)1 << 30)
#define MAX_GATHER_BYTES ((int64_t)64 << 20)

static const char *dtype_name(lt_dist_dtype dtype) {
    switch (dtype) {
    case LT_DIST_FLOAT32: return "float32";
    case LT_DIST_FLOAT64: return "float64";
    case LT_DIST_INT64: return "int64";
    }
    return "?";
}

size_t lt_dist_dtype_size(lt_dist_dtype dtype) {
    return dtype == LT_DIST_FLOAT32 ? 4 : 8;
}

static MPI_Datatype mpi_type(lt_dist_dtype dtype) {
    switch (dtype) {
    case LT_DIST_FLOAT32: return MPI_FLOAT;
    case LT_DIST_FLOAT64: return MPI_DOUBLE;
    case LT_DIST_INT64: return MPI_INT64_T;
    }
    return MPI_DATATYPE_NULL;
}

static MPI_Op mpi_op(lt_dist_op op) {
    switch (op) {
    case LT_DIST_SUM:
    case LT_DIST_MEAN: return MPI_SUM;
    case LT_DIST_MAX: return MPI_MAX;
    case LT_DIST_MIN: return MPI_MIN;
    }
    return MPI_OP_NULL;
}

static int check_reduction(const char *what, int64_t count, lt_dist_dtype dtype, lt_dist_op op, lt_error *err) {
    if (lt_dist_require(what, err)) return -1;
    if (count < 0) return lt_fail(err, "%s: count must be >= 0, got %lld", what, (long long)count);
    if (mpi_type(dtype) == MPI_DATATYPE_NULL || mpi_op(op) == MPI_OP_NULL)
        return lt_fail(err, "%s: unknown data type or operation", what);
    if (op == LT_DIST_MEAN && dtype == LT_DIST_INT64)
        return lt_fail(err, "%s: the mean of int64 values is not an int64; reduce with sum and divide", what);
    return 0;
}

/* The mean from the sum: every process divides the same sum the same way. */
static void divide(void *buf, int64_t count, lt_dist_dtype dtype) {
    int n = lt_dist_size();
    if (dtype == LT_DIST_FLOAT32) {
        float *x = buf, d = (float)n;
        for (int64_t i = 0; i < count; i++) x[i] /= d;
    } else {
        double *x = buf, d = (double)n;
        for (int64_t i = 0; i < count; i++) x[i] /= d;
    }
}

int lt_dist_all_reduce(void *buf, int64_t count, lt_dist_dtype dtype, lt_dist_op op, lt_error *err) {
    lt_dist_request *r = lt_dist_all_reduce_start(buf, count, dtype, op, err);
    if (!r) return -1;
    int rc = lt_dist_wait(r, err);
    lt_dist_request_free(r);
    return rc;
}

/* A non-blocking collective's start (rc) and its completion within the progress deadline. */
static int finish(int rc, MPI_Request *req, const char *call, const char *what, lt_error *err) {
    if (lt_dist_check(rc, call, err)) return -1;
    return lt_dist_complete(req, 1, what, err);
}

int lt_dist_barrier(lt_error *err) {
    if (lt_dist_require("barrier", err)) return -1;
    MPI_Request req;
    return finish(MPI_Ibarrier(lt_dist_comm(), &req), &req, "MPI_Ibarrier", "barrier", err);
}

static int check_root(const char *what, int root, lt_error *err) {
    if (root < 0 || root >= lt_dist_size())
        return lt_fail(err, "%s: root must be a rank from 0 to %d, got %d", what, lt_dist_size() - 1, root);
    return 0;
}

int lt_dist_broadcast(void *buf, int64_t bytes, int root, lt_error *err) {
    if (lt_dist_require("broadcast", err) || check_root("broadcast", root, err)) return -1;
    for (int64_t at = 0; at < bytes; at += PIECE) {
        int n = (int)(bytes - at < PIECE ? bytes - at : PIECE);
        MPI_Request req;
        char what[96];
        snprintf(what, sizeof what, "broadcast of %lld bytes from rank %d", (long long)bytes, root);
        if (finish(MPI_Ibcast((char *)buf + at, n, MPI_BYTE, root, lt_dist_comm(), &req), &req, "MPI_Ibcast", what, err))
            return -1;
    }
    return 0;
}

int lt_dist_broadcast_bytes(const void *data, int64_t len, int root, void **out, int64_t *out_len, lt_error *err) {
    *out = NULL;
    if (lt_dist_require("broadcast", err) || check_root("broadcast", root, err)) return -1;
    int rank;
    MPI_Comm_rank(lt_dist_comm(), &rank);
    int64_t n = rank == root ? len : 0;
    if (lt_dist_broadcast(&n, sizeof n, root, err)) return -1;
    char *buf = malloc((size_t)(n ? n : 1));
    if (!buf) return lt_fail(err, "broadcast: out of memory for %lld bytes", (long long)n);
    if (rank == root) memcpy(buf, data, (size_t)n);
    if (lt_dist_broadcast(buf, n, root, err)) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

int lt_dist_all_gather_bytes(const void *data, int64_t len, void **out, int64_t *lens, lt_error *err) {
    *out = NULL;
    if (lt_dist_require("all_gather", err)) return -1;
    int size = lt_dist_size();
    /* every process learns every length first, so that a value too large fails on all of them alike */
    MPI_Request req;
    if (finish(MPI_Iallgather(&len, 1, MPI_INT64_T, lens, 1, MPI_INT64_T, lt_dist_comm(), &req), &req, "MPI_Iallgather",
               "all_gather", err))
        return -1;
    int64_t total = 0;
    for (int r = 0; r < size; r++) {
        if (lens[r] < 0 || lens[r] > MAX_GATHER_BYTES)
            return lt_fail(err, "all_gather: process %d gives %lld bytes; at most %lld are gathered", r,
                           (long long)lens[r], (long long)MAX_GATHER_BYTES);
        total += lens[r];
    }
    if (total > INT_MAX) return lt_fail(err, "all_gather: %lld bytes in all is too many", (long long)total);
    int *counts = malloc(sizeof(int) * (size_t)size), *displs = malloc(sizeof(int) * (size_t)size);
    char *buf = malloc((size_t)(total ? total : 1));
    int rc = -1;
    if (!counts || !displs || !buf) {
        lt_fail(err, "all_gather: out of memory");
        goto done;
    }
    for (int r = 0, at = 0; r < size; at += counts[r], r++) {
        counts[r] = (int)lens[r];
        displs[r] = at;
    }
    rc = finish(MPI_Iallgatherv(data, (int)len, MPI_BYTE, buf, counts, displs, MPI_BYTE, lt_dist_comm(), &req), &req,
                "MPI_Iallgatherv", "all_gather", err);
done:
    free(counts);
    free(displs);
    if (rc) free(buf);
    else *out = buf;
    return rc;
}

/* ---- non-blocking reduction ---- */

struct lt_dist_request {
    void *buf;
    int64_t count;
    lt_dist_dtype dtype;
    lt_dist_op op;
    lt_bf16 *wire;  /* the bf16 values MPI reduces in place of buf's (lt_dist_all_reduce_bf16_start), or NULL */
    bool done;
    int npieces;
    MPI_Request pieces[];
};

/* A request for count values, its reduction not started yet. */
static lt_dist_request *new_request(void *buf, int64_t count, lt_dist_dtype dtype, lt_dist_op op, lt_error *err) {
    int npieces = (int)((count + PIECE - 1) / PIECE);
    lt_dist_request *r = malloc(sizeof *r + sizeof(MPI_Request) * (size_t)npieces);
    if (!r) return lt_fail(err, "all_reduce: out of memory"), NULL;
    *r = (lt_dist_request){.buf = buf, .count = count, .dtype = dtype, .op = op, .npieces = 0};
    return r;
}

/* Starts the reduction of the count elements at data (esize bytes each), in pieces; frees r on failure. */
static lt_dist_request *start_pieces(lt_dist_request *r, void *data, size_t esize, MPI_Datatype type, MPI_Op op,
                                     lt_error *err) {
    for (int64_t at = 0; at < r->count; at += PIECE) {
        int n = (int)(r->count - at < PIECE ? r->count - at : PIECE);
        int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)data + (size_t)at * esize, n, type, op, lt_dist_comm(),
                                &r->pieces[r->npieces]);
        if (lt_dist_check(rc, "MPI_Iallreduce", err)) {
            lt_dist_request_free(r);  /* waits for the pieces already started */
            return NULL;
        }
        r->npieces++;
    }
    if (r->npieces == 0) r->done = true;
    return r;
}

lt_dist_request *lt_dist_all_reduce_start(void *buf, int64_t count, lt_dist_dtype dtype, lt_dist_op op,
                                          lt_error *err) {
    if (check_reduction("all_reduce", count, dtype, op, err)) return NULL;
    lt_dist_request *r = new_request(buf, count, dtype, op, err);
    return r ? start_pieces(r, buf, lt_dist_dtype_size(dtype), mpi_type(dtype), mpi_op(op), err) : NULL;
}

/* MPI's user operation for bf16 sums: inout[i] = bf16(float(in[i]) + float(inout[i])). */
static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *type) {
    const lt_bf16 *a = in;
    lt_bf16 *b = inout;
    for (int i = 0; i < *len; i++) b[i] = lt_f32_to_bf16(lt_bf16_to_f32(a[i]) + lt_bf16_to_f32(b[i]));
}

/* The bf16 sum as an MPI operation, made once (freed by MPI_Finalize). */
static int bf16_sum_op(MPI_Op *op, lt_error *err) {
    static MPI_Op made = MPI_OP_NULL;
    if (made == MPI_OP_NULL && lt_dist_check(MPI_Op_create(bf16_sum, 1, &made), "MPI_Op_create", err)) return -1;
    *op = made;
    return 0;
}

lt_dist_request *lt_dist_all_reduce_bf16_start(float *buf, int64_t count, lt_dist_op op, lt_error *err) {
    if (check_reduction("all_reduce (bf16)", count, LT_DIST_FLOAT32, op, err)) return NULL;
    if (op != LT_DIST_SUM && op != LT_DIST_MEAN)
        return lt_fail(err, "all_reduce (bf16): only sum and mean travel as bf16"), NULL;
    MPI_Op sum;
    if (bf16_sum_op(&sum, err)) return NULL;
    lt_dist_request *r = new_request(buf, count, LT_DIST_FLOAT32, op, err);
    if (!r) return NULL;
    r->wire = malloc((size_t)(count > 0 ? count : 1) * sizeof(lt_bf16));
    if (!r->wire) {
        free(r);
        return lt_fail(err, "all_reduce (bf16): out of memory for %lld values", (long long)count), NULL;
    }
    for (int64_t i = 0; i < count; i++) r->wire[i] = lt_f32_to_bf16(buf[i]);
    return start_pieces(r, r->wire, sizeof(lt_bf16), MPI_UINT16_T, sum, err);
}

static void complete(lt_dist_request *r) {
    r->done = true;
    if (r->wire) {
        float *x = r->buf;
        for (int64_t i = 0; i < r->count; i++) x[i] = lt_bf16_to_f32(r->wire[i]);
    }
    if (r->op == LT_DIST_MEAN) divide(r->buf, r->count, r->dtype);
}

int lt_dist_test(lt_dist_request *r, bool *done, lt_error *err) {
    if (!r->done) {
        int flag = 0;
        if (lt_dist_check(MPI_Testall(r->npieces, r->pieces, &flag, MPI_STATUSES_IGNORE), "MPI_Testall", err)) return -1;
        if (flag) complete(r);
    }
    *done = r->done;
    return 0;
}

int lt_dist_wait(lt_dist_request *r, lt_error *err) {
    if (r->done) return 0;
    char what[96];
    snprintf(what, sizeof what, "all_reduce of %lld %s values", (long long)r->count, dtype_name(r->dtype));
    if (lt_dist_complete(r->pieces, r->npieces, what, err)) return -1;
    complete(r);
    return 0;
}

bool lt_dist_request_done(const lt_dist_request *r) { return r->done; }

void lt_dist_request_free(lt_dist_request *r) {
    if (!r) return;
    /* a pending one is completed within the progress deadline; one that does not complete, or any after a
     * timeout, is left to MPI until the job ends, as the caller must then do (lt_dist_timed_out): its bf16
     * buffer too, which MPI may still write */
    bool pending = !r->done && r->npieces > 0;
    if (pending && lt_dist_is_initialized() && !lt_dist_timed_out())
        pending = lt_dist_complete(r->pieces, r->npieces, "all_reduce", NULL) != 0;
    if (!pending) free(r->wire);
    free(r);
}
