/* Collectives between processes, one GPU each, through NCCL (backend_api.h's lt_backend_comm): the
 * data-parallel strategy averages gradients where they are. NCCL is loaded with dlopen when a run first
 * asks (libnccl.so.2, or the file LIGHTNING_NCCL_LIBRARY names): the module links none, so training on
 * one GPU needs no NCCL, and a missing one is a message, not a failed load.
 *
 * Collectives run on a stream of their own: each first waits for the work queued on the compute stream
 * before it (an event: the gradients it reduces are written), and join() makes the compute stream wait
 * for the last one, so a bucket's reduction overlaps the rest of the backward pass (PyTorch's DDP does
 * the same with its NCCL stream). The tensors stay alive until the join: their Work holds them. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "parts.cuh"

#ifdef LTC_WITH_NCCL
#include <nccl.h>

namespace ltc {
namespace {

static_assert(sizeof(ncclUniqueId) == LT_COMM_ID_BYTES, "NCCL's unique id is the interface's LT_COMM_ID_BYTES");

/* The functions of libnccl.so.2 this file calls. */
struct nccl_library {
    void *handle = nullptr;
    ncclResult_t (*get_version)(int *);
    const char *(*get_error_string)(ncclResult_t);
    ncclResult_t (*get_unique_id)(ncclUniqueId *);
    ncclResult_t (*comm_init_rank)(ncclComm_t *, int, ncclUniqueId, int);
    ncclResult_t (*all_reduce)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t);
    ncclResult_t (*broadcast)(const void *, void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
};

nccl_library nccl;
bool load_tried = false;
char load_error[sizeof(((lt_error *)0)->msg)];

/* The process's group: its communicator, stream and the two events that order it. */
struct group_state {
    ncclComm_t comm = nullptr;
    cudaStream_t stream = nullptr;
    cudaEvent_t work_done = nullptr; /* on the compute stream, before each collective */
    cudaEvent_t comm_done = nullptr; /* on the group's stream, after each collective */
};
group_state group;

template <typename F>
bool symbol(F &fn, const char *name) {
    fn = reinterpret_cast<F>(dlsym(nccl.handle, name));
    if (!fn) snprintf(load_error, sizeof load_error, "libnccl has no %s (NCCL too old?)", name);
    return fn != nullptr;
}

/* Loads NCCL once; says why not every time after. */
int load(lt_error *err) {
    if (!load_tried) {
        load_tried = true;
        const char *env = getenv("LIGHTNING_NCCL_LIBRARY");
        const char *file = env && *env ? env : "libnccl.so.2";
        nccl.handle = dlopen(file, RTLD_NOW | RTLD_LOCAL);
        if (!nccl.handle) {
            snprintf(load_error, sizeof load_error,
                     "NCCL cannot be loaded (%s): install it (NVIDIA's libnccl2, or PyPI's nvidia-nccl) or name "
                     "its libnccl.so.2 in LIGHTNING_NCCL_LIBRARY",
                     dlerror());
        } else if (symbol(nccl.get_version, "ncclGetVersion") && symbol(nccl.get_error_string, "ncclGetErrorString") &&
                   symbol(nccl.get_unique_id, "ncclGetUniqueId") && symbol(nccl.comm_init_rank, "ncclCommInitRank") &&
                   symbol(nccl.all_reduce, "ncclAllReduce") && symbol(nccl.broadcast, "ncclBroadcast")) {
            int version = 0;
            nccl.get_version(&version);
            if (version < 21000) /* ncclAvg, the mean */
                snprintf(load_error, sizeof load_error, "NCCL %d is older than 2.10, the first with ncclAvg", version);
            else load_error[0] = 0;
        }
        if (load_error[0] && nccl.handle) {
            dlclose(nccl.handle);
            nccl.handle = nullptr;
        }
    }
    return load_error[0] ? fail(err, "%s", load_error) : 0;
}

int nccl_fail(lt_error *err, ncclResult_t r, const char *call) {
    return fail(err, "%s: %s", call, nccl.get_error_string(r));
}

#define LTC_NCCL(err, call)                                                          \
    do {                                                                             \
        ncclResult_t ltc_r_ = (call);                                                \
        if (ltc_r_ != ncclSuccess) return ltc::nccl_fail((err), ltc_r_, #call);      \
    } while (0)

int joined(lt_error *err) { return group.comm ? 0 : fail(err, "this process has not joined a group (init)"); }

int ready(lt_error *err) { return load(err); }

int unique_id(unsigned char id[LT_COMM_ID_BYTES], lt_error *err) {
    if (load(err)) return -1;
    ncclUniqueId uid;
    LTC_NCCL(err, nccl.get_unique_id(&uid));
    memcpy(id, &uid, sizeof uid);
    return 0;
}

int init(const unsigned char id[LT_COMM_ID_BYTES], int rank, int world_size, lt_error *err) {
    if (load(err)) return -1;
    if (group.comm) return fail(err, "this process already joined a group");
    LTC_CUDA(err, cudaStreamCreateWithFlags(&group.stream, cudaStreamNonBlocking));
    LTC_CUDA(err, cudaEventCreateWithFlags(&group.work_done, cudaEventDisableTiming));
    LTC_CUDA(err, cudaEventCreateWithFlags(&group.comm_done, cudaEventDisableTiming));
    ncclUniqueId uid;
    memcpy(&uid, id, sizeof uid);
    LTC_NCCL(err, nccl.comm_init_rank(&group.comm, world_size, uid, rank));
    return 0;
}

/* The group's stream waits for the work queued on the compute stream so far. */
int after_queued_work(lt_error *err) {
    LTC_CUDA(err, cudaEventRecord(group.work_done, state().stream));
    LTC_CUDA(err, cudaStreamWaitEvent(group.stream, group.work_done, 0));
    return 0;
}

int all_reduce(float *buf, int64_t n, lt_comm_op op, lt_error *err) {
    static const ncclRedOp_t ops[] = {ncclSum, ncclAvg, ncclMax, ncclMin}; /* lt_comm_op's order */
    if (joined(err) || after_queued_work(err)) return -1;
    LTC_NCCL(err, nccl.all_reduce(buf, buf, (size_t)n, ncclFloat32, ops[op], group.comm, group.stream));
    LTC_CUDA(err, cudaEventRecord(group.comm_done, group.stream));
    return 0;
}

int broadcast(void *buf, size_t bytes, int root, lt_error *err) {
    if (joined(err) || after_queued_work(err)) return -1;
    LTC_NCCL(err, nccl.broadcast(buf, buf, bytes, ncclUint8, root, group.comm, group.stream));
    LTC_CUDA(err, cudaEventRecord(group.comm_done, group.stream));
    return 0;
}

int query(int *done, lt_error *err) {
    if (joined(err)) return -1;
    cudaError_t e = cudaEventQuery(group.comm_done);
    if (e == cudaErrorNotReady) {
        *done = 0;
        return 0;
    }
    LTC_CUDA(err, e);
    *done = 1;
    return 0;
}

int join(lt_error *err) {
    if (joined(err)) return -1;
    LTC_CUDA(err, cudaStreamWaitEvent(state().stream, group.comm_done, 0));
    return 0;
}

const lt_backend_comm nccl_comm = {ready, unique_id, init, all_reduce, broadcast, query, join};

}  // namespace

const lt_backend_comm *collectives() { return &nccl_comm; }

}  // namespace ltc

#else

/* Built without nccl.h: the backend has no collectives (the core says so when asked). */
const lt_backend_comm *ltc::collectives() { return nullptr; }

#endif
