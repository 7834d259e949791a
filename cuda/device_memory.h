/// @file device_memory.h
/// @brief Internal host helpers of the CUDA backend's solvers (only for the .cu files of cuda/;
/// it includes cuda_runtime.h): owning device arrays and streams, checked copies, and sizes in
/// words for messages.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "cuda_backend.h"
#include "cuda_check.h"

namespace harsanyi::cuda {

/// A device array of `count` elements (cudaMalloc), freed on destruction.
template <class T> class DeviceArray {
 public:
  explicit DeviceArray(std::size_t count) {
    if (count > 0)
      HARSANYI_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), count * sizeof(T)));
  }
  ~DeviceArray() {
    if (ptr_) cudaFree(ptr_);  // no throw from a destructor
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
};

/// A non-blocking stream of its own, destroyed on destruction.
class OwnStream {
 public:
  OwnStream() { HARSANYI_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~OwnStream() {
    if (stream_) cudaStreamDestroy(stream_);
  }
  OwnStream(const OwnStream&) = delete;
  OwnStream& operator=(const OwnStream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

/// "1.50 GiB"
inline std::string gib(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f GiB", static_cast<double>(bytes) / (1u << 30));
  return text;
}

/// @brief Refuses a batch of a GPU solver (`what`, e.g. "sgd (GPU)") whose `need` bytes of device
/// memory exceed what is free, before anything is allocated: std::runtime_error naming the
/// sizes, the device and the remedy.
inline void refuse_unless_fits(const char* what, std::uint64_t samples, int n,
                               std::uint64_t need) {
  const std::uint64_t free_bytes = device_free_bytes();
  if (need > free_bytes)
    throw std::runtime_error(std::string(what) + ": a batch of " + std::to_string(samples) +
                             " samples at n = " + std::to_string(n) + " needs " + gib(need) +
                             " of device memory but only " + gib(free_bytes) + " is free on " +
                             device_description() + "; use fewer samples per batch (" +
                             gib(need / samples) + " per sample)");
}

/// @brief Queues the checked copy of `count` elements (`kind`: host to device, device to host
/// or device to device); nothing for count 0.
template <class T>
void copy_async(T* dst, const T* src, std::size_t count, cudaMemcpyKind kind,
                cudaStream_t stream) {
  if (count == 0) return;
  HARSANYI_CUDA_CHECK(cudaMemcpyAsync(dst, src, count * sizeof(T), kind, stream));
}

/// @brief Queues the copy of `count` device elements into `dst`, a host vector (any allocator)
/// already sized to hold them; `what` names the caller in the error when it is not.
template <class Vector, class T>
void copy_to_host(const char* what, Vector& dst, const T* src, std::size_t count,
                  cudaStream_t stream) {
  static_assert(sizeof(*dst.data()) == sizeof(T), "element types differ");
  if (count == 0) return;
  if (dst.size() < count) throw std::logic_error(std::string(what) + ": output not sized");
  copy_async(reinterpret_cast<T*>(dst.data()), src, count, cudaMemcpyDeviceToHost, stream);
}

}  // namespace harsanyi::cuda
