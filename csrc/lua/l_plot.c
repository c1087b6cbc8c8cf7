/* Bindings for drawing plots into images: lightning.core.plot. A canvas is a (3, H, W) tensor with
 * values in [0, 1] (so it is saved with write_png and read like any tensor), or a rectangle of one
 * (t:narrow(2, y, h):narrow(3, x, w)), which clips what is drawn into it; these functions draw into it. Coordinates are 1-based and pixel (x, y) has its centre at (x, y). Colours
 * are r, g, b[, a] numbers in [0, 1]. The Lua side (lightning.plot.Canvas) wraps them with named
 * colours and options. */
#include <math.h>
#include <string.h>

#include "../core/plot/canvas.h"
#include "../core/plot/colormap.h"
#include "../core/plot/font.h"
#include "l_util.h"

#define CANVAS_MAX_SIDE 32768
#define COORD_LIMIT 1e9 /* coordinates farther out than this are surely a mistake */
#define MAX_POINTS (1 << 24)

/* The canvas at idx: a (3, H, W) tensor whose rows are contiguous and whose planes do not overlap
 * (a contiguous tensor or a rectangle cut out of one). */
static lt_canvas check_canvas(lua_State *L, int idx, const char *fname) {
    lt_tensor *t = lt_check_tensor(L, idx, fname);
    char shape[128];
    if (t->ndim != 3 || t->size[0] != 3)
        lt_argerror(L, idx, fname, "must be a (3, H, W) canvas tensor, got %s", lt_shape_str(t, shape, sizeof shape));
    if (t->size[1] > CANVAS_MAX_SIDE || t->size[2] > CANVAS_MAX_SIDE)
        lt_argerror(L, idx, fname, "is too large (%s; at most %d pixels a side)", lt_shape_str(t, shape, sizeof shape),
                    CANVAS_MAX_SIDE);
    int64_t h = t->size[1], w = t->size[2];
    int rows_ok = (t->stride[2] == 1 || w <= 1) && (t->stride[1] >= w || h <= 1) && t->stride[0] >= t->stride[1] * h;
    if (!rows_ok) lt_argerror(L, idx, fname, "must be a contiguous canvas or a rectangle of one (strides %lld, %lld, %lld)",
                              (long long)t->stride[0], (long long)t->stride[1], (long long)t->stride[2]);
    lt_canvas c = {lt_data(t), (int)w, (int)h, t->stride[1], t->stride[0]};
    return c;
}

static double check_coord(lua_State *L, int idx, const char *fname) {
    double v = lt_check_number(L, idx, fname);
    if (!(fabs(v) <= COORD_LIMIT)) lt_argerror(L, idx, fname, "must be a finite coordinate within +-1e9, got %g", v);
    return v;
}

static long check_int_coord(lua_State *L, int idx, const char *fname) {
    lua_Integer v = lt_check_integer(L, idx, fname);
    if (v < -COORD_LIMIT || v > COORD_LIMIT) lt_argerror(L, idx, fname, "must be within +-1e9, got %lld", (long long)v);
    return (long)v;
}

static long check_extent(lua_State *L, int idx, const char *fname) {
    lua_Integer v = lt_check_integer(L, idx, fname);
    if (v < 0 || v > COORD_LIMIT) lt_argerror(L, idx, fname, "must be an integer in 0..1e9, got %lld", (long long)v);
    return (long)v;
}

static float check_unit(lua_State *L, int idx, const char *fname) {
    double v = lt_check_number(L, idx, fname);
    if (!(v >= 0 && v <= 1)) lt_argerror(L, idx, fname, "must be a number in [0, 1], got %g", v);
    return (float)v;
}

/* r, g, b at idx..idx+2 and an optional opacity at idx+3 (default 1). */
static lt_color check_color(lua_State *L, int idx, const char *fname) {
    lt_color c;
    c.r = check_unit(L, idx, fname);
    c.g = check_unit(L, idx + 1, fname);
    c.b = check_unit(L, idx + 2, fname);
    c.a = lua_isnoneornil(L, idx + 3) ? 1.0f : check_unit(L, idx + 3, fname);
    return c;
}

static int check_scale(lua_State *L, int idx, const char *fname) {
    lua_Integer s = lt_check_integer(L, idx, fname);
    if (s < 1 || s > LT_FONT_MAX_SCALE) lt_argerror(L, idx, fname, "must be a text scale in 1..%d, got %lld", LT_FONT_MAX_SCALE, (long long)s);
    return (int)s;
}

/* A flat list {x1, y1, x2, y2, ...} of at least min_points points, converted to 0-based coordinates in
 * a buffer owned by a userdata left on the stack. NaN (a gap) passes when allow_nan is set. */
