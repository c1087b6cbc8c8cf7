/* CUDA graphs, as PyTorch's torch.cuda.CUDAGraph: the device work of a piece of code (a training step)
 * recorded once and launched again as one unit, so that the host no longer launches its kernels one by
 * one. What a capture may and may not do is the backend's contract (backend_api.h, capture_begin); the
 * core adds its own refusals (backend.h's lt_refuse_in_capture), with the operation's name, where a
 * recorded call could not do what the code asked: reading a result on the host, copying from the host,
 * an optimizer's update without step values on the device (its learning rate and step count would be
 * recorded as they are now), a collective between processes, a batch of images. */
#ifndef LT_GRAPH_H
#define LT_GRAPH_H

#include <stdbool.h>

#include "backend.h"

typedef struct lt_graph lt_graph;

/* Starts recording the device's work; one capture at a time. */
int lt_graph_capture_begin(lt_device d, lt_error *err);
/* Ends the capture (also when it fails) and gives the graph in *out. */
int lt_graph_capture_end(lt_device d, lt_graph **out, lt_error *err);
/* Queues one run of the graph. */
int lt_graph_replay(lt_graph *g, lt_error *err);
/* Frees the graph once its queued runs are done; NULL is ignored. */
void lt_graph_free(lt_graph *g);

#endif
