/* Bindings for data sets and the loader (lightning.data): functions in lightning.core.data. The Lua side
 * (lua/lightning/data/) wraps them into CIFAR10, FashionMNIST, MNIST, ImageFolder and DataLoader. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../core/base/checked.h"
#include "../core/data/dataset.h"
#include "../core/data/loader.h"
#include "../core/data/md5.h"
#include "../core/base/rng.h"
#include "l_data.h"

#define LT_DATASET_MT "lightning.data.Dataset"
#define LT_LOADER_MT "lightning.data.Loader"

/* ---- data sets ---- */

typedef struct dataset_ud {
    lt_dataset ds;
    lt_workspace ws;  /* for ds:get on the Lua thread */
} dataset_ud;

static dataset_ud *push_dataset(lua_State *L) {
    dataset_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
    memset(u, 0, sizeof *u);
    lt_workspace_init(&u->ws);
    luaL_setmetatable(L, LT_DATASET_MT);
    return u;
}

static dataset_ud *check_dataset(lua_State *L, int idx, const char *fname) {
    dataset_ud *u = luaL_testudata(L, idx, LT_DATASET_MT);
    if (!u) lt_argerror(L, idx, fname, "must be a C data set, got %s", lt_typename(L, idx));
    if (!u->ds.src) lt_argerror(L, idx, fname, "is a released data set");
    return u;
}

static int ds_gc(lua_State *L) {
    dataset_ud *u = luaL_checkudata(L, 1, LT_DATASET_MT);
    if (u->ds.src) lt_dataset_release(&u->ds);
    lt_workspace_free(&u->ws);
    return 0;
}

/* Makes u a data set over src (which the data set now owns). The userdata is pushed before the source
 * is loaded, so that no loaded source waits on an allocation that can raise. */
static void adopt_source(dataset_ud *u, lt_source *src) {
    lt_dataset_init(&u->ds, src);
    lt_source_release(src);
}

/* cifar10(folder, train, records_per_file) */
static int l_cifar10(lua_State *L) {
    const char *fname = "lightning.data.CIFAR10";
    const char *folder = lt_check_string(L, 1, fname);
    int train = lt_opt_boolean(L, 2, fname, 1);
    lua_Integer records = lt_opt_integer(L, 3, fname, 10000);
    dataset_ud *u = push_dataset(L);
    lt_error err;
    lt_source *src = lt_cifar10_load(folder, train, records, &err);
    if (!src) return lt_raise(L, fname, &err);
    adopt_source(u, src);
    return 1;
}

/* idx_dataset(images_path, labels_path, num_classes, fname) */
static int l_idx_dataset(lua_State *L) {
    const char *fname = luaL_optstring(L, 4, "lightning.data.MNIST");
    const char *images = lt_check_string(L, 1, fname), *labels = lt_check_string(L, 2, fname);
    lua_Integer classes = lt_check_integer(L, 3, fname);
    if (classes < 1 || classes > 256) return lt_raisef(L, fname, "num_classes must be 1 to 256, got %lld", (long long)classes);
    dataset_ud *u = push_dataset(L);
    lt_error err;
    lt_source *src = lt_idx_dataset_load(images, labels, (int)classes, &err);
    if (!src) return lt_raise(L, fname, &err);
    adopt_source(u, src);
    return 1;
}

static void free_report(void *report) { lt_folder_report_free(report); }

