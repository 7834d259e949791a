#include "interaction_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "lattice_transforms.h"

namespace harsanyi {

ThresholdReference parse_threshold_reference(const std::string& text) {
  if (text == "max") return ThresholdReference::MaxInteraction;
  if (text == "vrange") return ThresholdReference::ValueRange;
  throw std::invalid_argument("unknown threshold reference '" + text +
                              "' (expected 'max' or 'vrange')");
}

const char* to_string(ThresholdReference ref) {
  return ref == ThresholdReference::MaxInteraction ? "max" : "vrange";
}

template <class T>
double salient_threshold(const T* and_, const T* or_, const T* v, int n, double tau_rel,
                         ThresholdReference ref) {
  const std::size_t len = subset_count(n);
  if (ref == ThresholdReference::ValueRange)
    return tau_rel * std::fabs(static_cast<double>(v[len - 1]) - static_cast<double>(v[0]));
  double m = 0.0;
  for (std::size_t i = 0; i < len; ++i) {
    m = std::max(m, std::fabs(static_cast<double>(and_[i])));
    if (or_) m = std::max(m, std::fabs(static_cast<double>(or_[i])));
  }
  return tau_rel * m;
}

template <class T>
void order_strength(const T* x, int n, double tau, double* pos, double* neg, std::int32_t* count) {
  std::fill(pos, pos + n + 1, 0.0);
  std::fill(neg, neg + n + 1, 0.0);
  std::fill(count, count + n + 1, 0);
  const std::size_t len = subset_count(n);
  for (std::size_t s = 0; s < len; ++s) {
    const double val = static_cast<double>(x[s]);
    if (!(std::fabs(val) > tau)) continue;
    const int k = __builtin_popcountll(s);
    if (val > 0)
      pos[k] += val;
    else
      neg[k] += -val;
    ++count[k];
  }
}

template <class T> void fold_low_orders(T* and_, T* or_, int n) {
  and_[0] += or_[0];
  or_[0] = T(0);
  for (int i = 0; i < n; ++i) {
    const std::size_t s = std::size_t{1} << i;
    and_[s] += or_[s];
    or_[s] = T(0);
  }
}

template <class T> void shapley_from_dividends(const T* d, int n, double* phi) {
  std::fill(phi, phi + n, 0.0);
  const std::size_t len = subset_count(n);
  for (std::size_t s = 1; s < len; ++s) {
    const double share = static_cast<double>(d[s]) / __builtin_popcountll(s);
    for (std::size_t bits = s; bits; bits &= bits - 1) phi[__builtin_ctzll(bits)] += share;
  }
}

void jaccard_by_order(const double* and_a, const double* or_a, const double* and_b,
                      const double* or_b, int n, double* out) {
  std::vector<double> num(static_cast<std::size_t>(n) + 1, 0.0), den(num.size(), 0.0);
  const std::uint64_t len = std::uint64_t{1} << n;
  auto add = [&](const double* a, const double* b) {
    for (std::uint64_t s = 0; s < len; ++s) {
      const auto k = static_cast<std::size_t>(__builtin_popcountll(s));
      const double ap = std::max(a[s], 0.0), an = std::max(-a[s], 0.0);
      const double bp = std::max(b[s], 0.0), bn = std::max(-b[s], 0.0);
      num[k] += std::min(ap, bp) + std::min(an, bn);
      den[k] += std::max(ap, bp) + std::max(an, bn);
    }
  };
  add(and_a, and_b);
  if (or_a && or_b) add(or_a, or_b);
  for (std::size_t k = 0; k < num.size(); ++k)
    out[k] = den[k] > 0 ? num[k] / den[k] : std::numeric_limits<double>::quiet_NaN();
}

double mean_order(const double* pos, const double* neg, int n) {
  double num = 0.0, den = 0.0;
  for (int k = 0; k <= n; ++k) {
    num += k * (pos[k] + neg[k]);
    den += pos[k] + neg[k];
  }
  return den > 0 ? num / den : std::numeric_limits<double>::quiet_NaN();
}

OrderSummary summarize_orders(const double* and_pos, const double* and_neg,
                              const double* and_count, const double* or_pos,
                              const double* or_neg, const double* or_count,
                              std::size_t samples, int n) {
  const std::size_t K = static_cast<std::size_t>(n) + 1;
  OrderSummary r;
  r.strength.assign(K, 0.0);
  const double S = static_cast<double>(samples);
  const double* pos[2] = {and_pos, or_pos};
  const double* neg[2] = {and_neg, or_neg};
  const double* cnt[2] = {and_count, or_count};
  double count[2] = {0, 0};
  for (int k = 0; k < (or_pos ? 2 : 1); ++k)
    for (std::size_t s = 0; s < samples; ++s)
      for (std::size_t o = 0; o < K; ++o) {
        const std::size_t i = s * K + o;
        r.strength[o] += (pos[k][i] + neg[k][i]) / S;
        count[k] += cnt[k][i] / S;
      }
  const std::vector<double> zero(K, 0.0);
  r.order = mean_order(r.strength.data(), zero.data(), n);
  r.and_count = count[0];
  r.or_count = count[1];
  return r;
}

#define HARSANYI_INSTANTIATE(T)                                                              \
  template double salient_threshold<T>(const T*, const T*, const T*, int, double,            \
                                       ThresholdReference);                                  \
  template void order_strength<T>(const T*, int, double, double*, double*, std::int32_t*);   \
  template void fold_low_orders<T>(T*, T*, int);                                             \
  template void shapley_from_dividends<T>(const T*, int, double*);
HARSANYI_INSTANTIATE(float)
HARSANYI_INSTANTIATE(double)
#undef HARSANYI_INSTANTIATE

}  // namespace harsanyi
