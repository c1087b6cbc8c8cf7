/* CUDA graphs (backend_api.h's capture_begin is the contract): the stream's work between capture_begin
 * and capture_end is captured (cudaStreamBeginCapture, relaxed mode, as the allocator may call cudaMalloc),
 * instantiated once, and launched as one unit.
 *
 * Memory: what a capture allocates comes from cudaMalloc, outside the stream-ordered pool, so that its
 * address is the graph's for good. A launch may touch any memory that was allocated when its capture
 * ended, so while a graph lives the free of such memory is put off until no graph lives; memory
 * allocated after the newest capture ended ("young") is freed at once, and so is everything once no
 * graph lives. What is put off is bounded by the memory allocated when the newest capture ended (a
 * layer's buffer that an eager call with another shape replaces, a warm-up's temporaries).
 *
 * Dropout: the kernels of a capture read the seed and their counter from device words (the counter plus
 * their place in the capture), and each launch first writes those words with the host's seed and
 * counter, which then moves on by what the capture drew, as the recorded calls would have moved it. */
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "parts.cuh"

namespace ltc {

struct graph {
    cudaGraphExec_t exec;
    uint64_t draws; /* dropout numbers one launch draws */
};

static int graphs_alive;
static std::unordered_map<void *, size_t> owned; /* allocated during a capture (cudaMalloc's): their bytes */
static size_t owned_bytes, owned_peak;
static std::unordered_set<void *> young; /* allocated while graphs live, after the newest capture ended */
static std::vector<void *> kept;         /* frees put off until no graph lives */

bool take_graph_owned(void *p) {
    auto it = owned.find(p);
    if (it == owned.end()) return false;
    owned_bytes -= it->second;
    owned.erase(it);
    return true;
}

void note_allocated(void *p, size_t bytes) {
    if (state().capturing) {
        owned[p] = bytes;
        owned_bytes += bytes;
        if (owned_bytes > owned_peak) owned_peak = owned_bytes;
    } else if (graphs_alive > 0) {
        young.insert(p);
    }
}

void graph_memory(size_t *bytes, size_t *peak) {
    *bytes = owned_bytes;
    *peak = owned_peak;
}

int keep_for_graphs(void *p) {
    if (!state().capturing && (graphs_alive == 0 || young.erase(p) != 0)) return -1;
    kept.push_back(p);
    return 0;
}

static void release_kept() {
    if (state().capturing || graphs_alive > 0) return;
    for (void *p : kept) {
        if (take_graph_owned(p))
            cudaFree(p);
        else
            cudaFreeAsync(p, state().stream);
    }
    kept.clear();
    young.clear();
}

int not_in_capture(const char *call, lt_error *err) {
    if (!state().capturing) return 0;
    return fail(err, "%s cannot be captured in a CUDA graph", call);
}

int capture_begin(lt_error *err) {
    backend_state &s = state();
    if (s.device < 0) return fail(err, "the CUDA backend is not initialised (call init first)");
    if (s.capturing) return fail(err, "a CUDA graph is being captured already");
    if (!s.graph_rng) LTC_CUDA(err, cudaMalloc(&s.graph_rng, 2 * sizeof(uint64_t)));
    LTC_CUDA(err, cudaStreamBeginCapture(s.stream, cudaStreamCaptureModeRelaxed));
    s.capturing = true;
    s.captured_draws = 0;
    return 0;
}

int capture_end(void **out, lt_error *err) {
    backend_state &s = state();
    *out = nullptr;
    if (!s.capturing) return fail(err, "no CUDA graph is being captured");
    cudaGraph_t g = nullptr;
    cudaError_t e = cudaStreamEndCapture(s.stream, &g);
    s.capturing = false;
    graphs_alive++; /* until graph_destroy, also when this capture failed: its memory is kept alike */
    young.clear();  /* what exists now, this graph may use */
    graph *made = new graph{nullptr, s.captured_draws};
    *out = made;
    if (e != cudaSuccess) return cuda_fail(err, e, "cudaStreamEndCapture");
    e = cudaGraphInstantiate(&made->exec, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) return cuda_fail(err, e, "cudaGraphInstantiate");
    return 0;
}

__global__ void set_rng_kernel(uint64_t *rng, uint64_t counter, uint64_t seed) {
    rng[0] = counter;
    rng[1] = seed;
}

int graph_launch(void *p, lt_error *err) {
    backend_state &s = state();
    graph *g = (graph *)p;
    if (s.capturing) return fail(err, "a CUDA graph cannot be launched while another is being captured");
    if (!g || !g->exec) return fail(err, "the CUDA graph was not captured");
    if (g->draws) {
        set_rng_kernel<<<1, 1, 0, s.stream>>>(s.graph_rng, s.offset, s.seed);
        LTC_LAUNCHED(err, "set_rng_kernel");
        s.offset += g->draws;
    }
    LTC_CUDA(err, cudaGraphLaunch(g->exec, s.stream));
    return 0;
}

void graph_destroy(void *p) {
    graph *g = (graph *)p;
    if (!g) return;
    /* a launch still queued keeps the executable graph until it ends; its memory waits for the stream */
    if (g->exec) cudaGraphExecDestroy(g->exec);
    delete g;
    graphs_alive--;
    release_kept(); /* cudaFree waits for the device: a launch still running keeps its memory until it ends */
}

}  // namespace ltc
