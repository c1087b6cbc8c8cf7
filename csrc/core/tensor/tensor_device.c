#include "tensor_device.h"

#include <string.h>

#include "../device/backend.h"
#include "../base/checked.h"

int lt_require_host(const char *op, const lt_tensor *t, lt_error *err) {
    if (!t || lt_device_of(t) == LT_DEVICE_CPU) return 0;
    return lt_fail(err, "expected cpu, got %s (%s computes on the host: call :cpu() first)", lt_device_name(lt_device_of(t)),
                   op);
}

int lt_check_devices(const char *op, const lt_named *ts, int n, lt_device *d, lt_error *err) {
    const char *first = NULL;
    for (int i = 0; i < n; i++) {
        if (!ts[i].t || !ts[i].t->storage) continue;
        lt_device here = lt_device_of(ts[i].t);
        if (!first) {
            first = ts[i].name;
            *d = here;
        } else if (here != *d) {
            return lt_fail(err, "%s: expected %s, got %s for %s (the device of %s; move tensors with :to())", op,
                           lt_device_name(*d), lt_device_name(here), ts[i].name, first);
        }
    }
    if (!first) *d = LT_DEVICE_CPU;
    return 0;
}

int lt_device_fill(lt_tensor *t, float value, lt_error *err) {
    const lt_backend_api *api = lt_backend(lt_device_of(t), err);
    if (!api) return -1;
    if (lt_dtype_of(t) != LT_FLOAT32 || !lt_is_contiguous(t))
        return lt_fail(err, "fill on %s takes a contiguous float32 tensor", lt_device_name(lt_device_of(t)));
    return lt_numel(t) ? api->fill(lt_data(t), lt_numel(t), value, err) : 0;
}

static size_t bytes_of(const lt_tensor *t) { return (size_t)lt_numel(t) * lt_dtype_size(lt_dtype_of(t)); }

/* One contiguous block from one device to another (either may be the host). */
static int copy_block(void *dst, lt_device dd, const void *src, lt_device sd, size_t bytes, lt_error *err) {
    if (bytes == 0) return 0;
    if (dd == LT_DEVICE_CPU && sd == LT_DEVICE_CPU) {
        memcpy(dst, src, bytes);
        return 0;
    }
    const lt_backend_api *api = lt_backend(dd == LT_DEVICE_CPU ? sd : dd, err);
    if (!api) return -1;
    if (dd == LT_DEVICE_CPU)
        return lt_device_sync_point(sd, "copying a tensor to the host", err) || api->to_host(dst, src, bytes, err) ? -1
                                                                                                                : 0;
    if (sd == LT_DEVICE_CPU)
        return lt_refuse_in_capture(dd, "copying a host tensor to the GPU",
                                    "a launch would read the host's memory as it is then: copy into the graph's "
                                    "input on the GPU before each replay",
                                    err) || api->to_device(dst, src, bytes, err)
                   ? -1
                   : 0;
    return api->on_device(dst, src, bytes, err);
}

int lt_copy_across(lt_tensor *dst, const lt_tensor *src, lt_error *err) {
    char a[160], b[160];
    if (!lt_same_shape(dst, src) || lt_dtype_of(dst) != lt_dtype_of(src))
        return lt_fail(err, "cannot copy a %s %s tensor into a %s %s one", lt_shape_str(src, a, sizeof a),
                       lt_dtype_name(lt_dtype_of(src)), lt_shape_str(dst, b, sizeof b), lt_dtype_name(lt_dtype_of(dst)));
    /* Blocks move contiguous; each side is laid out on its own device. */
    lt_tensor s = {0}, d = {0};
    int rc = -1;
    lt_device sd = lt_device_of(src), dd = lt_device_of(dst);
    if (lt_contiguous(&s, src, err)) goto done;
    if (lt_is_contiguous(dst)) lt_tensor_share(&d, dst);
    else if (lt_tensor_new_on(&d, dst->ndim, dst->size, lt_dtype_of(dst), dd, err)) goto done;
    if (copy_block(lt_data_ptr(&d), dd, lt_data_ptr(&s), sd, bytes_of(&s), err)) goto done;
    rc = d.storage == dst->storage ? 0 : lt_convert(dst, &d, err);
done:
    lt_tensor_release(&s);
    lt_tensor_release(&d);
    return rc;
}

int lt_to_device(lt_tensor *out, const lt_tensor *in, lt_device d, lt_error *err) {
    if (lt_device_of(in) == d) {
        lt_tensor_share(out, in);
        return 0;
    }
    lt_tensor tmp = {0};
    if (lt_tensor_new_on(&tmp, in->ndim, in->size, lt_dtype_of(in), d, err) || lt_copy_across(&tmp, in, err)) {
        lt_tensor_release(&tmp);
        return -1;
    }
    lt_tensor_release(out);
    *out = tmp;
    return 0;
}
