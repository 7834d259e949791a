// The optimal AND-OR solver: the reference LP optimum, exact optima of small games from an
// independent dense simplex, the certificate, the invariants and determinism.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "and_or_solver.h"
#include "lattice_transforms.h"
#include "naive_reference.h"
#include "optimal_element_step.h"
#include "optimal_solver.h"
#include "planted_game.h"
#include "user_error.h"

#ifndef HARSANYI_TEST_DATA
#error "HARSANYI_TEST_DATA must point at tests/data"
#endif

using namespace harsanyi;
using harsanyi::testing::naive_moebius;
using harsanyi::testing::naive_or;
using harsanyi::testing::popcount;

namespace {

nlohmann::json load_reference() {
  std::ifstream in(std::string(HARSANYI_TEST_DATA) + "/sgd_n8_s1.json");
  if (!in) throw std::runtime_error("cannot open the reference data");
  return nlohmann::json::parse(in);
}

// Naive OR synthesis: w(S) = I(∅) + Σ_{T≠∅, T∩S≠∅} I(T).
std::vector<double> naive_or_synthesis(const std::vector<double>& o, int n) {
  const std::uint64_t len = std::uint64_t{1} << n;
  std::vector<double> w(len);
  for (std::uint64_t s = 0; s < len; ++s) {
    long double acc = o[0];
    for (std::uint64_t t = 1; t < len; ++t)
      if (t & s) acc += o[t];
    w[s] = static_cast<double>(acc);
  }
  return w;
}

// Dense LP solver, independent of the solver under test: min cᵀu s.t. A u ≤ r, u ≥ 0, by the
// two-phase tableau simplex with Bland's rule, in long double. Returns the optimum.
long double dense_simplex(const std::vector<std::vector<long double>>& A,
                          const std::vector<long double>& r, const std::vector<long double>& c) {
  const std::size_t m = A.size(), nv = c.size();
  // Columns: nv structural, m slacks, m artificials (used where r < 0), then the RHS.
  const std::size_t cols = nv + 2 * m, rhs = cols;
  std::vector<std::vector<long double>> t(m, std::vector<long double>(cols + 1, 0.0L));
  std::vector<std::size_t> basis(m);
  for (std::size_t i = 0; i < m; ++i) {
    const long double sgn = r[i] < 0 ? -1.0L : 1.0L;
    for (std::size_t j = 0; j < nv; ++j) t[i][j] = sgn * A[i][j];
    t[i][nv + i] = sgn;
    t[i][rhs] = sgn * r[i];
    if (r[i] < 0) {
      t[i][nv + m + i] = 1.0L;
      basis[i] = nv + m + i;
    } else {
      basis[i] = nv + i;
    }
  }
  const long double eps = 1e-13L;
  auto run = [&](const std::vector<long double>& cost, std::size_t allowed) {
    for (int guard = 0; guard < 100000; ++guard) {
      // reduced costs d_j = c_j - c_Bᵀ B⁻¹ A_j; Bland: the first j with d_j < 0
      std::size_t enter = cols;
      for (std::size_t j = 0; j < allowed && enter == cols; ++j) {
        long double d = cost[j];
        for (std::size_t i = 0; i < m; ++i) d -= cost[basis[i]] * t[i][j];
        if (d < -eps) enter = j;
      }
      if (enter == cols) return true;
      std::size_t leave = m;
      long double best = 0;
      for (std::size_t i = 0; i < m; ++i)
        if (t[i][enter] > eps) {
          const long double ratio = t[i][rhs] / t[i][enter];
          if (leave == m || ratio < best - eps ||
              (std::fabs(ratio - best) <= eps && basis[i] < basis[leave])) {
            leave = i;
            best = ratio;
          }
        }
      if (leave == m) return false;  // unbounded
      const long double piv = t[leave][enter];
      for (auto& x : t[leave]) x /= piv;
      for (std::size_t i = 0; i < m; ++i)
        if (i != leave && t[i][enter] != 0) {
          const long double f = t[i][enter];
          for (std::size_t j = 0; j <= cols; ++j) t[i][j] -= f * t[leave][j];
        }
      basis[leave] = enter;
    }
    return false;
  };
  std::vector<long double> phase1(cols, 0.0L);
  for (std::size_t i = 0; i < m; ++i) phase1[nv + m + i] = 1.0L;
  if (!run(phase1, cols)) throw std::runtime_error("simplex phase 1 failed");
  for (std::size_t i = 0; i < m; ++i)
    if (basis[i] >= nv + m && t[i][rhs] > 1e-9L) throw std::runtime_error("LP infeasible");
  // Drive the artificials left in the basis (at zero) out of it, so that phase 2 cannot raise
  // them: pivot on any non-artificial column with a nonzero entry in their row (a row without
  // one is redundant and stays at zero).
  for (std::size_t i = 0; i < m; ++i) {
    if (basis[i] < nv + m) continue;
    std::size_t j = 0;
    while (j < nv + m && std::fabs(t[i][j]) <= eps) ++j;
    if (j == nv + m) continue;
    const long double piv = t[i][j];
    for (auto& x : t[i]) x /= piv;
    for (std::size_t k = 0; k < m; ++k)
      if (k != i && t[k][j] != 0) {
        const long double f = t[k][j];
        for (std::size_t l = 0; l <= cols; ++l) t[k][l] -= f * t[i][l];
      }
    basis[i] = j;
  }
  std::vector<long double> cost(cols, 0.0L);
  for (std::size_t j = 0; j < nv; ++j) cost[j] = c[j];
  if (!run(cost, nv + m)) throw std::runtime_error("simplex phase 2 failed");
  long double obj = 0;
  for (std::size_t i = 0; i < m; ++i) obj += cost[basis[i]] * t[i][rhs];
  return obj;
}

// The exact optimum of DESIGN §2 for one game, from dense naive matrices: variables a⁺, a⁻, o⁺,
// o⁻ ≥ 0 with Z(a⁺ − a⁻) + O⁻¹(o⁺ − o⁻) within [v − b, v + b].
double exact_optimum(const std::vector<double>& v, int n, double b) {
  const std::size_t len = std::size_t{1} << n;
  std::vector<std::vector<long double>> A;
  std::vector<long double> r, c(4 * len, 1.0L);
  // Column j of Z: 1[j ⊆ S]; of O⁻¹: naive synthesis of e_j.
  std::vector<std::vector<double>> osyn(len);
  for (std::size_t j = 0; j < len; ++j) {
    std::vector<double> e(len, 0.0);
    e[j] = 1.0;
    osyn[j] = naive_or_synthesis(e, n);
  }
  for (int side = 0; side < 2; ++side)
    for (std::size_t s = 0; s < len; ++s) {
      const long double sg = side == 0 ? 1.0L : -1.0L;  // row ≤ v + b, −row ≤ −(v − b)
      std::vector<long double> row(4 * len);
      for (std::size_t j = 0; j < len; ++j) {
        const long double z = ((j & s) == j) ? 1.0L : 0.0L;
        row[j] = sg * z;
        row[len + j] = -sg * z;
        row[2 * len + j] = sg * osyn[j][s];
        row[3 * len + j] = -sg * osyn[j][s];
      }
      A.push_back(row);
      r.push_back(side == 0 ? static_cast<long double>(v[s]) + b
                            : -(static_cast<long double>(v[s]) - b));
    }
  return static_cast<double>(dense_simplex(A, r, c));
}

double qbound(const std::vector<double>& v, double qthres) {
  return qthres * std::fabs(v.back() - v.front());
}

// Checks of one fitted sample: |q| ≤ b, I_and and I_or are the naive transforms of the split,
// universal matching (naive), and the loss is the L1 norm of the outputs.
void check_invariants(const std::vector<double>& v, int n, double b, const double* a,
                      const double* o, const double* p, const double* q, double loss) {
  const std::size_t len = v.size();
  std::vector<double> va(len), vo(len), av(a, a + len), ov(o, o + len);
  for (std::size_t i = 0; i < len; ++i) {
    ASSERT_LE(std::fabs(q[i]), b) << "S = " << i;
    va[i] = 0.5 * (v[i] + q[i]) + p[i];
    vo[i] = 0.5 * (v[i] + q[i]) - p[i];
  }
  const auto na = naive_moebius(va, n), no = naive_or(vo, n);
  const auto za = harsanyi::testing::naive_zeta(av, n), so = naive_or_synthesis(ov, n);
  double scale = 1.0, l1 = 0.0;
  for (double x : v) scale = std::max(scale, std::fabs(x));
  for (std::size_t i = 0; i < len; ++i) {
    EXPECT_NEAR(a[i], na[i], 1e-9 * scale) << "I_and, S = " << i;
    EXPECT_NEAR(o[i], no[i], 1e-9 * scale) << "I_or, S = " << i;
    EXPECT_NEAR(za[i] + so[i], v[i] + q[i], 1e-9 * scale) << "universal matching, S = " << i;
    l1 += std::fabs(a[i]) + std::fabs(o[i]);
  }
  EXPECT_NEAR(loss, l1, 1e-12 * std::max(1.0, l1));
}

}  // namespace

