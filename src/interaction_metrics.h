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
/// salient counts, k = 0..n, for one interaction vector. Sums run in subset order (deterministic).
template <class T>
void order_strength(const T* interactions, int n, double tau, double* pos, double* neg,
                    std::int32_t* count);

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
