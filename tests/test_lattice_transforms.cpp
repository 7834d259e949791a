// The CPU lattice transforms against the definitions, explicit matrices and planted games.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "lattice_transforms.h"
#include "naive_reference.h"
#include "planted_game.h"

using namespace harsanyi;
using namespace harsanyi::testing;

namespace {

template <class T> std::vector<T> random_values(int n, std::size_t samples, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<T> v(samples << n);
  for (auto& x : v) x = static_cast<T>(g(rng));
  return v;
}

template <class T> double max_rel_err(const std::vector<T>& a, const std::vector<T>& b) {
  double scale = 1e-300, err = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
    err = std::max(err, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  }
  return err / scale;
}

}  // namespace

TEST(LatticeTransforms, MoebiusMatchesDefinitionDouble) {
  for (int n = 0; n <= 12; ++n) {
    auto v = random_values<double>(n, 1, 100 + n);
    auto expect = naive_moebius(v, n);
    moebius_transform(v.data(), n);
    EXPECT_LT(max_rel_err(v, expect), 1e-12) << "n = " << n;
  }
}

TEST(LatticeTransforms, MoebiusMatchesDefinitionFloat) {
  for (int n = 0; n <= 12; ++n) {
    auto v = random_values<float>(n, 1, 200 + n);
    auto expect = naive_moebius(v, n);
    moebius_transform(v.data(), n);
    // float rounding grows with the n additions each coefficient goes through
    EXPECT_LT(max_rel_err(v, expect), 2e-6 * (n + 1)) << "n = " << n;
  }
}

TEST(LatticeTransforms, OrMatchesDefinition) {
  for (int n = 0; n <= 12; ++n) {
    auto v = random_values<double>(n, 1, 300 + n);
    auto expect = naive_or(v, n);
    or_transform(v.data(), n);
    EXPECT_LT(max_rel_err(v, expect), 1e-12) << "n = " << n;
    auto f = random_values<float>(n, 1, 350 + n);
    auto expect_f = naive_or(f, n);
    or_transform(f.data(), n);
    EXPECT_LT(max_rel_err(f, expect_f), 2e-6 * (n + 1)) << "n = " << n;
  }
}

TEST(LatticeTransforms, ZetaMatchesDefinitionAndInvertsMoebius) {
  for (int n = 0; n <= 12; ++n) {
    auto v = random_values<double>(n, 1, 400 + n);
    auto expect = naive_zeta(v, n);
    auto z = v;
    zeta_transform(z.data(), n);
    EXPECT_LT(max_rel_err(z, expect), 1e-12) << "n = " << n;
    moebius_transform(z.data(), n);
    EXPECT_LT(max_rel_err(z, v), 1e-12) << "n = " << n;
  }
}

TEST(LatticeTransforms, TransposesMatchExplicitMatrices) {
  for (int n = 0; n <= 6; ++n) {
    const std::size_t len = std::size_t{1} << n;
    struct Pair {
      void (*fwd)(double*, int, std::size_t);
      void (*tr)(double*, int, std::size_t);
      const char* name;
    } pairs[] = {{moebius_transform<double>, moebius_transpose<double>, "moebius"},
                 {zeta_transform<double>, zeta_transpose<double>, "zeta"},
                 {or_transform<double>, or_transform_transpose<double>, "or"}};
    for (const auto& p : pairs) {
      const auto fwd = dense_matrix(n, [&](double* x) { p.fwd(x, n, 1); });
      const auto tr = dense_matrix(n, [&](double* x) { p.tr(x, n, 1); });
      for (std::size_t i = 0; i < len; ++i)
        for (std::size_t j = 0; j < len; ++j)
          ASSERT_EQ(tr[i * len + j], fwd[j * len + i]) << p.name << " n=" << n << " " << i << "," << j;
    }
  }
}

