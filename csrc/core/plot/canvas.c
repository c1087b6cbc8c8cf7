#include "canvas.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* ---- helpers ---- */

/* The pixel indices i with lo <= i <= hi that lie in 0..n-1, as *first..*last; 0 when there are none
 * (also for NaN bounds). Works in double, so huge coordinates cannot overflow an int. */
static int pixel_range(double lo, double hi, int n, int *first, int *last) {
    if (!(lo <= hi) || n <= 0) return 0;
    double a = ceil(lo), b = floor(hi);
    if (a < 0) a = 0;
    if (b > n - 1) b = n - 1;
    if (a > b) return 0;
    *first = (int)a;
    *last = (int)b;
    return 1;
}

static inline float clamp01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }

/* Blends color over pixel (x, y) (inside the canvas) with the colour's opacity times coverage. */
static inline void blend(lt_canvas *c, int x, int y, lt_color color, float coverage) {
    float a = color.a * coverage;
    if (a <= 0.0f) return;
    int64_t plane = c->plane_stride;
    float *p = c->pixels + (int64_t)y * c->row_stride + x;
    p[0] += (color.r - p[0]) * a;
    p[plane] += (color.g - p[plane]) * a;
    p[2 * plane] += (color.b - p[2 * plane]) * a;
}

/* Coverage of a pixel whose centre lies at signed distance d inside a shape's edge (negative:
 * outside): a one-pixel ramp centred on the edge. */
static inline float edge_coverage(double d) { return (float)(d + 0.5 < 0 ? 0 : d + 0.5 > 1 ? 1 : d + 0.5); }

/* ---- fills ---- */

void lt_canvas_clear(lt_canvas *c, lt_color color) {
    float rgb[3] = {clamp01(color.r), clamp01(color.g), clamp01(color.b)};
    for (int ch = 0; ch < 3; ch++)                /* ch: colour plane */
        for (int y = 0; y < c->height; y++)       /* y: row */
            for (int x = 0; x < c->width; x++)    /* x: column */
                c->pixels[ch * c->plane_stride + (int64_t)y * c->row_stride + x] = rgb[ch];
}

void lt_canvas_fill_rect(lt_canvas *c, long x, long y, long w, long h, lt_color color) {
    int x0, x1, y0, y1;
    if (w <= 0 || h <= 0) return;
    if (!pixel_range((double)x, (double)x + (double)w - 1, c->width, &x0, &x1)) return;
    if (!pixel_range((double)y, (double)y + (double)h - 1, c->height, &y0, &y1)) return;
    for (int py = y0; py <= y1; py++)      /* py: row */
        for (int px = x0; px <= x1; px++)  /* px: column */
            blend(c, px, py, color, 1.0f);
}

void lt_canvas_fill_circle(lt_canvas *c, double cx, double cy, double radius, lt_color color) {
    int x0, x1, y0, y1;
    if (!(radius > 0)) return;
    if (!pixel_range(cx - radius - 1, cx + radius + 1, c->width, &x0, &x1)) return;
    if (!pixel_range(cy - radius - 1, cy + radius + 1, c->height, &y0, &y1)) return;
    for (int py = y0; py <= y1; py++)      /* py: row */
        for (int px = x0; px <= x1; px++)  /* px: column */
            blend(c, px, py, color, edge_coverage(radius - hypot(px - cx, py - cy)));
}

void lt_canvas_fill_convex(lt_canvas *c, const double *xy, int n, lt_color color) {
    if (n < 3) return;
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY, area2 = 0;
    for (int i = 0; i < n; i++) {  /* i: vertex */
        double x = xy[2 * i], y = xy[2 * i + 1];
        if (!isfinite(x) || !isfinite(y)) return;
        xmin = fmin(xmin, x), xmax = fmax(xmax, x), ymin = fmin(ymin, y), ymax = fmax(ymax, y);
        int j = (i + 1) % n;
        area2 += x * xy[2 * j + 1] - xy[2 * j] * y;
    }
    if (area2 == 0) return;
    double orientation = area2 > 0 ? 1 : -1;
    int x0, x1, y0, y1;
    if (!pixel_range(xmin - 1, xmax + 1, c->width, &x0, &x1)) return;
    if (!pixel_range(ymin - 1, ymax + 1, c->height, &y0, &y1)) return;
    for (int py = y0; py <= y1; py++) {      /* py: row */
        for (int px = x0; px <= x1; px++) {  /* px: column */
            /* the distance inside the nearest edge (the shape is the intersection of half-planes) */
            double inside = INFINITY;
            for (int i = 0; i < n; i++) {    /* i: edge from vertex i to vertex i+1 */
                int j = (i + 1) % n;
                double ex = xy[2 * j] - xy[2 * i], ey = xy[2 * j + 1] - xy[2 * i + 1];
                double len = hypot(ex, ey);
                if (len == 0) continue;
                double d = orientation * (ex * (py - xy[2 * i + 1]) - ey * (px - xy[2 * i])) / len;
                if (d < inside) inside = d;
            }
            blend(c, px, py, color, edge_coverage(inside));
        }
    }
}

/* ---- strokes ---- */