TEST(OptimalSolver, OrSynthesisTransposeIsTheTranspose) {
  const int n = 4;
  const std::size_t len = 16;
  const auto syn = harsanyi::testing::dense_matrix(n, [&](double* x) { or_synthesis(x, n); });
  const auto tr =
      harsanyi::testing::dense_matrix(n, [&](double* x) { or_synthesis_transpose(x, n); });
  for (std::size_t i = 0; i < len; ++i)
    for (std::size_t j = 0; j < len; ++j) EXPECT_EQ(tr[i * len + j], syn[j * len + i]);
}

TEST(OptimalSolver, ReferenceCaseReachesTheLpOptimum) {
  const auto ref = load_reference();
  const int n = ref["n"];
  const std::vector<double> v = ref["values"];
  const double opt_value = ref["l1_optimum"];
  OptimalOptions opt;
  opt.qthres = ref["solver"]["qthres"];  // the LP optimum of the file uses the sgd run's qthres
  const double b = qbound(v, opt.qthres);
  ASSERT_NEAR(b, ref["solver"]["qbound"].get<double>(), 1e-15);
  AndOrBatch<double> out;
  fit_and_or_optimal_batch(v.data(), 1, n, opt, out);
  std::printf("reference: loss %.12g bound %.12g optimum %.12g, %lld iterations\n", out.loss[0],
              out.bound[0], opt_value, static_cast<long long>(out.iterations[0]));
  EXPECT_LT(std::fabs(out.loss[0] - opt_value) / opt_value, 1e-2);
  EXPECT_GE(out.loss[0], opt_value * (1 - 1e-9));
  EXPECT_LE(out.bound[0], opt_value * (1 + 1e-9));
  EXPECT_GE(out.bound[0], out.loss[0] * (1 - opt.tol));
  EXPECT_LT(out.iterations[0], opt.max_iters);
  check_invariants(v, n, b, out.and_.data(), out.or_.data(), out.p.data(), out.q.data(),
                   out.loss[0]);
  // far below the papers' sgd result on the same game (DESIGN §2.1)
  EXPECT_LT(out.loss[0], 0.7 * ref["loss_final"].get<double>());
}

