/* Bindings for PNG files and transform pipelines: lightning.core.data.read_png, decode_png, write_png,
 * pipeline. The Lua side (lightning.data.transforms) builds the op tables and checks arguments first. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/data/device_batches.h"
#include "../core/data/png_io.h"
#include "../core/tensor/tensor_device.h"
#include "../core/tensor/tensor_math.h"
#include "../core/base/rng.h"
#include "l_data.h"

/* ---- PNG ---- */

static void free_u8image(void *img) { lt_u8image_free(img); }

/* A decoded image in a scratch userdata, so that an error raised while it is held leaks nothing. */
static lt_u8image *push_u8image(lua_State *L) { return lt_push_scratch(L, sizeof(lt_u8image), free_u8image); }

/* Pushes a (C, H, W) tensor of img with `channels` channels (0: the file's own) and frees img's pixels. */
static int push_decoded(lua_State *L, const char *fname, lt_u8image *img, int channels) {
    int c = channels ? channels : img->channels;
    int64_t size[3] = {c, img->height, img->width};
    lt_tensor *t = lt_push_tensor(L);
    lt_error err;
    if (lt_tensor_new(t, 3, size, &err)) return lt_raise(L, fname, &err);
    lt_u8_hwc_to_float_chw(lt_data(t), c, img->data, img->channels, img->height, img->width);
    lt_scratch_release(img);
    return 1;
}

/* channels from an options table at idx: nil/none or 1-4. */
static int opt_channels(lua_State *L, int idx, const char *fname) {
    if (lua_isnoneornil(L, idx)) return 0;
    lt_check_table(L, idx, fname);
    lua_getfield(L, idx, "channels");
    int channels = 0;
    if (!lua_isnil(L, -1)) {
        int ok;
        lua_Integer c = lua_tointegerx(L, -1, &ok);
        if (!ok || c < 1 || c > 4)
            lt_raisef(L, fname, "channels must be 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA), got %s",
                      lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1) : lt_typename(L, -1));
        channels = (int)c;
    }
    lua_pop(L, 1);
    return channels;
}

static int l_read_png(lua_State *L) {
    const char *fname = "lightning.data.read_png";
    const char *path = lt_check_string(L, 1, fname);
    int channels = opt_channels(L, 2, fname);
    lt_u8image *img = push_u8image(L);
    lt_error err;
    if (lt_png_read_file(path, img, &err)) return lt_raise(L, fname, &err);
    return push_decoded(L, fname, img, channels);
}

static int l_decode_png(lua_State *L) {
    const char *fname = "lightning.data.decode_png";
    size_t len;
    lt_check_string(L, 1, fname);
    const char *bytes = lua_tolstring(L, 1, &len);
    int channels = opt_channels(L, 2, fname);
    lt_u8image *img = push_u8image(L);
    lt_error err;
    if (lt_png_decode(bytes, len, "the data", img, &err)) return lt_raise(L, fname, &err);
    return push_decoded(L, fname, img, channels);
}

/* write_png(path, tensor (C,H,W) or (H,W), bit_depth, palette) */
static int l_write_png(lua_State *L) {
    const char *fname = "lightning.data.write_png";
    const char *path = lt_check_string(L, 1, fname);
    lt_tensor *t = lt_check_tensor(L, 2, fname);
    lt_png_write_options opts = {.bit_depth = (int)lt_opt_int_in(L, 3, fname, "bit_depth", INT_MIN, INT_MAX, 8),
                                 .palette = lt_opt_boolean(L, 4, fname, 0)};
    char shape[128];
    int c, h, w;
    if (t->ndim == 2) c = 1, h = (int)t->size[0], w = (int)t->size[1];
    else if (t->ndim == 3 && t->size[0] >= 1 && t->size[0] <= 4) c = (int)t->size[0], h = (int)t->size[1], w = (int)t->size[2];
    else return lt_raisef(L, fname, "expected a (C, H, W) tensor with C = 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA), "
                          "or an (H, W) tensor, got %s", lt_shape_str(t, shape, sizeof shape));
    if (t->size[t->ndim - 1] > (1 << 30) || t->size[t->ndim - 2] > (1 << 30))
        return lt_raisef(L, fname, "image %s is too large", lt_shape_str(t, shape, sizeof shape));
    lt_tensor contiguous = {0};
    lt_error err;
    if (lt_contiguous(&contiguous, t, &err)) return lt_raise(L, fname, &err);
    int rc = lt_png_write_float(path, lt_data(&contiguous), c, h, w, opts, &err);
    lt_tensor_release(&contiguous);
    if (rc) return lt_raise(L, fname, &err);
    return 0;
}

