// The host API of order_metrics.h for builds without nvcc: callers check
// harsanyi::cuda::device_count() (0 there) and use the CPU functions; this throws if called anyway.
#include <stdexcept>

#include "order_metrics.h"

namespace harsanyi::cuda {

template <class T>
void order_metrics_batch(T*, T*, const T*, std::size_t, int, double, ThresholdReference, bool,
                         OrderRows&, Stream) {
  throw std::runtime_error(
      "order_metrics_batch: this harsanyi was built without CUDA (nvcc was "
      "not found at build time); use the CPU metrics of "
      "interaction_metrics.h");
}

#define HARSANYI_INSTANTIATE(T)                                                    \
  template void order_metrics_batch<T>(T*, T*, const T*, std::size_t, int, double, \
                                       ThresholdReference, bool, OrderRows&, Stream);
HARSANYI_INSTANTIATE(float)
HARSANYI_INSTANTIATE(double)
#undef HARSANYI_INSTANTIATE

}  // namespace harsanyi::cuda
