#include "conv2d_layout.h"

#include "../tensor/tensor_math.h"
#include "nn.h"

int lt_conv2d_resize_output(lt_tensor *out, const lt_conv2d_shape *s, lt_conv2d_layout l, lt_error *err) {
    return l.channels_last ? lt_resize_channels_last(out, s->n, s->cout, s->ho, s->wo, l.dtype, err)
                           : lt_resize_cnhw(out, s->n, s->cout, s->ho, s->wo, err);
}

int lt_conv2d_backward_operands(const lt_conv2d_args *a, const lt_conv2d_shape *s, lt_conv2d_layout l,
                                const lt_tensor *in, const lt_tensor **go, lt_error *err) {
    *go = a->grad_output;
    bool laid_out = l.channels_last ? lt_is_channels_last(*go) : lt_is_cnhw(*go);
    if (!laid_out || lt_dtype_of(*go) != l.dtype) {
        if (lt_conv2d_resize_output(a->dy, s, l, err) || lt_convert(a->dy, *go, err)) return -1;
        *go = a->dy;
    }
    if (!a->grad_input) return 0;
    if (lt_resize_like_typed(a->grad_input, in, lt_dtype_of(in), err)) return -1;
    /* no output element (no image or no output channel): the input's gradient is zero, and the kernels,
       which would compute it, are not called */
    return lt_numel(*go) == 0 && lt_numel(a->grad_input) ? lt_fill(a->grad_input, 0.0f, err) : 0;
}