/* ---- transform pipelines ---- */

static const char *op_keys[LT_OP_COUNT] = {
    "to_tensor", "normalize", "resize", "center_crop", "crop", "pad", "random_crop", "hflip", "vflip",
    "rotation", "color_jitter", "grayscale", "random_erasing", "erase", "alternating_hflip"};

/* Reads up to max numbers from field `key` of the table at -1; returns how many (0 when absent). */
static int get_numbers(lua_State *L, const char *fname, const char *key, double *out, int max) {
    lua_getfield(L, -1, key);
    int n = 0;
    if (lua_istable(L, -1)) {
        lua_Integer len = luaL_len(L, -1);
        if (len < 0 || len > max) lt_raisef(L, fname, "%s: expected at most %d numbers, got %lld", key, max, (long long)len);
        n = (int)len;
        for (int i = 0; i < n; i++) {
            lua_geti(L, -1, i + 1);
            int ok;
            out[i] = lua_tonumberx(L, -1, &ok);
            if (!ok || !isfinite(out[i])) lt_raisef(L, fname, "%s[%d] must be a finite number, got %s", key, i + 1, lt_typename(L, -1));
            lua_pop(L, 1);
        }
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
        out[0] = lua_tonumber(L, -1);
        n = 1;
    } else if (!lua_isnil(L, -1)) {
        lt_raisef(L, fname, "%s must be a number or a table of numbers, got %s", key, lt_typename(L, -1));
    }
    lua_pop(L, 1);
    return n;
}

static int get_ints(lua_State *L, const char *fname, const char *key, int *out, int max) {
    double v[4];
    int n = get_numbers(L, fname, key, v, max);
    for (int i = 0; i < n; i++) {
        if (v[i] != floor(v[i]) || fabs(v[i]) > (1 << 24)) lt_raisef(L, fname, "%s[%d] must be an integer, got %g", key, i + 1, v[i]);
        out[i] = (int)v[i];
    }
    return n;
}

static bool get_bool(lua_State *L, const char *key) {
    lua_getfield(L, -1, key);
    bool b = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return b;
}

