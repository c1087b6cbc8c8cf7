/* MPI's start and end in a process (see dist.h), and the fault path. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dist.h"
#include "mpi_util.h"

static struct {
    bool initialized, finalized, fault, timed_out;
    double timeout_s;    /* the progress deadline of a collective (0: none) */
    MPI_Comm comm;       /* the run's collectives */
    MPI_Comm exit_comm;  /* the barrier at exit only: it cannot match a collective of the run */
    lt_dist_info info;
    char host[MPI_MAX_PROCESSOR_NAME];
} state = {.comm = MPI_COMM_NULL, .exit_comm = MPI_COMM_NULL, .timeout_s = 60};

MPI_Comm lt_dist_comm(void) { return state.comm; }
int lt_dist_size(void) { return state.info.world_size; }
bool lt_dist_is_initialized(void) { return state.initialized && !state.finalized; }
void lt_dist_set_fault(bool fault) { state.fault = fault; }
bool lt_dist_fault(void) { return state.fault; }
void lt_dist_set_timeout(double timeout_s) { state.timeout_s = timeout_s > 0 ? timeout_s : 0; }
double lt_dist_timeout(void) { return state.timeout_s; }
bool lt_dist_timed_out(void) { return state.timed_out; }

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int lt_dist_check(int rc, const char *what, lt_error *err) {
    if (rc == MPI_SUCCESS) return 0;
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "MPI error code %d", rc);
    return lt_fail(err, "%s failed: %s", what, msg);
}

int lt_dist_require(const char *what, lt_error *err) {
    if (state.timed_out)
        return lt_fail(err, "%s: a collective timed out before in this process; MPI cannot be used again "
                       "(the job must end)", what);
    if (lt_dist_is_initialized()) return 0;
    if (state.finalized) return lt_fail(err, "%s: MPI was finalized in this process", what);
    return lt_fail(err, "%s: MPI is not started (call init first)", what);
}

int lt_dist_complete(MPI_Request *reqs, int n, const char *what, lt_error *err) {
    double start = now_s();
    for (;;) {
        int done = 0;
        if (lt_dist_check(MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE), what, err)) return -1;
        if (done) return 0;
        if (state.timeout_s > 0 && now_s() - start > state.timeout_s) {
            state.timed_out = true;
            return lt_fail(err, "%s did not complete within %g s on rank %d of %d (host %s): a process it needs is "
                           "stuck in other work, gone or unreachable", what, state.timeout_s, state.info.rank,
                           state.info.world_size, state.host);
        }
    }
}

/* A duplicate of the world communicator that reports errors instead of aborting. */
static int dup_world(MPI_Comm *out, lt_error *err) {
    if (lt_dist_check(MPI_Comm_dup(MPI_COMM_WORLD, out), "MPI_Comm_dup", err)) return -1;
    return lt_dist_check(MPI_Comm_set_errhandler(*out, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler", err);
}

static int local_ranks(lt_dist_info *info, lt_error *err) {
    MPI_Comm local;
    if (lt_dist_check(MPI_Comm_split_type(state.comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local),
                      "MPI_Comm_split_type", err))
        return -1;
    int rc = MPI_Comm_rank(local, &info->local_rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(local, &info->local_world_size);
    MPI_Comm_free(&local);
    return lt_dist_check(rc, "MPI_Comm_rank", err);
}

static void library_name(lt_dist_info *info) {
    char text[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    MPI_Get_library_version(text, &len);
    text[strcspn(text, "\n,")] = '\0';
    snprintf(info->library, sizeof info->library, "%.*s", (int)sizeof info->library - 1, text);   /* (cut) */
}

int lt_dist_init(lt_dist_info *info, lt_error *err) {
    if (lt_dist_is_initialized()) {
        *info = state.info;
        return 0;
    }
    int started = 0, ended = 0;
    MPI_Finalized(&ended);
    if (ended || state.finalized) return lt_fail(err, "MPI was finalized in this process; it cannot start again");
    MPI_Initialized(&started);
    lt_dist_info in = {0};
    if (!started) {
        if (lt_dist_check(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &in.thread_level), "MPI_Init_thread", err))
            return -1;
        in.owns_mpi = true;
    } else if (lt_dist_check(MPI_Query_thread(&in.thread_level), "MPI_Query_thread", err)) {
        return -1;
    }
    if (in.thread_level < MPI_THREAD_FUNNELED)
        return lt_fail(err, "MPI provides thread level %d, but the library needs MPI_THREAD_FUNNELED (%d): its "
                       "compute threads run beside the one that calls MPI", in.thread_level, MPI_THREAD_FUNNELED);
    if (dup_world(&state.comm, err) || dup_world(&state.exit_comm, err)) return -1;
    if (lt_dist_check(MPI_Comm_rank(state.comm, &in.rank), "MPI_Comm_rank", err) ||
        lt_dist_check(MPI_Comm_size(state.comm, &in.world_size), "MPI_Comm_size", err) || local_ranks(&in, err))
        return -1;
    library_name(&in);
    int len = 0;
    if (MPI_Get_processor_name(state.host, &len) != MPI_SUCCESS) snprintf(state.host, sizeof state.host, "?");
    state.info = in;
    state.initialized = true;
    *info = in;
    return 0;
}

static void free_comms(void) {
    if (state.comm != MPI_COMM_NULL) MPI_Comm_free(&state.comm);
    if (state.exit_comm != MPI_COMM_NULL) MPI_Comm_free(&state.exit_comm);
}

static int finalize(lt_error *err) {
    free_comms();
    state.finalized = true;
    if (state.info.owns_mpi) return lt_dist_check(MPI_Finalize(), "MPI_Finalize", err);
    return 0;
}

int lt_dist_finalize(lt_error *err) {
    if (!lt_dist_is_initialized()) return 0;
    if (state.timed_out)   /* (MPI_Finalize would wait for the collective that never completed) */
        return lt_fail(err, "a collective timed out in this process: MPI cannot be finalized (the job must end)");
    return finalize(err);
}

lt_dist_exit lt_dist_exit_decision(double timeout_s) {
    if (!lt_dist_is_initialized()) return LT_DIST_EXIT_FINALIZED;
    if (state.fault || state.timed_out) return LT_DIST_EXIT_FAULT;
    MPI_Request r;
    if (MPI_Ibarrier(state.exit_comm, &r) != MPI_SUCCESS) return LT_DIST_EXIT_PEERS_AWAY;
    double deadline = now_s() + timeout_s;
    for (;;) {
        int done = 0;
        if (MPI_Test(&r, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return LT_DIST_EXIT_PEERS_AWAY;
        if (done) break;
        if (now_s() > deadline) return LT_DIST_EXIT_PEERS_AWAY;
        struct timespec pause = {0, 1000000};  /* 1 ms: the others may take seconds to get here */
        nanosleep(&pause, NULL);
    }
    finalize(NULL);
    return LT_DIST_EXIT_FINALIZED;
}

void lt_dist_abort(int code) {
    MPI_Abort(MPI_COMM_WORLD, code);
}
