/* The fake device's collectives (backend_api.h's lt_backend_comm), so that the specs run data-parallel
 * training on "GPUs" under mpirun without one: NCCL's part played by MPI over the fake's host memory,
 * with the host transport's arithmetic (a mean is the sum divided by the number of processes, in
 * float32), so a job on the fake device trains bit for bit as the same job on the CPUs.
 * A group of one process needs no MPI. Built with MPI when CMake finds it (FAKE_WITH_MPI).
 * Knob: LIGHTNING_FAKE_NO_COMM_RANK (below). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake.h"

#ifdef FAKE_WITH_MPI
#include <mpi.h>
static MPI_Comm group = MPI_COMM_NULL;
#endif

static int joined_world;  /* 0 before init */

/* LIGHTNING_FAKE_NO_COMM_RANK=r: the process of MPI rank r cannot take part (as one without NCCL). */
static int ready(lt_error *err) {
    const char *broken = getenv("LIGHTNING_FAKE_NO_COMM_RANK"), *rank = getenv("OMPI_COMM_WORLD_RANK");
    if (broken && rank && !strcmp(broken, rank)) return fake_fail(err, "no collectives on this process (LIGHTNING_FAKE_NO_COMM_RANK)");
    return 0;
}

static int unique_id(unsigned char id[LT_COMM_ID_BYTES], lt_error *err) {
    memset(id, 0, LT_COMM_ID_BYTES);
    snprintf((char *)id, LT_COMM_ID_BYTES, "fake group %ld", (long)time(NULL));
    return 0;
}

static int init(const unsigned char id[LT_COMM_ID_BYTES], int rank, int world_size, lt_error *err) {
    if (joined_world) return fake_fail(err, "this process already joined a group");
    if (world_size > 1) {
#ifdef FAKE_WITH_MPI
        int running = 0, mpi_rank, mpi_size;
        MPI_Initialized(&running);
        if (!running) return fake_fail(err, "a group of several processes needs MPI running (mpirun)");
        MPI_Comm_rank(MPI_COMM_WORLD, &mpi_rank);
        MPI_Comm_size(MPI_COMM_WORLD, &mpi_size);
        if (mpi_rank != rank || mpi_size != world_size) return fake_fail(err, "the rank or the size differs from MPI's");
        if (MPI_Comm_dup(MPI_COMM_WORLD, &group) != MPI_SUCCESS) return fake_fail(err, "MPI_Comm_dup failed");
#else
        return fake_fail(err, "built without MPI: a group of one process only");
#endif
    }
    joined_world = world_size;
    return 0;
}

static int all_reduce(float *buf, int64_t n, lt_comm_op op, lt_error *err) {
    if (!joined_world) return fake_fail(err, "all_reduce before init");
    float *x = fake_host_of(buf);
#ifdef FAKE_WITH_MPI
    if (joined_world > 1) {
        static const MPI_Op ops[] = {MPI_SUM, MPI_SUM, MPI_MAX, MPI_MIN};
        for (int64_t done = 0; done < n;) {  /* in pieces an int counts */
            int piece = n - done > (1 << 30) ? 1 << 30 : (int)(n - done);
            if (MPI_Allreduce(MPI_IN_PLACE, x + done, piece, MPI_FLOAT, ops[op], group) != MPI_SUCCESS)
                return fake_fail(err, "MPI_Allreduce failed");
            done += piece;
        }
    }
#endif
    if (op == LT_COMM_MEAN) {
        float d = (float)joined_world;
        for (int64_t i = 0; i < n; i++) x[i] /= d;
    }
    return 0;
}

static int broadcast(void *buf, size_t bytes, int root, lt_error *err) {
    if (!joined_world) return fake_fail(err, "broadcast before init");
#ifdef FAKE_WITH_MPI
    char *x = fake_host_of(buf);
    for (size_t done = 0; joined_world > 1 && done < bytes;) {
        int piece = bytes - done > (1u << 30) ? 1 << 30 : (int)(bytes - done);
        if (MPI_Bcast(x + done, piece, MPI_BYTE, root, group) != MPI_SUCCESS) return fake_fail(err, "MPI_Bcast failed");
        done += (size_t)piece;
    }
#endif
    return 0;
}

/* MPI's calls returned when done: nothing is ever in flight. */
static int query(int *done, lt_error *err) {
    *done = 1;
    return 0;
}

static int join(lt_error *err) { return 0; }

const lt_backend_comm fake_comm = {.ready = ready, .unique_id = unique_id, .init = init, .all_reduce = all_reduce,
                                   .broadcast = broadcast, .query = query, .join = join};