/* One op from the table at -1. */
static lt_transform_op parse_op(lua_State *L, const char *fname, int position) {
    lt_transform_op op;
    memset(&op, 0, sizeof op);
    op.p = 1;
    lua_getfield(L, -1, "op");
    const char *name = lua_tostring(L, -1);
    int kind = -1;
    for (int k = 0; name && k < LT_OP_COUNT; k++)
        if (strcmp(name, op_keys[k]) == 0) kind = k;
    if (kind < 0) lt_raisef(L, fname, "step %d: unknown op %s", position, name ? name : lt_typename(L, -1));
    lua_pop(L, 1);
    op.kind = (lt_op_kind)kind;
    double v[4];
    if (get_numbers(L, fname, "p", v, 1)) op.p = v[0];
    int size[2] = {0, 0};
    int n = get_ints(L, fname, "size", size, 2);
    op.size[0] = size[0];
    op.size[1] = n == 2 ? size[1] : (op.kind == LT_OP_RESIZE ? 0 : size[0]);
    op.antialias = get_bool(L, "antialias");
    get_ints(L, fname, "pad", op.pad, 4);
    op.pad_if_needed = get_bool(L, "pad_if_needed");
    lua_getfield(L, -1, "padding_mode");
    const char *mode = lua_tostring(L, -1);
    if (!mode || strcmp(mode, "constant") == 0) op.pad_mode = LT_PAD_CONSTANT;
    else if (strcmp(mode, "edge") == 0) op.pad_mode = LT_PAD_EDGE;
    else if (strcmp(mode, "reflect") == 0) op.pad_mode = LT_PAD_REFLECT;
    else if (strcmp(mode, "symmetric") == 0) op.pad_mode = LT_PAD_SYMMETRIC;
    else lt_raisef(L, fname, "step %d: padding_mode must be constant, edge, reflect or symmetric, got %s", position, mode);
    lua_pop(L, 1);
    get_ints(L, fname, "offset", op.offset, 2);
    double values[LT_IMAGE_MAX_CHANNELS], stds[LT_IMAGE_MAX_CHANNELS];
    op.nvalues = get_numbers(L, fname, "values", values, LT_IMAGE_MAX_CHANNELS);
    int nstds = get_numbers(L, fname, "stds", stds, LT_IMAGE_MAX_CHANNELS);
    if (op.kind == LT_OP_NORMALIZE && nstds != op.nvalues)
        lt_raisef(L, fname, "step %d: mean has %d values and std %d", position, op.nvalues, nstds);
    for (int i = 0; i < op.nvalues; i++) op.values[i] = (float)values[i];
    for (int i = 0; i < nstds; i++) op.stds[i] = (float)stds[i];
    if (get_numbers(L, fname, "range", op.range, 2) == 1) op.range[1] = op.range[0];
    if (get_numbers(L, fname, "ratio", op.ratio, 2) == 1) op.ratio[1] = op.ratio[0];
    static const char *jitter_keys[4] = {"brightness", "contrast", "saturation", "hue"};
    for (int k = 0; k < 4; k++) {
        int m = get_numbers(L, fname, jitter_keys[k], op.jitter[k], 2);
        if (m == 1) op.jitter[k][1] = op.jitter[k][0];
        op.jitter_on[k] = m > 0;
    }
    int out_channels[1] = {1};
    get_ints(L, fname, "out_channels", out_channels, 1);
    op.out_channels = out_channels[0];
    lua_getfield(L, -1, "seed");
    if (!lua_isnil(L, -1)) op.seed = (uint64_t)lt_check_integer(L, -1, fname);
    lua_pop(L, 1);
    lt_error err;
    if (lt_transform_op_check(&op, &err)) lt_raisef(L, fname, "step %d: %s", position, err.msg);
    return op;
}

/* pipeline({op1, op2, ...}) */
static int l_pipeline(lua_State *L) {
    const char *fname = "lightning.data.transforms.Compose";
    lt_check_table(L, 1, fname);
    int n = (int)lt_len_in(L, 1, fname, "the list of transforms", LT_PIPELINE_MAX_OPS);
    lt_pipeline *p = lua_newuserdatauv(L, sizeof *p, 0);
    memset(p, 0, sizeof *p);
    luaL_setmetatable(L, LT_PIPELINE_MT);
    for (int i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        if (!lua_istable(L, -1)) lt_raisef(L, fname, "step %d must be an op table, got %s", i + 1, lt_typename(L, -1));
        p->ops[i] = parse_op(L, fname, i + 1);
        lua_pop(L, 1);
    }
    p->n = n;
    return 1;
}

const lt_pipeline *lt_opt_pipeline(lua_State *L, int idx, const char *fname) {
    if (lua_isnoneornil(L, idx)) return NULL;
    lt_pipeline *p = luaL_testudata(L, idx, LT_PIPELINE_MT);
    if (!p) lt_argerror(L, idx, fname, "must be a transform pipeline, got %s", lt_typename(L, idx));
    return p;
}

static void free_workspace(void *ws) { lt_workspace_free(ws); }

/* pipe:apply(image (C,H,W)[, seed[, stream[, epoch]]]): a new tensor. Without seed, the global generator
 * picks one; stream is the sample's index (0-based), epoch the epoch (default 0). */
