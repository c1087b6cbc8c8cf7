#include "transform.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *op_names[LT_OP_COUNT] = {
    "ToTensor", "Normalize", "Resize", "CenterCrop", "crop", "Pad", "RandomCrop", "RandomHorizontalFlip",
    "RandomVerticalFlip", "RandomRotation", "ColorJitter", "Grayscale", "RandomErasing", "erase",
    "AlternatingHorizontalFlip"};

static bool finite_pair(const double r[2]) { return isfinite(r[0]) && isfinite(r[1]) && r[0] <= r[1]; }

int lt_transform_op_check(const lt_transform_op *op, lt_error *err) {
    if (op->kind < 0 || op->kind >= LT_OP_COUNT) return lt_fail(err, "unknown transform op %d", (int)op->kind);
    const char *name = op_names[op->kind];
    if (op->nvalues < 0 || op->nvalues > LT_IMAGE_MAX_CHANNELS)
        return lt_fail(err, "%s: expected 1 to %d values, got %d", name, LT_IMAGE_MAX_CHANNELS, op->nvalues);
    for (int i = 0; i < op->nvalues; i++)
        if (!isfinite(op->values[i])) return lt_fail(err, "%s: values must be finite", name);
    if (!(op->p >= 0 && op->p <= 1)) return lt_fail(err, "%s: p must be in [0, 1], got %g", name, op->p);
    if (op->pad_mode < LT_PAD_CONSTANT || op->pad_mode > LT_PAD_SYMMETRIC) return lt_fail(err, "%s: unknown padding mode", name);
    switch (op->kind) {
    case LT_OP_NORMALIZE:
        if (op->nvalues < 1) return lt_fail(err, "Normalize: expected mean and std values");
        for (int i = 0; i < op->nvalues; i++)
            if (!(op->stds[i] != 0) || !isfinite(op->stds[i])) return lt_fail(err, "Normalize: std must be finite and non-zero, got %g", op->stds[i]);
        break;
    case LT_OP_RESIZE:
        if (op->size[0] < 1 || op->size[1] < 0 || op->size[0] > 65536 || op->size[1] > 65536)
            return lt_fail(err, "Resize: size must be positive (at most 65536), got %dx%d", op->size[0], op->size[1]);
        break;
    case LT_OP_CENTER_CROP: case LT_OP_CROP: case LT_OP_RANDOM_CROP: case LT_OP_ERASE:
        if (op->size[0] < 1 || op->size[1] < 1 || op->size[0] > 65536 || op->size[1] > 65536)
            return lt_fail(err, "%s: size must be positive (at most 65536), got %dx%d", name, op->size[0], op->size[1]);
        break;
    case LT_OP_ROTATION:
        if (!finite_pair(op->range)) return lt_fail(err, "RandomRotation: degrees must be finite, lo <= hi");
        break;
    case LT_OP_COLOR_JITTER:
        for (int k = 0; k < 4; k++)
            if (op->jitter_on[k]) {
                if (!finite_pair(op->jitter[k])) return lt_fail(err, "ColorJitter: factor ranges must be finite, lo <= hi");
                if (k == LT_JITTER_HUE ? (op->jitter[k][0] < -0.5 || op->jitter[k][1] > 0.5) : op->jitter[k][0] < 0)
                    return lt_fail(err, "ColorJitter: factor range [%g, %g] out of bounds", op->jitter[k][0], op->jitter[k][1]);
            }
        break;
    case LT_OP_GRAYSCALE:
        if (op->out_channels != 1 && op->out_channels != 3) return lt_fail(err, "Grayscale: num_output_channels must be 1 or 3, got %d", op->out_channels);
        break;
    case LT_OP_ERASING:
        if (!finite_pair(op->range) || op->range[0] < 0 || op->range[1] > 1) return lt_fail(err, "RandomErasing: scale must lie in [0, 1], lo <= hi");
        if (!finite_pair(op->ratio) || op->ratio[0] <= 0) return lt_fail(err, "RandomErasing: ratio must be positive, lo <= hi");
        break;
    default:
        break;
    }
    if (abs(op->offset[0]) > (1 << 24) || abs(op->offset[1]) > (1 << 24)) return lt_fail(err, "%s: offset out of range", name);
    for (int i = 0; i < 4; i++)
        if (op->pad[i] < 0 || op->pad[i] > 65536) return lt_fail(err, "%s: padding must be 0 to 65536, got %d", name, op->pad[i]);
    return 0;
}

