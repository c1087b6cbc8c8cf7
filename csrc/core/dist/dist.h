/* The MPI transport behind lightning's data-parallel strategy (lua/lightning/strategies/ddp.lua): a thin
 * layer over MPI's world communicator, in pure C (no Lua). Built only when CMake finds MPI
 * (LIGHTNING_WITH_MPI); Open MPI 4.1 is the one tested.
 *
 * Rules:
 * - Every process calls the collectives in the same order, as MPI requires.
 * - Only the thread that called lt_dist_init calls MPI (MPI_THREAD_FUNNELED): the library's compute
 *   threads never do. Non-blocking reductions progress when the caller tests or waits on them.
 * - MPI errors come back as return codes with a message (MPI_ERRORS_RETURN on the communicators); the
 *   library never calls MPI_Abort but through lt_dist_abort, the documented fault path (see
 *   lt_dist_exit_decision).
 * - No collective waits for ever: each is started non-blocking and tested until it completes or the
 *   progress deadline (lt_dist_set_timeout) passes; then it fails, and the caller ends the job.
 * Counts are elements of the dtype; buffers larger than an MPI count holds are sent in pieces. */
#ifndef LT_DIST_H
#define LT_DIST_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/error.h"

typedef enum lt_dist_dtype { LT_DIST_FLOAT32, LT_DIST_FLOAT64, LT_DIST_INT64 } lt_dist_dtype;

/* mean is sum divided by the number of processes (floating-point types only). */
typedef enum lt_dist_op { LT_DIST_SUM, LT_DIST_MEAN, LT_DIST_MAX, LT_DIST_MIN } lt_dist_op;

typedef struct lt_dist_info {
    int rank, world_size;              /* in the world communicator */
    int local_rank, local_world_size;  /* among the processes of this machine (shared memory) */
    int thread_level;                  /* what MPI_Init_thread provided: 0 single .. 3 multiple */
    bool owns_mpi;                     /* lt_dist_init started MPI (and lt_dist_finalize ends it) */
    char library[128];                 /* MPI_Get_library_version's first line */
} lt_dist_info;

/* Starts MPI (MPI_Init_thread, FUNNELED) unless it runs already; calling it again returns the same
 * information. Fails after lt_dist_finalize: MPI cannot start twice in a process. */
int lt_dist_init(lt_dist_info *info, lt_error *err);
bool lt_dist_is_initialized(void);
/* Ends MPI (when lt_dist_init started it). Every process must call it: MPI_Finalize waits for the others. */
int lt_dist_finalize(lt_error *err);

int lt_dist_barrier(lt_error *err);
/* In place over `count` elements of buf. */
int lt_dist_all_reduce(void *buf, int64_t count, lt_dist_dtype dtype, lt_dist_op op, lt_error *err);
/* root's `bytes` bytes of buf into every process's buf. */
int lt_dist_broadcast(void *buf, int64_t bytes, int root, lt_error *err);
/* root's bytes, of a length the others do not know: *out (malloc'ed, free it) and *out_len on every
 * process (root gets a copy of its own). */
int lt_dist_broadcast_bytes(const void *data, int64_t len, int root, void **out, int64_t *out_len, lt_error *err);
/* Every process's `len` bytes (lengths may differ), concatenated in rank order into *out (malloc'ed,
 * free it); lens[r] is process r's length (lens has world_size entries). At most 64 MiB each. */
int lt_dist_all_gather_bytes(const void *data, int64_t len, void **out, int64_t *lens, lt_error *err);

/* ---- non-blocking reduction (MPI_Iallreduce) ---- */

typedef struct lt_dist_request lt_dist_request;

/* Starts the in-place reduction of buf, which must stay alive and untouched until the request
 * completes. */
lt_dist_request *lt_dist_all_reduce_start(void *buf, int64_t count, lt_dist_dtype dtype, lt_dist_op op,
                                          lt_error *err);
/* The same for float32 values sent as bfloat16, half the bytes (gradient compression, as PyTorch's
 * bf16_compress_hook): each process rounds its values to bf16, MPI sums them in bf16 (each addition
 * through float32, rounded back to bf16), and the result is widened into buf (then divided, for a mean).
 * Only LT_DIST_SUM and LT_DIST_MEAN. The result is the same on every process, within bf16 rounding of
 * the float32 one. */
lt_dist_request *lt_dist_all_reduce_bf16_start(float *buf, int64_t count, lt_dist_op op, lt_error *err);
/* *done: the reduction has completed (a mean is divided then). Each call also progresses MPI's other
 * pending operations. */
int lt_dist_test(lt_dist_request *r, bool *done, lt_error *err);
/* Blocks until the reduction completes. */
int lt_dist_wait(lt_dist_request *r, lt_error *err);
bool lt_dist_request_done(const lt_dist_request *r);
/* Frees a request; one still pending is waited for first (its buffer is in use until then). */
void lt_dist_request_free(lt_dist_request *r);

/* ---- the progress deadline ---- */

/* How long a collective may wait without completing (seconds; 0: for ever; 60 until set). One that
 * waits longer fails with a message naming the operation, the seconds waited and this rank: a process it
 * needs is stuck, gone or unreachable. MPI is then unusable in this process (the collective is still
 * pending on the communicator): every later call fails at once, lt_dist_timed_out() is true and the
 * caller must end the job (lt_dist_abort), as lt_dist_exit_decision does. */
void lt_dist_set_timeout(double timeout_s);
double lt_dist_timeout(void);
bool lt_dist_timed_out(void);

/* ---- the end of a process ---- */

/* Marks this process as having failed inside a run whose peers may be waiting in a collective for it
 * (the strategy's teardown after an error): at exit it then ends the whole job instead of finalizing.
 * false clears the mark (a later collective succeeded: the processes are in step again). */
void lt_dist_set_fault(bool fault);
bool lt_dist_fault(void);

typedef enum lt_dist_exit { LT_DIST_EXIT_FINALIZED, LT_DIST_EXIT_FAULT, LT_DIST_EXIT_PEERS_AWAY } lt_dist_exit;

/* What to do at process exit: with a fault mark, or after a collective timed out, LT_DIST_EXIT_FAULT at once. Otherwise a barrier on a
 * communicator of its own (so that it cannot match a collective of the run) for at most timeout_s:
 * when every process arrives, MPI is finalized (LT_DIST_EXIT_FINALIZED); when some do not (they are
 * stuck in a collective this process left), LT_DIST_EXIT_PEERS_AWAY. The caller then calls
 * lt_dist_abort: MPI_Finalize would wait for those processes for ever. */
lt_dist_exit lt_dist_exit_decision(double timeout_s);
/* The fault path: MPI_Abort on the world communicator, which ends every process of the job. */
void lt_dist_abort(int code);

size_t lt_dist_dtype_size(lt_dist_dtype dtype);

#endif
