/* Collectives on device tensors between processes (backend_api.h's lt_backend_comm: NCCL on CUDA), for
 * the data-parallel strategy's gradients and BatchNorm statistics on GPUs. Host tensors go through MPI
 * (csrc/core/dist) instead; the strategy (lua/lightning/distributed) picks by the tensor's device.
 * Every process of the group makes the same calls in the same order. */
#ifndef LT_TENSOR_COMM_H
#define LT_TENSOR_COMM_H

#include <stdbool.h>

#include "../device/backend_api.h"
#include "tensor.h"

/* Whether this process can join a group on d (the backend's library loads); why not in err. */
int lt_comm_ready(lt_device d, lt_error *err);
/* A new group's identity, made by one process (the others are given it). */
int lt_comm_unique_id(lt_device d, unsigned char id[LT_COMM_ID_BYTES], lt_error *err);
/* Joins the group on device d as `rank` of `world_size` (blocks until every process joined). Once a
 * process. */
int lt_comm_init(lt_device d, const unsigned char id[LT_COMM_ID_BYTES], int rank, int world_size, lt_error *err);
/* Whether this process joined a group on d; its place in it. */
bool lt_comm_joined(lt_device d, int *rank, int *world_size);

/* In place over a contiguous float32 tensor on the group's device: queued after the work on it (see
 * lt_backend_comm); lt_comm_join makes later work wait for it. */
int lt_comm_all_reduce(lt_tensor *t, lt_comm_op op, lt_error *err);
/* root's values of a contiguous tensor into every process's. Queued, like a reduction. */
int lt_comm_broadcast(lt_tensor *t, int root, lt_error *err);
/* *done: the collectives queued on d so far have finished. */
int lt_comm_query(lt_device d, bool *done, lt_error *err);
/* The work queued on d from now on waits for the collectives queued so far. */
int lt_comm_join(lt_device d, lt_error *err);

#endif