/* Python's round() of d / 2 for d >= 0: halves go to the even neighbour. */
static int half_round_even(int d) {
    int q = d / 2;
    return d % 2 == 0 || q % 2 == 0 ? q : q + 1;
}

static void resize_shape(const lt_transform_op *op, int h, int w, int *oh, int *ow) {
    if (op->size[1] > 0) {
        *oh = op->size[0];
        *ow = op->size[1];
        return;
    }
    /* the smaller edge becomes size[0]; torchvision: int(size * long / short) */
    int small = w <= h ? w : h, large = w <= h ? h : w;
    double long_edge = (double)op->size[0] * large / small;
    int new_short = op->size[0], new_long = long_edge > (1 << 30) ? (1 << 30) : (int)long_edge;  /* too large either way */
    if (w <= h) *ow = new_short, *oh = new_long;
    else *oh = new_short, *ow = new_long;
}

/* The size after the op's padding (left, top, right, bottom). */
static void padded_size(const lt_transform_op *op, int h, int w, int *ph, int *pw) {
    *ph = h + op->pad[1] + op->pad[3];
    *pw = w + op->pad[0] + op->pad[2];
}

/* RandomCrop's padded size: its padding, then pad_if_needed's extra (on both sides, as torchvision). */
static void random_crop_padded(const lt_transform_op *op, int h, int w, int *ph, int *pw, int *extra_h, int *extra_w) {
    padded_size(op, h, w, ph, pw);
    *extra_w = op->pad_if_needed && *pw < op->size[1] ? op->size[1] - *pw : 0;
    *extra_h = op->pad_if_needed && *ph < op->size[0] ? op->size[0] - *ph : 0;
    *pw += 2 * *extra_w;
    *ph += 2 * *extra_h;
}

/* Two paddings in a mirroring mode do not compose into one, so RandomCrop materialises its own padding
 * (an image of padded_size) first when pad_if_needed adds more. */
static bool random_crop_pads_twice(const lt_transform_op *op, int extra_h, int extra_w) {
    return (extra_h || extra_w) && op->pad_mode != LT_PAD_CONSTANT;
}

static int op_out_shape(const lt_transform_op *op, int c, int h, int w, int *oc, int *oh, int *ow, lt_error *err) {
    *oc = c, *oh = h, *ow = w;
    bool values_per_channel = op->nvalues <= 1 || op->nvalues == c;
    switch (op->kind) {
    case LT_OP_NORMALIZE:
        if (!values_per_channel) return lt_fail(err, "mean and std have %d values, the image has %d channels", op->nvalues, c);
        break;
    case LT_OP_RESIZE:
        resize_shape(op, h, w, oh, ow);
        if (*oh < 1 || *ow < 1 || (int64_t)*oh * *ow > LT_IMAGE_MAX_PIXELS)
            return lt_fail(err, "resizing %dx%d gives %dx%d, out of range", h, w, *oh, *ow);
        /* the rows are resized first, into an image of h x ow (see resize.c) */
        if ((*oh != h || *ow != w) && (int64_t)h * *ow > LT_IMAGE_MAX_PIXELS)
            return lt_fail(err, "resizing %dx%d to %dx%d passes through %dx%d, too large", h, w, *oh, *ow, h, *ow);
        break;
    case LT_OP_CENTER_CROP: case LT_OP_CROP:
        *oh = op->size[0], *ow = op->size[1];
        break;
    case LT_OP_PAD:
        padded_size(op, h, w, oh, ow);
        if (!values_per_channel) return lt_fail(err, "fill has %d values, the image has %d channels", op->nvalues, c);
        break;
    case LT_OP_RANDOM_CROP: {
        int ph, pw, eh, ew;
        random_crop_padded(op, h, w, &ph, &pw, &eh, &ew);
        if (ph < op->size[0] || pw < op->size[1])
            return lt_fail(err, "crop %dx%d is larger than the %s image %dx%d", op->size[0], op->size[1],
                           op->pad[0] | op->pad[1] | op->pad[2] | op->pad[3] ? "padded" : "input", ph, pw);
        if (!values_per_channel) return lt_fail(err, "fill has %d values, the image has %d channels", op->nvalues, c);
        int h1, w1;
        padded_size(op, h, w, &h1, &w1);
        if (random_crop_pads_twice(op, eh, ew) && (int64_t)h1 * w1 > LT_IMAGE_MAX_PIXELS)
            return lt_fail(err, "the padded image %dx%d is too large", h1, w1);
        *oh = op->size[0], *ow = op->size[1];
        break;
    }
    case LT_OP_ROTATION: case LT_OP_ERASING: case LT_OP_ERASE:
        if (!values_per_channel) return lt_fail(err, "%d fill values given, the image has %d channels", op->nvalues, c);
        break;
    case LT_OP_COLOR_JITTER:
        if (c != 1 && c != 3) return lt_fail(err, "expected an image with 1 or 3 channels, got %d", c);
        break;
    case LT_OP_GRAYSCALE:
        if (c != 1 && c != 3) return lt_fail(err, "expected an image with 1 or 3 channels, got %d", c);
        *oc = op->out_channels;
        break;
    default:
        break;
    }
    if ((int64_t)*oh * *ow > LT_IMAGE_MAX_PIXELS) return lt_fail(err, "the result %dx%d is too large", *oh, *ow);
    return 0;
}