static double *check_points(lua_State *L, int idx, const char *fname, int min_points, int allow_nan, int *count) {
    if (!lua_istable(L, idx)) lt_argerror(L, idx, fname, "must be a list of coordinates {x1, y1, x2, y2, ...}, got %s", lt_typename(L, idx));
    lua_Integer n = luaL_len(L, idx);
    if (n % 2 != 0) lt_argerror(L, idx, fname, "must hold x, y pairs, got %lld numbers", (long long)n);
    if (n / 2 < min_points) lt_argerror(L, idx, fname, "must hold at least %d points, got %lld", min_points, (long long)(n / 2));
    if (n / 2 > MAX_POINTS) lt_argerror(L, idx, fname, "holds too many points (%lld; at most %d)", (long long)(n / 2), MAX_POINTS);
    double *xy = lua_newuserdatauv(L, (size_t)n * sizeof *xy, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_geti(L, idx, i + 1);
        int ok;
        double v = lua_tonumberx(L, -1, &ok);
        if (!ok) lt_raisef(L, fname, "coordinate %lld must be a number, got %s", (long long)(i + 1), lt_typename(L, -1));
        if (!(fabs(v) <= COORD_LIMIT) && !(allow_nan && isnan(v)))
            lt_raisef(L, fname, "coordinate %lld must be %swithin +-1e9, got %g", (long long)(i + 1), allow_nan ? "NaN (a gap) or " : "", v);
        xy[i] = v - 1;
        lua_pop(L, 1);
    }
    *count = (int)(n / 2);
    return xy;
}

/* clear(canvas, r, g, b) */
static int l_clear(lua_State *L) {
    const char *fname = "lightning.core.plot.clear";
    lt_canvas c = check_canvas(L, 1, fname);
    lt_color color = check_color(L, 2, fname);
    lt_canvas_clear(&c, color);
    return 0;
}

/* fill_rect(canvas, x, y, w, h, r, g, b[, a]): the pixels x..x+w-1, y..y+h-1 */
static int l_fill_rect(lua_State *L) {
    const char *fname = "lightning.core.plot.fill_rect";
    lt_canvas c = check_canvas(L, 1, fname);
    long x = check_int_coord(L, 2, fname), y = check_int_coord(L, 3, fname);
    long w = check_extent(L, 4, fname), h = check_extent(L, 5, fname);
    lt_color color = check_color(L, 6, fname);
    lt_canvas_fill_rect(&c, x - 1, y - 1, w, h, color);
    return 0;
}

/* polyline(canvas, xy, width, r, g, b[, a[, dash_on, dash_off]]) */
static int l_polyline(lua_State *L) {
    const char *fname = "lightning.core.plot.polyline";
    lt_canvas c = check_canvas(L, 1, fname);
    lt_stroke stroke;
    stroke.width = lt_check_number(L, 3, fname);
    if (!(stroke.width > 0 && stroke.width <= 1000)) lt_argerror(L, 3, fname, "must be a line width in (0, 1000], got %g", stroke.width);
    stroke.color = check_color(L, 4, fname);
    stroke.dash_on = lt_opt_number(L, 8, fname, 0);
    stroke.dash_off = lt_opt_number(L, 9, fname, 0);
    if (!(stroke.dash_on >= 0 && stroke.dash_on <= COORD_LIMIT)) lt_argerror(L, 8, fname, "must be a dash length >= 0, got %g", stroke.dash_on);
    if (!(stroke.dash_off >= 0 && stroke.dash_off <= COORD_LIMIT)) lt_argerror(L, 9, fname, "must be a gap length >= 0, got %g", stroke.dash_off);
    if (stroke.dash_on > 0 && stroke.dash_off == 0) lt_argerror(L, 9, fname, "must be > 0 for a dashed line (dash %g)", stroke.dash_on);
    int n;
    double *xy = check_points(L, 2, fname, 1, 1, &n);
    lt_error err;
    if (lt_canvas_polyline(&c, xy, n, &stroke, &err)) return lt_raise(L, fname, &err);
    return 0;
}

/* fill_polygon(canvas, xy, r, g, b[, a]): a convex polygon */
static int l_fill_polygon(lua_State *L) {
    const char *fname = "lightning.core.plot.fill_polygon";
    lt_canvas c = check_canvas(L, 1, fname);
    lt_color color = check_color(L, 3, fname);
    int n;
    double *xy = check_points(L, 2, fname, 3, 0, &n);
    lt_canvas_fill_convex(&c, xy, n, color);
    return 0;
}

/* fill_circle(canvas, x, y, radius, r, g, b[, a]) */
static int l_fill_circle(lua_State *L) {
    const char *fname = "lightning.core.plot.fill_circle";
    lt_canvas c = check_canvas(L, 1, fname);
    double x = check_coord(L, 2, fname), y = check_coord(L, 3, fname), radius = lt_check_number(L, 4, fname);
    if (!(radius >= 0 && radius <= COORD_LIMIT)) lt_argerror(L, 4, fname, "must be a radius >= 0, got %g", radius);
    lt_color color = check_color(L, 5, fname);
    lt_canvas_fill_circle(&c, x - 1, y - 1, radius, color);
    return 0;
}

