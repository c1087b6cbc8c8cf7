/* CUDA graphs on the fake device (backend_api.h's capture_begin is the contract): while a capture goes
 * on, fake_call keeps a copy of each call's arguments instead of running it, and a launch runs the
 * copies in order. So, as on a GPU, nothing is computed during the capture, and a launch computes with
 * the arguments of the capture (pointers, shapes, scalars) whatever the host's variables say now: a
 * spec finds what a real graph would get wrong. Memory follows the contract's rule (backend_api.h): while
 * a graph lives, a block made before the newest capture ended is freed only once no graph lives. */
#include <stddef.h>
#include <stdlib.h>

#include "fake.h"

typedef struct record {
    struct record *next;
    fake_call_fn fn;
    max_align_t args[];  /* the call's arguments, copied */
} record;

typedef struct graph {
    record *first, **tail;
} graph;

static graph *capture;  /* the graph being captured, or NULL */
static int graphs_alive;
static uint64_t serial, newest_end;  /* the last block's serial; the serial when the newest capture ended */

static void **kept;  /* blocks whose free waits for the last graph */
static size_t kept_n, kept_cap;
static void (*release_now)(void *);

int fake_capturing(void) { return capture != NULL; }

void fake_set_release(void (*fn)(void *)) { release_now = fn; }

uint64_t fake_serial(void) { return ++serial; }

int fake_keep_for_graphs(void *block, uint64_t born) {
    if (!capture && (graphs_alive == 0 || born > newest_end)) return 0;
    if (kept_n == kept_cap) {
        size_t cap = kept_cap ? 2 * kept_cap : 64;
        void **grown = realloc(kept, cap * sizeof *grown);
        if (!grown) return 0;  /* freed at once: leaking is no better for a test */
        kept = grown;
        kept_cap = cap;
    }
    kept[kept_n++] = block;
    return 1;
}

static void release_kept(void) {
    if (capture || graphs_alive > 0) return;
    for (size_t i = 0; i < kept_n; i++) release_now(kept[i]);
    kept_n = 0;
}

int fake_call(fake_call_fn fn, const void *args, size_t bytes, lt_error *err) {
    if (!capture) return fn(args, err);
    record *r = malloc(sizeof *r + bytes);
    if (!r) return fake_fail(err, "out of host memory recording a call");
    r->next = NULL;
    r->fn = fn;
    memcpy(r->args, args, bytes);
    *capture->tail = r;
    capture->tail = &r->next;
    return 0;
}

int fake_capture_begin(lt_error *err) {
    if (capture) return fake_fail(err, "a capture is going on already");
    capture = malloc(sizeof *capture);
    if (!capture) return fake_fail(err, "out of host memory");
    capture->first = NULL;
    capture->tail = &capture->first;
    return 0;
}

int fake_capture_end(void **out, lt_error *err) {
    if (!capture) return fake_fail(err, "no capture is going on");
    *out = capture;
    capture = NULL;
    graphs_alive++;
    newest_end = serial;
    return 0;
}

int fake_graph_launch(void *g, lt_error *err) {
    if (capture) return fake_fail(err, "a graph cannot be launched during a capture");
    for (record *r = ((graph *)g)->first; r; r = r->next)
        if (r->fn(r->args, err)) return -1;
    return 0;
}

void fake_graph_destroy(void *g) {
    if (!g) return;
    for (record *r = ((graph *)g)->first, *next; r; r = next) {
        next = r->next;
        free(r);
    }
    free(g);
    graphs_alive--;
    release_kept();
}
