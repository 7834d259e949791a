// Metrics of DESIGN §2.2 on hand-made interaction vectors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "interaction_metrics.h"
#include "lattice_transforms.h"
#include "planted_game.h"

using namespace harsanyi;

TEST(Metrics, OrderStrengthSplitsBySignOrderAndThreshold) {
  const int n = 3;
  //            ∅    {0}   {1}  {0,1}  {2} {0,2} {1,2} {0,1,2}
  std::vector<double> I = {0.5, -2.0, 3.0, 0.05, -1.0, 4.0, -0.09, 2.5};
  double pos[4], neg[4];
  std::int32_t cnt[4];
  order_strength(I.data(), n, 0.1, pos, neg, cnt);
  EXPECT_DOUBLE_EQ(pos[0], 0.5);
  EXPECT_DOUBLE_EQ(neg[0], 0.0);
  EXPECT_DOUBLE_EQ(pos[1], 3.0);
  EXPECT_DOUBLE_EQ(neg[1], 3.0);
  EXPECT_DOUBLE_EQ(pos[2], 4.0);  // 0.05 and -0.09 are below τ = 0.1
  EXPECT_DOUBLE_EQ(neg[2], 0.0);
  EXPECT_DOUBLE_EQ(pos[3], 2.5);
  EXPECT_EQ(cnt[0], 1);
  EXPECT_EQ(cnt[1], 3);
  EXPECT_EQ(cnt[2], 1);
  EXPECT_EQ(cnt[3], 1);
  EXPECT_NEAR(mean_order(pos, neg, n), (0 * 0.5 + 1 * 6.0 + 2 * 4.0 + 3 * 2.5) / 13.0, 1e-15);
}

namespace {

// The canonical order of order_strength (interaction_metrics.h) written literally: every node
// of the tree over [base, base + 2^level) holds all n + 1 orders; node = left half + right half.
template <class T>
void tree_sums(const T* x, int n, std::uint64_t base, int level, double tau,
               std::vector<double>& pos, std::vector<double>& neg) {
  pos.assign(static_cast<std::size_t>(n) + 1, 0.0);
  neg.assign(pos.size(), 0.0);
  if (level == 0) {
    const double val = static_cast<double>(x[base]);
    const int k = __builtin_popcountll(base);
    if (std::fabs(val) > tau) (val > 0 ? pos[k] : neg[k]) = std::fabs(val);
    return;
  }
  std::vector<double> lp, ln, rp, rn;
  tree_sums(x, n, base, level - 1, tau, lp, ln);
  tree_sums(x, n, base + (std::uint64_t{1} << (level - 1)), level - 1, tau, rp, rn);
  for (std::size_t k = 0; k < pos.size(); ++k) {
    pos[k] = lp[k] + rp[k];
    neg[k] = ln[k] + rn[k];
  }
}

// Random values with the edge cases of the salience and sign tests mixed in: exact zeros of
// both signs, ±τ exactly, the neighbours of ±τ, NaN and infinities (when `specials`).
template <class T>
std::vector<T> edgy_values(int n, double tau, std::uint64_t seed, bool specials) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_int_distribution<int> pick(0, 15);
  const T t = static_cast<T>(tau), above = std::nextafter(t, T(1e30));
  const T special[] = {
      T(0), -T(0), t, -t, above, -above, specials ? std::numeric_limits<T>::quiet_NaN() : T(0)};
  std::vector<T> x(std::size_t{1} << n);
  for (T& e : x) {
    const int kind = pick(rng);
    if (kind < 7)
      e = special[kind];
    else if (kind == 7 && specials && normal(rng) > 2.5)
      e = std::numeric_limits<T>::infinity();
    else
      e = static_cast<T>(normal(rng) * std::exp(3 * normal(rng)));
  }
  return x;
}

template <class T>
void expect_canonical_tree(int n, double tau, std::uint64_t seed, bool specials) {
  const std::vector<T> x = edgy_values<T>(n, tau, seed, specials);
  const std::size_t K = static_cast<std::size_t>(n) + 1;
  std::vector<double> pos(K), neg(K), ref_pos, ref_neg;
  std::vector<std::int32_t> count(K), ref_count(K, 0);
  order_strength(x.data(), n, tau, pos.data(), neg.data(), count.data());
  tree_sums(x.data(), n, 0, n, tau, ref_pos, ref_neg);
  for (std::size_t s = 0; s < x.size(); ++s)
    ref_count[__builtin_popcountll(s)] += std::fabs(static_cast<double>(x[s])) > tau;
  EXPECT_EQ(std::memcmp(pos.data(), ref_pos.data(), K * sizeof(double)), 0)
      << "A+ n = " << n << " tau = " << tau << " seed " << seed;
  EXPECT_EQ(std::memcmp(neg.data(), ref_neg.data(), K * sizeof(double)), 0)
      << "A- n = " << n << " tau = " << tau << " seed " << seed;
  EXPECT_EQ(count, ref_count) << "n = " << n;
}

}  // namespace

