#include "image_plan.h"

#include <string.h>

/* A geometric op is its windows, or (with none) a flip: one step, whether or not a sample's draw acts. */
static int steps_of(const lt_op_geometry *g) { return g->nwindows ? g->nwindows : 1; }

int lt_image_plan_init(lt_image_plan *plan, const lt_pipeline *p, int c, int h, int w, lt_error *err) {
    memset(plan, 0, sizeof *plan);
    int oc, oh, ow;
    if (lt_pipeline_out_shape(p, c, h, w, &oc, &oh, &ow, err)) return -1;
    if (c > LT_IMAGE_MAX_CHANNELS) return lt_fail(err, "images of %d channels (at most %d)", c, LT_IMAGE_MAX_CHANNELS);
    plan->c = c, plan->src_h = h, plan->src_w = w, plan->h = oh, plan->w = ow;
    plan->normalized_from = -1;
    lt_rng any;
    lt_rng_seed(&any, 0);
    for (int i = 0; i < p->n; i++) {
        const lt_transform_op *op = &p->ops[i];
        if (op->kind == LT_OP_TO_TENSOR) continue;
        if (op->kind == LT_OP_NORMALIZE) {
            if (plan->normalized_from >= 0) return lt_fail(err, "step %d (Normalize): a plan holds one Normalize", i + 1);
            plan->normalized_from = plan->nsteps;
            for (int ch = 0; ch < c; ch++) {
                int k = op->nvalues == 1 ? 0 : ch;
                plan->mean[ch] = op->values[k];
                plan->inv_std[ch] = 1.0f / op->stds[k];  /* lt_img_normalize's */
            }
            continue;
        }
        if (!lt_op_is_geometric(op->kind))
            return lt_fail(err, "step %d (%s) is not a flip, crop, pad or Normalize", i + 1, lt_op_name(op->kind));
        lt_op_geometry g;  /* (its windows' sizes and modes; their offsets are the samples') */
        lt_op_geometry_draw(op, c, h, w, &any, 0, 0, &g);
        if (plan->nsteps + steps_of(&g) > LT_PLAN_MAX_STEPS)
            return lt_fail(err, "step %d (%s): more than %d flips, crops and pads", i + 1, lt_op_name(op->kind),
                           LT_PLAN_MAX_STEPS);
        for (int k = 0; k < g.nwindows; k++) {
            lt_plan_step *st = &plan->step[plan->nsteps++];
            st->kind = LT_PLAN_WINDOW, st->in_h = h, st->in_w = w, st->mode = (int32_t)g.window[k].mode;
            memcpy(st->fill, g.fill, sizeof st->fill);
            h = g.window[k].oh, w = g.window[k].ow;
        }
        if (g.nwindows == 0) {
            lt_plan_step *st = &plan->step[plan->nsteps++];
            st->kind = op->kind == LT_OP_VFLIP ? LT_PLAN_VFLIP : LT_PLAN_HFLIP, st->in_h = h, st->in_w = w;
        }
    }
    return 0;
}

void lt_image_plan_draw(const lt_image_plan *plan, const lt_pipeline *p, int64_t index, int64_t src, uint64_t aug_seed,
                        int64_t epoch, lt_sample_draw *d) {
    memset(d, 0, sizeof *d);
    d->src = src;
    lt_rng rng;
    lt_rng_seed_stream(&rng, aug_seed, (uint64_t)index);  /* lt_load_sample's generator */
    int s = 0;
    for (int i = 0; i < p->n; i++) {
        const lt_transform_op *op = &p->ops[i];
        if (!lt_op_is_geometric(op->kind)) continue;
        const lt_plan_step *st = &plan->step[s];
        lt_op_geometry g;
        lt_op_geometry_draw(op, plan->c, st->in_h, st->in_w, &rng, index, epoch, &g);
        for (int k = 0; k < g.nwindows; k++, s++) d->a[s] = g.window[k].top, d->b[s] = g.window[k].left;
        if (g.nwindows == 0) d->a[s++] = g.hflip || g.vflip;  /* a flip (steps_of) */
    }
}

void lt_image_plan_run(float *out, const lt_image_plan *plan, const lt_sample_draw *draws, int64_t n,
                       const void *pixels) {
    for (int64_t i = 0; i < n; i++)                  /* each sample */
        for (int ch = 0; ch < plan->c; ch++)         /* each channel */
            for (int y = 0; y < plan->h; y++)        /* each row */
                for (int x = 0; x < plan->w; x++)
                    *out++ = lt_image_plan_value(plan, &draws[i], pixels, ch, y, x);
}

void lt_image_plan_remap(lt_image_plan *plan, lt_sample_draw *d, int h, int w, bool hflip, int dy, int dx,
                         lt_pad_mode mode) {
    memset(plan, 0, sizeof *plan);
    memset(d, 0, sizeof *d);
    plan->c = 1, plan->src_h = plan->h = h, plan->src_w = plan->w = w;
    plan->float_source = 1;
    plan->normalized_from = -1;
    plan->nsteps = 1;
    lt_plan_step *st = &plan->step[0];
    st->in_h = h, st->in_w = w;
    if (hflip) {
        st->kind = LT_PLAN_HFLIP;
        d->a[0] = 1;
    } else {
        st->kind = LT_PLAN_WINDOW, st->mode = (int32_t)mode;  /* fill 0 */
        d->a[0] = -dy, d->b[0] = -dx;
    }
}
