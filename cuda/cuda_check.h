/// @file cuda_check.h
/// @brief Internal error macros of the CUDA backend: every runtime call and every kernel launch is
/// checked, and a failure throws std::runtime_error naming the call, the CUDA error, file:line and
/// the host. Only for the .cu files of cuda/ (it includes cuda_runtime.h).
#pragma once

#include <cuda_runtime.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

namespace harsanyi::cuda::detail {

/// @brief Throws std::runtime_error describing a failed CUDA call.
/// @param err the error code; @param call the text of the call; @param file,line where it was.
[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* call, const char* file,
                                          int line) {
  char host[256] = "unknown-host";
  if (gethostname(host, sizeof(host)) != 0) host[0] = '\0';
  host[sizeof(host) - 1] = '\0';
  throw std::runtime_error(std::string("CUDA error: ") + call + " failed with " +
                           cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ") at " + file +
                           ":" + std::to_string(line) + " on host " + host);
}

}  // namespace harsanyi::cuda::detail

/// Checks a CUDA runtime call; throws std::runtime_error with call, error, file:line and host.
#define HARSANYI_CUDA_CHECK(call)                                                                \
  do {                                                                                           \
    const cudaError_t harsanyi_cuda_err_ = (call);                                               \
    if (harsanyi_cuda_err_ != cudaSuccess)                                                       \
      ::harsanyi::cuda::detail::throw_cuda_error(harsanyi_cuda_err_, #call, __FILE__, __LINE__); \
  } while (0)

/// Checks the launch just issued (cudaGetLastError); use after every kernel launch.
#define HARSANYI_CUDA_LAUNCH_CHECK()                                                   \
  do {                                                                                 \
    const cudaError_t harsanyi_cuda_err_ = cudaGetLastError();                         \
    if (harsanyi_cuda_err_ != cudaSuccess)                                             \
      ::harsanyi::cuda::detail::throw_cuda_error(                                      \
          harsanyi_cuda_err_, "kernel launch (cudaGetLastError)", __FILE__, __LINE__); \
  } while (0)