TEST(Metrics, OrderStrengthSumsInTheCanonicalTreeOrderBitwise) {
  for (int n = 0; n <= 14; ++n)
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      expect_canonical_tree<double>(n, 0.5, seed, false);
      expect_canonical_tree<float>(n, 0.25, seed, false);
      expect_canonical_tree<double>(n, 0.0, seed + 10, true);
    }
  // τ < 0: zeros are salient (negative bins, +0.0); NaN never is.
  expect_canonical_tree<double>(7, -1.0, 5, true);
  expect_canonical_tree<float>(9, -0.5, 6, false);
}

TEST(Metrics, OrderStrengthIsAccurateToLogTermsOfUlps) {
  const int n = 16;
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> magnitude(0.0, 2.0);
  std::vector<double> x(std::size_t{1} << n);
  for (double& e : x) e = (rng() & 1 ? 1 : -1) * magnitude(rng);
  const double tau = 0.3;
  std::vector<long double> exact_pos(n + 1, 0.0L), exact_neg(n + 1, 0.0L);
  for (std::size_t s = 0; s < x.size(); ++s) {
    if (!(std::fabs(x[s]) > tau)) continue;
    const int k = __builtin_popcountll(s);
    (x[s] > 0 ? exact_pos[k] : exact_neg[k]) += std::fabs(x[s]);
  }
  std::vector<double> pos(n + 1), neg(n + 1);
  std::vector<std::int32_t> count(n + 1);
  order_strength(x.data(), n, tau, pos.data(), neg.data(), count.data());
  const long double bound = (n + 1) * std::ldexp(1.0L, -53);  // one rounding per tree level
  for (int k = 0; k <= n; ++k) {
    EXPECT_LE(std::fabs(pos[k] - exact_pos[k]), bound * exact_pos[k]) << "A+ order " << k;
    EXPECT_LE(std::fabs(neg[k] - exact_neg[k]), bound * exact_neg[k]) << "A- order " << k;
  }
}

TEST(Metrics, SalientThresholdUsesLargestAndOrOrValueRange) {
  const int n = 2;
  std::vector<double> a = {0.1, -3.0, 0.2, 1.0}, o = {0.0, 0.0, 5.0, -0.5}, v = {1.0, 0, 0, 3.0};
  EXPECT_DOUBLE_EQ(salient_threshold(a.data(), o.data(), v.data(), n, 0.1,
                                     ThresholdReference::MaxInteraction), 0.5);
  EXPECT_DOUBLE_EQ(salient_threshold(a.data(), static_cast<const double*>(nullptr), v.data(), n,
                                     0.1, ThresholdReference::MaxInteraction), 0.30000000000000004);
  EXPECT_DOUBLE_EQ(salient_threshold(a.data(), o.data(), v.data(), n, 0.1,
                                     ThresholdReference::ValueRange), 0.2);
}

TEST(Metrics, FoldingMovesOrderLeOneAndKeepsUniversalMatching) {
  const int n = 6;
  const std::size_t len = 64;
  std::vector<double> a(len), o(len);
  for (std::size_t i = 0; i < len; ++i) {
    a[i] = std::sin(1.0 + i);
    o[i] = std::cos(2.0 + i);
  }
  auto before_a = a, before_o = o;
  zeta_transform(before_a.data(), n);
  or_synthesis(before_o.data(), n);
  fold_low_orders(a.data(), o.data(), n);
  for (std::size_t s = 0; s < len; ++s)
    if (__builtin_popcountll(s) <= 1) {
      EXPECT_EQ(o[s], 0.0) << s;
    }
  EXPECT_DOUBLE_EQ(a[0], std::sin(1.0) + std::cos(2.0));
  EXPECT_DOUBLE_EQ(a[4], std::sin(5.0) + std::cos(6.0));
  EXPECT_DOUBLE_EQ(a[3], std::sin(4.0));  // order 2 untouched
  zeta_transform(a.data(), n);
  or_synthesis(o.data(), n);
  for (std::size_t s = 0; s < len; ++s) EXPECT_NEAR(a[s] + o[s], before_a[s] + before_o[s], 1e-12);
}

TEST(Metrics, ShapleyFromDividendsIsEfficientAndMatchesPlantedGame) {
  // v = 6·1[{0,1,2} ⊆ S] + 2·1[{3} ⊆ S]: φ_0 = φ_1 = φ_2 = 2, φ_3 = 2, others 0.
  PlantedGame g;
  g.n = 5;
  g.and_terms = {{0b00111, 6.0}, {0b01000, 2.0}};
  auto v = g.values();
  moebius_transform(v.data(), g.n);
  double phi[5];
  shapley_from_dividends(v.data(), g.n, phi);
  EXPECT_DOUBLE_EQ(phi[0], 2.0);
  EXPECT_DOUBLE_EQ(phi[1], 2.0);
  EXPECT_DOUBLE_EQ(phi[2], 2.0);
  EXPECT_DOUBLE_EQ(phi[3], 2.0);
  EXPECT_DOUBLE_EQ(phi[4], 0.0);
  // efficiency on a random game: Σ φ_i = v(N) - v(∅)
  PlantedGame r = random_planted_game(9, 6, 4, 5);
  auto w = r.values();
  const double span = w.back() - w.front();
  moebius_transform(w.data(), 9);
  double p9[9], total = 0;
  shapley_from_dividends(w.data(), 9, p9);
  for (double x : p9) total += x;
  EXPECT_NEAR(total, span, 1e-12);
}
