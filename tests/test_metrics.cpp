// Metrics of DESIGN §2.2 on hand-made interaction vectors.
#include <gtest/gtest.h>

#include <cmath>
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
