#include "interaction_metrics.h"

#include <algorithm>
#include <array>
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

namespace {

/// order_strength sums leaf blocks of up to 2^kBlockBits subsets in local arrays.
constexpr int kBlockBits = 5;
constexpr std::size_t kBlock = std::size_t{1} << kBlockBits;

/// @brief One tree node of level l from its children of level l - 1 (l bins each, relative to
/// their bases): parent bin r = left bin r + right bin r - 1, the right child's orders being the
/// left's shifted by one; the bins only one child has are copied (adding 0.0 is exact).
void combine_nodes(const double* left, const double* right, int l, double* parent) {
  parent[0] = left[0];
  for (int r = 1; r < l; ++r) parent[r] = left[r] + right[r - 1];
  parent[l] = right[l - 1];
}

/// @brief Per r = 0..kBlockBits, the mask of the indices i < 2^kBlockBits with popcount(i) = r.
constexpr std::array<std::uint32_t, kBlockBits + 1> order_masks() {
  std::array<std::uint32_t, kBlockBits + 1> masks{};
  for (unsigned i = 0; i < kBlock; ++i) masks[__builtin_popcount(i)] |= std::uint32_t{1} << i;
  return masks;
}
constexpr std::array<std::uint32_t, kBlockBits + 1> kOrderMasks = order_masks();

/// The bins of one sign of a tree node at level L: bin r is the order popcount(base) + r.
template <int L> struct NodeBins {
  double bin[L + 1];
};

/// @brief The node of level L over `leaves` (2^L consecutive leaves), unrolled: left half,
/// right half, then combine_nodes.
template <int L> NodeBins<L> leaf_tree(const double* leaves) {
  NodeBins<L> node;
  if constexpr (L == 0) {
    node.bin[0] = leaves[0];
  } else {
    const NodeBins<L - 1> left = leaf_tree<L - 1>(leaves);
    const NodeBins<L - 1> right = leaf_tree<L - 1>(leaves + (1u << (L - 1)));
    combine_nodes(left.bin, right.bin, L, node.bin);
  }
  return node;
}

/// @brief The node of the 2^Bits subsets from `base` (Bits <= kBlockBits): its bins 0..Bits
/// (orders popcount(base) + 0..Bits) into pos/neg; the salient counts added to `count`.
template <int Bits, class T>
void block_node(const T* x, std::uint64_t base, double tau, double* pos, double* neg,
                std::int32_t* count) {
  constexpr std::size_t len = std::size_t{1} << Bits;
  double p[len], q[len];
  bool salient[len];
  for (std::size_t i = 0; i < len; ++i) {
    const double val = static_cast<double>(x[base + i]);
    const double magnitude = std::fabs(val);
    salient[i] = magnitude > tau;
    const bool positive = val > 0;  // & below, not &&: selects, no branches on random signs
    p[i] = salient[i] & positive ? val : 0.0;
    q[i] = salient[i] & !positive ? magnitude : 0.0;
  }
  std::uint32_t mask = 0;  // bit i: subset base + i is salient
  for (std::size_t i = 0; i < len; ++i) mask |= std::uint32_t{salient[i]} << i;
  const int order = __builtin_popcountll(base);
  for (int r = 0; r <= Bits; ++r) count[order + r] += __builtin_popcount(mask & kOrderMasks[r]);
  const NodeBins<Bits> node_pos = leaf_tree<Bits>(p), node_neg = leaf_tree<Bits>(q);
  std::copy(node_pos.bin, node_pos.bin + Bits + 1, pos);
  std::copy(node_neg.bin, node_neg.bin + Bits + 1, neg);
}

/// block_node for rows of 2^bits subsets or more (bits = min(n, kBlockBits)).
template <class T>
using BlockNode = void (*)(const T*, std::uint64_t, double, double*, double*, std::int32_t*);
template <class T> BlockNode<T> block_node_of(int bits) {
  static_assert(kBlockBits == 5, "one entry per block size");
  constexpr BlockNode<T> nodes[] = {block_node<0, T>, block_node<1, T>, block_node<2, T>,
                                    block_node<3, T>, block_node<4, T>, block_node<5, T>};
  return nodes[bits];
}

}  // namespace

