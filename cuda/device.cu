// Device queries of the CUDA backend (see cuda_backend.h).
#include <cstdio>
#include <string>

#include "cuda_backend.h"
#include "cuda_check.h"

namespace harsanyi::cuda {

int device_count(std::string* reason) {
  // Without a driver or a device the call fails and leaves `count` untouched: start from 0.
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // clear the (non-sticky) error so later calls start clean
    if (reason)
      *reason = std::string("no usable CUDA device: cudaGetDeviceCount returned ") +
                cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
    return 0;
  }
  if (count <= 0) {
    if (reason) *reason = "no CUDA device present";
    return 0;
  }
  return count;
}

std::string device_description() {
  if (device_count() == 0) return "";
  cudaDeviceProp prop{};
  HARSANYI_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  char text[320];
  std::snprintf(text, sizeof(text), "%s, %.1f GiB", prop.name,
                static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
  return text;
}

std::size_t device_free_bytes() {
  std::size_t free_bytes = 0, total_bytes = 0;
  HARSANYI_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return free_bytes;
}

}  // namespace harsanyi::cuda
