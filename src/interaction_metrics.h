/// @file interaction_metrics.h
/// @brief Metrics of DESIGN §2.2 on the interactions of one sample: salient threshold, per-order
/// strength and counts, sparsity, the order-≤1 folding of OR into AND, Shapley values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace harsanyi {

/// What the salient threshold τ is relative to.
enum class ThresholdReference {
  MaxInteraction,  ///< τ = tau_rel · max_S max(|I_and(S)|, |I_or(S)|)   (default)
  ValueRange,      ///< τ = tau_rel · |v(N) − v(∅)|
};
ThresholdReference parse_threshold_reference(const std::string& text);
const char* to_string(ThresholdReference ref);

/// @brief Salient threshold of one sample. `or_` may be nullptr (AND-only).
/// @param v the sample's values (used by ThresholdReference::ValueRange)
template <class T>
double salient_threshold(const T* and_, const T* or_, const T* v, int n, double tau_rel,
                         ThresholdReference ref);

/// @brief Per-order sums A_k^+ = Σ_{|S|=k, |I|>τ, I>0} I(S), A_k^- = Σ_{..., I<0} |I(S)| and the
/// salient counts, k = 0..n, for one interaction vector.
///
/// The order of the additions is part of the contract: the sums are bitwise the same on the CPU
/// and on the GPU (cuda/order_metrics.h), whatever the thread count or launch shape.
///  - Contributions: with x = double(I(S)), S is salient iff |x| > τ (never for NaN). A salient S
///    with x > 0 contributes c_S = x to A^+ of order popcount(S); any other salient S contributes
///    c_S = |x| to A^- of that order (−x for x < 0; +0.0 for a salient zero, possible only with
///    τ < 0). count[k] is the number of salient S of order k.
///  - Tree: the sums are those of the perfect binary tree over the subset indices [0, 2^n). The
///    leaf S holds, per order k and sign, c_S where S contributes and 0.0 elsewhere; the node over
///    [b, b + 2^l) (b a multiple of 2^l, l >= 1) holds, per order and sign, the value of its left
///    half [b, b + 2^(l-1)) plus the value of its right half (one addition; it is commutative,
///    so only the tree's shape matters). A_k^± are the root's values.
///  - Empty bins: every c_S is >= +0.0 (never −0.0, never NaN), so is every partial sum, and
///    adding 0.0 to one is exact. An implementation may therefore skip the additions of bins that
///    are empty by construction and still gets the same bits: the node at level l with base b has
///    nonzero bins only at orders popcount(b) + 0..l, and its right child's orders are its left
///    child's shifted by one (the right base has one more bit set).
/// Pairwise summation is also more accurate than a sequential sum: the rounding error of A_k^± is
/// at most about n·2^-53 times the sum (O(log 2^n) roundings per term) instead of O(2^n).
/// O(2^n) work, O(n^2) memory.
template <class T>
void order_strength(const T* interactions, int n, double tau, double* pos, double* neg,
                    std::int32_t* count);

/// The per-sample metric rows of a batch, K = n + 1 entries per row (order k at s·K + k).
struct OrderRows {
  std::vector<double> threshold;         ///< [samples] τ of each sample
  std::vector<double> and_pos, and_neg;  ///< [samples·K] A_k^+, A_k^- of I_and
  std::vector<std::int32_t> and_count;   ///< [samples·K] salient counts of I_and
  std::vector<double> or_pos, or_neg;    ///< [samples·K] of I_or (empty: AND only)
  std::vector<std::int32_t> or_count;    ///< [samples·K] (empty: AND only)
};

/// @brief The metrics of a batch of `samples` rows of 2^n elements, row by row: with `fold` and
/// OR rows, fold_low_orders (in place on and_ and or_); then τ = salient_threshold(and, or, v,
/// n, tau_rel, ref) and the order_strength rows of AND and of OR with that τ.
/// @param or_ the OR rows, or nullptr (AND only: the or_* rows come back empty)
/// @param v the values, read only for ThresholdReference::ValueRange (may be null otherwise)
template <class T>
OrderRows order_rows(T* and_, T* or_, const T* v, std::size_t samples, int n, double tau_rel,
                     ThresholdReference ref, bool fold);

/// @brief The lab's folding: I_and(S) += I_or(S), I_or(S) = 0 for |S| <= 1. Universal matching
/// still holds (an order-≤1 OR term and the AND term of the same set contribute identically).
template <class T> void fold_low_orders(T* and_, T* or_, int n);

/// @brief Shapley values from the Harsanyi dividends: φ_i = Σ_{S∋i} I_and(S) / |S|.
template <class T> void shapley_from_dividends(const T* dividends, int n, double* phi);

/// @brief Generalization per order (DESIGN §2.2): the Jaccard similarity of two class-mean
/// interaction vectors (train vs test) restricted to the subsets of order k, each vector made
/// non-negative as [max(I,0); max(-I,0)] over AND and OR concatenated: Σ min / Σ max.
/// `or_a`/`or_b` may be nullptr (AND only). Writes n+1 values; NaN where Σ max = 0.
void jaccard_by_order(const double* and_a, const double* or_a, const double* and_b,
                      const double* or_b, int n, double* out);

/// Strength-weighted mean order Σ_k k·(A_k^+ + A_k^-) / Σ_k (A_k^+ + A_k^-) (NaN if all zero).
double mean_order(const double* pos, const double* neg, int n);

/// @brief The per-order picture of one epoch over its samples (the study report's row).
struct OrderSummary {
  std::vector<double> strength;  ///< [n+1] salient strength A_k^+ + A_k^- (AND and OR), mean over samples
  double order = 0;              ///< mean_order of `strength`
  double and_count = 0, or_count = 0;  ///< salient counts per sample
};

/// @brief Sums the per-sample rows ([samples, n+1] each, counts as doubles; the OR ones may be
/// null) in sample order, so the result depends only on the rows, not on how they were computed
/// or gathered.
OrderSummary summarize_orders(const double* and_pos, const double* and_neg,
                              const double* and_count, const double* or_pos,
                              const double* or_neg, const double* or_count,
                              std::size_t samples, int n);

}  // namespace harsanyi
