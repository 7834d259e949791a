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
#include <type_traits>

#include "cuda_backend.h"
#include "cuda_check.h"
#include "sgd_solver.h"

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

/// @brief Sizes a GPU fit's host outputs: loss and trace always; I_and, I_or, p and q only
/// where the epilogue (none: all) has them copied back, the others emptied (never zero-filled
/// for nothing).
template <class T>
void size_outputs(AndOrBatch<T>& out, std::size_t samples, int n, int trace_len,
                  const DeviceEpilogue<T>* epilogue) {
  const std::size_t total = samples << n;
  const auto size = [total](auto& vec, bool keep) {
    if (keep)
      vec.assign(total, 0);
    else
      std::decay_t<decltype(vec)>().swap(vec);
  };
  const bool interactions = !epilogue || epilogue->copy_interactions;
  const bool pq = !epilogue || epilogue->copy_pq;
  size(out.and_, interactions);
  size(out.or_, interactions);
  size(out.p, pq);
  size(out.q, pq);
  out.loss.assign(samples, 0.0);
  out.trace.assign(samples * static_cast<std::size_t>(trace_len), 0.0);
}

/// @brief The end of a GPU fit: runs the epilogue's hook on the device rows (if any), then
/// queues the copies of I_and, I_or, p and q that the epilogue asks for (all without one) into
/// `out`, sized by size_outputs. Loss and trace are the caller's.
template <class T>
void finish_fit(const char* what, const DeviceEpilogue<T>* epilogue, T* d_and, T* d_or,
                const T* d_p, const T* d_q, const T* d_v, std::uint64_t total, AndOrBatch<T>& out,
                cudaStream_t stream) {
  if (epilogue && epilogue->on_device) epilogue->on_device(d_and, d_or, d_v, stream);
  if (!epilogue || epilogue->copy_interactions) {
    copy_to_host(what, out.and_, d_and, total, stream);
    copy_to_host(what, out.or_, d_or, total, stream);
  }
  if (!epilogue || epilogue->copy_pq) {
    copy_to_host(what, out.p, d_p, total, stream);
    copy_to_host(what, out.q, d_q, total, stream);
  }
}

}  // namespace harsanyi::cuda