TEST(LatticeTransforms, OrSynthesisInvertsOrTransform) {
  for (int n = 0; n <= 12; ++n) {
    auto v = random_values<double>(n, 3, 500 + n);
    auto x = v;
    or_transform(x.data(), n, 3);
    or_synthesis(x.data(), n, 3);
    EXPECT_LT(max_rel_err(x, v), 1e-12) << "n = " << n;
  }
}

TEST(LatticeTransforms, BlockedEqualsPerBitLoopBitwise) {
  // sizes that exercise the low block, one and two high groups, and batches
  for (int n : {3, 13, 14, 15, 17, 21, 24}) {
    const std::size_t samples = n <= 17 ? 3 : 1;
    auto a = random_values<double>(n, samples, 600 + n);
    auto b = a;
    moebius_transform(a.data(), n, samples);
    moebius_transform_per_bit(b.data(), n, samples);
    ASSERT_EQ(a, b) << "n = " << n;
    auto fa = random_values<float>(n, samples, 700 + n);
    auto fb = fa;
    moebius_transform(fa.data(), n, samples);
    moebius_transform_per_bit(fb.data(), n, samples);
    ASSERT_EQ(fa, fb) << "n = " << n;
  }
}

TEST(LatticeTransforms, AnyBlockingGivesTheSameResultBitwise) {
  // Tiny blocks, buffers and strips force many high-bit groups (the path large n takes with the
  // default blocking) at sizes a test can afford; every op, both types, batches of rows.
  const LatticeBlocking blockings[] = {
      {64, 128, 16}, {256, 1024, 64}, {8, 16, 8}, {1, 1, 1}, {4096, 65536, 512}};
  const LatticeOp ops[] = {LatticeOp::Moebius, LatticeOp::MoebiusTranspose, LatticeOp::Zeta,
                           LatticeOp::ZetaTranspose};
  for (int n : {0, 1, 2, 3, 5, 9, 12, 16}) {
    for (LatticeOp op : ops) {
      const auto input = random_values<double>(n, 3, 800 + n);
      auto reference = input;
      lattice_transform(op, reference.data(), n, 3, LatticeBlocking{});
      if (op == LatticeOp::Moebius) {
        auto per_bit = input;
        moebius_transform_per_bit(per_bit.data(), n, 3);
        ASSERT_EQ(reference, per_bit) << "n = " << n;
      }
      for (const auto& b : blockings) {
        auto x = input;
        lattice_transform(op, x.data(), n, 3, b);
        ASSERT_EQ(x, reference) << "n = " << n << " op " << static_cast<int>(op) << " blocking "
                                << b.block_bytes << "/" << b.buffer_bytes << "/" << b.strip_bytes;
        auto f = std::vector<float>(input.begin(), input.end()), fr = f;
        lattice_transform(op, fr.data(), n, 3, LatticeBlocking{});
        lattice_transform(op, f.data(), n, 3, b);
        ASSERT_EQ(f, fr) << "float n = " << n;
      }
    }
  }
}

TEST(LatticeTransforms, BatchRowsAreIndependent) {
  const int n = 16;
  auto batch = random_values<double>(n, 4, 42);
  auto single = std::vector<double>(batch.begin() + (2 << n), batch.begin() + (3 << n));
  zeta_transpose(batch.data(), n, 4);
  zeta_transpose(single.data(), n, 1);
  EXPECT_TRUE(std::equal(single.begin(), single.end(), batch.begin() + (2 << n)));
}

TEST(LatticeTransforms, PlantedGamesRecoverCoefficients) {
  // AND terms only: Möbius gives exactly the coefficients. OR terms only: OR transform does.
  for (int n : {4, 8, 12, 18}) {
    for (int kind = 0; kind < 2; ++kind) {
      PlantedGame g = random_planted_game(n, 7, 5, 900 + n);
      if (kind == 0) g.or_terms.clear(); else g.and_terms.clear();
      auto v = g.values();
      std::vector<double> expect(v.size(), 0.0);
      expect[0] = g.base;
      for (const auto& t : (kind == 0 ? g.and_terms : g.or_terms)) expect[t.set] += t.coefficient;
      if (kind == 0)
        moebius_transform(v.data(), n);
      else
        or_transform(v.data(), n);
      ASSERT_EQ(v, expect) << (kind ? "OR" : "AND") << " n = " << n;  // integers: exact
    }
  }
}

