/* The data loader: worker threads (pthreads) load, transform and batch samples ahead of the consumer
 * into a small ring of batch buffers. Batch b always holds the same samples with the same augmentation
 * (each sample's generator is seeded from the epoch's seed and the sample's index), so the batches do not
 * depend on the number of workers. With no workers, lt_loader_next loads on the calling thread. */
#ifndef LT_DATA_LOADER_H
#define LT_DATA_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/rng.h"
#include "../tensor/tensor.h"
#include "dataset.h"
#include "transform.h"

#define LT_LOADER_MAX_WORKERS 64

/* One epoch's sample order and augmentation seed. With has_seed both derive from (seed, epoch); without,
 * from one draw of the global generator, so that L.manual_seed governs them. order gets n indices, a
 * permutation when shuffle is set, 0..n-1 otherwise. Call from the Lua thread only. */
void lt_epoch_plan(int64_t n, bool shuffle, bool has_seed, uint64_t seed, uint64_t epoch, int64_t *order,
                   uint64_t *aug_seed);

/* lt_epoch_plan's order and augmentation seed from one value `draw` of a generator (the unseeded plan is
 * this with a draw of the global generator): a data-parallel run draws on one process and shares it. */
void lt_epoch_plan_drawn(int64_t n, bool shuffle, uint64_t draw, int64_t *order, uint64_t *aug_seed);

/* DistributedSampler's rules (PyTorch's): one process's part of an epoch's order of n entries among
 * `replicas` processes. Without drop_last the order is padded by repeating it from its start until each
 * process gets ceil(n / replicas) entries; with drop_last its tail is cut so that each gets
 * floor(n / replicas). Process `rank` takes every replicas-th entry from entry `rank` on, so that the
 * k-th batches of b entries of all processes together hold entries [k b replicas, (k + 1) b replicas)
 * of the order: the k-th batch of one process reading b * replicas at a time. */
typedef struct lt_shard {
    int64_t rank, replicas;
    bool drop_last;
} lt_shard;

/* Entries per process; -1 when rank is not in [0, replicas). */
int64_t lt_shard_size(int64_t n, lt_shard s);
/* out gets lt_shard_size(n, s) entries of order. */
void lt_shard_take(const int64_t *order, int64_t n, lt_shard s, int64_t *out);

/* Loads sample i of ds through the pipeline with the generator of (aug_seed, i); ws->index becomes i
 * (ws->epoch is the caller's: the loader sets its workspaces' at each start). */
int lt_load_sample(const lt_dataset *ds, const lt_pipeline *p, int64_t i, uint64_t aug_seed, lt_workspace *ws,
                   int32_t *target, lt_error *err);

typedef struct lt_loader_config {
    int64_t batch_size;
    bool drop_last;
    int num_workers;  /* 0: load on the calling thread */
    lt_device device; /* a GPU: the data set is put there and batches are made there (device_batches.h),
                         with the same values; no workers */
} lt_loader_config;

typedef struct lt_loader lt_loader;

/* Copies the data set view and the pipeline; checks that the pipeline can take the data set's samples. */
lt_loader *lt_loader_new(const lt_dataset *ds, const lt_pipeline *p, lt_loader_config cfg, lt_error *err);
void lt_loader_free(lt_loader *ld);
int64_t lt_loader_num_batches(const lt_loader *ld);
void lt_loader_sample_shape(const lt_loader *ld, int *c, int *h, int *w);

/* Starts epoch `epoch` over the first n entries of order (indices into the data set, copied), stopping a
 * running one. */
int lt_loader_start(lt_loader *ld, const int64_t *order, int64_t n, uint64_t aug_seed, int64_t epoch, lt_error *err);
/* Hands out the next batch: returns 1 with input (B, C, H, W) and target (B, classes 1..K as floats) as
 * views of a buffer of the loader (new tensors on the config's device when it is a GPU), 0 after the
 * last batch, -1 on an error. The previous batch's buffer
 * goes back to the workers at this call: the caller must have dropped its views of it by then (a buffer
 * still shared is replaced rather than overwritten). */
int lt_loader_next(lt_loader *ld, lt_tensor *input, lt_tensor *target, lt_error *err);
/* Stops and joins the workers; the buffers stay for the next epoch. */
void lt_loader_stop(lt_loader *ld);

#endif