/* image_folder(root, channels, height, width, skip_bad) -> data set, {skipped = n, messages = {...}, ignored = n} */
static int l_image_folder(lua_State *L) {
    const char *fname = "lightning.data.ImageFolder";
    const char *root = lt_check_string(L, 1, fname);
    lt_folder_options opts = {.channels = (int)lt_opt_int_in(L, 2, fname, "channels", INT_MIN, INT_MAX, 3),
                              .height = (int)lt_opt_int_in(L, 3, fname, "height", INT_MIN, INT_MAX, 0),
                              .width = (int)lt_opt_int_in(L, 4, fname, "width", INT_MIN, INT_MAX, 0),
                              .skip_bad = lt_opt_boolean(L, 5, fname, 0)};
    /* the report's messages are malloc'd: they live in a scratch userdata while the tables are built */
    lt_folder_report *report = lt_push_scratch(L, sizeof *report, free_report);
    dataset_ud *u = push_dataset(L);
    lt_error err;
    lt_source *src = lt_folder_load(root, opts, report, &err);
    if (!src) return lt_raise(L, fname, &err);
    adopt_source(u, src);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, report->skipped);
    lua_setfield(L, -2, "skipped");
    lua_pushinteger(L, report->ignored);
    lua_setfield(L, -2, "ignored");
    lua_createtable(L, lt_table_hint(report->skipped), 0);
    for (int64_t i = 0; i < report->skipped; i++) {
        lua_pushstring(L, report->messages[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "messages");
    lt_scratch_release(report);
    return 2;
}

static int ds_len(lua_State *L) {
    dataset_ud *u = check_dataset(L, 1, "Dataset:len");
    lua_pushinteger(L, u->ds.count);
    return 1;
}

/* ds:info() -> {count, channels, height, width, num_classes, classes, kind} */
static int ds_info(lua_State *L) {
    dataset_ud *u = check_dataset(L, 1, "Dataset:info");
    const lt_source *src = u->ds.src;
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, u->ds.count);
    lua_setfield(L, -2, "count");
    lua_pushinteger(L, src->channels);
    lua_setfield(L, -2, "channels");
    lua_pushinteger(L, src->height);
    lua_setfield(L, -2, "height");
    lua_pushinteger(L, src->width);
    lua_setfield(L, -2, "width");
    lua_pushinteger(L, src->num_classes);
    lua_setfield(L, -2, "num_classes");
    lua_pushstring(L, src->kind == LT_SOURCE_FOLDER ? "folder" : "memory");
    lua_setfield(L, -2, "kind");
    lua_createtable(L, src->num_classes, 0);
    for (int k = 0; k < src->num_classes; k++) {
        lua_pushstring(L, src->class_names[k] ? src->class_names[k] : "");
        lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "classes");
    return 1;
}

/* ds:get(i[, pipeline[, seed[, epoch]]]) -> input tensor, target (1-based). Without seed, one is drawn
 * from the global generator; epoch (default 0) is the one ops like the alternating flip see. */
static int ds_get(lua_State *L) {
    const char *fname = "Dataset:get";
    dataset_ud *u = check_dataset(L, 1, fname);
    lua_Integer i = lt_check_integer(L, 2, fname);
    const lt_pipeline *p = lt_opt_pipeline(L, 3, fname);
    if (i < 1 || i > u->ds.count)
        return lt_raisef(L, fname, "index %lld is out of range for a data set of %lld samples", (long long)i, (long long)u->ds.count);
    uint64_t seed = lua_isnoneornil(L, 4) ? lt_rng_u64(lt_rng_global()) : (uint64_t)lt_check_integer(L, 4, fname);
    u->ws.epoch = lt_opt_integer(L, 5, fname, 0);
    int32_t target;
    lt_error err;
    if (lt_load_sample(&u->ds, p, i - 1, seed, &u->ws, &target, &err))
        return lt_raisef(L, fname, "sample %lld: %s", (long long)i, err.msg);
    const lt_image *img = u->ws.cur;
    int64_t size[3] = {img->channels, img->height, img->width};
    lt_tensor *t = lt_push_tensor(L);
    if (lt_tensor_new(t, 3, size, &err)) return lt_raise(L, fname, &err);
    memcpy(lt_data(t), img->data, lt_image_numel(img) * sizeof(float));
    lua_pushinteger(L, target + 1);
    return 2;
}

/* ds:subset(indices): a table of 1-based indices into ds, or a 1-D tensor of them */
static int ds_subset(lua_State *L) {
    const char *fname = "Dataset:subset";
    dataset_ud *u = check_dataset(L, 1, fname);
    lt_tensor *t = lt_test_tensor(L, 2, fname);
    if (!t && !lua_istable(L, 2)) return lt_argerror(L, 2, fname, "must be a table or tensor of indices, got %s", lt_typename(L, 2));
    if (t && t->ndim != 1) return lt_raisef(L, fname, "indices must be a 1-D tensor");
    int64_t n = t ? lt_numel(t) : lt_len_in(L, 2, fname, "the table of indices", LT_MAX_NUMEL);
    int64_t *idx = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(n ? n : 1), 0);  /* freed by the collector */
    for (int64_t k = 0; k < n; k++) {
        double v;
        if (t) {
            v = lt_data(t)[k * t->stride[0]];
        } else {
            lua_geti(L, 2, k + 1);
            int ok;
            v = lua_tonumberx(L, -1, &ok);
            if (!ok) return lt_raisef(L, fname, "index %lld must be an integer, got %s", (long long)k + 1, lt_typename(L, -1));
            lua_pop(L, 1);
        }
        int64_t i;
        if (!lt_int64_of_double_ok(v, &i) || i == INT64_MIN)
            return lt_raisef(L, fname, "index %lld must be an integer, got %g", (long long)k + 1, v);
        idx[k] = i - 1;
    }
    dataset_ud *out = push_dataset(L);
    lt_error err;
    if (lt_dataset_subset(&out->ds, &u->ds, idx, n, &err)) return lt_raise(L, fname, &err);
    return 1;
}

