#include "loader.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "device_batches.h"

static void plan(lt_rng *r, int64_t n, bool shuffle, int64_t *order, uint64_t *aug_seed);

void lt_epoch_plan(int64_t n, bool shuffle, bool has_seed, uint64_t seed, uint64_t epoch, int64_t *order,
                   uint64_t *aug_seed) {
    if (!has_seed) {
        lt_epoch_plan_drawn(n, shuffle, lt_rng_u64(lt_rng_global()), order, aug_seed);
        return;
    }
    lt_rng r;
    lt_rng_seed_stream(&r, seed, epoch);
    plan(&r, n, shuffle, order, aug_seed);
}

void lt_epoch_plan_drawn(int64_t n, bool shuffle, uint64_t draw, int64_t *order, uint64_t *aug_seed) {
    lt_rng r;
    lt_rng_seed(&r, draw);
    plan(&r, n, shuffle, order, aug_seed);
}

int64_t lt_shard_size(int64_t n, lt_shard s) {
    if (s.replicas < 1 || s.rank < 0 || s.rank >= s.replicas || n < 0) return -1;
    return s.drop_last ? n / s.replicas : (n + s.replicas - 1) / s.replicas;
}

void lt_shard_take(const int64_t *order, int64_t n, lt_shard s, int64_t *out) {
    int64_t m = lt_shard_size(n, s);
    for (int64_t j = 0; j < m; j++) out[j] = order[(s.rank + j * s.replicas) % n];  /* past n: the padding */
}