int lt_pipeline_out_shape(const lt_pipeline *p, int c, int h, int w, int *oc, int *oh, int *ow, lt_error *err) {
    for (int i = 0; i < p->n; i++) {
        lt_error op_err;
        if (op_out_shape(&p->ops[i], c, h, w, &c, &h, &w, &op_err))
            return lt_fail(err, "step %d (%s): %s", i + 1, op_names[p->ops[i].kind], op_err.msg);
    }
    *oc = c, *oh = h, *ow = w;
    return 0;
}

void lt_workspace_init(lt_workspace *ws) {
    memset(ws, 0, sizeof *ws);
    ws->cur = &ws->a;
}

void lt_workspace_free(lt_workspace *ws) {
    lt_image_free(&ws->a);
    lt_image_free(&ws->b);
    free(ws->tmp);
    lt_workspace_init(ws);
}

static lt_image *other_of(lt_workspace *ws) { return ws->cur == &ws->a ? &ws->b : &ws->a; }

static double uniform_in(lt_rng *rng, double lo, double hi) { return lo == hi ? lo : lo + (hi - lo) * lt_rng_uniform(rng); }

/* The fill for each channel: values[0] repeated, or one per channel. */
static void expand_values(float *out, const lt_transform_op *op, int c) {
    for (int ch = 0; ch < c && ch < LT_IMAGE_MAX_CHANNELS; ch++) out[ch] = op->nvalues == 0 ? 0.0f : op->values[op->nvalues == 1 ? 0 : ch];
}

/* Crops `in` into the other buffer, which becomes current. */
static int crop_into_other(lt_workspace *ws, const lt_crop_window *win, const float *fill, lt_error *err) {
    lt_image *in = ws->cur, *out = other_of(ws);
    if (lt_image_reserve(out, in->channels, win->oh, win->ow, err)) return -1;
    lt_img_crop(out->data, win->oh, win->ow, in->data, in->channels, in->height, in->width, win->top, win->left,
                win->mode, fill);
    ws->cur = out;
    return 0;
}

bool lt_op_is_geometric(lt_op_kind kind) {
    switch (kind) {
    case LT_OP_CENTER_CROP: case LT_OP_CROP: case LT_OP_PAD: case LT_OP_RANDOM_CROP: case LT_OP_HFLIP:
    case LT_OP_VFLIP: case LT_OP_ALT_HFLIP:
        return true;
    default:
        return false;
    }
}

const char *lt_op_name(lt_op_kind kind) { return kind >= 0 && kind < LT_OP_COUNT ? op_names[kind] : "unknown"; }

static lt_crop_window window_of(int oh, int ow, int top, int left, lt_pad_mode mode) {
    return (lt_crop_window){oh, ow, top, left, mode};
}

static void draw_random_crop(const lt_transform_op *op, int h, int w, lt_rng *rng, lt_op_geometry *g) {
    int th = op->size[0], tw = op->size[1];
    int ph, pw, extra_h, extra_w;
    random_crop_padded(op, h, w, &ph, &pw, &extra_h, &extra_w);
    int pad_top = op->pad[1] + extra_h, pad_left = op->pad[0] + extra_w;
    if (random_crop_pads_twice(op, extra_h, extra_w)) {
        int h1, w1;
        padded_size(op, h, w, &h1, &w1);
        g->window[g->nwindows++] = window_of(h1, w1, -op->pad[1], -op->pad[0], op->pad_mode);
        pad_top = extra_h, pad_left = extra_w;
    }
    int i = ph == th ? 0 : (int)lt_rng_below(rng, (uint64_t)(ph - th + 1));
    int j = pw == tw ? 0 : (int)lt_rng_below(rng, (uint64_t)(pw - tw + 1));
    g->window[g->nwindows++] = window_of(th, tw, i - pad_top, j - pad_left, op->pad_mode);
}