/* text(canvas, x, y, text, scale, vertical, r, g, b[, a]) --> width, height of its box; (x, y) is the
 * box's top-left pixel */
static int l_text(lua_State *L) {
    const char *fname = "lightning.core.plot.text";
    lt_canvas c = check_canvas(L, 1, fname);
    long x = check_int_coord(L, 2, fname), y = check_int_coord(L, 3, fname);
    size_t len;
    lt_check_string(L, 4, fname);
    const char *text = lua_tolstring(L, 4, &len);
    int scale = check_scale(L, 5, fname);
    int vertical = lt_opt_boolean(L, 6, fname, 0);
    lt_color color = check_color(L, 7, fname);
    lt_canvas_text(&c, x - 1, y - 1, text, (long)len, scale, vertical, color);
    long w, h;
    lt_font_text_size(text, (long)len, scale, vertical, &w, &h);
    lua_pushinteger(L, w);
    lua_pushinteger(L, h);
    return 2;
}

/* text_size(text, scale[, vertical]) --> width, height */
static int l_text_size(lua_State *L) {
    const char *fname = "lightning.core.plot.text_size";
    size_t len;
    lt_check_string(L, 1, fname);
    const char *text = lua_tolstring(L, 1, &len);
    int scale = check_scale(L, 2, fname);
    long w, h;
    lt_font_text_size(text, (long)len, scale, lt_opt_boolean(L, 3, fname, 0), &w, &h);
    lua_pushinteger(L, w);
    lua_pushinteger(L, h);
    return 2;
}

/* blit(canvas, image (C, H, W) with C = 1 or 3, or (H, W), x, y, w, h): nearest-neighbour scaling */
static int l_blit(lua_State *L) {
    const char *fname = "lightning.core.plot.blit";
    lt_canvas c = check_canvas(L, 1, fname);
    lt_tensor *img = lt_check_tensor(L, 2, fname);
    char shape[128];
    int channels = img->ndim == 2 ? 1 : img->ndim == 3 ? (int)img->size[0] : 0;
    if (channels != 1 && channels != 3)
        return lt_argerror(L, 2, fname, "must be an image (C, H, W) with C = 1 or 3, or (H, W), got %s", lt_shape_str(img, shape, sizeof shape));
    int64_t src_h = img->size[img->ndim - 2], src_w = img->size[img->ndim - 1];
    if (src_h < 1 || src_w < 1 || src_h > CANVAS_MAX_SIDE || src_w > CANVAS_MAX_SIDE)
        return lt_argerror(L, 2, fname, "must have 1 to %d pixels a side, got %s", CANVAS_MAX_SIDE, lt_shape_str(img, shape, sizeof shape));
    long x = check_int_coord(L, 3, fname), y = check_int_coord(L, 4, fname);
    long w = check_extent(L, 5, fname), h = check_extent(L, 6, fname);
    lt_tensor contiguous = {0};
    lt_error err;
    if (lt_contiguous(&contiguous, img, &err)) return lt_raise(L, fname, &err);
    lt_canvas_blit(&c, lt_data(&contiguous), channels, (int)src_h, (int)src_w, x - 1, y - 1, w, h);
    lt_tensor_release(&contiguous);
    return 0;
}

/* colormap(t) --> r, g, b of viridis at t in [0, 1] (clamped) */
static int l_colormap(lua_State *L) {
    lt_color c = lt_colormap_viridis(lt_check_number(L, 1, "lightning.core.plot.colormap"));
    lua_pushnumber(L, c.r);
    lua_pushnumber(L, c.g);
    lua_pushnumber(L, c.b);
    return 3;
}

static void set_int(lua_State *L, const char *key, int value) {
    lua_pushinteger(L, value);
    lua_setfield(L, -2, key);
}

void lt_open_plot(lua_State *L, int module) {
    static const luaL_Reg fns[] = {
        {"clear", l_clear}, {"fill_rect", l_fill_rect}, {"polyline", l_polyline}, {"fill_polygon", l_fill_polygon},
        {"fill_circle", l_fill_circle}, {"text", l_text}, {"text_size", l_text_size}, {"blit", l_blit},
        {"colormap", l_colormap}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_newtable(L);  /* the font's metrics, in pixels at scale 1 */
    set_int(L, "glyph_width", LT_FONT_GLYPH_WIDTH);
    set_int(L, "advance", LT_FONT_ADVANCE);
    set_int(L, "ascent", LT_FONT_ASCENT);
    set_int(L, "descent", LT_FONT_DESCENT);
    set_int(L, "height", LT_FONT_HEIGHT);
    set_int(L, "max_scale", LT_FONT_MAX_SCALE);
    lua_setfield(L, -2, "font");
    lua_setfield(L, module, "plot");
}
