#include "colormap.h"

/* viridis at t = 0, 1/8, ..., 1: #440154 #472d7b #3b528b #2c728e #21918c #28ae80 #5ec962 #addc30 #fde725 */
static const unsigned char viridis_points[9][3] = {
    {0x44, 0x01, 0x54}, {0x47, 0x2d, 0x7b}, {0x3b, 0x52, 0x8b}, {0x2c, 0x72, 0x8e}, {0x21, 0x91, 0x8c},
    {0x28, 0xae, 0x80}, {0x5e, 0xc9, 0x62}, {0xad, 0xdc, 0x30}, {0xfd, 0xe7, 0x25}};

lt_color lt_colormap_viridis(double t) {
    if (!(t > 0)) t = 0;  /* also NaN */
    if (t > 1) t = 1;
    double pos = t * 8;
    int i = pos >= 8 ? 7 : (int)pos;  /* interval i: from point i to point i+1 */
    float f = (float)(pos - i);
    const unsigned char *a = viridis_points[i], *b = viridis_points[i + 1];
    lt_color out = {(a[0] + (b[0] - a[0]) * f) / 255.0f, (a[1] + (b[1] - a[1]) * f) / 255.0f,
                    (a[2] + (b[2] - a[2]) * f) / 255.0f, 1.0f};
    return out;
}
