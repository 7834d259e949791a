/// @file host_device.h
/// @brief HARSANYI_HD marks small inline functions compiled for both the host and, under nvcc,
/// the device, so CPU code, CUDA kernels and CPU tests of the kernels share one definition.
#pragma once

#if defined(__CUDACC__)
#define HARSANYI_HD __host__ __device__ __forceinline__
#else
#define HARSANYI_HD inline
#endif
