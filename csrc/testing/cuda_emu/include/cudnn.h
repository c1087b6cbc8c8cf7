/* cuDNN as the emulated backend sees it: the handle that backend.cu makes, nothing that computes (the
 * convolutions through cuDNN are not emulated: emu_ops.cc serves their tables with the host's). */
#ifndef LTC_EMU_CUDNN_H
#define LTC_EMU_CUDNN_H

#include "cuda_runtime.h"

typedef enum { CUDNN_STATUS_SUCCESS = 0, CUDNN_STATUS_NOT_SUPPORTED = 3000 } cudnnStatus_t;
typedef struct ltc_emu_dnn *cudnnHandle_t;

inline cudnnStatus_t cudnnCreate(cudnnHandle_t *h) { *h = (cudnnHandle_t)h; return CUDNN_STATUS_SUCCESS; }
inline cudnnStatus_t cudnnDestroy(cudnnHandle_t) { return CUDNN_STATUS_SUCCESS; }
inline cudnnStatus_t cudnnSetStream(cudnnHandle_t, cudaStream_t) { return CUDNN_STATUS_SUCCESS; }
inline size_t cudnnGetVersion() { return 0; }
inline const char *cudnnGetErrorString(cudnnStatus_t) { return "cuDNN is not emulated"; }

#endif