/* Raises the coverage buffer (bw x bh, at canvas offset bx, by) to the coverage of segment a-b, whose
 * start lies at arc length s0 along its run of the polyline. */
static void cover_segment(float *cover, int bx, int by, int bw, int bh, double ax, double ay, double bx2,
                          double by2, double s0, const lt_stroke *st) {
    double half = st->width / 2, dx = bx2 - ax, dy = by2 - ay;
    double len2 = dx * dx + dy * dy, len = sqrt(len2), period = st->dash_on + st->dash_off;
    int x0, x1, y0, y1;
    if (!pixel_range(fmin(ax, bx2) - half - 1, fmax(ax, bx2) + half + 1, bx + bw, &x0, &x1)) return;
    if (!pixel_range(fmin(ay, by2) - half - 1, fmax(ay, by2) + half + 1, by + bh, &y0, &y1)) return;
    if (x0 < bx) x0 = bx;
    if (y0 < by) y0 = by;
    for (int py = y0; py <= y1; py++) {      /* py: row */
        for (int px = x0; px <= x1; px++) {  /* px: column */
            double t = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            if (st->dash_on > 0 && fmod(s0 + t * len, period) >= st->dash_on) continue;
            float cov = edge_coverage(half - hypot(px - (ax + t * dx), py - (ay + t * dy)));
            float *slot = cover + (int64_t)(py - by) * bw + (px - bx);
            if (cov > *slot) *slot = cov;
        }
    }
}

int lt_canvas_polyline(lt_canvas *c, const double *xy, int n, const lt_stroke *st, lt_error *err) {
    if (!(st->width > 0) || !isfinite(st->width)) return lt_fail(err, "line width must be a finite number > 0, got %g", st->width);
    if (st->dash_on < 0 || st->dash_off < 0 || !isfinite(st->dash_on) || !isfinite(st->dash_off))
        return lt_fail(err, "dash lengths must be finite numbers >= 0, got %g and %g", st->dash_on, st->dash_off);
    if (st->dash_on > 0 && st->dash_off == 0) return lt_fail(err, "a dashed line needs a gap length > 0");
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int i = 0; i < n; i++) {  /* i: point */
        double x = xy[2 * i], y = xy[2 * i + 1];
        if (!isfinite(x) || !isfinite(y)) continue;
        xmin = fmin(xmin, x), xmax = fmax(xmax, x), ymin = fmin(ymin, y), ymax = fmax(ymax, y);
    }
    double margin = st->width / 2 + 1;
    int x0, x1, y0, y1;
    if (!pixel_range(xmin - margin, xmax + margin, c->width, &x0, &x1)) return 0;
    if (!pixel_range(ymin - margin, ymax + margin, c->height, &y0, &y1)) return 0;
    int bw = x1 - x0 + 1, bh = y1 - y0 + 1;
    float *cover = calloc((size_t)bw * (size_t)bh, sizeof *cover);
    if (!cover) return lt_fail(err, "out of memory for a %dx%d coverage buffer", bw, bh);

    double s0 = 0;  /* arc length from the start of the current run (dashes restart after a gap) */
    for (int i = 0; i + 1 < n; i++) {  /* i: segment from point i to point i+1 */
        const double *a = xy + 2 * i, *b = a + 2;
        if (!isfinite(a[0]) || !isfinite(a[1]) || !isfinite(b[0]) || !isfinite(b[1])) {
            s0 = 0;
            continue;
        }
        cover_segment(cover, x0, y0, bw, bh, a[0], a[1], b[0], b[1], s0, st);
        s0 += hypot(b[0] - a[0], b[1] - a[1]);
    }
    for (int py = 0; py < bh; py++)      /* py: row of the box */
        for (int px = 0; px < bw; px++)  /* px: column of the box */
            blend(c, x0 + px, y0 + py, st->color, cover[(int64_t)py * bw + px]);
    free(cover);
    return 0;
}

/* ---- images ---- */

void lt_canvas_blit(lt_canvas *c, const float *chw, int channels, int src_h, int src_w, long x, long y, long w,
                    long h) {
    int x0, x1, y0, y1;
    if (w <= 0 || h <= 0 || src_h <= 0 || src_w <= 0 || (channels != 1 && channels != 3)) return;
    if (!pixel_range((double)x, (double)x + (double)w - 1, c->width, &x0, &x1)) return;
    if (!pixel_range((double)y, (double)y + (double)h - 1, c->height, &y0, &y1)) return;
    int64_t src_plane = (int64_t)src_h * src_w;
    for (int py = y0; py <= y1; py++) {                /* py: canvas row */
        int64_t sy = (int64_t)(py - y) * src_h / h;    /* source row (nearest neighbour) */
        for (int px = x0; px <= x1; px++) {            /* px: canvas column */
            int64_t sx = (int64_t)(px - x) * src_w / w;
            for (int ch = 0; ch < 3; ch++) {           /* ch: canvas colour plane */
                float v = chw[(channels == 3 ? ch : 0) * src_plane + sy * src_w + sx];
                c->pixels[ch * c->plane_stride + (int64_t)py * c->row_stride + px] = v == v ? clamp01(v) : 0.0f;
            }
        }
    }
}