/* ds:targets() -> a table of the samples' classes (1-based), without decoding any image */
static int ds_targets(lua_State *L) {
    dataset_ud *u = check_dataset(L, 1, "Dataset:targets");
    lua_createtable(L, lt_table_hint(u->ds.count), 0);
    for (int64_t i = 0; i < u->ds.count; i++) {
        lua_pushinteger(L, lt_dataset_target(&u->ds, i) + 1);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* ---- the loader ---- */

typedef struct loader_ud {
    lt_loader *ld;
    int64_t epoch;       /* epochs started */
    int64_t generation;  /* the iteration that owns the loader now */
} loader_ud;

/* uservalues of a loader: 1 the data set (kept alive), 2 and 3 the current batch's tensors */
static loader_ud *check_loader(lua_State *L, int idx, const char *fname) {
    loader_ud *u = luaL_testudata(L, idx, LT_LOADER_MT);
    if (!u) lt_argerror(L, idx, fname, "must be a loader, got %s", lt_typename(L, idx));
    if (!u->ld) lt_raisef(L, fname, "the loader was released");
    return u;
}

/* loader(dataset, pipeline|nil, batch_size, drop_last, num_workers[, device]): device a GPU makes the
 * batches there (device_batches.h) */
static int l_loader(lua_State *L) {
    const char *fname = "lightning.data.DataLoader";
    dataset_ud *ds = check_dataset(L, 1, fname);
    const lt_pipeline *p = lt_opt_pipeline(L, 2, fname);
    lt_loader_config cfg = {.batch_size = lt_check_integer(L, 3, fname), .drop_last = lt_opt_boolean(L, 4, fname, 0),
                            .num_workers = (int)lt_opt_int_in(L, 5, fname, "num_workers", INT_MIN, INT_MAX, 0),
                            .device = lua_isnoneornil(L, 6) ? LT_DEVICE_CPU : lt_check_device(L, 6, fname)};
    loader_ud *u = lua_newuserdatauv(L, sizeof *u, 3);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, LT_LOADER_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    lt_error err;
    u->ld = lt_loader_new(&ds->ds, p, cfg, &err);
    if (!u->ld) return lt_raise(L, fname, &err);
    return 1;
}

/* Closes the tensors of the batch handed out last, so that a kept reference reads as closed rather than
 * as data the workers overwrite; `close` false only forgets them (they stay valid, their buffer is then
 * replaced in the loader). */
static void drop_current_batch(lua_State *L, int loader_idx, int close) {
    for (int k = 2; k <= 3; k++) {
        lua_getiuservalue(L, loader_idx, k);
        lt_tensor *t = luaL_testudata(L, -1, LT_TENSOR_MT);
        if (t && close) lt_tensor_release(t);
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_setiuservalue(L, loader_idx, k);
    }
}

static int loader_gc(lua_State *L) {
    loader_ud *u = luaL_checkudata(L, 1, LT_LOADER_MT);
    if (u->ld) lt_loader_free(u->ld);  /* joins the workers */
    u->ld = NULL;
    return 0;
}

static int loader_len(lua_State *L) {
    loader_ud *u = check_loader(L, 1, "DataLoader:len");
    lua_pushinteger(L, lt_loader_num_batches(u->ld));
    return 1;
}

/* A data-parallel epoch (DistributedSampler's rules, loader.h): {rank, replicas, drop_last, draw}, where
 * draw (optional) is the generator value the plan comes from (shared by every process) instead of a
 * draw of this process's global generator. */
typedef struct shard_arg {
    bool on, has_draw;
    lt_shard shard;
    uint64_t draw;
} shard_arg;

static shard_arg opt_shard(lua_State *L, int idx, const char *fname) {
    shard_arg a = {0};
    if (lua_isnoneornil(L, idx)) return a;
    lt_check_table(L, idx, fname);
    a.on = true;
    lua_getfield(L, idx, "rank");
    lua_getfield(L, idx, "replicas");
    lua_getfield(L, idx, "drop_last");
    lua_getfield(L, idx, "draw");
    a.shard = (lt_shard){.rank = lt_check_integer(L, -4, fname), .replicas = lt_check_integer(L, -3, fname),
                         .drop_last = lua_toboolean(L, -2)};
    if ((a.has_draw = !lua_isnil(L, -1))) a.draw = (uint64_t)lt_check_integer(L, -1, fname);
    lua_pop(L, 4);
    if (a.shard.replicas < 1 || a.shard.rank < 0 || a.shard.rank >= a.shard.replicas)
        lt_raisef(L, fname, "the sampler's rank must be in [0, %lld), got %lld", (long long)a.shard.replicas,
                  (long long)a.shard.rank);
    return a;
}

/* The epoch's order (pushed as a userdata of int64_t; *order points at it, *m entries) and augmentation
 * seed, cut to a process's part when the shard is on. */
static void push_plan(lua_State *L, int64_t n, bool shuffle, bool has_seed, uint64_t seed, int64_t epoch,
                      const shard_arg *sh, int64_t **order, int64_t *m, uint64_t *aug_seed) {
    int64_t *all = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(n ? n : 1), 0);
    if (sh->on && sh->has_draw && !has_seed) lt_epoch_plan_drawn(n, shuffle, sh->draw, all, aug_seed);
    else lt_epoch_plan(n, shuffle, has_seed, seed, (uint64_t)epoch, all, aug_seed);
    *order = all;
    *m = n;
    if (!sh->on) return;
    *m = lt_shard_size(n, sh->shard);
    *order = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(*m ? *m : 1), 0);
    lt_shard_take(all, n, sh->shard, *order);
}

