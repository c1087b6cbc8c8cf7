/* Bindings for classification metrics (confusion matrix) and two small checks used by the Trainer:
 * functions in lightning.core.metrics. Lua's class labels are 1-based. */
#include <string.h>
#include <unistd.h>

#include "../core/metrics/metrics.h"
#include "l_util.h"

#define CM_MT "lightning.ConfusionMatrix"

static lt_confusion *check_cm(lua_State *L, const char *fname) {
    lt_confusion *cm = luaL_testudata(L, 1, CM_MT);
    if (!cm) luaL_error(L, "%s: self must be a ConfusionMatrix, got %s (call it as cm:%s(...))", fname, lt_typename(L, 1),
                        strchr(fname, ':') ? strchr(fname, ':') + 1 : fname);
    return cm;
}

/* The matrix with the counts pending on a device added (a copy that waits for it): for the readers. */
static lt_confusion *gathered_cm(lua_State *L, const char *fname) {
    lt_confusion *cm = check_cm(L, fname);
    lt_error err;
    if (lt_confusion_gather(cm, &err)) lt_raise(L, fname, &err);
    return cm;
}

/* ConfusionMatrix(num_classes) */
static int cm_new(lua_State *L) {
    const char *fname = "lightning.metrics.ConfusionMatrix";
    lua_Integer k = lt_check_integer(L, 1, fname);
    if (k < 1 || k > LT_MAX_CLASSES)
        return lt_raisef(L, fname, "num_classes must be 1 to %d, got %lld", LT_MAX_CLASSES, (long long)k);
    lt_confusion *cm = lua_newuserdatauv(L, sizeof *cm, 0);
    memset(cm, 0, sizeof *cm);
    luaL_setmetatable(L, CM_MT);
    lt_error err;
    if (lt_confusion_init(cm, (int)k, &err)) return lt_raise(L, fname, &err);
    return 1;
}

/* cm:clone(): a copy, with the counts pending on a device copied there (the copy waits for nothing). */
static int cm_clone(lua_State *L) {
    const char *fname = "ConfusionMatrix:clone";
    lt_confusion *cm = check_cm(L, fname);
    lt_confusion *copy = lua_newuserdatauv(L, sizeof *copy, 0);
    memset(copy, 0, sizeof *copy);
    lt_error err;
    if (lt_confusion_copy(copy, cm, &err)) return lt_raise(L, fname, &err);
    luaL_setmetatable(L, CM_MT);
    return 1;
}

static int cm_gc(lua_State *L) {
    lt_confusion *cm = luaL_checkudata(L, 1, CM_MT);
    lt_confusion_free(cm);
    return 0;
}

/* cm:update(logits (B, K) or predictions (B), target (B)) */
static int cm_update(lua_State *L) {
    const char *fname = "ConfusionMatrix:update";
    lt_confusion *cm = check_cm(L, fname);
    lt_tensor *x = lt_test_tensor_anywhere(L, 2, fname);
    if (!x) return luaL_error(L, "%s: argument 1 must be a tensor of logits (B, K) or predictions (B), got %s", fname,
                              lt_typename(L, 2));
    lt_tensor *target = lt_test_tensor_anywhere(L, 3, fname);
    if (!target) return luaL_error(L, "%s: argument 2 must be a tensor of targets (B), got %s", fname, lt_typename(L, 3));
    lt_error err;
    int rc = x->ndim == 1 ? lt_confusion_update_labels(cm, x, target, true, &err)
                          : lt_confusion_update_logits(cm, x, target, true, &err);
    if (rc) return lt_raise(L, fname, &err);
    lua_settop(L, 1);
    return 1;
}

static int cm_reset(lua_State *L) {
    lt_confusion_reset(check_cm(L, "ConfusionMatrix:reset"));
    lua_settop(L, 1);
    return 1;
}

static int cm_total(lua_State *L) {
    return lua_pushinteger(L, lt_confusion_total(gathered_cm(L, "ConfusionMatrix:total"))), 1;
}

static int cm_num_classes(lua_State *L) {
    return lua_pushinteger(L, check_cm(L, "ConfusionMatrix:num_classes")->num_classes), 1;
}

