#include "tensor_comm.h"

#include "../device/backend.h"

/* The group this process joined (one device type has a backend: CUDA). */
static int joined_rank = -1, joined_world;

static const lt_backend_comm *comm_of(lt_device d, lt_error *err) {
    if (d == LT_DEVICE_CPU)
        return lt_fail(err, "expected a tensor on a GPU, got cpu (host tensors go through MPI: lightning.distributed)"),
               NULL;
    const lt_backend_api *api = lt_backend(d, err);
    if (!api || lt_refuse_in_capture(d, "a collective between processes", "not supported yet", err)) return NULL;
    if (!api->comm) return lt_fail(err, "the %s backend has no collectives between processes", api->name), NULL;
    return api->comm;
}

static const lt_backend_comm *joined_comm(lt_device d, lt_error *err) {
    const lt_backend_comm *comm = comm_of(d, err);
    if (comm && joined_rank < 0)
        return lt_fail(err, "this process has not joined a group of processes on %s (lt_comm_init)", lt_device_name(d)),
               NULL;
    return comm;
}

int lt_comm_ready(lt_device d, lt_error *err) {
    const lt_backend_comm *comm = comm_of(d, err);
    return comm ? comm->ready(err) : -1;
}

int lt_comm_unique_id(lt_device d, unsigned char id[LT_COMM_ID_BYTES], lt_error *err) {
    const lt_backend_comm *comm = comm_of(d, err);
    return comm ? comm->unique_id(id, err) : -1;
}

int lt_comm_init(lt_device d, const unsigned char id[LT_COMM_ID_BYTES], int rank, int world_size, lt_error *err) {
    const lt_backend_comm *comm = comm_of(d, err);
    if (!comm) return -1;
    if (joined_rank >= 0)
        return lt_fail(err, "this process already joined a group on %s (as %d of %d)", lt_device_name(d), joined_rank,
                       joined_world);
    if (world_size < 1 || rank < 0 || rank >= world_size)
        return lt_fail(err, "rank %d of %d processes is not a place in a group", rank, world_size);
    if (comm->init(id, rank, world_size, err)) return -1;
    joined_rank = rank;
    joined_world = world_size;
    return 0;
}

bool lt_comm_joined(lt_device d, int *rank, int *world_size) {
    if (d == LT_DEVICE_CPU || joined_rank < 0) return false;
    if (rank) *rank = joined_rank;
    if (world_size) *world_size = joined_world;
    return true;
}

/* A tensor a collective can use in place: on the group's device, dense. */
static const lt_backend_comm *checked(const char *what, const lt_tensor *t, lt_error *err) {
    const lt_backend_comm *comm = joined_comm(lt_device_of(t), err);
    if (!comm) return NULL;
    if (!lt_is_contiguous(t)) return lt_fail(err, "%s takes a contiguous tensor", what), NULL;
    return comm;
}

int lt_comm_all_reduce(lt_tensor *t, lt_comm_op op, lt_error *err) {
    const lt_backend_comm *comm = checked("all_reduce", t, err);
    if (!comm) return -1;
    if (lt_dtype_of(t) != LT_FLOAT32)
        return lt_fail(err, "all_reduce takes a float32 tensor, got %s", lt_dtype_name(lt_dtype_of(t)));
    if (op < LT_COMM_SUM || op > LT_COMM_MIN) return lt_fail(err, "all_reduce: unknown operation %d", (int)op);
    lt_bump_version(t);
    return lt_numel(t) ? comm->all_reduce(lt_data(t), lt_numel(t), op, err) : 0;
}

int lt_comm_broadcast(lt_tensor *t, int root, lt_error *err) {
    const lt_backend_comm *comm = checked("broadcast", t, err);
    if (!comm) return -1;
    if (root < 0 || root >= joined_world)
        return lt_fail(err, "root must be a rank from 0 to %d, got %d", joined_world - 1, root);
    lt_bump_version(t);
    size_t bytes = (size_t)lt_numel(t) * lt_dtype_size(lt_dtype_of(t));
    return bytes ? comm->broadcast(lt_data_ptr(t), bytes, root, err) : 0;
}

int lt_comm_query(lt_device d, bool *done, lt_error *err) {
    const lt_backend_comm *comm = joined_comm(d, err);
    if (!comm) return -1;
    int finished = 1;
    if (comm->query(&finished, err)) return -1;
    *done = finished != 0;
    return 0;
}

int lt_comm_join(lt_device d, lt_error *err) {
    const lt_backend_comm *comm = joined_comm(d, err);
    return comm ? comm->join(err) : -1;
}