/* loader:start(shuffle, seed|nil[, epoch[, shard]]) -> generation. Draws the epoch's order and
 * augmentation seed (from the global generator when seed is nil) and starts the workers. */
static int loader_start(lua_State *L) {
    const char *fname = "DataLoader:iter";
    loader_ud *u = check_loader(L, 1, fname);
    int shuffle = lua_toboolean(L, 2);
    int has_seed = !lua_isnoneornil(L, 3);
    uint64_t seed = has_seed ? (uint64_t)lt_check_integer(L, 3, fname) : 0;
    int64_t epoch = lua_isnoneornil(L, 4) ? u->epoch : lt_check_integer(L, 4, fname);
    shard_arg sh = opt_shard(L, 5, fname);
    lua_getiuservalue(L, 1, 1);
    dataset_ud *ds = luaL_checkudata(L, -1, LT_DATASET_MT);
    int64_t n = ds->ds.count;
    lua_pop(L, 1);
    int64_t *order, m;
    uint64_t aug_seed;
    push_plan(L, n, shuffle, has_seed, seed, epoch, &sh, &order, &m, &aug_seed);
    drop_current_batch(L, 1, 0);
    lt_error err;
    if (lt_loader_start(u->ld, order, m, aug_seed, epoch, &err)) return lt_raise(L, fname, &err);
    u->epoch = epoch + 1;
    lua_pushinteger(L, ++u->generation);
    return 1;
}

/* loader:next(generation) -> input, target, or nothing after the last batch */
static int loader_next(lua_State *L) {
    const char *fname = "DataLoader:iter";
    loader_ud *u = check_loader(L, 1, fname);
    lua_Integer gen = lt_check_integer(L, 2, fname);
    if (gen != u->generation)
        return lt_raisef(L, fname, "this iteration was stopped: the loader started another with iter()");
    drop_current_batch(L, 1, 1);
    lt_tensor *input = lt_push_tensor(L);
    lt_tensor *target = lt_push_tensor(L);
    lt_error err;
    int rc = lt_loader_next(u->ld, input, target, &err);
    if (rc < 0) return lt_raise(L, fname, &err);
    if (rc == 0) return 0;
    lua_pushvalue(L, -2);
    lua_setiuservalue(L, 1, 2);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, 3);
    return 2;
}

/* loader:stop(generation): stops the workers if that iteration still owns the loader; the last batch
 * handed out stays valid. */
static int loader_stop(lua_State *L) {
    loader_ud *u = luaL_checkudata(L, 1, LT_LOADER_MT);
    lua_Integer gen = luaL_optinteger(L, 2, u->generation);
    if (u->ld && gen == u->generation) {
        lt_loader_stop(u->ld);
        drop_current_batch(L, 1, 0);
    }
    return 0;
}

static int loader_sample_shape(lua_State *L) {
    loader_ud *u = check_loader(L, 1, "DataLoader:sample_shape");
    int c, h, w;
    lt_loader_sample_shape(u->ld, &c, &h, &w);
    int64_t size[3] = {c, h, w};
    lt_push_size(L, 3, size);
    return 1;
}

