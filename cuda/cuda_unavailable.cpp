// The host API of cuda_backend.h and order_metrics.h for builds without nvcc: no device is ever
// usable, so callers take the CPU path; the device functions throw if called anyway.
#include <stdexcept>

#include "cuda_backend.h"
#include "order_metrics.h"

namespace harsanyi::cuda {
namespace {
[[noreturn]] void unavailable() {
  throw std::runtime_error("this harsanyi was built without CUDA (nvcc was not found at build "
                           "time); rebuild on a machine with the CUDA toolkit");
}
}  // namespace

int device_count(std::string* reason) {
  if (reason) *reason = "built without CUDA";
  return 0;
}
std::string device_description() { return ""; }
std::size_t device_free_bytes() { return 0; }
DeviceBuffer::DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
  if (bytes > 0) unavailable();
}
DeviceBuffer::~DeviceBuffer() = default;
DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : ptr_(other.ptr_), bytes_(other.bytes_) {
  other.ptr_ = nullptr;
  other.bytes_ = 0;
}
DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  ptr_ = other.ptr_;
  bytes_ = other.bytes_;
  other.ptr_ = nullptr;
  other.bytes_ = 0;
  return *this;
}
bool is_device_pointer(const void*) { return false; }
void copy_bytes(void*, const void*, std::size_t bytes) {
  if (bytes > 0) unavailable();
}
void output_values(const float*, std::size_t, int, int, bool, double*, Stream) { unavailable(); }
void subtract_first(double*, std::size_t, std::uint64_t, Stream) { unavailable(); }
void synchronize(Stream) { unavailable(); }
std::uint64_t first_nonfinite(const double*, std::uint64_t, Stream) { unavailable(); }
std::size_t sgd_device_bytes_per_sample(int, std::size_t) { unavailable(); }
std::size_t optimal_device_bytes_per_sample(int, std::size_t) { unavailable(); }
int lattice_pass_count(LatticePasses, int, std::size_t) { unavailable(); }

template <class T>
void lattice_transform(LatticeOp, T*, int, std::size_t, Stream, LatticePasses) {
  unavailable();
}
template <class T> void or_transform(T*, int, std::size_t, Stream) { unavailable(); }
template <class T> void or_transform_transpose(T*, int, std::size_t, Stream) { unavailable(); }
template <class T>
void fit_and_or_sgd_batch(const T*, std::size_t, int, const SgdOptions&, AndOrBatch<T>&,
                          Progress*, SgdKernel, const DeviceEpilogue<T>*) {
  unavailable();
}
template <class T>
void fit_and_or_optimal_batch(const T*, std::size_t, int, const OptimalOptions&, AndOrBatch<T>&,
                              Progress*, Launch, const DeviceEpilogue<T>*, OptimalTimes*) {
  unavailable();
}
template <class T>
void order_metrics_batch(T*, T*, const T*, std::size_t, int, double, ThresholdReference, bool,
                         OrderRows&, Stream) {
  unavailable();
}

#define HARSANYI_INSTANTIATE(T)                                                             \
  template void lattice_transform<T>(LatticeOp, T*, int, std::size_t, Stream, LatticePasses); \
  template void or_transform<T>(T*, int, std::size_t, Stream);                              \
  template void or_transform_transpose<T>(T*, int, std::size_t, Stream);                    \
  template void fit_and_or_sgd_batch<T>(const T*, std::size_t, int, const SgdOptions&,      \
                                        AndOrBatch<T>&, Progress*, SgdKernel,          \
                                        const DeviceEpilogue<T>*);                     \
  template void fit_and_or_optimal_batch<T>(const T*, std::size_t, int,                     \
                                            const OptimalOptions&, AndOrBatch<T>&, Progress*,  \
                                            Launch, const DeviceEpilogue<T>*, OptimalTimes*); \
  template void order_metrics_batch<T>(T*, T*, const T*, std::size_t, int, double,           \
                                       ThresholdReference, bool, OrderRows&, Stream);
HARSANYI_INSTANTIATE(float)
HARSANYI_INSTANTIATE(double)
#undef HARSANYI_INSTANTIATE

}  // namespace harsanyi::cuda
