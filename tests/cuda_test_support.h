/// @file cuda_test_support.h
/// @brief What the CUDA test files share: the skip without a GPU, and bitwise comparisons of
/// solver outputs (every member of an AndOrBatch, each reported by name).
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "cuda_backend.h"
#include "sgd_solver.h"

/// Skips the test (with the reason) on a machine without a usable GPU.
#define REQUIRE_GPU()                                                                   \
  do {                                                                                  \
    std::string why_;                                                                   \
    if (harsanyi::cuda::device_count(&why_) == 0) GTEST_SKIP() << "no GPU: " << why_; \
  } while (0)

namespace harsanyi::testing {

/// Same size and the same bytes (NaN equal to NaN of the same bits).
template <class V> bool same_bits(const V& a, const V& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0;
}

/// Every output of two fits bitwise equal: I_and, I_or, p, q, loss, trace, bound, iterations.
template <class T>
void expect_same_outputs(const AndOrBatch<T>& a, const AndOrBatch<T>& b) {
  EXPECT_TRUE(same_bits(a.and_, b.and_)) << "I_and";
  EXPECT_TRUE(same_bits(a.or_, b.or_)) << "I_or";
  EXPECT_TRUE(same_bits(a.p, b.p)) << "p";
  EXPECT_TRUE(same_bits(a.q, b.q)) << "q";
  EXPECT_TRUE(same_bits(a.loss, b.loss)) << "loss";
  EXPECT_TRUE(same_bits(a.trace, b.trace)) << "trace";
  EXPECT_TRUE(same_bits(a.bound, b.bound)) << "bound";
  EXPECT_EQ(a.iterations, b.iterations) << "iterations";
}

}  // namespace harsanyi::testing