TEST(LatticeTransforms, UniversalMatchingForAnySplit) {
  // v + q = zeta(I_and[v_and]) + or_synthesis(I_or[v_or]) for v_and + v_or = v + q, any p.
  for (int n : {1, 5, 10, 15}) {
    auto v = random_values<double>(n, 1, 1000 + n);
    auto p = random_values<double>(n, 1, 1100 + n);
    auto q = random_values<double>(n, 1, 1200 + n);
    const std::size_t len = v.size();
    std::vector<double> a(len), o(len);
    for (std::size_t i = 0; i < len; ++i) {
      a[i] = 0.5 * (v[i] + q[i]) + p[i];
      o[i] = 0.5 * (v[i] + q[i]) - p[i];
    }
    moebius_transform(a.data(), n);
    or_transform(o.data(), n);
    zeta_transform(a.data(), n);
    or_synthesis(o.data(), n);
    for (std::size_t i = 0; i < len; ++i)
      ASSERT_NEAR(a[i] + o[i], v[i] + q[i], 1e-11 * (1 << std::min(n, 10))) << "n=" << n << " S=" << i;
  }
}

TEST(LatticeTransforms, EveryButterflyMatchesPerBitLoopAboveTheBlockSize) {
  // n beyond the low-bit block of the default blocking: the high-bit passes are exercised.
  const LatticeOp ops[] = {LatticeOp::Moebius, LatticeOp::MoebiusTranspose, LatticeOp::Zeta,
                           LatticeOp::ZetaTranspose};
  for (int n : {13, 17, 20}) {
    for (int kind = 0; kind < 4; ++kind) {
      auto x = random_values<double>(n, 1, 1300 + n + kind);
      auto ref = x;
      per_bit_butterfly(ref, n, kind);
      lattice_transform(ops[kind], x.data(), n, 1, LatticeBlocking{});
      ASSERT_EQ(x, ref) << "n = " << n << " kind " << kind;
    }
  }
}

TEST(LatticeTransforms, OrMatchesDefinitionAtLargerN) {
  for (int n : {14, 16}) {
    auto v = random_values<double>(n, 1, 1400 + n);
    auto expect = naive_or(v, n);
    or_transform(v.data(), n);
    EXPECT_LT(max_rel_err(v, expect), 1e-12) << "n = " << n;
  }
}

TEST(LatticeTransforms, TransposesAreAdjointsAtLargeN) {
  // <F x, y> = <x, Fᵀ y> for random x, y at n = 18, for Möbius, zeta and OR.
  const int n = 18;
  struct Pair {
    void (*fwd)(double*, int, std::size_t);
    void (*tr)(double*, int, std::size_t);
    const char* name;
  } pairs[] = {{moebius_transform<double>, moebius_transpose<double>, "moebius"},
               {zeta_transform<double>, zeta_transpose<double>, "zeta"},
               {or_transform<double>, or_transform_transpose<double>, "or"}};
  for (const auto& p : pairs) {
    auto x = random_values<double>(n, 1, 1800), y = random_values<double>(n, 1, 1801);
    auto fx = x, ty = y;
    p.fwd(fx.data(), n, 1);
    p.tr(ty.data(), n, 1);
    long double lhs = 0, rhs = 0, scale = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      lhs += static_cast<long double>(fx[i]) * y[i];
      rhs += static_cast<long double>(x[i]) * ty[i];
      scale += std::fabs(static_cast<long double>(fx[i]) * y[i]);
    }
    EXPECT_LT(static_cast<double>(std::fabs(lhs - rhs) / scale), 1e-12) << p.name;
  }
}
