/* Colour maps for heat maps. */
#ifndef LT_PLOT_COLORMAP_H
#define LT_PLOT_COLORMAP_H

#include "canvas.h"

/* matplotlib's viridis (perceptually uniform, readable in gray and by colour-blind readers) at t in
 * [0, 1] (clamped; NaN gives the colour of 0), opaque: interpolated linearly between nine of its
 * colours, an approximation of matplotlib's 256-entry table that is exact at 0, 1/8, ..., 1. */
lt_color lt_colormap_viridis(double t);

#endif
