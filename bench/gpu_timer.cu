// Bench-only GPU helpers (see gpu_timer.h): CUDA events, buffers, copies, the dense ±1-matrix
// cuBLAS GEMM baseline and the device description. No LibTorch here.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "cuda_check.h"
#include "gpu_timer.h"

namespace harsanyi::bench::gpu {
namespace {

#define BENCH_CUBLAS_CHECK(call)                                                              \
  do {                                                                                        \
    const cublasStatus_t st_ = (call);                                                        \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                         \
      throw std::runtime_error(std::string("cuBLAS error: ") + #call + " failed with " +      \
                               cublasGetStatusName(st_) + " (" + cublasGetStatusString(st_) + \
                               ") at " + __FILE__ + ":" + std::to_string(__LINE__));          \
  } while (0)

cudaStream_t as_stream(cuda::Stream s) {
  return reinterpret_cast<cudaStream_t>(s);
}

// M[S][T] = (-1)^{|S|-|T|} if T ⊆ S else 0, column-major: element (row S, column T) at T·2^n + S.
template <class T>
__global__ void dense_moebius_kernel(T* __restrict__ m, int n) {
  const std::uint64_t len = std::uint64_t{1} << n, total = len * len;
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t k = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       k < total; k += stride) {
    const std::uint64_t s = k & (len - 1), t = k >> n;
    T v = T(0);
    if ((t & ~s) == 0) v = (__popcll(s ^ t) & 1) ? T(-1) : T(1);
    m[k] = v;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

EventTimer::EventTimer(cuda::Stream stream) : stream_(stream) {
  cudaEvent_t a = nullptr, b = nullptr;
  HARSANYI_CUDA_CHECK(cudaEventCreate(&a));
  const cudaError_t err = cudaEventCreate(&b);
  if (err != cudaSuccess) {
    cudaEventDestroy(a);
    HARSANYI_CUDA_CHECK(err);
  }
  start_ = a;
  stop_ = b;
}

EventTimer::~EventTimer() {
  cudaEventDestroy(static_cast<cudaEvent_t>(start_));
  cudaEventDestroy(static_cast<cudaEvent_t>(stop_));
}

void EventTimer::start() {
  HARSANYI_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(start_), as_stream(stream_)));
}

void EventTimer::stop(int calls) {
  HARSANYI_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(stop_), as_stream(stream_)));
  HARSANYI_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(stop_)));
  HARSANYI_CUDA_CHECK(cudaGetLastError());  // a failed kernel between the events
  float ms = 0.0f;
  HARSANYI_CUDA_CHECK(
      cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start_), static_cast<cudaEvent_t>(stop_)));
  times_.push_back(1e-3 * static_cast<double>(ms) / std::max(1, calls));
}

Stats stats_after(const std::vector<double>& times, std::size_t skip) {
  Stats st;
  if (times.size() <= skip) return st;
  std::vector<double> v(times.begin() + static_cast<std::ptrdiff_t>(skip), times.end());
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size();
  st.count = m;
  st.median = m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
  st.min = v.front();
  st.max = v.back();
  return st;
}

StreamOwner::StreamOwner() {
  cudaStream_t s = nullptr;
  HARSANYI_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  stream_ = s;
}
StreamOwner::~StreamOwner() {
  cudaStreamDestroy(as_stream(stream_));
}

void copy_d2d(void* dst, const void* src, std::size_t bytes, cuda::Stream stream) {
  HARSANYI_CUDA_CHECK(
      cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, as_stream(stream)));
}

void fill_bytes(void* dst, int byte, std::size_t bytes, cuda::Stream stream) {
  HARSANYI_CUDA_CHECK(cudaMemsetAsync(dst, byte, bytes, as_stream(stream)));
}

// The benchmarks' streams are non-blocking: they do not order with the legacy default stream that
// cudaMemcpy uses, and a pageable host-to-device cudaMemcpy may return before its DMA is done.
// Both copies therefore wait for the whole device, before and after.
void upload(void* dst, const void* src, std::size_t bytes) {
  HARSANYI_CUDA_CHECK(cudaDeviceSynchronize());
  HARSANYI_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
  HARSANYI_CUDA_CHECK(cudaDeviceSynchronize());
}

void download(void* dst, const void* src, std::size_t bytes) {
  HARSANYI_CUDA_CHECK(cudaDeviceSynchronize());
  HARSANYI_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

void synchronize(cuda::Stream stream) {
  HARSANYI_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream)));
  HARSANYI_CUDA_CHECK(cudaGetLastError());
}