void lt_op_geometry_draw(const lt_transform_op *op, int c, int h, int w, lt_rng *rng, int64_t index, int64_t epoch,
                         lt_op_geometry *g) {
    memset(g, 0, sizeof *g);
    switch (op->kind) {
    case LT_OP_CENTER_CROP: {
        int th = op->size[0], tw = op->size[1];
        /* torchvision pads a too-small image with zeros (left/top get the smaller half), then crops at
         * round((H - th) / 2) */
        int pad_left = tw > w ? (tw - w) / 2 : 0, pad_top = th > h ? (th - h) / 2 : 0;
        int ph = th > h ? th : h, pw = tw > w ? tw : w;
        g->window[g->nwindows++] = window_of(th, tw, half_round_even(ph - th) - pad_top,
                                             half_round_even(pw - tw) - pad_left, LT_PAD_CONSTANT);
        break;
    }
    case LT_OP_CROP:
        g->window[g->nwindows++] = window_of(op->size[0], op->size[1], op->offset[0], op->offset[1], LT_PAD_CONSTANT);
        break;
    case LT_OP_PAD: {
        int ph, pw;
        padded_size(op, h, w, &ph, &pw);
        expand_values(g->fill, op, c);
        g->window[g->nwindows++] = window_of(ph, pw, -op->pad[1], -op->pad[0], op->pad_mode);
        break;
    }
    case LT_OP_RANDOM_CROP:
        expand_values(g->fill, op, c);
        draw_random_crop(op, h, w, rng, g);
        break;
    case LT_OP_HFLIP:
        g->hflip = op->p >= 1 || lt_rng_uniform(rng) < op->p;
        break;
    case LT_OP_VFLIP:
        g->vflip = op->p >= 1 || lt_rng_uniform(rng) < op->p;
        break;
    case LT_OP_ALT_HFLIP: {
        /* airbench's alternating flip: a coin per sample, from the op's seed and the sample's index only
         * (the same in every epoch), turned over in odd epochs */
        lt_rng sample;
        lt_rng_seed_stream(&sample, op->seed, (uint64_t)index);
        g->hflip = (lt_rng_uniform(&sample) < 0.5) != (epoch % 2 != 0);
        break;
    }
    default:
        break;
    }
}

static int apply_geometry(const lt_op_geometry *g, lt_workspace *ws, lt_error *err) {
    for (int k = 0; k < g->nwindows; k++)
        if (crop_into_other(ws, &g->window[k], g->fill, err)) return -1;
    lt_image *img = ws->cur;
    if (g->hflip) lt_img_hflip(img->data, img->channels, img->height, img->width);
    if (g->vflip) lt_img_vflip(img->data, img->channels, img->height, img->width);
    return 0;
}

static void apply_color_jitter(const lt_transform_op *op, lt_image *img, lt_rng *rng) {
    int order[4] = {0, 1, 2, 3};
    for (int k = 3; k > 0; k--) {  /* a random order, as torchvision's randperm(4) */
        int m = (int)lt_rng_below(rng, (uint64_t)k + 1);
        int t = order[k];
        order[k] = order[m];
        order[m] = t;
    }
    float factor[4];
    for (int k = 0; k < 4; k++)
        if (op->jitter_on[k]) factor[k] = (float)uniform_in(rng, op->jitter[k][0], op->jitter[k][1]);
    for (int n = 0; n < 4; n++) {
        int k = order[n];
        if (!op->jitter_on[k]) continue;
        if (k == LT_JITTER_BRIGHTNESS) lt_img_adjust_brightness(img->data, img->channels, img->height, img->width, factor[k]);
        else if (k == LT_JITTER_CONTRAST) lt_img_adjust_contrast(img->data, img->channels, img->height, img->width, factor[k]);
        else if (k == LT_JITTER_SATURATION) lt_img_adjust_saturation(img->data, img->channels, img->height, img->width, factor[k]);
        else lt_img_adjust_hue(img->data, img->channels, img->height, img->width, factor[k]);
    }
}

