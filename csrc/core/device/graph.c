#include "graph.h"

#include <stdlib.h>

struct lt_graph {
    lt_device device;
    const lt_backend_api *api;
    void *handle;  /* the backend's */
};

static bool capturing;  /* one device a process: cuda:0 */

bool lt_device_capturing(lt_device d) { return d != LT_DEVICE_CPU && capturing; }

int lt_refuse_in_capture(lt_device d, const char *what, const char *why, lt_error *err) {
    if (!lt_device_capturing(d)) return 0;
    return lt_fail(err, "%s cannot be captured in a CUDA graph (%s)", what, why);
}

int lt_graph_capture_begin(lt_device d, lt_error *err) {
    if (d == LT_DEVICE_CPU) return lt_fail(err, "CUDA graphs capture the work of a GPU, not of the host");
    if (capturing) return lt_fail(err, "a CUDA graph is being captured already (one capture at a time)");
    const lt_backend_api *api = lt_backend(d, err);
    if (!api || api->capture_begin(err)) return -1;
    capturing = true;
    return 0;
}

int lt_graph_capture_end(lt_device d, lt_graph **out, lt_error *err) {
    *out = NULL;
    if (!lt_device_capturing(d)) return lt_fail(err, "no CUDA graph is being captured");
    const lt_backend_api *api = lt_backend(d, err);
    if (!api) return -1;
    capturing = false;
    lt_graph *g = malloc(sizeof *g);
    void *handle = NULL;
    int rc = api->capture_end(&handle, err);
    if (rc || !g) {
        if (!rc) api->graph_destroy(handle);
        free(g);
        return rc ? -1 : lt_fail(err, "out of host memory for a CUDA graph");
    }
    *g = (lt_graph){d, api, handle};
    *out = g;
    return 0;
}

int lt_graph_replay(lt_graph *g, lt_error *err) {
    if (capturing) return lt_fail(err, "a CUDA graph cannot be launched while another is being captured");
    return g->api->graph_launch(g->handle, err);
}

void lt_graph_free(lt_graph *g) {
    if (!g) return;
    g->api->graph_destroy(g->handle);
    free(g);
}