/* ---- helpers for the Lua side ---- */

/* epoch_plan(n, shuffle, seed|nil, epoch[, shard]) -> order (table of 1-based indices), augmentation seed */
static int l_epoch_plan(lua_State *L) {
    const char *fname = "lightning.data.DataLoader";
    lua_Integer total = lt_check_integer(L, 1, fname);
    if (total < 0 || total > ((lua_Integer)1 << 40))
        return lt_raisef(L, fname, "data set size %lld out of range", (long long)total);
    int shuffle = lua_toboolean(L, 2);
    int has_seed = !lua_isnoneornil(L, 3);
    uint64_t seed = has_seed ? (uint64_t)lt_check_integer(L, 3, fname) : 0;
    lua_Integer epoch = lt_opt_integer(L, 4, fname, 0);
    shard_arg sh = opt_shard(L, 5, fname);
    int64_t *order, n;
    uint64_t aug_seed;
    push_plan(L, total, shuffle, has_seed, seed, epoch, &sh, &order, &n, &aug_seed);
    lua_createtable(L, lt_table_hint(n), 0);
    for (int64_t i = 0; i < n; i++) {
        lua_pushinteger(L, order[i] + 1);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushinteger(L, (lua_Integer)aug_seed);
    return 2;
}

/* random_u64() -> an integer from the global generator (seeds for Lua-side sampling) */
static int l_random_seed(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)lt_rng_u64(lt_rng_global()));
    return 1;
}

/* permutation(n, seed) -> a table of 1-based indices, a permutation fixed by seed (for data splits) */
static int l_permutation(lua_State *L) {
    const char *fname = "lightning.data.random_split";
    lua_Integer n = lt_check_integer(L, 1, fname);
    if (n < 0 || n > ((lua_Integer)1 << 40)) return lt_raisef(L, fname, "size %lld out of range", (long long)n);
    uint64_t seed = (uint64_t)lt_check_integer(L, 2, fname);
    int64_t *order = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(n ? n : 1), 0);
    uint64_t unused;
    lt_epoch_plan(n, 1, 1, seed, 0, order, &unused);
    lua_createtable(L, lt_table_hint(n), 0);
    for (int64_t i = 0; i < n; i++) {
        lua_pushinteger(L, order[i] + 1);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_md5(lua_State *L) {
    size_t len;
    lt_check_string(L, 1, "lightning.data.md5");
    const char *s = lua_tolstring(L, 1, &len);
    char hex[33];
    lt_md5_hex(s, len, hex);
    lua_pushstring(L, hex);
    return 1;
}

static int l_md5_file(lua_State *L) {
    const char *fname = "lightning.data.md5_file";
    const char *path = lt_check_string(L, 1, fname);
    char hex[33];
    lt_error err;
    if (lt_md5_file_hex(path, hex, &err)) return lt_raise(L, fname, &err);
    lua_pushstring(L, hex);
    return 1;
}

void lt_open_data(lua_State *L, int module) {
    static const luaL_Reg fns[] = {
        {"cifar10", l_cifar10}, {"idx_dataset", l_idx_dataset}, {"image_folder", l_image_folder}, {"loader", l_loader},
        {"epoch_plan", l_epoch_plan}, {"random_seed", l_random_seed}, {"permutation", l_permutation}, {"md5", l_md5},
        {"md5_file", l_md5_file}, {NULL, NULL}};
    luaL_newlib(L, fns);
    int data = lua_gettop(L);

    static const luaL_Reg ds_methods[] = {{"len", ds_len}, {"info", ds_info}, {"get", ds_get}, {"subset", ds_subset},
                                          {"targets", ds_targets}, {NULL, NULL}};
    luaL_newmetatable(L, LT_DATASET_MT);
    luaL_newlib(L, ds_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ds_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, ds_len);
    lua_setfield(L, -2, "__len");
    lua_pop(L, 1);

    static const luaL_Reg loader_methods[] = {{"len", loader_len}, {"start", loader_start}, {"next", loader_next},
                                              {"stop", loader_stop}, {"sample_shape", loader_sample_shape}, {NULL, NULL}};
    luaL_newmetatable(L, LT_LOADER_MT);
    luaL_newlib(L, loader_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, loader_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, loader_len);
    lua_setfield(L, -2, "__len");
    lua_pop(L, 1);

    lt_open_image(L, data);
    lua_setfield(L, module, "data");
}
