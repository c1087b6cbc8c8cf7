/* The softmax that the losses share (softmax.cu). */
#ifndef LTC_SOFTMAX_CUH
#define LTC_SOFTMAX_CUH

#include "common.cuh"

namespace ltc {

/* out = (log-)softmax of in along s.n, on the backend's stream. */
int softmax_run(lt_error *err, float *out, const float *in, lt_softmax_shape s);

}  // namespace ltc

#endif