TEST(OptimalSolver, ExactOptimaOfSmallGames) {
  struct Game {
    const char* name;
    int n;
    std::vector<double> v;
    double qthres;
  };
  std::vector<Game> games;
  for (int n : {3, 4}) {
    std::vector<double> v(std::size_t{1} << n);
    std::uint64_t x = 12345 + n;
    for (auto& e : v) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      e = static_cast<double>((x >> 11) % 2001) / 100.0 - 10.0;  // uniform in [-10, 10]
    }
    games.push_back({"random", n, v, 0.04});
  }
  for (int n : {4, 5}) {
    games.push_back({"planted", n, random_planted_game(n, n, 3, 77 + n).values(), 0.04});
    games.push_back({"planted, qthres 0", n, random_planted_game(n, 2, 2, 91 + n).values(), 0.0});
  }
  for (const auto& g : games) {
    const double b = qbound(g.v, g.qthres);
    const double exact = exact_optimum(g.v, g.n, b);
    OptimalOptions opt;
    opt.qthres = g.qthres;
    opt.tol = 1e-6;
    opt.max_iters = 2000000;
    AndOrBatch<double> out;
    fit_and_or_optimal_batch(g.v.data(), 1, g.n, opt, out);
    std::printf("%s n = %d: exact %.12g, loss %.12g, bound %.12g, %lld iterations\n", g.name, g.n,
                exact, out.loss[0], out.bound[0], static_cast<long long>(out.iterations[0]));
    const double tiny = 1e-9 * std::max(1.0, exact);
    EXPECT_LE(out.bound[0], exact + tiny) << g.name << " n = " << g.n;
    EXPECT_GE(out.loss[0], exact - tiny) << g.name << " n = " << g.n;
    EXPECT_LE(out.loss[0] - out.bound[0], opt.tol * out.loss[0] + tiny) << g.name;
    check_invariants(g.v, g.n, b, out.and_.data(), out.or_.data(), out.p.data(), out.q.data(),
                     out.loss[0]);
  }
}

