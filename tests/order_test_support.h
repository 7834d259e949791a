/// @file order_test_support.h
/// @brief What the tests of the GPU per-order metrics share: the CPU reference that
/// cuda::order_metrics_batch must equal bitwise.
#pragma once

#include <cstddef>
#include <vector>

#include "interaction_metrics.h"
#include "order_metrics.h"

namespace harsanyi::testing {

/// @brief The CPU metrics of a batch, row by row as src/extraction.cpp and src/study.cpp compute
/// them: with `fold` and OR rows, fold_low_orders (in place on a and o), then the salient
/// threshold and the order_strength rows of AND and of OR. `o` empty: AND only.
template <class T>
cuda::OrderRows cpu_order_rows(std::vector<T>& a, std::vector<T>& o, const std::vector<T>& v,
                               std::size_t samples, int n, double tau_rel, ThresholdReference ref,
                               bool fold) {
  const std::size_t len = std::size_t{1} << n, K = static_cast<std::size_t>(n) + 1;
  const bool with_or = !o.empty();
  cuda::OrderRows out;
  out.threshold.resize(samples);
  out.and_pos.resize(samples * K);
  out.and_neg.resize(samples * K);
  out.and_count.resize(samples * K);
  if (with_or) {
    out.or_pos.resize(samples * K);
    out.or_neg.resize(samples * K);
    out.or_count.resize(samples * K);
  }
  for (std::size_t s = 0; s < samples; ++s) {
    T* as = &a[s * len];
    T* os = with_or ? &o[s * len] : nullptr;
    if (fold && os) fold_low_orders(as, os, n);
    const double tau = salient_threshold(as, static_cast<const T*>(os), &v[s * len], n, tau_rel, ref);
    out.threshold[s] = tau;
    order_strength(as, n, tau, &out.and_pos[s * K], &out.and_neg[s * K], &out.and_count[s * K]);
    if (os)
      order_strength(os, n, tau, &out.or_pos[s * K], &out.or_neg[s * K], &out.or_count[s * K]);
  }
  return out;
}

}  // namespace harsanyi::testing