static int p_apply(lua_State *L) {
    const char *fname = "lightning.data.transforms";
    const lt_pipeline *p = luaL_checkudata(L, 1, LT_PIPELINE_MT);
    lt_tensor *t = lt_check_tensor(L, 2, fname);
    char shape[128];
    if (t->ndim != 3 || t->size[0] < 1 || t->size[1] < 1 || t->size[2] < 1 || t->size[1] * t->size[2] > LT_IMAGE_MAX_PIXELS ||
        t->size[0] > 64)
        return lt_raisef(L, fname, "expected an image tensor (C, H, W), got %s", lt_shape_str(t, shape, sizeof shape));
    uint64_t seed = lua_isnoneornil(L, 3) ? lt_rng_u64(lt_rng_global()) : (uint64_t)lt_check_integer(L, 3, fname);
    uint64_t stream = (uint64_t)lt_opt_integer(L, 4, fname, 0);
    int64_t epoch = lt_opt_integer(L, 5, fname, 0);
    /* the workspace's images live in a scratch userdata: pushing the result may raise */
    lt_workspace *ws = lt_push_scratch(L, sizeof *ws, free_workspace);
    lt_workspace_init(ws);
    ws->index = (int64_t)stream;
    ws->epoch = epoch;
    lt_error err;
    lt_tensor src = {0};
    int rc = lt_contiguous(&src, t, &err);
    if (rc == 0) rc = lt_image_reserve(ws->cur, (int)t->size[0], (int)t->size[1], (int)t->size[2], &err);
    if (rc == 0) {
        memcpy(ws->cur->data, lt_data(&src), lt_image_numel(ws->cur) * sizeof(float));
        lt_rng rng;
        lt_rng_seed_stream(&rng, seed, stream);
        rc = lt_pipeline_apply(p, ws, &rng, &err);
    }
    lt_tensor_release(&src);
    if (rc) return lt_raise(L, fname, &err);
    const lt_image *img = ws->cur;
    int64_t size[3] = {img->channels, img->height, img->width};
    lt_tensor *out = lt_push_tensor(L);
    if (lt_tensor_new(out, 3, size, &err)) return lt_raise(L, fname, &err);
    memcpy(lt_data(out), img->data, lt_image_numel(img) * sizeof(float));
    lt_scratch_release(ws);
    return 1;
}

/* pipe:out_shape(c, h, w) -> c, h, w */
static int p_out_shape(lua_State *L) {
    const char *fname = "lightning.data.transforms";
    const lt_pipeline *p = luaL_checkudata(L, 1, LT_PIPELINE_MT);
    lua_Integer c = lt_check_integer(L, 2, fname), h = lt_check_integer(L, 3, fname), w = lt_check_integer(L, 4, fname);
    if (c < 1 || h < 1 || w < 1 || c > 64 || h > LT_IMAGE_MAX_PIXELS || w > LT_IMAGE_MAX_PIXELS / h)
        return lt_raisef(L, fname, "image shape out of range");
    int oc, oh, ow;
    lt_error err;
    if (lt_pipeline_out_shape(p, (int)c, (int)h, (int)w, &oc, &oh, &ow, &err)) return lt_raise(L, fname, &err);
    lua_pushinteger(L, oc);
    lua_pushinteger(L, oh);
    lua_pushinteger(L, ow);
    return 3;
}

static int p_len(lua_State *L) {
    const lt_pipeline *p = luaL_checkudata(L, 1, LT_PIPELINE_MT);
    lua_pushinteger(L, p->n);
    return 1;
}

/* ---- whole batches: mirror and shift (N, C, H, W) or (C, H, W) images, for test-time augmentation ---- */

/* The images' planes (N C, or C) and size, checked; out is resized to in's shape (contiguous). */
static void batch_operands(lua_State *L, const char *fname, lt_tensor *out, const lt_tensor *in, int *planes, int *h,
                           int *w) {
    char shape[128];
    if ((in->ndim != 3 && in->ndim != 4) || in->size[in->ndim - 1] > (1 << 24) || in->size[in->ndim - 2] > (1 << 24))
        lt_raisef(L, fname, "expected images (N, C, H, W) or an image (C, H, W), got %s", lt_shape_str(in, shape, sizeof shape));
    int64_t p = in->ndim == 4 ? in->size[0] * in->size[1] : in->size[0];
    if (p > INT_MAX) lt_raisef(L, fname, "%s holds too many images", lt_shape_str(in, shape, sizeof shape));
    if (out->storage && out->storage == in->storage) lt_raisef(L, fname, "out must not share the input's storage");
    lt_error err;
    if (lt_tensor_resize(out, in->ndim, in->size, &err)) lt_raise(L, fname, &err);
    *planes = (int)p, *h = (int)in->size[in->ndim - 2], *w = (int)in->size[in->ndim - 1];
}

