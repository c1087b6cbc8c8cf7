/* How the element functions of the activations (relu_math.h, gelu_math.h) are declared: static inline
 * for the host's kernels, and __host__ __device__ as well where nvcc compiles them, so that the CUDA
 * module's kernels (csrc/cuda/activation.cu) compute the same functions from the same text. */
#ifndef LT_ELEMENT_FN_H
#define LT_ELEMENT_FN_H

#ifdef __CUDACC__
#define LT_ELEMENT_FN __host__ __device__ static inline
#define LT_RINTF rintf
#else
#define LT_ELEMENT_FN static inline
#define LT_RINTF __builtin_rintf
#endif

#endif