/* RandomErasing.get_params: up to 10 tries at a rectangle of random area and aspect ratio that fits. */
static void apply_random_erasing(const lt_transform_op *op, lt_image *img, lt_rng *rng) {
    int h = img->height, w = img->width;
    double area = (double)h * w, log_lo = log(op->ratio[0]), log_hi = log(op->ratio[1]);
    for (int attempt = 0; attempt < 10; attempt++) {
        double erase_area = area * uniform_in(rng, op->range[0], op->range[1]);
        double aspect = exp(uniform_in(rng, log_lo, log_hi));
        int eh = (int)rint(sqrt(erase_area * aspect)), ew = (int)rint(sqrt(erase_area / aspect));
        if (!(eh < h && ew < w)) continue;
        int top = (int)lt_rng_below(rng, (uint64_t)(h - eh + 1)), left = (int)lt_rng_below(rng, (uint64_t)(w - ew + 1));
        lt_img_erase(img->data, img->channels, h, w, top, left, eh, ew, op->nvalues ? op->values : NULL, op->nvalues, rng);
        return;
    }
}

static int apply_op(const lt_transform_op *op, lt_workspace *ws, lt_rng *rng, lt_error *err) {
    lt_image *img = ws->cur;
    int c = img->channels, h = img->height, w = img->width;
    float fill[LT_IMAGE_MAX_CHANNELS] = {0};
    if (lt_op_is_geometric(op->kind)) {
        lt_op_geometry g;
        lt_op_geometry_draw(op, c, h, w, rng, ws->index, ws->epoch, &g);
        return apply_geometry(&g, ws, err);
    }
    switch (op->kind) {
    case LT_OP_TO_TENSOR:
        return 0;
    case LT_OP_NORMALIZE:
        lt_img_normalize(img->data, c, h, w, op->values, op->stds, op->nvalues);
        return 0;
    case LT_OP_RESIZE: {
        int oh, ow;
        resize_shape(op, h, w, &oh, &ow);
        if (oh == h && ow == w) return 0;
        size_t need = (size_t)c * h * ow;
        if (need > ws->tmp_capacity) {
            float *p = realloc(ws->tmp, need * sizeof(float));
            if (!p) return lt_fail(err, "out of memory resizing");
            ws->tmp = p;
            ws->tmp_capacity = need;
        }
        lt_image *out = other_of(ws);
        if (lt_image_reserve(out, c, oh, ow, err)) return -1;
        if (lt_img_resize(out->data, oh, ow, img->data, c, h, w, op->antialias, ws->tmp, err)) return -1;
        ws->cur = out;
        return 0;
    }
    case LT_OP_ROTATION: {
        double angle = uniform_in(rng, op->range[0], op->range[1]);
        expand_values(fill, op, c);
        lt_image *out = other_of(ws);
        if (lt_image_reserve(out, c, h, w, err)) return -1;
        lt_img_rotate(out->data, img->data, c, h, w, angle, op->nvalues ? fill : NULL);
        ws->cur = out;
        return 0;
    }
    case LT_OP_COLOR_JITTER:
        apply_color_jitter(op, img, rng);
        return 0;
    case LT_OP_GRAYSCALE: {
        lt_image *out = other_of(ws);
        if (lt_image_reserve(out, op->out_channels, h, w, err)) return -1;
        lt_img_grayscale(out->data, op->out_channels, img->data, c, h, w);
        ws->cur = out;
        return 0;
    }
    case LT_OP_ERASING:
        if (op->p >= 1 || lt_rng_uniform(rng) < op->p) apply_random_erasing(op, img, rng);
        return 0;
    case LT_OP_ERASE:
        lt_img_erase(img->data, c, h, w, op->offset[0], op->offset[1], op->size[0], op->size[1],
                     op->nvalues ? op->values : NULL, op->nvalues, rng);
        return 0;
    default:
        return lt_fail(err, "unknown transform op %d", (int)op->kind);
    }
}

int lt_pipeline_apply(const lt_pipeline *p, lt_workspace *ws, lt_rng *rng, lt_error *err) {
    for (int i = 0; i < p->n; i++) {
        const lt_image *img = ws->cur;
        int oc, oh, ow;
        lt_error op_err;
        /* the shape check also guards each kernel against inputs it cannot take */
        if (op_out_shape(&p->ops[i], img->channels, img->height, img->width, &oc, &oh, &ow, &op_err) ||
            apply_op(&p->ops[i], ws, rng, &op_err))
            return lt_fail(err, "step %d (%s): %s", i + 1, op_names[p->ops[i].kind], op_err.msg);
    }
    return 0;
}
