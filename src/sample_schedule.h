/// @file sample_schedule.h
/// @brief How a batch solver spreads its samples over OpenMP threads.
#pragma once

#include <omp.h>

#include <cstddef>

namespace harsanyi {

/// @brief Calls one(s) for s = 0..samples-1: in parallel over samples when there are at least as
/// many samples as threads or a sample is small (2^n < 2^14), else one sample after the other
/// with the threads working inside each fit (the transforms). Results must not depend on which.
template <class F> void for_each_sample(std::size_t samples, std::size_t len, F&& one) {
  const bool across_samples = samples >= static_cast<std::size_t>(omp_get_max_threads()) ||
                              len < (std::size_t{1} << 14);
  if (across_samples) {
#pragma omp parallel for schedule(dynamic, 1)
    for (std::size_t s = 0; s < samples; ++s) one(s);
  } else {
    for (std::size_t s = 0; s < samples; ++s) one(s);  // threads work inside each fit
  }
}

}  // namespace harsanyi