// ---------------------------------------------------------------------------------------------

template <class T>
DenseMoebius<T>::DenseMoebius(int n, cuda::Stream stream) : n_(n), stream_(stream) {
  if (n < 0 || n > 15) throw std::invalid_argument("DenseMoebius: n must be in [0, 15]");
  cublasHandle_t h = nullptr;
  BENCH_CUBLAS_CHECK(cublasCreate(&h));
  handle_ = h;
  const cudaError_t err = cudaMalloc(reinterpret_cast<void**>(&matrix_), matrix_bytes(n));
  if (err != cudaSuccess) {
    cublasDestroy(h);
    HARSANYI_CUDA_CHECK(err);
  }
  BENCH_CUBLAS_CHECK(cublasSetStream(h, as_stream(stream)));
  const std::uint64_t total = std::uint64_t{1} << (2 * n);
  const unsigned blocks =
      static_cast<unsigned>(std::min<std::uint64_t>((total + 255) / 256, 65536));
  dense_moebius_kernel<T><<<blocks, 256, 0, as_stream(stream)>>>(matrix_, n);
  HARSANYI_CUDA_LAUNCH_CHECK();
  synchronize(stream);
}

template <class T>
DenseMoebius<T>::~DenseMoebius() {
  cudaFree(matrix_);
  cublasDestroy(static_cast<cublasHandle_t>(handle_));
}

template <class T>
void DenseMoebius<T>::apply(const T* d_in, T* d_out, std::size_t samples) {
  // Rows of the batch are the columns of a column-major 2^n × samples matrix: out = M · in.
  const int len = 1 << n_;
  const int cols = static_cast<int>(samples);
  if (static_cast<std::size_t>(cols) != samples) throw std::invalid_argument("DenseMoebius: batch");
  const T one = 1, zero = 0;
  auto h = static_cast<cublasHandle_t>(handle_);
  if constexpr (sizeof(T) == 4)
    BENCH_CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, len, cols, len, &one, matrix_, len,
                                   d_in, len, &zero, d_out, len));
  else
    BENCH_CUBLAS_CHECK(cublasDgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, len, cols, len, &one, matrix_, len,
                                   d_in, len, &zero, d_out, len));
}

template class DenseMoebius<float>;
template class DenseMoebius<double>;

// ---------------------------------------------------------------------------------------------

std::string device_line() {
  if (cuda::device_count() == 0) return "";
  int dev = 0;
  HARSANYI_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp p{};
  HARSANYI_CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
  int runtime = 0, driver = 0, cublas = 0, sm_clock = 0, mem_clock = 0;
  HARSANYI_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  HARSANYI_CUDA_CHECK(cudaDriverGetVersion(&driver));
  HARSANYI_CUDA_CHECK(cudaDeviceGetAttribute(&sm_clock, cudaDevAttrClockRate, dev));
  HARSANYI_CUDA_CHECK(cudaDeviceGetAttribute(&mem_clock, cudaDevAttrMemoryClockRate, dev));
  cublasHandle_t h = nullptr;
  BENCH_CUBLAS_CHECK(cublasCreate(&h));
  const cublasStatus_t st = cublasGetVersion(h, &cublas);
  cublasDestroy(h);
  BENCH_CUBLAS_CHECK(st);
  char text[512];
  std::snprintf(text, sizeof text,
                "%s, %.1f GiB, %d SMs, sm_%d%d, SM clock %d MHz, memory clock %d MHz x %d bit, "
                "L2 %d MiB; CUDA runtime %d.%d, driver %d.%d, cuBLAS %d",
                p.name, static_cast<double>(p.totalGlobalMem) / (1 << 30), p.multiProcessorCount,
                p.major, p.minor, sm_clock / 1000, mem_clock / 1000, p.memoryBusWidth,
                p.l2CacheSize >> 20, runtime / 1000, runtime % 1000 / 10, driver / 1000,
                driver % 1000 / 10, cublas);
  return text;
}

double peak_bandwidth_gbs() {
  if (cuda::device_count() == 0) return 0.0;
  int dev = 0, mem_clock = 0;
  HARSANYI_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp p{};
  HARSANYI_CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
  HARSANYI_CUDA_CHECK(cudaDeviceGetAttribute(&mem_clock, cudaDevAttrMemoryClockRate, dev));
  // kHz × bus bytes × 2 (double data rate)
  return 2.0 * mem_clock * 1e3 * (p.memoryBusWidth / 8.0) / 1e9;
}

}  // namespace harsanyi::bench::gpu