/* The path of both on a GPU (data/device_batches.h): out and in on one device, in made dense there. */
static int remap_on_device(lua_State *L, const char *fname, lt_tensor *out, const lt_tensor *in, int planes, int h,
                           int w, bool hflip, int dy, int dx, int mode) {
    lt_named ts[] = {{"input", in}, {"out", out}};
    lt_device d;
    lt_tensor src = {0};
    lt_error err;
    if (lt_check_devices(fname, ts, 2, &d, &err) || lt_contiguous(&src, in, &err) ||
        lt_device_images_remap(out, &src, planes, h, w, hflip, dy, dx, (lt_pad_mode)mode, &err)) {
        lt_tensor_release(&src);
        return lt_raise(L, fname, &err);
    }
    lt_tensor_release(&src);
    lua_settop(L, 1);
    return 1;
}

/* images_hflip(out, in): out = in mirrored left to right (out resized; it must not share in's storage) */
static int l_images_hflip(lua_State *L) {
    const char *fname = "lightning.data.transforms.functional.hflip";
    lt_tensor *out = lt_check_tensor_any(L, 1, fname), *in = lt_check_tensor_any(L, 2, fname);
    int planes, h, w;
    batch_operands(L, fname, out, in, &planes, &h, &w);
    lt_error err;
    if (lt_device_of(in) != LT_DEVICE_CPU) return remap_on_device(L, fname, out, in, planes, h, w, true, 0, 0, 0);
    if (lt_copy(out, in, &err)) return lt_raise(L, fname, &err);
    if (lt_numel(out)) lt_img_hflip(lt_data(out), planes, h, w);
    lua_settop(L, 1);
    return 1;
}

/* images_shift(out, in, dy, dx, padding_mode): out[.., y, x] = in[.., y - dy, x - dx], the pixels that come
 * in from outside as padding_mode ("constant" (0), "edge", "reflect", "symmetric") makes them */
static int l_images_shift(lua_State *L) {
    const char *fname = "lightning.data.transforms.functional.shift";
    lt_tensor *out = lt_check_tensor_any(L, 1, fname), *in = lt_check_tensor_any(L, 2, fname);
    int dy = (int)lt_check_int_in(L, 3, fname, "dy", -(1 << 24), 1 << 24);
    int dx = (int)lt_check_int_in(L, 4, fname, "dx", -(1 << 24), 1 << 24);
    const char *name = lua_isnoneornil(L, 5) ? "constant" : lt_check_string(L, 5, fname);
    static const char *const modes[] = {"constant", "edge", "reflect", "symmetric"};  /* lt_pad_mode's order */
    int mode = -1;
    for (int m = 0; m < 4; m++)
        if (strcmp(name, modes[m]) == 0) mode = m;
    if (mode < 0) lt_raisef(L, fname, "padding_mode must be constant, edge, reflect or symmetric, got %s", name);
    int planes, h, w;
    batch_operands(L, fname, out, in, &planes, &h, &w);
    if (lt_device_of(in) != LT_DEVICE_CPU) return remap_on_device(L, fname, out, in, planes, h, w, false, dy, dx, mode);
    lt_tensor src = {0};
    lt_error err;
    if (lt_contiguous(&src, in, &err)) return lt_raise(L, fname, &err);
    if (lt_numel(out)) lt_img_crop(lt_data(out), h, w, lt_data(&src), planes, h, w, -dy, -dx, (lt_pad_mode)mode, NULL);
    lt_tensor_release(&src);
    lua_settop(L, 1);
    return 1;
}

void lt_open_image(lua_State *L, int data) {
    static const luaL_Reg fns[] = {{"read_png", l_read_png}, {"decode_png", l_decode_png}, {"write_png", l_write_png},
                                   {"pipeline", l_pipeline}, {"images_hflip", l_images_hflip},
                                   {"images_shift", l_images_shift}, {NULL, NULL}};
    lua_pushvalue(L, data);
    luaL_setfuncs(L, fns, 0);
    lua_pop(L, 1);
    static const luaL_Reg methods[] = {{"apply", p_apply}, {"out_shape", p_out_shape}, {NULL, NULL}};
    luaL_newmetatable(L, LT_PIPELINE_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, p_len);
    lua_setfield(L, -2, "__len");
    lua_pop(L, 1);
}
