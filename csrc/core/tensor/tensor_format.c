/* tostring(tensor): PyTorch's layout (tensor([[...]]), aligned columns, "..." past 1000 elements with
 * three items at each edge) followed by the shape as Torch7 printed it. */
#include "tensor_format.h"

#include "../base/half.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUMMARIZE_OVER 1000
#define EDGE 3
#define LINE_WIDTH 80

typedef struct buf {
    char *s;
    size_t len, cap;
    bool failed;
} buf;

static void put(buf *b, const char *fmt, ...) {
    if (b->failed) return;
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) { b->failed = true; return; }
        if ((size_t)n < b->cap - b->len) { b->len += (size_t)n; return; }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) { b->failed = true; return; }
        b->s = s;
        b->cap = cap;
    }
}

typedef struct style {
    bool summarize, integers, scientific;
    int width;
} style;

static float at(const lt_tensor *t, const int64_t *idx) {
    int64_t off = t->offset;
    for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
    if (lt_dtype_is_half(t->storage->dtype)) return lt_half_to_f32(((const uint16_t *)t->storage->data)[off], t->storage->dtype);
    if (t->storage->dtype == LT_UINT8) return ((const uint8_t *)t->storage->data)[off];
    return ((const float *)t->storage->data)[off];
}

static bool shown(const lt_tensor *t, const style *st, int d, int64_t i) {
    return !st->summarize || t->size[d] <= 2 * EDGE || i < EDGE || i >= t->size[d] - EDGE;
}

/* Calls visit on each element that will be printed. */
static void each_shown(const lt_tensor *t, const style *st, int d, int64_t *idx, void (*visit)(float, void *), void *ctx) {
    for (int64_t i = 0; i < t->size[d]; i++) {
        if (!shown(t, st, d, i)) continue;
        idx[d] = i;
        if (d == t->ndim - 1) visit(at(t, idx), ctx);
        else each_shown(t, st, d + 1, idx, visit, ctx);
    }
}

typedef struct range { double lo, hi; bool all_int, any_finite; } range;

static void widen(float v, void *ctx) {
    range *r = ctx;
    if (!isfinite(v)) return;
    double a = fabs(v);
    if (!r->any_finite) { r->lo = r->hi = a; r->any_finite = true; }
    if (a > r->hi) r->hi = a;
    if (a < r->lo && a > 0) r->lo = a;
    if (r->lo == 0) r->lo = a;
    if (v != floorf(v)) r->all_int = false;
}

static int format_value(char *out, size_t len, float v, const style *st) {
    if (isnan(v)) return snprintf(out, len, "nan");
    if (isinf(v)) return snprintf(out, len, v > 0 ? "inf" : "-inf");
    if (st->scientific) return snprintf(out, len, "%.4e", v);
    if (st->integers) return snprintf(out, len, "%.0f.", v);
    return snprintf(out, len, "%.4f", v);
}

static void measure(float v, void *ctx) {
    style *st = ctx;
    char tmp[64];
    int n = format_value(tmp, sizeof tmp, v, st);
    if (n > st->width) st->width = n;
}

static void print_dim(buf *b, const lt_tensor *t, const style *st, int d, int64_t *idx, int indent) {
    put(b, "[");
    int64_t n = t->size[d];
    int col = indent + 1;
    for (int64_t i = 0; i < n; i++) {
        if (!shown(t, st, d, i)) {
            if (i == EDGE) {
                if (d == t->ndim - 1) { put(b, " ...,"); col += 5; }
                else put(b, "...,\n%*s", indent + 1, "");
            }
            continue;
        }
        idx[d] = i;
        bool last = i == n - 1;
        if (d == t->ndim - 1) {
            char v[64];
            format_value(v, sizeof v, at(t, idx), st);
            if (i > 0 && col + st->width + 2 > LINE_WIDTH) {  /* wrap: the separator's space would trail */
                put(b, "\n%*s", indent + 1, "");
                col = indent + 1;
            } else if (i > 0) {
                put(b, " ");
                col++;
            }
            put(b, "%*s%s", st->width, v, last ? "" : ",");
            col += st->width + 1;
        } else {
            print_dim(b, t, st, d + 1, idx, indent + 1);
            if (!last) {
                put(b, ",");
                for (int k = 0; k < t->ndim - d - 1; k++) put(b, "\n");
                put(b, "%*s", indent + 1, "");
            }
        }
    }
    put(b, "]");
}

char *lt_tensor_format(const lt_tensor *t) {
    buf b = {malloc(256), 0, 256, false};
    if (!b.s) return NULL;
    int64_t numel = lt_numel(t);
    char shape[160];
    lt_shape_str(t, shape, sizeof shape);
    char kind[16] = "";
    if (t->storage->dtype != LT_FLOAT32) snprintf(kind, sizeof kind, "%s ", lt_dtype_name(t->storage->dtype));
    if (numel == 0) {
        put(&b, "tensor([])\n[%sTensor of size %s]", kind, shape);
    } else {
        style st = {numel > SUMMARIZE_OVER, true, false, 1};
        int64_t idx[LT_MAX_DIMS] = {0};
        range r = {0, 0, true, false};
        each_shown(t, &st, 0, idx, widen, &r);
        st.integers = r.all_int;
        st.scientific = r.any_finite && !r.all_int && (r.hi > 1e8 || r.hi / r.lo > 1000.0 || r.lo < 1e-4);
        each_shown(t, &st, 0, idx, measure, &st);
        put(&b, "tensor(");
        print_dim(&b, t, &st, 0, idx, 7);
        put(&b, ")\n[%sTensor of size %s]", kind, shape);
    }
    if (b.failed) { free(b.s); return NULL; }
    return b.s;
}
