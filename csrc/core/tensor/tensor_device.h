/* Tensors across devices (backend.h): moving a tensor between the host and a GPU, the device side of
 * the helpers every front uses (contiguous, convert, fill, copy), and the checks that an operation's
 * tensors are where it computes. Nothing here copies between devices silently: a copy across devices
 * is asked for by name (lt_to_device, lt_copy_across). */
#ifndef LT_TENSOR_DEVICE_H
#define LT_TENSOR_DEVICE_H

#include "tensor.h"

/* out = in on device d: in itself (shared) when it is there already, else a new contiguous tensor of
 * in's sizes and type holding its values. */
int lt_to_device(lt_tensor *out, const lt_tensor *in, lt_device d, lt_error *err);
/* Copies src's values into dst of the same shape and type, on any two devices (dst's layout kept). */
int lt_copy_across(lt_tensor *dst, const lt_tensor *src, lt_error *err);

/* lt_fill's path for a tensor on a GPU (lt_contiguous and lt_convert have theirs in tensor.c). */
int lt_device_fill(lt_tensor *t, float value, lt_error *err);

/* An operation's tensors (NULL entries skipped) must all be on the device of the first one given;
 * that device in *d. "conv2d: weight is on cpu, expected cuda:0 (the device of input)". */
int lt_check_devices(const char *op, const lt_named *ts, int n, lt_device *d, lt_error *err);
/* A host-only function's tensor must be on the host: "expected cpu, got cuda:0 (add computes on
 * the host: call :cpu() first)". */
int lt_require_host(const char *op, const lt_tensor *t, lt_error *err);

#endif