static void push_number_list(lua_State *L, const double *v, int n) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushnumber(L, v[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

/* cm:per_class() --> {precision = {...}, recall = {...}, f1 = {...}, support = {...}} */
static int cm_per_class(lua_State *L) {
    lt_confusion *cm = gathered_cm(L, "ConfusionMatrix:per_class");
    int k = cm->num_classes;
    /* Lua memory, so that an allocation error raised while building the tables leaks nothing */
    double *buf = lua_newuserdatauv(L, (size_t)k * 3 * sizeof *buf, 0);
    int64_t *support = lua_newuserdatauv(L, (size_t)k * sizeof *support, 0);
    lt_confusion_per_class(cm, buf, buf + k, buf + 2 * k, support);
    lua_createtable(L, 0, 4);
    push_number_list(L, buf, k);
    lua_setfield(L, -2, "precision");
    push_number_list(L, buf + k, k);
    lua_setfield(L, -2, "recall");
    push_number_list(L, buf + 2 * k, k);
    lua_setfield(L, -2, "f1");
    lua_createtable(L, k, 0);
    for (int c = 0; c < k; c++) {
        lua_pushinteger(L, support[c]);
        lua_rawseti(L, -2, c + 1);
    }
    lua_setfield(L, -2, "support");
    return 1;
}

/* cm:compute([average = "macro"]) --> {accuracy, precision, recall, f1}; average "micro", "macro",
 * "weighted" */
static int cm_compute(lua_State *L) {
    const char *fname = "ConfusionMatrix:compute";
    lt_confusion *cm = gathered_cm(L, fname);
    static const char *const names[] = {"macro", "micro", "weighted", NULL};
    static const lt_average values[] = {LT_AVERAGE_MACRO, LT_AVERAGE_MICRO, LT_AVERAGE_WEIGHTED};
    lt_average average = LT_AVERAGE_MACRO;
    if (!lua_isnoneornil(L, 2)) {
        if (lua_type(L, 2) != LUA_TSTRING) return lt_argerror(L, 2, fname, "must be a string, got %s", lt_typename(L, 2));
        const char *s = lua_tostring(L, 2);
        int i = 0;
        while (names[i] && strcmp(names[i], s) != 0) i++;
        if (!names[i]) return lt_raisef(L, fname, "average must be \"macro\", \"micro\" or \"weighted\", got \"%s\"", s);
        average = values[i];
    }
    lt_class_scores s;
    lt_error err;
    if (lt_confusion_scores(cm, average, &s, &err)) return lt_raise(L, fname, &err);
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, s.accuracy);
    lua_setfield(L, -2, "accuracy");
    lua_pushnumber(L, s.precision);
    lua_setfield(L, -2, "precision");
    lua_pushnumber(L, s.recall);
    lua_setfield(L, -2, "recall");
    lua_pushnumber(L, s.f1);
    lua_setfield(L, -2, "f1");
    return 1;
}

/* cm:counts() --> rows (target) of columns (prediction), integers */
static int cm_counts(lua_State *L) {
    lt_confusion *cm = gathered_cm(L, "ConfusionMatrix:counts");
    int k = cm->num_classes;
    lua_createtable(L, k, 0);
    for (int i = 0; i < k; i++) {  /* i: target class */
        lua_createtable(L, k, 0);
        for (int j = 0; j < k; j++) {  /* j: predicted class */
            lua_pushinteger(L, cm->counts[(int64_t)i * k + j]);
            lua_rawseti(L, -2, j + 1);
        }
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* cm:set_counts(rows): the inverse of counts(), for restoring state and for tests. */
static int cm_set_counts(lua_State *L) {
    const char *fname = "ConfusionMatrix:set_counts";
    lt_confusion *cm = check_cm(L, fname);
    int k = cm->num_classes;
    if (!lua_istable(L, 2)) return lt_argerror(L, 2, fname, "must be a table of %d rows, got %s", k, lt_typename(L, 2));
    if (luaL_len(L, 2) != k) return lt_raisef(L, fname, "expected %d rows, got %lld", k, (long long)luaL_len(L, 2));
    /* Lua memory: lua_geti may run a metamethod that raises */
    int64_t *counts = lua_newuserdatauv(L, (size_t)k * (size_t)k * sizeof *counts, 0);
    for (int i = 0; i < k; i++) {  /* i: target class */
        lua_geti(L, 2, i + 1);
        if (!lua_istable(L, -1) || luaL_len(L, -1) != k) return lt_raisef(L, fname, "row %d must be a table of %d counts", i + 1, k);
        for (int j = 0; j < k; j++) {  /* j: predicted class */
            lua_geti(L, -1, j + 1);
            int ok;
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            lua_pop(L, 1);
            if (!ok || v < 0) return lt_raisef(L, fname, "count [%d][%d] must be a non-negative integer", i + 1, j + 1);
            counts[(int64_t)i * k + j] = v;
        }
        lua_pop(L, 1);
    }
    lt_confusion_reset(cm); /* drops the counts pending on a device too */
    memcpy(cm->counts, counts, (size_t)k * (size_t)k * sizeof *counts);
    lua_settop(L, 1);
    return 1;
}

static int cm_tostring(lua_State *L) {
    luaL_checkudata(L, 1, CM_MT);
    lt_confusion *cm = gathered_cm(L, "ConfusionMatrix:__tostring");
    lua_pushfstring(L, "ConfusionMatrix(num_classes=%d, total=%I)", cm->num_classes, (lua_Integer)lt_confusion_total(cm));
    return 1;
}

/* count_nonfinite(t) --> number of NaN and infinite elements */
static int l_count_nonfinite(lua_State *L) {
    lt_tensor *t = lt_check_tensor(L, 1, "lightning.metrics.count_nonfinite");
    lua_pushinteger(L, lt_count_nonfinite(t));
    return 1;
}

/* isatty(fd) --> whether the file descriptor is a terminal (the progress bar redraws only there) */
static int l_isatty(lua_State *L) {
    lua_Integer fd = lt_check_integer(L, 1, "lightning.metrics.isatty");
    lua_pushboolean(L, fd >= 0 && fd <= 1024 && isatty((int)fd));
    return 1;
}

void lt_open_metrics(lua_State *L, int module) {
    static const luaL_Reg methods[] = {
        {"update", cm_update}, {"reset", cm_reset}, {"compute", cm_compute}, {"per_class", cm_per_class},
        {"counts", cm_counts}, {"set_counts", cm_set_counts}, {"clone", cm_clone}, {"total", cm_total}, {"num_classes", cm_num_classes},
        {NULL, NULL}};
    luaL_newmetatable(L, CM_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, cm_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, cm_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);

    static const luaL_Reg fns[] = {
        {"ConfusionMatrix", cm_new}, {"count_nonfinite", l_count_nonfinite}, {"isatty", l_isatty}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, module, "metrics");
}