// The canonical tree of the header, bottom-up: the leaf blocks in index order, each block's node
// merged with the pending left siblings of the levels above (a binary counter: block j merges
// once per trailing one bit of j), so only one pending node per level is kept.
template <class T>
void order_strength(const T* x, int n, double tau, double* pos, double* neg, std::int32_t* count) {
  std::fill(count, count + n + 1, 0);
  const int bits = std::min(n, kBlockBits);
  const BlockNode<T> leaf_block = block_node_of<T>(bits);
  const std::uint64_t blocks = subset_count(n - bits);
  // pending[l]: the left sibling waiting at level l (bits <= l < n), l + 1 bins per sign
  std::vector<double> pending_pos(static_cast<std::size_t>(n + 1) * (n + 1));
  std::vector<double> pending_neg(pending_pos.size());
  std::vector<double> node_pos(static_cast<std::size_t>(n) + 1), node_neg(node_pos.size());
  std::vector<double> up_pos(node_pos.size()), up_neg(node_pos.size());
  for (std::uint64_t j = 0; j < blocks; ++j) {
    leaf_block(x, j << bits, tau, node_pos.data(), node_neg.data(), count);
    int l = bits;
    for (std::uint64_t k = j; k & 1; k >>= 1, ++l) {
      const std::size_t at = static_cast<std::size_t>(l) * (n + 1);
      combine_nodes(&pending_pos[at], node_pos.data(), l + 1, up_pos.data());
      combine_nodes(&pending_neg[at], node_neg.data(), l + 1, up_neg.data());
      node_pos.swap(up_pos);
      node_neg.swap(up_neg);
    }
    if (l < n) {
      const std::size_t at = static_cast<std::size_t>(l) * (n + 1);
      std::copy(node_pos.begin(), node_pos.begin() + l + 1, pending_pos.begin() + at);
      std::copy(node_neg.begin(), node_neg.begin() + l + 1, pending_neg.begin() + at);
    }
  }
  std::copy(node_pos.begin(), node_pos.end(), pos);  // the root (j = blocks - 1 ends at level n)
  std::copy(node_neg.begin(), node_neg.end(), neg);
}

template <class T>
OrderRows order_rows(T* and_, T* or_, const T* v, std::size_t samples, int n, double tau_rel,
                     ThresholdReference ref, bool fold) {
  const std::size_t len = subset_count(n), K = static_cast<std::size_t>(n) + 1;
  OrderRows out;
  out.threshold.resize(samples);
  out.and_pos.resize(samples * K);
  out.and_neg.resize(samples * K);
  out.and_count.resize(samples * K);
  if (or_) {
    out.or_pos.resize(samples * K);
    out.or_neg.resize(samples * K);
    out.or_count.resize(samples * K);
  }
  for (std::size_t s = 0; s < samples; ++s) {
    T* a = and_ + s * len;
    T* o = or_ ? or_ + s * len : nullptr;
    if (fold && o) fold_low_orders(a, o, n);
    const double tau = salient_threshold(a, static_cast<const T*>(o), v ? v + s * len : nullptr, n,
                                         tau_rel, ref);
    out.threshold[s] = tau;
    order_strength(a, n, tau, &out.and_pos[s * K], &out.and_neg[s * K], &out.and_count[s * K]);
    if (o) order_strength(o, n, tau, &out.or_pos[s * K], &out.or_neg[s * K], &out.or_count[s * K]);
  }
  return out;
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
  template OrderRows order_rows<T>(T*, T*, const T*, std::size_t, int, double,              \
                                   ThresholdReference, bool);                                \
  template void fold_low_orders<T>(T*, T*, int);                                             \
  template void shapley_from_dividends<T>(const T*, int, double*);
HARSANYI_INSTANTIATE(float)
HARSANYI_INSTANTIATE(double)
#undef HARSANYI_INSTANTIATE

}  // namespace harsanyi