static void plan(lt_rng *r, int64_t n, bool shuffle, int64_t *order, uint64_t *aug_seed) {
    uint64_t shuffle_seed = lt_rng_u64(r);
    *aug_seed = lt_rng_u64(r);
    for (int64_t i = 0; i < n; i++) order[i] = i;
    if (!shuffle) return;
    lt_rng_seed(r, shuffle_seed);
    for (int64_t i = n - 1; i > 0; i--) {  /* Fisher-Yates */
        int64_t j = (int64_t)lt_rng_below(r, (uint64_t)i + 1);
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

int lt_load_sample(const lt_dataset *ds, const lt_pipeline *p, int64_t i, uint64_t aug_seed, lt_workspace *ws,
                   int32_t *target, lt_error *err) {
    if (lt_dataset_load(ds, i, ws, target, err)) return -1;
    ws->index = i;
    lt_rng rng;
    lt_rng_seed_stream(&rng, aug_seed, (uint64_t)i);
    return p ? lt_pipeline_apply(p, ws, &rng, err) : 0;
}

/* ---- the loader ---- */

typedef struct batch_slot {
    lt_tensor input, target;  /* (B, C, H, W) and (B) */
    int64_t ready;            /* the batch it holds once filled, -1 while free or being filled */
    bool failed;
    lt_error err;
} batch_slot;

typedef struct worker {
    lt_loader *ld;
    pthread_t thread;
    lt_workspace ws;
} worker;

struct lt_loader {
    lt_dataset ds;
    lt_pipeline pipe;
    lt_loader_config cfg;
    int c, h, w;
    int64_t rows;             /* samples a slot holds: the batch size, or fewer when an epoch has fewer */
    int nslots;
    batch_slot *slots;
    worker *workers;
    lt_workspace ws;          /* for loading on the calling thread */
    lt_device_batches *on_device;  /* batches made on a GPU instead (no slots, no workers) */

    /* the epoch; fields below the mutex are shared with the workers */
    int64_t *order, norder, nbatches;
    uint64_t aug_seed;
    bool running;
    int threads_started;
    int64_t delivered;        /* batches handed out so far */
    bool holding;             /* the consumer holds batch delivered - 1 */
    pthread_mutex_t mu;
    pthread_cond_t work_cv, ready_cv;
    int64_t next_claim;       /* the next batch a worker will fill */
    int64_t released;         /* batches the consumer has given back: workers may fill up to released + nslots - 1 */
    bool stop;
};

static int64_t batches_for(int64_t n, lt_loader_config cfg) {
    return cfg.drop_last ? n / cfg.batch_size : (n + cfg.batch_size - 1) / cfg.batch_size;
}

int64_t lt_loader_num_batches(const lt_loader *ld) { return batches_for(ld->ds.count, ld->cfg); }

void lt_loader_sample_shape(const lt_loader *ld, int *c, int *h, int *w) { *c = ld->c, *h = ld->h, *w = ld->w; }

/* A batch of a data set smaller than batch_size holds the whole data set: slots are that big only. */
static int64_t rows_for(int64_t samples, lt_loader_config cfg) {
    return samples < 1 ? 1 : samples < cfg.batch_size ? samples : cfg.batch_size;
}

static int slot_alloc(lt_loader *ld, batch_slot *s, lt_error *err) {
    int64_t in_size[4] = {ld->rows, ld->c, ld->h, ld->w}, tg_size[1] = {ld->rows};
    if (lt_tensor_new(&s->input, 4, in_size, err) || lt_tensor_new(&s->target, 1, tg_size, err)) return -1;
    s->ready = -1;
    return 0;
}

lt_loader *lt_loader_new(const lt_dataset *ds, const lt_pipeline *p, lt_loader_config cfg, lt_error *err) {
    if (cfg.batch_size < 1 || cfg.batch_size > (1 << 24)) return lt_fail(err, "batch_size must be 1 to 16777216, got %lld", (long long)cfg.batch_size), NULL;
    if (cfg.num_workers < 0 || cfg.num_workers > LT_LOADER_MAX_WORKERS)
        return lt_fail(err, "num_workers must be 0 to %d, got %d", LT_LOADER_MAX_WORKERS, cfg.num_workers), NULL;
    lt_loader *ld = calloc(1, sizeof *ld);
    if (!ld) return lt_fail(err, "out of memory"), NULL;
    ld->cfg = cfg;
    ld->rows = rows_for(ds->count, cfg);
    if (p) ld->pipe = *p;
    if (lt_dataset_copy(&ld->ds, ds, err)) {
        free(ld);
        return NULL;
    }
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->work_cv, NULL);
    pthread_cond_init(&ld->ready_cv, NULL);
    lt_workspace_init(&ld->ws);
    const lt_source *src = ds->src;
    if (lt_pipeline_out_shape(&ld->pipe, src->channels, src->height, src->width, &ld->c, &ld->h, &ld->w, err)) goto fail;
    if (cfg.device != LT_DEVICE_CPU) {
        ld->cfg.num_workers = 0;
        ld->on_device = calloc(1, sizeof *ld->on_device);
        if (!ld->on_device) {
            lt_fail(err, "out of memory");
            goto fail;
        }
        if (lt_device_batches_init(ld->on_device, &ld->ds, &ld->pipe, cfg.device, err)) goto fail;
        return ld;
    }
    /* a ring of 2 batches per worker ahead of the one the consumer holds, as torch's prefetch_factor 2 */
    ld->nslots = cfg.num_workers == 0 ? 1 : 2 * cfg.num_workers + 1;
    ld->slots = calloc((size_t)ld->nslots, sizeof *ld->slots);
    ld->workers = calloc((size_t)(cfg.num_workers ? cfg.num_workers : 1), sizeof *ld->workers);
    if (!ld->slots || !ld->workers) {
        lt_fail(err, "out of memory");
        goto fail;
    }
    for (int i = 0; i < ld->nslots; i++)
        if (slot_alloc(ld, &ld->slots[i], err)) goto fail;
    for (int i = 0; i < cfg.num_workers; i++) {
        ld->workers[i].ld = ld;
        lt_workspace_init(&ld->workers[i].ws);
    }
    return ld;
fail:
    lt_loader_free(ld);
    return NULL;
}

void lt_loader_free(lt_loader *ld) {
    if (!ld) return;
    lt_loader_stop(ld);
    for (int i = 0; ld->slots && i < ld->nslots; i++) {
        lt_tensor_release(&ld->slots[i].input);
        lt_tensor_release(&ld->slots[i].target);
    }
    for (int i = 0; ld->workers && i < ld->cfg.num_workers; i++) lt_workspace_free(&ld->workers[i].ws);
    if (ld->on_device) lt_device_batches_free(ld->on_device);
    free(ld->on_device);
    lt_workspace_free(&ld->ws);
    free(ld->slots);
    free(ld->workers);
    free(ld->order);
    lt_dataset_release(&ld->ds);
    pthread_mutex_destroy(&ld->mu);
    pthread_cond_destroy(&ld->work_cv);
    pthread_cond_destroy(&ld->ready_cv);
    free(ld);
}

/* Fills slot s with batch b. Runs on a worker (or the calling thread without workers). */
static void fill_batch(lt_loader *ld, lt_workspace *ws, int64_t b, batch_slot *s) {
    int64_t first = b * ld->cfg.batch_size;
    int64_t n = ld->norder - first < ld->cfg.batch_size ? ld->norder - first : ld->cfg.batch_size;
    size_t sample = (size_t)ld->c * ld->h * ld->w;
    float *input = lt_data(&s->input), *target = lt_data(&s->target);
    s->failed = false;
    for (int64_t j = 0; j < n; j++) {         /* each sample of the batch */
        int64_t idx = ld->order[first + j];
        int32_t cls;
        lt_error err;
        if (lt_load_sample(&ld->ds, &ld->pipe, idx, ld->aug_seed, ws, &cls, &err)) {
            lt_fail(&s->err, "sample %lld: %s", (long long)idx + 1, err.msg);
            s->failed = true;
            return;
        }
        const lt_image *img = ws->cur;
        if (img->channels != ld->c || img->height != ld->h || img->width != ld->w) {
            lt_fail(&s->err, "sample %lld came out of the transforms as %dx%dx%d, the batch holds %dx%dx%d",
                    (long long)idx + 1, img->channels, img->height, img->width, ld->c, ld->h, ld->w);
            s->failed = true;
            return;
        }
        memcpy(input + (size_t)j * sample, img->data, sample * sizeof(float));
        target[j] = (float)(cls + 1);
    }
}

static void *worker_main(void *arg) {
    worker *wk = arg;
    lt_loader *ld = wk->ld;
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        while (!ld->stop && ld->next_claim < ld->nbatches && ld->next_claim >= ld->released + ld->nslots)
            pthread_cond_wait(&ld->work_cv, &ld->mu);
        if (ld->stop || ld->next_claim >= ld->nbatches) break;
        int64_t b = ld->next_claim++;
        batch_slot *s = &ld->slots[b % ld->nslots];
        pthread_mutex_unlock(&ld->mu);
        fill_batch(ld, &wk->ws, b, s);
        pthread_mutex_lock(&ld->mu);
        s->ready = b;
        pthread_cond_broadcast(&ld->ready_cv);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

/* A slot whose buffer the consumer still shares (it kept a view) gets a fresh buffer instead. */
static int renew_if_shared(lt_loader *ld, batch_slot *s, lt_error *err) {
    if (!s->input.storage || !s->target.storage || atomic_load(&s->input.storage->refcount) > 1 ||
        atomic_load(&s->target.storage->refcount) > 1 || s->input.size[0] < ld->rows) {
        lt_tensor_release(&s->input);
        lt_tensor_release(&s->target);
        return slot_alloc(ld, s, err);
    }
    return 0;
}

void lt_loader_stop(lt_loader *ld) {
    if (!ld->running) return;
    pthread_mutex_lock(&ld->mu);
    ld->stop = true;
    pthread_cond_broadcast(&ld->work_cv);
    pthread_mutex_unlock(&ld->mu);
    for (int i = 0; i < ld->threads_started; i++) pthread_join(ld->workers[i].thread, NULL);
    ld->threads_started = 0;
    ld->running = false;
    ld->holding = false;
}

int lt_loader_start(lt_loader *ld, const int64_t *order, int64_t n, uint64_t aug_seed, int64_t epoch, lt_error *err) {
    lt_loader_stop(ld);
    for (int64_t i = 0; i < n; i++)
        if (order[i] < 0 || order[i] >= ld->ds.count)
            return lt_fail(err, "index %lld is out of range for a data set of %lld samples", (long long)order[i] + 1, (long long)ld->ds.count);
    int64_t *copy = realloc(ld->order, sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!copy) return lt_fail(err, "out of memory");
    memcpy(copy, order, sizeof(int64_t) * (size_t)n);
    ld->order = copy;
    ld->norder = n;
    if (rows_for(n, ld->cfg) > ld->rows) ld->rows = rows_for(n, ld->cfg);  /* an order longer than the data set */
    ld->nbatches = batches_for(n, ld->cfg);
    ld->aug_seed = aug_seed;
    ld->ws.epoch = epoch;
    for (int i = 0; i < ld->cfg.num_workers; i++) ld->workers[i].ws.epoch = epoch;
    for (int i = 0; i < ld->nslots; i++) {
        if (renew_if_shared(ld, &ld->slots[i], err)) return -1;
        ld->slots[i].ready = -1;
    }
    ld->delivered = ld->released = ld->next_claim = 0;
    ld->holding = false;
    ld->stop = false;
    ld->running = true;
    for (int i = 0; i < ld->cfg.num_workers; i++) {
        if (pthread_create(&ld->workers[i].thread, NULL, worker_main, &ld->workers[i]) != 0) {
            lt_loader_stop(ld);
            return lt_fail(err, "cannot start loader thread %d of %d", i + 1, ld->cfg.num_workers);
        }
        ld->threads_started++;
    }
    return 0;
}

/* The device mode's next batch: made there, in tensors of its own. */
static int next_on_device(lt_loader *ld, lt_tensor *input, lt_tensor *target, lt_error *err) {
    int64_t b = ld->delivered;
    if (b >= ld->nbatches) {
        lt_loader_stop(ld);
        return 0;
    }
    int64_t first = b * ld->cfg.batch_size, n = ld->norder - first;
    if (n > ld->cfg.batch_size) n = ld->cfg.batch_size;
    if (lt_device_batches_make(ld->on_device, &ld->ds, &ld->pipe, ld->order + first, n, ld->aug_seed, ld->ws.epoch,
                               input, target, err)) {
        lt_loader_stop(ld);
        return -1;
    }
    ld->delivered++;
    return 1;
}

int lt_loader_next(lt_loader *ld, lt_tensor *input, lt_tensor *target, lt_error *err) {
    if (!ld->running) return 0;
    if (ld->on_device) return next_on_device(ld, input, target, err);
    if (ld->holding) {  /* give the previous batch's buffer back */
        batch_slot *prev = &ld->slots[(ld->delivered - 1) % ld->nslots];
        if (renew_if_shared(ld, prev, err)) return -1;
        pthread_mutex_lock(&ld->mu);
        prev->ready = -1;
        ld->released++;
        pthread_cond_broadcast(&ld->work_cv);
        pthread_mutex_unlock(&ld->mu);
        ld->holding = false;
    }
    int64_t b = ld->delivered;
    if (b >= ld->nbatches) {
        lt_loader_stop(ld);
        return 0;
    }
    batch_slot *s = &ld->slots[b % ld->nslots];
    if (ld->cfg.num_workers == 0) {
        fill_batch(ld, &ld->ws, b, s);
        s->ready = b;
    } else {
        pthread_mutex_lock(&ld->mu);
        while (s->ready != b) pthread_cond_wait(&ld->ready_cv, &ld->mu);
        pthread_mutex_unlock(&ld->mu);
    }
    if (s->failed) {
        *err = s->err;
        lt_loader_stop(ld);
        return -1;
    }
    int64_t n = ld->norder - b * ld->cfg.batch_size;
    if (n > ld->cfg.batch_size) n = ld->cfg.batch_size;
    if (lt_narrow(input, &s->input, 0, 0, n, err) || lt_narrow(target, &s->target, 0, 0, n, err)) return -1;
    ld->delivered++;
    ld->holding = true;
    return 1;
}