TEST(OptimalSolver, PlantedGameWithoutNoiseIsRecovered) {
  // With qthres = 0 and a planted game of AND terms only, the optimum is at most the planted
  // L1 norm (plus the base in I(∅)); the solver must get there.
  PlantedGame g;
  g.n = 6;
  g.base = 0.0;
  g.and_terms = {{0b000011, 3.0}, {0b011100, -2.0}, {0b100001, 5.0}};
  const auto v = g.values();
  OptimalOptions opt;
  opt.qthres = 0.0;
  opt.tol = 1e-6;
  AndOrBatch<double> out;
  fit_and_or_optimal_batch(v.data(), 1, g.n, opt, out);
  EXPECT_LE(out.loss[0], 10.0 * (1 + 1e-6));
  EXPECT_LE(out.bound[0], 10.0 + 1e-9);
  EXPECT_GE(out.bound[0], out.loss[0] * (1 - opt.tol));
}

TEST(OptimalSolver, BoundIsCertifiedForAnyDualCandidate) {
  // D(μ / c) with a random μ never exceeds the exact optimum (weak duality), and μ = 0 gives 0.
  const int n = 4;
  const auto v = random_planted_game(n, 3, 2, 5).values();
  const double b = qbound(v, 0.04), exact = exact_optimum(v, n, b);
  std::vector<double> mu(v.size()), work(v.size());
  EXPECT_EQ(optimal_dual_bound(mu.data(), v.data(), n, b, work.data()), 0.0);
  std::uint64_t x = 3;
  for (int trial = 0; trial < 200; ++trial) {
    for (auto& m : mu) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      m = static_cast<double>((x >> 11) % 2001) / 1000.0 - 1.0;
    }
    EXPECT_LE(optimal_dual_bound(mu.data(), v.data(), n, b, work.data()), exact + 1e-12);
  }
}

namespace {

// The order of the iteration's three sums (optimal_element_step.h), written out plainly: chunks
// of L = min(2^n, 4096) elements; in a chunk 32 lanes from 0.0, lane l adding elements
// l, l+32, ... in order; the lanes combined by acc[l] = acc[l] + acc[l+off] for off = 16..1,
// l < off; the chunks' acc[0] added in chunk order from 0.0.
double literal_lane_tree_sum(const std::vector<double>& t, int n) {
  const std::size_t len = std::size_t{1} << n;
  const std::size_t L = std::min<std::size_t>(len, 4096);
  double total = 0.0;
  for (std::size_t c = 0; c < len / L; ++c) {
    double acc[32];
    for (int l = 0; l < 32; ++l) {
      acc[l] = 0.0;
      for (std::size_t j = l; j < L; j += 32) acc[l] += t[c * L + j];
    }
    for (int off = 16; off >= 1; off /= 2)
      for (int l = 0; l < off; ++l) acc[l] = acc[l] + acc[l + off];
    total += acc[0];
  }
  return total;
}

}  // namespace

