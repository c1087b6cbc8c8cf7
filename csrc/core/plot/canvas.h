/* A raster canvas for drawing plots: an RGB float image in planar layout (3 planes of height x width,
 * values in [0, 1], the layout of a (3, H, W) tensor or of a rectangle cut out of one), with filled
 * rectangles, anti-aliased strokes and shapes, and nearest-neighbour blitting of images. Coordinates are 0-based; pixel (x, y) has its centre at (x, y),
 * so a 1-pixel line along y = 10 covers exactly row 10. Everything is clipped to the canvas: no
 * coordinate, however large or NaN, writes outside it. */
#ifndef LT_PLOT_CANVAS_H
#define LT_PLOT_CANVAS_H

#include "../base/error.h"

typedef struct lt_color {
    float r, g, b;  /* in [0, 1] */
    float a;        /* opacity in [0, 1] */
} lt_color;

#include <stdint.h>

typedef struct lt_canvas {
    float *pixels;         /* pixel (x, y) of plane p (red, green, blue) is at p * plane_stride + y * row_stride + x */
    int width, height;
    int64_t row_stride;    /* >= width */
    int64_t plane_stride;  /* >= height * row_stride for a canvas of its own; a cut-out shares its parent's */
} lt_canvas;

/* How a polyline is stroked. dash_on = 0 draws a solid line; otherwise on/off lengths in pixels,
 * measured along the line. */
typedef struct lt_stroke {
    lt_color color;
    double width;            /* > 0, in pixels */
    double dash_on, dash_off;
} lt_stroke;

void lt_canvas_clear(lt_canvas *c, lt_color color);

/* Blends color over the pixels x..x+w-1, y..y+h-1 (clipped). */
void lt_canvas_fill_rect(lt_canvas *c, long x, long y, long w, long h, lt_color color);

/* Strokes the polyline through n points (xy holds x0, y0, x1, y1, ...) with round caps and joins. A
 * point with a non-finite coordinate breaks the line in two (a gap for a missing value). Each pixel is
 * covered once even where segments overlap, so translucent lines have no darker joints. Fails only when
 * out of memory (it needs a coverage buffer over the line's bounding box). */
int lt_canvas_polyline(lt_canvas *c, const double *xy, int n, const lt_stroke *stroke, lt_error *err);

/* Fills a convex polygon of n >= 3 points (either winding), anti-aliased. */
void lt_canvas_fill_convex(lt_canvas *c, const double *xy, int n, lt_color color);

/* Fills a disc of the given radius, anti-aliased. */
void lt_canvas_fill_circle(lt_canvas *c, double cx, double cy, double radius, lt_color color);

/* Draws an image (channels x src_h x src_w, channels 1 (gray) or 3 (RGB), values clamped to [0, 1],
 * NaN as 0) into the rectangle x..x+w-1, y..y+h-1, scaling by nearest neighbour. */
void lt_canvas_blit(lt_canvas *c, const float *chw, int channels, int src_h, int src_w, long x, long y, long w,
                    long h);

#endif
