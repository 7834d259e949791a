/// @file order_test_support.h
/// @brief What the tests of the GPU per-order metrics share: the bitwise comparison of two
/// OrderRows (src/interaction_metrics.h), every member reported by name.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "interaction_metrics.h"

namespace harsanyi::testing {

/// Same size and the same bytes (NaN equal to NaN of the same bits).
template <class V> bool same_row_bits(const V& a, const V& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0;
}

/// Every row of `got` bitwise equal to `want`'s; `what` names the case in the failures.
inline void expect_same_rows(const OrderRows& got, const OrderRows& want,
                             const std::string& what = "") {
  EXPECT_TRUE(same_row_bits(got.threshold, want.threshold)) << "threshold, " << what;
  EXPECT_TRUE(same_row_bits(got.and_pos, want.and_pos)) << "and_pos, " << what;
  EXPECT_TRUE(same_row_bits(got.and_neg, want.and_neg)) << "and_neg, " << what;
  EXPECT_EQ(got.and_count, want.and_count) << "and_count, " << what;
  EXPECT_TRUE(same_row_bits(got.or_pos, want.or_pos)) << "or_pos, " << what;
  EXPECT_TRUE(same_row_bits(got.or_neg, want.or_neg)) << "or_neg, " << what;
  EXPECT_EQ(got.or_count, want.or_count) << "or_count, " << what;
}

/// The data pointer of a row array, null when it is empty (an absent OR array).
template <class T> T* data_or_null(std::vector<T>& x) { return x.empty() ? nullptr : x.data(); }

}  // namespace harsanyi::testing