TEST(OptimalSolver, IterationSumsFollowTheLaneTreeOrder) {
  bool order_shows = false;  // the data tell this order from the plain sequential one
  for (int n = 0; n <= 14; ++n) {
    SCOPED_TRACE("n=" + std::to_string(n));
    const std::size_t len = std::size_t{1} << n;
    std::mt19937_64 rng(1000 + n);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    std::uniform_int_distribution<int> e(-40, 40);
    std::vector<double> t[3];
    for (int k = 0; k < 3; ++k) {
      t[k].resize(len);
      for (auto& x : t[k]) x = std::ldexp(k == 0 ? u(rng) : std::fabs(u(rng)), e(rng));
    }
    auto sums = [&](int threads) {
      omp_set_num_threads(threads);
      return optimal_step::lane_tree_sums<3>(len, true,
                                             [&](std::size_t i, optimal_step::LaneAcc<3> acc) {
                                               for (int k = 0; k < 3; ++k) acc[k] += t[k][i];
                                             });
    };
    const auto one = sums(1), two = sums(2);
    omp_set_num_threads(2);
    const auto serial = optimal_step::lane_tree_sums<3>(
        len, false, [&](std::size_t i, optimal_step::LaneAcc<3> acc) {
          for (int k = 0; k < 3; ++k) acc[k] += t[k][i];
        });
    for (int k = 0; k < 3; ++k) {
      const double want = literal_lane_tree_sum(t[k], n);
      EXPECT_EQ(one[k], want) << "sum " << k << ", 1 thread";
      EXPECT_EQ(two[k], want) << "sum " << k << ", 2 threads";
      EXPECT_EQ(serial[k], want) << "sum " << k << ", not threaded";
      double seq = 0.0;
      for (double x : t[k]) seq += x;
      order_shows = order_shows || seq != want;
    }
  }
  EXPECT_TRUE(order_shows);
}

TEST(OptimalSolver, BatchIsThreadIndependentAndEqualsSingleFits) {
  const int n = 9;
  const std::size_t samples = 3, len = std::size_t{1} << n;
  std::vector<double> v(samples * len);
  for (std::size_t s = 0; s < samples; ++s) {
    const auto g = random_planted_game(n, n, 4, 40 + s).values();
    for (std::size_t i = 0; i < len; ++i) v[s * len + i] = g[i] + 0.2 * std::sin(0.7 * i + s);
  }
  OptimalOptions opt;
  opt.max_iters = 3000;
  opt.trace_every = 500;
  AndOrBatch<double> two, one;
  omp_set_num_threads(2);
  fit_and_or_optimal_batch(v.data(), samples, n, opt, two);
  omp_set_num_threads(1);
  fit_and_or_optimal_batch(v.data(), samples, n, opt, one);
  omp_set_num_threads(2);
  EXPECT_EQ(two.and_, one.and_);
  EXPECT_EQ(two.or_, one.or_);
  EXPECT_EQ(two.p, one.p);
  EXPECT_EQ(two.q, one.q);
  EXPECT_EQ(two.loss, one.loss);
  EXPECT_EQ(two.bound, one.bound);
  EXPECT_EQ(two.iterations, one.iterations);
  ASSERT_EQ(two.trace.size(), samples * 7);
  EXPECT_EQ(two.trace, one.trace);
  std::vector<double> a(len), o(len), p(len), q(len);
  const auto st = fit_and_or_optimal(v.data() + len, n, opt, a.data(), o.data(), p.data(),
                                     q.data(), nullptr);
  EXPECT_EQ(st.loss, two.loss[1]);
  EXPECT_EQ(st.bound, two.bound[1]);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), two.and_.begin() + len));
  // the trace is non-increasing (the best loss so far) and starts at the sgd's iteration-0 loss
  for (std::size_t t = 1; t < 7; ++t) EXPECT_LE(two.trace[t], two.trace[t - 1]);
}

