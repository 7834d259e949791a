// The masked forward's device side (see cuda_backend.h): v from the logits, v(∅) subtracted,
// the finiteness check; and device buffers and copies for host code without CUDA headers.
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "abs_sums.cuh"
#include "cuda_backend.h"
#include "cuda_check.h"

namespace harsanyi::cuda {
namespace {

constexpr unsigned kThreads = 256;

unsigned blocks_for(std::uint64_t work) {
  const std::uint64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::min<std::uint64_t>(blocks, 65535u * 8u));
}

// harsanyi::output_value (src/network_common.cpp) with the same operations in the same order.
__global__ void output_values_kernel(const float* __restrict__ logits, std::uint64_t rows,
                                     int classes, int label, bool log_odds,
                                     double* __restrict__ v) {
  for (std::uint64_t r = global_thread(); r < rows; r += grid_threads()) {
    const float* l = logits + r * static_cast<std::uint64_t>(classes);
    if (!log_odds) {
      v[r] = static_cast<double>(l[label]);
      continue;
    }
    double m = static_cast<double>(l[0]);
    for (int j = 1; j < classes; ++j) {
      const double x = static_cast<double>(l[j]);
      m = m < x ? x : m;  // std::max(m, x)
    }
    double sum = 0.0;
    for (int j = 0; j < classes; ++j) sum += exp(static_cast<double>(l[j]) - m);
    const double p = exp(static_cast<double>(l[label]) - m) / sum;
    v[r] = log(p / (1.0 - p + 1e-7) + 1e-7);
  }
}

// Elements 1.. of every row minus the row's element 0 (which no thread writes here).
__global__ void subtract_first_rest_kernel(double* __restrict__ x, std::uint64_t rows,
                                           std::uint64_t len) {
  const std::uint64_t total = rows * len;
  for (std::uint64_t i = global_thread(); i < total; i += grid_threads()) {
    const std::uint64_t s = i % len;
    if (s != 0) x[i] -= x[i - s];
  }
}
// Then element 0 of every row: v0 − v0, as the host loop does.
__global__ void subtract_first_head_kernel(double* __restrict__ x, std::uint64_t rows,
                                           std::uint64_t len) {
  for (std::uint64_t r = global_thread(); r < rows; r += grid_threads()) x[r * len] -= x[r * len];
}

__global__ void first_nonfinite_kernel(const double* __restrict__ x, std::uint64_t count,
                                       unsigned long long* __restrict__ first) {
  for (std::uint64_t i = global_thread(); i < count; i += grid_threads())
    if (!isfinite(x[i])) atomicMin(first, static_cast<unsigned long long>(i));
}

}  // namespace

DeviceBuffer::DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
  if (bytes > 0) HARSANYI_CUDA_CHECK(cudaMalloc(&ptr_, bytes));
}
DeviceBuffer::~DeviceBuffer() {
  if (ptr_) cudaFree(ptr_);  // no throw from a destructor
}
DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (ptr_) cudaFree(ptr_);
    ptr_ = std::exchange(other.ptr_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

bool is_device_pointer(const void* p) {
  if (p == nullptr) return false;
  cudaPointerAttributes attr{};
  const cudaError_t err = cudaPointerGetAttributes(&attr, p);
  if (err == cudaErrorInvalidValue) {  // an unregistered host pointer on runtimes before 11
    (void)cudaGetLastError();
    return false;
  }
  HARSANYI_CUDA_CHECK(err);
  return attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged;
}

void copy_bytes(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  HARSANYI_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
}

void output_values(const float* d_logits, std::size_t rows, int classes, int label,
                   bool log_odds, double* d_v, Stream stream) {
  if (rows == 0) return;
  if (classes < 1 || label < 0 || label >= classes)
    throw std::invalid_argument("output_values: label " + std::to_string(label) +
                                " outside the " + std::to_string(classes) + " classes");
  output_values_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(d_logits, rows, classes, label,
                                                                  log_odds, d_v);
  HARSANYI_CUDA_LAUNCH_CHECK();
}

void subtract_first(double* d_rows, std::size_t rows, std::uint64_t len, Stream stream) {
  if (rows == 0 || len == 0) return;
  subtract_first_rest_kernel<<<blocks_for(rows * len), kThreads, 0, stream>>>(d_rows, rows, len);
  HARSANYI_CUDA_LAUNCH_CHECK();
  subtract_first_head_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(d_rows, rows, len);
  HARSANYI_CUDA_LAUNCH_CHECK();
}

void synchronize(Stream stream) { HARSANYI_CUDA_CHECK(cudaStreamSynchronize(stream)); }

std::uint64_t first_nonfinite(const double* d, std::uint64_t count, Stream stream) {
  if (count == 0) return 0;
  // Stream-ordered allocation: a cudaFree would wait for the whole device, e.g. for a solver
  // running on another thread while this thread checks the next epoch's values.
  unsigned long long* f = nullptr;
  HARSANYI_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&f), sizeof(*f), stream));
  const unsigned long long none = count;
  unsigned long long result = none;
  HARSANYI_CUDA_CHECK(cudaMemcpyAsync(f, &none, sizeof(none), cudaMemcpyHostToDevice, stream));
  first_nonfinite_kernel<<<blocks_for(count), kThreads, 0, stream>>>(d, count, f);
  const cudaError_t launch = cudaGetLastError();
  if (launch == cudaSuccess)
    HARSANYI_CUDA_CHECK(
        cudaMemcpyAsync(&result, f, sizeof(result), cudaMemcpyDeviceToHost, stream));
  HARSANYI_CUDA_CHECK(cudaFreeAsync(f, stream));
  HARSANYI_CUDA_CHECK(launch);
  HARSANYI_CUDA_CHECK(cudaStreamSynchronize(stream));
  return result;
}

}  // namespace harsanyi::cuda
