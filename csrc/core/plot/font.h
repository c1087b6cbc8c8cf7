/* A bitmap font for plot labels: 5x7 glyphs (capitals and digits 7 pixels tall, lowercase letters 5,
 * descenders 2 more) for printable ASCII, drawn at integer scales, horizontally or rotated a quarter
 * turn counter-clockwise (reading upwards, for a y-axis label). Other characters (each UTF-8 sequence
 * counts as one) are drawn as '?'. */
#ifndef LT_PLOT_FONT_H
#define LT_PLOT_FONT_H

#include <stdbool.h>

#include "canvas.h"

enum {
    LT_FONT_GLYPH_WIDTH = 5,
    LT_FONT_ADVANCE = 6,  /* glyph width plus one column of spacing */
    LT_FONT_ASCENT = 7,   /* rows above the baseline (capitals and digits fill them) */
    LT_FONT_DESCENT = 2,  /* rows below it (g, j, p, q, y, comma, underscore) */
    LT_FONT_HEIGHT = LT_FONT_ASCENT + LT_FONT_DESCENT,
    LT_FONT_MAX_SCALE = 16,
};

/* Number of glyphs the text draws as (UTF-8 sequences count once). */
long lt_font_glyph_count(const char *text, long len);

/* Size of the text's box in pixels at the given scale: width = (glyphs * 6 - 1) * scale (0 when empty),
 * height = 9 * scale; width and height swap when vertical. */
void lt_font_text_size(const char *text, long len, int scale, bool vertical, long *width, long *height);

/* Draws the text with the top-left corner of its box at (x, y) (for vertical text the box is the
 * rotated one: the first glyph at the bottom). Pixels outside the canvas are skipped. */
void lt_canvas_text(lt_canvas *c, long x, long y, const char *text, long len, int scale, bool vertical,
                    lt_color color);

#endif
