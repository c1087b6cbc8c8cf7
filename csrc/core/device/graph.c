#include "graph.h"

#include <stdlib.h>

struct lt_graph {
    lt_device device;
    const lt_backend_api *api;
    void *handle;  /* the backend's */
};

int lt_graph_capture_begin(lt_device d, lt_error *err) { return lt_device_capture_begin(d, err); }

int lt_graph_capture_end(lt_device d, lt_graph **out, lt_error *err) {
    *out = NULL;
    void *handle = NULL;
    int rc = lt_device_capture_end(d, &handle, err);
    if (!rc && !handle) return lt_fail(err, "the backend gave no graph");
    const lt_backend_api *api = handle ? lt_backend(d, err) : NULL;  /* loaded: it made the graph */
    lt_graph *g = rc ? NULL : malloc(sizeof *g);
    if (!g) {
        if (handle) api->graph_destroy(handle);  /* a failed capture's graph still holds its memory */
        return rc ? -1 : lt_fail(err, "out of host memory for a CUDA graph");
    }
    *g = (lt_graph){d, api, handle};
    *out = g;
    return 0;
}

int lt_graph_replay(lt_graph *g, lt_error *err) {
    if (lt_device_capturing(g->device))
        return lt_fail(err, "a CUDA graph cannot be launched while another is being captured");
    return g->api->graph_launch(g->handle, err);
}

void lt_graph_free(lt_graph *g) {
    if (!g) return;
    g->api->graph_destroy(g->handle);
    free(g);
}