TEST(OptimalSolver, LargeSampleThreadedInsideEqualsSerial) {
  const int n = 16;  // at the elementwise-threading threshold
  const std::size_t len = std::size_t{1} << n;
  std::vector<double> v(len);
  for (std::size_t i = 0; i < len; ++i) v[i] = std::cos(0.011 * i) * (1 + (i % 3));
  OptimalOptions opt;
  opt.max_iters = 40;
  opt.check_every = 16;
  AndOrBatch<double> par, ser;
  omp_set_num_threads(2);
  fit_and_or_optimal_batch(v.data(), 1, n, opt, par);
  omp_set_num_threads(1);
  fit_and_or_optimal_batch(v.data(), 1, n, opt, ser);
  omp_set_num_threads(2);
  EXPECT_EQ(par.and_, ser.and_);
  EXPECT_EQ(par.q, ser.q);
  EXPECT_EQ(par.loss, ser.loss);
  EXPECT_EQ(par.bound, ser.bound);
}

TEST(OptimalSolver, Float32IsCloseToFloat64) {
  const auto ref = load_reference();
  const int n = ref["n"];
  const std::vector<double> v = ref["values"];
  std::vector<float> vf(v.begin(), v.end());
  OptimalOptions opt;
  opt.qthres = ref["solver"]["qthres"];
  opt.tol = 1e-2;
  AndOrBatch<float> f;
  fit_and_or_optimal_batch(vf.data(), 1, n, opt, f);
  const double opt_value = ref["l1_optimum"];
  EXPECT_LT(std::fabs(f.loss[0] - opt_value) / opt_value, 2e-2);
  EXPECT_LE(f.bound[0], opt_value * (1 + 1e-6));
  for (float qi : f.q) EXPECT_LE(std::fabs(qi), static_cast<float>(qbound(v, opt.qthres)));
}

TEST(OptimalSolver, NonConvergedRunReportsItsGap) {
  const auto ref = load_reference();
  const std::vector<double> v = ref["values"];
  OptimalOptions opt;
  opt.qthres = ref["solver"]["qthres"];
  opt.max_iters = 100;
  AndOrBatch<double> out;
  fit_and_or_optimal_batch(v.data(), 1, ref["n"].get<int>(), opt, out);
  EXPECT_EQ(out.iterations[0], 100);
  EXPECT_GT(out.loss[0] - out.bound[0], opt.tol * out.loss[0]);
  EXPECT_LE(out.bound[0], ref["l1_optimum"].get<double>());
}

TEST(SolverDispatch, ChoosesTheSolverAndChecksOptions) {
  const auto ref = load_reference();
  const std::vector<double> v = ref["values"];
  const int n = ref["n"];
  SolverOptions so;
  so.sgd.iters = 50;
  AndOrBatch<double> out;
  fit_and_or_batch(v.data(), 1, n, so, false, out);
  ASSERT_EQ(out.bound.size(), 1u);
  EXPECT_TRUE(std::isnan(out.bound[0]));
  EXPECT_EQ(out.iterations[0], 50);
  EXPECT_EQ(std::string(and_or_progress_unit(so)), "it");
  EXPECT_EQ(and_or_progress_work(so, 3), 150u);
  so.solver = "optimal";
  so.optimal.qthres = 0.02;
  fit_and_or_batch(v.data(), 1, n, so, false, out);
  EXPECT_FALSE(std::isnan(out.bound[0]));
  EXPECT_LE(out.bound[0], out.loss[0]);
  EXPECT_EQ(and_or_progress_work(so, 3), 3u);
  EXPECT_GT(and_or_bytes_per_sample(so, 10, 8), std::size_t{17} * 8 * 1024);
  so.optimal.tol = 0;
  EXPECT_THROW(check_solver_options(so), UserError);
  so.optimal.tol = 1e-3;
  so.solver = "magic";
  EXPECT_THROW(check_solver_options(so), UserError);
}
