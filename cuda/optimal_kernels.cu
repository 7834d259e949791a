// The optimal solver on the GPU (placeholder until the kernels land).
#include <stdexcept>

#include "cuda_backend.h"
#include "optimal_solver.h"

namespace harsanyi::cuda {

std::size_t optimal_device_bytes_per_sample(int n, std::size_t element_size) {
  return optimal_bytes_per_sample(n, element_size);
}

template <class T>
void fit_and_or_optimal_batch(const T*, std::size_t, int, const OptimalOptions&, AndOrBatch<T>&,
                              Progress*) {
  throw std::runtime_error("the GPU optimal solver is not built yet; use --device cpu");
}

template void fit_and_or_optimal_batch<float>(const float*, std::size_t, int,
                                              const OptimalOptions&, AndOrBatch<float>&,
                                              Progress*);
template void fit_and_or_optimal_batch<double>(const double*, std::size_t, int,
                                               const OptimalOptions&, AndOrBatch<double>&,
                                               Progress*);

}  // namespace harsanyi::cuda
