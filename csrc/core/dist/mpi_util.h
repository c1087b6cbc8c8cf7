/* Internal to csrc/core/dist: the communicators and MPI's error codes as lt_error messages (defined in
 * dist.c, used by collectives.c). */
#ifndef LT_DIST_MPI_UTIL_H
#define LT_DIST_MPI_UTIL_H

#include <mpi.h>

#include "../base/error.h"

/* The run's communicator (a duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN), or MPI_COMM_NULL
 * before lt_dist_init. */
MPI_Comm lt_dist_comm(void);
int lt_dist_size(void);

/* 0 for MPI_SUCCESS; else fills err with "<what> failed: <MPI's message>" and returns -1. */
int lt_dist_check(int rc, const char *what, lt_error *err);
/* Tests the n requests (what names the operation, for the message) until all complete, or fails when
 * the progress deadline passes (see lt_dist_set_timeout). */
int lt_dist_complete(MPI_Request *reqs, int n, const char *what, lt_error *err);
/* -1 with a message when MPI is not running, or when a collective timed out before. */
int lt_dist_require(const char *what, lt_error *err);

#endif
