/// @file gpu_timer.h
/// @brief Bench-only GPU helpers for the gpu_*_perf binaries: a CUDA-event timer, device buffers,
/// the device-to-device copy and the dense ±1-matrix cuBLAS GEMM baseline (DESIGN §2), and the
/// device description for the preamble. Pure C++ header (no CUDA headers): the CUDA side lives in
/// gpu_timer.cu.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "cuda_backend.h"  // harsanyi::cuda::Stream

namespace harsanyi::bench::gpu {

/// @brief Times work enqueued on a stream with a pair of CUDA events; keeps every measurement.
///
/// start() records the start event, stop(calls) records the stop event, waits for it and stores
/// the elapsed time divided by `calls` (seconds per call). The driver's steady_clock measures host
/// time (launch + synchronisation); this measures the device time of the work itself.
class EventTimer {
 public:
  /// @brief Creates the two events for work on `stream`.
  explicit EventTimer(cuda::Stream stream);
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  /// @brief Records the start event on the stream.
  void start();
  /// @brief Records the stop event, waits for it, stores (stop - start) / calls in seconds.
  void stop(int calls);
  /// @brief Every stored measurement, in order (warm-up runs first).
  const std::vector<double>& times() const { return times_; }

 private:
  cuda::Stream stream_;
  void* start_ = nullptr;  // cudaEvent_t
  void* stop_ = nullptr;
  std::vector<double> times_;
};

/// @brief Median, min and max of `times` after dropping the first `skip` (warm-up) entries.
struct Stats {
  double median = 0, min = 0, max = 0;
  std::size_t count = 0;
  /// (max - min) / median, in percent.
  double spread_pct() const { return median > 0 ? 100.0 * (max - min) / median : 0.0; }
};
Stats stats_after(const std::vector<double>& times, std::size_t skip);

/// A device allocation freed on destruction: the backend's (cuda_backend.h).
using DeviceBuffer = cuda::DeviceBuffer;

/// @brief A non-blocking CUDA stream, destroyed on destruction.
class StreamOwner {
 public:
  StreamOwner();
  ~StreamOwner();
  StreamOwner(const StreamOwner&) = delete;
  StreamOwner& operator=(const StreamOwner&) = delete;
  cuda::Stream get() const { return stream_; }

 private:
  cuda::Stream stream_ = nullptr;
};

/// @brief Asynchronous device-to-device copy of `bytes` bytes on `stream` (cudaMemcpyAsync).
void copy_d2d(void* dst, const void* src, std::size_t bytes, cuda::Stream stream);
/// @brief Asynchronous cudaMemsetAsync of `bytes` bytes to `byte` (0xFF: every float/double NaN).
void fill_bytes(void* dst, int byte, std::size_t bytes, cuda::Stream stream);
/// @brief Host-to-device copy, complete on return (waits for the device before and after).
void upload(void* dst, const void* src, std::size_t bytes);
/// @brief Device-to-host copy after all earlier device work (waits for the device first).
void download(void* dst, const void* src, std::size_t bytes);
/// @brief Waits for the stream and checks for errors of earlier launches.
void synchronize(cuda::Stream stream);

/// @brief The dense formulation of the Möbius transform that the lab's code uses: out = M · in
/// for `samples` rows of 2^n elements, M[S][T] = (-1)^{|S|-|T|} if T ⊆ S else 0, one cuBLAS GEMM
/// (sgemm / dgemm, default math mode: no TF32, as PyTorch's default for float32 matmul).
/// Holds the cuBLAS handle and the 2^n × 2^n matrix (4^n elements) on the device.
template <class T>
class DenseMoebius {
 public:
  /// @brief Builds M on the device for rows of 2^n elements; work goes to `stream`.
  DenseMoebius(int n, cuda::Stream stream);
  ~DenseMoebius();
  DenseMoebius(const DenseMoebius&) = delete;
  DenseMoebius& operator=(const DenseMoebius&) = delete;
  /// @brief out[s·2^n + S] = Σ_T M[S][T]·in[s·2^n + T] (out must not overlap in).
  void apply(const T* d_in, T* d_out, std::size_t samples);
  /// @brief Device bytes of the matrix for rows of 2^n elements.
  static std::size_t matrix_bytes(int n) { return (std::size_t{1} << (2 * n)) * sizeof(T); }

 private:
  int n_;
  cuda::Stream stream_;
  void* handle_ = nullptr;  // cublasHandle_t
  T* matrix_ = nullptr;
};

/// @brief One line about device 0 for the preamble: name, memory, SMs, compute capability, clocks
/// and the CUDA runtime / driver / cuBLAS versions; "" without a device.
std::string device_line();
/// @brief Peak DRAM bandwidth of device 0 from its memory clock and bus width (GB/s), 0 if unknown.
double peak_bandwidth_gbs();

}  // namespace harsanyi::bench::gpu
