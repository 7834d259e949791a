// The optimal AND-OR solver: restarted reflected Halpern PDHG with a certified bound.
// See optimal_solver.h for the method and DESIGN §2 for the objective.
#include "optimal_solver.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

#include "lattice_transforms.h"
#include "optimal_element_step.h"
#include "optimal_internal.h"
#include "progress.h"
#include "sgd_element_step.h"
#include "sample_schedule.h"

namespace harsanyi {

int optimal_trace_length(const OptimalOptions& opt) {
  if (opt.trace_every <= 0 || opt.max_iters < 0) return 0;
  return opt.max_iters / opt.trace_every + 1;
}

std::size_t optimal_bytes_per_sample(int n, std::size_t element_size) {
  // v, the outputs (I_and, I_or, p, q), the iterate (x, y, λ_a, λ_o), the anchor, the new point
  // and the two transform buffers: 17 arrays of T; the certificate: 3 arrays of double.
  return subset_count(n) * (17 * element_size + 3 * sizeof(double));
}

template <class T> void or_synthesis_transpose(T* data, int n) {
  const std::size_t len = subset_count(n);
  std::reverse(data, data + len);
  zeta_transpose(data, n);
  const T w0 = data[0];
  for (std::size_t i = 1; i < len; ++i) data[i] = w0 - data[i];
}

namespace {

constexpr std::size_t kChunk = optimal_step::kSumChunk;

inline bool elementwise_threads(std::size_t len) {
  return len >= (std::size_t{1} << 16) && !omp_in_parallel();
}

// Sums of K per-element terms over [0, len): fixed chunks of kChunk elements, each summed in
// element order, chunks summed in chunk order, so the result is independent of the threads.
// f(i, acc) adds element i's terms into acc[0..K-1].
template <int K, class F> std::array<double, K> chunked_sums(std::size_t len, bool par, F&& f) {
  const std::size_t chunks = (len + kChunk - 1) / kChunk;
  std::vector<std::array<double, K>> partial(chunks);
#pragma omp parallel for schedule(static) if (par)
  for (std::size_t c = 0; c < chunks; ++c) {
    std::array<double, K> acc{};
    const std::size_t end = std::min(len, (c + 1) * kChunk);
    for (std::size_t i = c * kChunk; i < end; ++i) f(i, acc);
    partial[c] = acc;
  }
  std::array<double, K> total{};
  for (const auto& p : partial)
    for (int k = 0; k < K; ++k) total[k] += p[k];
  return total;
}

double max_abs(const double* x, std::size_t len) {
  double m = 0.0;
  for (std::size_t i = 0; i < len; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

// Diagonal step sizes of n players (shared by the samples of a batch).
template <class T> struct Steps {
  LatticeVector<T> tx, ty, sa, so;
  explicit Steps(int n) {
    const std::size_t len = subset_count(n);
    tx.resize(len);
    ty.resize(len);
    sa.resize(len);
    so.resize(len);
    for (std::size_t s = 0; s < len; ++s) optimal_step::pc_steps(s, n, tx[s], ty[s], sa[s], so[s]);
  }
};

}  // namespace

namespace optimal_detail {

template <class T>
double feasible_objective(const T* v, const T* x, const T* y, T b, int n, bool par, T* p, T* q,
                          T* a, T* o) {
  const std::size_t len = subset_count(n);
#pragma omp parallel for schedule(static) if (par)
  for (std::size_t i = 0; i < len; ++i) {
    optimal_step::feasible_pq(v[i], b, x[i], y[i], p[i], q[i]);
    sgd_step::split(v[i], q[i], p[i], a[i], o[i]);
  }
  moebius_transform(a, n);
  or_transform(o, n);
  return sum_abs(a, len) + sum_abs(o, len);
}

}  // namespace optimal_detail

namespace {

using optimal_detail::Crossover;
using optimal_detail::crossover_attempt;
using optimal_detail::crossover_estimate;
using optimal_detail::feasible_objective;

template <class T> struct Workspace {
  LatticeVector<T> x, y, la, lo, x0, y0, la0, lo0, xn, yn, ka, ko;
  std::vector<double> mu_a, mu_o, work, vd;
  explicit Workspace(std::size_t len)
      : x(len), y(len), la(len), lo(len), x0(len), y0(len), la0(len), lo0(len), xn(len),
        yn(len), ka(len), ko(len), mu_a(len), mu_o(len), work(len), vd(len) {}
};

// Best certified bound from the dual point (λ_a, λ_o): candidates Mᵀλ_a, Oᵀλ_o and their mean.
template <class T>
double certify(const T* lam_a, const T* lam_o, int n, double b, Workspace<T>& w) {
  const std::size_t len = subset_count(n);
  for (std::size_t i = 0; i < len; ++i) {
    w.mu_a[i] = static_cast<double>(lam_a[i]);
    w.mu_o[i] = static_cast<double>(lam_o[i]);
  }
  moebius_transpose(w.mu_a.data(), n);
  or_transform_transpose(w.mu_o.data(), n);
  double best = optimal_dual_bound(w.mu_a.data(), w.vd.data(), n, b, w.work.data());
  best = std::max(best, optimal_dual_bound(w.mu_o.data(), w.vd.data(), n, b, w.work.data()));
  for (std::size_t i = 0; i < len; ++i) w.mu_a[i] = 0.5 * (w.mu_a[i] + w.mu_o[i]);
  return std::max(best, optimal_dual_bound(w.mu_a.data(), w.vd.data(), n, b, w.work.data()));
}

}  // namespace

namespace optimal_detail {
namespace {

// ---------------------------------------------------------------------------------------------
// Crossover ("reduced LP polishing"). Near the optimum the nonzeros of (a, o) = (I_and, I_or)
// and the box rows the iterate touches are few at sparse optima. The LP restricted to a column
// set C (candidate nonzeros) and a row set R (candidate active rows) is small; it is solved
// exactly through its dual
//
//     max Σ_{S∈R} μ_S v_S − b|μ_S|   s.t.  |[Zᵀ; O⁻ᵀ]_{C,R} μ_R| ≤ 1
//
// (μ = μ⁺ − μ⁻ ≥ 0 splits; the origin is feasible, so one phase of a dense tableau simplex),
// whose final tableau also gives the restricted primal a_C (the multipliers of its rows). The
// dual μ (zero outside R) is then checked on every column with the fast transforms, the primal
// on every row; violated columns join C and violated rows join R, and the restricted LP is
// solved again (column and row generation). Both results stay valid whatever C and R are: the
// primal is projected onto the box and evaluated, the dual rescaled to feasibility (the usual
// certificate). When no column and no row is violated, they are optimal and the gap closes to
// rounding. Columns a_T and o_T with |T| <= 1 are the same column (the OR terms of order <= 1
// duplicate the AND terms), so o_T is merged into a_T there.

// Entry (S, column c) of [Z O⁻¹]: c < len is a_T (1[T ⊆ S]), c >= len is o_T with T = c − len
// (O⁻¹: 1 for T = ∅, else 1[T ∩ S ≠ ∅]).
inline double basis_entry(std::uint64_t s, std::uint64_t c, std::uint64_t len) {
  if (c < len) return (c & s) == c ? 1.0 : 0.0;
  const std::uint64_t t = c - len;
  return (t == 0 || (t & s) != 0) ? 1.0 : 0.0;
}

// The restricted dual LP above by a dense tableau simplex (Dantzig's rule, Bland's after
// 4·(rows + columns) pivots against cycling). Fills cx.mu_r (|R|) and cx.a_c (|C|); false when
// unbounded (the restricted primal is infeasible: C is too small) or out of pivots. `units`
// accumulates the work.
bool solve_restricted(const double* vd, double bd, std::uint64_t len, Crossover& cx,
                      double& units, double budget) {
  const std::size_t nr = cx.rows.size(), ncol = cx.cols.size();
  const std::size_t m = 2 * ncol;             // constraints: +col, −col
  const std::size_t nv = 2 * nr;              // structural: μ⁺_S, μ⁻_S
  const std::size_t w = nv + m + 1;           // + slacks + rhs
  if (units + 16.0 * static_cast<double>((m + 1) * w) > budget) return false;  // too big now
  cx.tab.assign((m + 1) * w, 0.0);
  double* t = cx.tab.data();
  for (std::size_t j = 0; j < ncol; ++j) {
    double* rp = t + (2 * j) * w;
    double* rn = t + (2 * j + 1) * w;
    for (std::size_t i = 0; i < nr; ++i) {
      const double e = basis_entry(cx.rows[i], cx.cols[j], len);
      rp[2 * i] = e;
      rp[2 * i + 1] = -e;
      rn[2 * i] = -e;
      rn[2 * i + 1] = e;
    }
    rp[nv + 2 * j] = 1.0;
    rn[nv + 2 * j + 1] = 1.0;
    rp[w - 1] = rn[w - 1] = 1.0;
  }
  double* obj = t + m * w;  // reduced costs c_B B⁻¹ A_j − c_j; the objective value at w − 1
  for (std::size_t i = 0; i < nr; ++i) {
    obj[2 * i] = -(vd[cx.rows[i]] - bd);
    obj[2 * i + 1] = -(-vd[cx.rows[i]] - bd);
  }
  cx.basis.resize(m);
  for (std::size_t r = 0; r < m; ++r) cx.basis[r] = nv + r;
  const double eps = 1e-10;
  const std::size_t bland_after = 4 * (m + nv), max_pivots = 50 * (m + nv);
  std::size_t pivots = 0;
  double work = 8.0 * static_cast<double>((m + 1) * w);  // work units (see below)
  std::vector<std::size_t> nz;                       // nonzeros of the pivot row
  for (;; ++pivots) {
    if (pivots >= max_pivots) return false;
    if (units + work > budget) {
      units += work;
      return false;  // over the work budget of this attempt
    }
    const bool bland = pivots >= bland_after;
    std::size_t enter = w;
    double best = -eps;
    for (std::size_t j = 0; j + 1 < w; ++j)
      if (obj[j] < best) {
        enter = j;
        if (bland) break;
        best = obj[j];
      }
    if (enter == w) break;  // optimal
    std::size_t leave = m;
    double ratio = 0.0;
    for (std::size_t r = 0; r < m; ++r) {
      const double p = t[r * w + enter];
      if (p > eps) {
        const double q = t[r * w + w - 1] / p;
        if (leave == m || q < ratio - 1e-12 ||
            (q <= ratio + 1e-12 && cx.basis[r] < cx.basis[leave])) {
          leave = r;
          ratio = q;
        }
      }
    }
    if (leave == m) return false;  // unbounded
    double* pr = t + leave * w;
    const double inv = 1.0 / pr[enter];
    nz.clear();
    for (std::size_t j = 0; j < w; ++j)
      if (pr[j] != 0.0) {
        pr[j] *= inv;
        nz.push_back(j);
      }
    pr[enter] = 1.0;
    std::size_t touched = 0;
    for (std::size_t r = 0; r <= m; ++r) {
      if (r == leave) continue;
      double* rr = t + r * w;
      const double f = rr[enter];
      if (f == 0.0) continue;
      ++touched;
      for (const std::size_t j : nz) rr[j] -= f * pr[j];
      rr[enter] = 0.0;
    }
    cx.basis[leave] = enter;
    // a tableau update costs ~8× an iteration's unit (a transform's element step)
    work += 8.0 * (static_cast<double>(w + m) + static_cast<double>(touched * nz.size()));
  }
  units += work;
  cx.mu_r.assign(nr, 0.0);
  for (std::size_t r = 0; r < m; ++r) {
    const std::size_t b = cx.basis[r];
    if (b < nv) cx.mu_r[b / 2] += (b % 2 == 0 ? 1.0 : -1.0) * t[r * w + w - 1];
  }
  cx.a_c.resize(ncol);
  for (std::size_t j = 0; j < ncol; ++j) cx.a_c[j] = obj[nv + 2 * j] - obj[nv + 2 * j + 1];
  return true;
}

// Rows the point touches (|q| at the bound, up to rounding).
inline double touch_edge(const double* vd, double bd, std::uint64_t len) {
  double vmax = 0.0;
  for (std::uint64_t s = 0; s < len; ++s) vmax = std::max(vmax, std::fabs(vd[s]));
  return bd - 1e-10 * (vmax + bd);
}

}  // namespace

// Estimated work units of a crossover attempt at a point with feasible form q: a restricted LP
// of about |R| rows and |R| columns takes ~4|R| pivots on a 2|R| × 4|R| tableau. Infinite when
// more than max_basis rows are touched.
template <class T>
double crossover_estimate(const T* q, const double* vd, double bd, int n, std::size_t max_basis) {
  const std::uint64_t len = subset_count(n);
  const double edge = touch_edge(vd, bd, len);
  std::size_t m = 0;
  for (std::uint64_t s = 0; s < len; ++s)
    if (std::fabs(static_cast<double>(q[s])) >= edge) ++m;
  if (m == 0 || m > max_basis) return std::numeric_limits<double>::infinity();
  const double md = static_cast<double>(m);
  return 32.0 * md * md * md + static_cast<double>(len) * (8 * n + 40);
}

// Value of candidate column c of the point (a, o) (merged for |T| <= 1).
template <class T> double column_value(const T* a, const T* o, std::uint64_t c, std::uint64_t len) {
  if (c >= len) return static_cast<double>(o[c - len]);
  return static_cast<double>(a[c]) + ((c & (c - 1)) == 0 ? static_cast<double>(o[c]) : 0.0);
}

// One crossover attempt at the current point (I_and a, I_or o and q of its feasible form).
// Returns false when no restricted LP could be solved; else fills xb, yb (the restricted
// primal, x = Z a, y = O⁻¹ o) and mu (the restricted dual, zero outside R). `units` returns
// the work spent.
template <class T>
bool crossover_attempt(const T* a, const T* o, const T* q, const double* vd, double bd, int n,
                       std::size_t max_basis, double budget, Crossover& cx, double* full_a,
                       double* full_o, T* xb, T* yb, double* mu, double& units) {
  const std::uint64_t len = subset_count(n);
  units = static_cast<double>(len) * (n + 8);
  double vmax = 0.0;
  for (std::uint64_t s = 0; s < len; ++s) vmax = std::max(vmax, std::fabs(vd[s]));
  const double edge = touch_edge(vd, bd, len);
  cx.rows.clear();
  for (std::uint64_t s = 0; s < len; ++s)
    if (std::fabs(static_cast<double>(q[s])) >= edge) {
      if (cx.rows.size() >= max_basis) return false;
      cx.rows.push_back(s);
    }
  if (cx.rows.empty()) return false;
  // columns: the |R| largest entries of the point
  cx.cand.clear();
  for (std::uint64_t t = 0; t < len; ++t) {
    const bool low = (t & (t - 1)) == 0;
    cx.cand.emplace_back(std::fabs(column_value(a, o, t, len)), t);
    if (!low) cx.cand.emplace_back(std::fabs(static_cast<double>(o[t])), len + t);
  }
  auto by_size = [](const auto& x, const auto& y) {
    return x.first > y.first || (x.first == y.first && x.second < y.second);
  };
  const std::size_t take = std::min(cx.rows.size(), cx.cand.size());
  std::partial_sort(cx.cand.begin(), cx.cand.begin() + static_cast<std::ptrdiff_t>(take),
                    cx.cand.end(), by_size);
  cx.cols.clear();
  for (std::size_t j = 0; j < take && cx.cand[j].first > 0; ++j) cx.cols.push_back(cx.cand[j].second);
  std::sort(cx.cols.begin(), cx.cols.end());
  // The restricted primal (values a_c of the columns `cols`) on the full lattice: the AND part
  // in full_a, the OR part in full_o.
  const auto synthesize = [&](const std::vector<std::uint64_t>& cols) {
    std::fill(full_a, full_a + len, 0.0);
    std::fill(full_o, full_o + len, 0.0);
    for (std::size_t j = 0; j < cols.size(); ++j) {
      const std::uint64_t c = cols[j];
      if (c < len)
        full_a[c] = cx.a_c[j];
      else
        full_o[c - len] = cx.a_c[j];
    }
    zeta_transform(full_a, n);
    or_synthesis(full_o, n);
  };
  bool solved = false;
  for (int round = 0; round < 12; ++round) {
    if (cx.rows.size() > max_basis || cx.cols.size() > max_basis) break;
    if (!solve_restricted(vd, bd, len, cx, units, budget)) break;
    solved = true;
    cx.sol_cols = cx.cols;
    // the restricted primal and dual on the full lattice
    synthesize(cx.cols);
    std::fill(mu, mu + len, 0.0);
    for (std::size_t i = 0; i < cx.rows.size(); ++i) mu[cx.rows[i]] = cx.mu_r[i];
    units += static_cast<double>(len) * (4 * n + 16);
    // violated rows: |x + y − v| > b
    std::vector<std::pair<double, std::uint64_t>> bad_rows, bad_cols;
    for (std::uint64_t s = 0; s < len; ++s) {
      const double ex = std::fabs(full_a[s] + full_o[s] - vd[s]) - bd;
      if (ex > 1e-9 * (vmax + bd)) bad_rows.emplace_back(ex, s);
    }
    // violated columns: |Zᵀμ| > 1, |O⁻ᵀμ| > 1 (xb, yb hold the point afterwards)
    std::copy(mu, mu + len, full_a);
    zeta_transpose(full_a, n);
    for (std::uint64_t t = 0; t < len; ++t)
      if (std::fabs(full_a[t]) > 1 + 1e-9) bad_cols.emplace_back(std::fabs(full_a[t]), t);
    std::copy(mu, mu + len, full_a);
    or_synthesis_transpose(full_a, n);
    for (std::uint64_t t = 0; t < len; ++t)
      if ((t & (t - 1)) != 0 && std::fabs(full_a[t]) > 1 + 1e-9)
        bad_cols.emplace_back(std::fabs(full_a[t]), len + t);
    if (bad_rows.empty() && bad_cols.empty()) break;  // optimal
    if (round == 11) break;
    const std::size_t add_r = std::max<std::size_t>(8, cx.rows.size() / 4);
    const std::size_t add_c = std::max<std::size_t>(8, cx.cols.size() / 4);
    auto add = [&](std::vector<std::pair<double, std::uint64_t>>& bad, std::size_t k,
                   std::vector<std::uint64_t>& set) {
      k = std::min(k, bad.size());
      std::partial_sort(bad.begin(), bad.begin() + static_cast<std::ptrdiff_t>(k), bad.end(),
                        by_size);
      for (std::size_t i = 0; i < k; ++i) set.push_back(bad[i].second);
      std::sort(set.begin(), set.end());
      set.erase(std::unique(set.begin(), set.end()), set.end());
    };
    add(bad_rows, add_r, cx.rows);
    add(bad_cols, add_c, cx.cols);
  }
  if (!solved) return false;
  // xb, yb: the last restricted primal (recomputed: full_a was reused for the pricing)
  synthesize(cx.sol_cols);
  for (std::uint64_t s = 0; s < len; ++s) {
    xb[s] = static_cast<T>(full_a[s]);
    yb[s] = static_cast<T>(full_o[s]);
  }
  return true;
}

}  // namespace optimal_detail

namespace {

template <class T>
OptimalStats fit_one(const T* v, int n, const OptimalOptions& opt, const Steps<T>& st, T* a,
                     T* o, T* p, T* q, double* trace) {
  const std::size_t len = subset_count(n);
  const bool par = elementwise_threads(len);
  const double bd = opt.qthres * std::fabs(static_cast<double>(v[len - 1]) -
                                           static_cast<double>(v[0]));
  const T b = static_cast<T>(bd);
  Workspace<T> w(len);
  for (std::size_t i = 0; i < len; ++i) {
    w.vd[i] = static_cast<double>(v[i]);
    w.x[i] = w.y[i] = T(0.5) * v[i];
    w.la[i] = w.lo[i] = T(0);
  }
  w.x0 = w.x;
  w.y0 = w.y;
  w.la0 = w.la;
  w.lo0 = w.lo;

  OptimalStats stats;
  double best_loss = std::numeric_limits<double>::infinity();
  double best_bound = -std::numeric_limits<double>::infinity();
  LatticeVector<T> pt(len), qt(len);  // candidate p, q
  auto evaluate = [&](const T* x, const T* y) {
    const double loss = feasible_objective(v, x, y, b, n, par, pt.data(), qt.data(), a, o);
    if (loss < best_loss) {
      best_loss = loss;
      std::copy(pt.begin(), pt.end(), p);
      std::copy(qt.begin(), qt.end(), q);
    }
  };
  auto gap_closed = [&] {
    return best_loss - best_bound <= opt.tol * std::max(std::fabs(best_loss), 1e-300);
  };
  // Iteration 0: the starting point (p = 0, q = 0, the sgd protocol's start) and the trivial
  // certificate μ = 0.
  evaluate(w.x.data(), w.y.data());
  best_bound = 0.0;
  const int tl = optimal_trace_length(opt);
  if (trace && tl > 0) trace[0] = best_loss;

  optimal_step::RestartControl ctl;
  ctl.omega = optimal_detail::initial_primal_weight(opt);
  std::int64_t it = 0;
  bool converged = gap_closed();
  Crossover cx;
  LatticeVector<T> xb, yb;  // the crossover's primal point (allocated at its first attempt)
  const double iter_units = optimal_detail::iteration_units(n);
  while (!converged && it < opt.max_iters) {
    ++it;
    cx.credit += iter_units;
    const T tau_scale = static_cast<T>(optimal_detail::kStepEta / ctl.omega);
    const T sigma_scale = static_cast<T>(ctl.omega);
    // Mᵀλ_a, Oᵀλ_o
    std::copy(w.la.begin(), w.la.end(), w.xn.begin());
    std::copy(w.lo.begin(), w.lo.end(), w.yn.begin());
    moebius_transpose(w.xn.data(), n);
    or_transform_transpose(w.yn.data(), n);
    // primal step and extrapolation
#pragma omp parallel for schedule(static) if (par)
    for (std::size_t i = 0; i < len; ++i)
      optimal_step::primal_step(v[i], b, w.x[i], w.y[i], w.xn[i], w.yn[i], tau_scale * st.tx[i],
                                tau_scale * st.ty[i], w.xn[i], w.yn[i], w.ka[i], w.ko[i]);
    moebius_transform(w.ka.data(), n);
    or_transform(w.ko.data(), n);
    // dual step; fixed-point residual in the step metric; distances from the anchor
    // (the order of these three sums: optimal_element_step.h, lane_tree_sums)
    const auto sums = optimal_step::lane_tree_sums<3>(len, par, [&](std::size_t i,
                                                                    optimal_step::LaneAcc<3> acc) {
      const T sa = sigma_scale * st.sa[i], so = sigma_scale * st.so[i];
      const T lan = optimal_step::dual_step(w.la[i], sa, w.ka[i]);
      const T lon = optimal_step::dual_step(w.lo[i], so, w.ko[i]);
      w.ka[i] = lan;
      w.ko[i] = lon;
      const double dx = static_cast<double>(w.xn[i]) - static_cast<double>(w.x[i]);
      const double dy = static_cast<double>(w.yn[i]) - static_cast<double>(w.y[i]);
      const double da = static_cast<double>(lan) - static_cast<double>(w.la[i]);
      const double dd = static_cast<double>(lon) - static_cast<double>(w.lo[i]);
      const double txs = static_cast<double>(tau_scale * st.tx[i]);
      const double tys = static_cast<double>(tau_scale * st.ty[i]);
      acc[0] += dx * dx / txs + dy * dy / tys + da * da / static_cast<double>(sa) +
                dd * dd / static_cast<double>(so);
      const double ex = static_cast<double>(w.xn[i]) - static_cast<double>(w.x0[i]);
      const double ey = static_cast<double>(w.yn[i]) - static_cast<double>(w.y0[i]);
      const double ea = static_cast<double>(lan) - static_cast<double>(w.la0[i]);
      const double eo = static_cast<double>(lon) - static_cast<double>(w.lo0[i]);
      acc[1] += ex * ex + ey * ey;
      acc[2] += ea * ea + eo * eo;
    });
    // loss, bound and trace at the new point
    const bool trace_point = trace && tl > 0 && it % opt.trace_every == 0;
    if (it % opt.check_every == 0 || trace_point || it == opt.max_iters) {
      evaluate(w.xn.data(), w.yn.data());
      best_bound = std::max(best_bound, certify(w.ka.data(), w.ko.data(), n, bd, w));
      converged = gap_closed();
      // A crossover attempt may take 2× the work of the iterations since the last one, and
      // waits for as much work as the last one took (so crossovers take at most about 2/3 of
      // the time, usually far less) and for a point that touches few enough rows for the
      // restricted LP to be affordable.
      if (!converged && opt.max_basis > 0 && cx.credit >= cx.need &&
          cx.credit >= crossover_estimate(qt.data(), w.vd.data(), bd, n,
                                          static_cast<std::size_t>(opt.max_basis))) {
        if (xb.empty()) {
          xb.resize(len);
          yb.resize(len);
          cx.mu.resize(len);
        }
        double units = 0.0;
        const bool formed = crossover_attempt(a, o, qt.data(), w.vd.data(), bd, n,
                                              static_cast<std::size_t>(opt.max_basis),
                                              2.0 * cx.credit, cx,
                                              w.mu_a.data(), w.mu_o.data(), xb.data(),
                                              yb.data(), cx.mu.data(), units);
        cx.credit = 0.0;
        cx.need = units;
        if (formed) {
          const double db = optimal_dual_bound(cx.mu.data(), w.vd.data(), n, bd, w.work.data());
          best_bound = std::max(best_bound, db);
          evaluate(xb.data(), yb.data());
          converged = gap_closed();
        }
      }
      if (trace_point) trace[it / opt.trace_every] = best_loss;
      if (converged) break;
    }
    // restart (to the new point) or a reflected Halpern step towards the anchor
    if (optimal_step::restart_control(ctl, it, sums[0], sums[1], sums[2])) {
      std::swap(w.x, w.xn);
      std::swap(w.y, w.yn);
      std::swap(w.la, w.ka);
      std::swap(w.lo, w.ko);
      w.x0 = w.x;
      w.y0 = w.y;
      w.la0 = w.la;
      w.lo0 = w.lo;
    } else {
      const T hw = optimal_step::halpern_weight<T>(ctl.k);
#pragma omp parallel for schedule(static) if (par)
      for (std::size_t i = 0; i < len; ++i) {
        w.x[i] = optimal_step::halpern(w.xn[i], w.x[i], w.x0[i], hw);
        w.y[i] = optimal_step::halpern(w.yn[i], w.y[i], w.y0[i], hw);
        w.la[i] = optimal_step::halpern(w.ka[i], w.la[i], w.la0[i], hw);
        w.lo[i] = optimal_step::halpern(w.ko[i], w.lo[i], w.lo0[i], hw);
      }
    }
  }
  // The outputs at the best point: recompute I_and, I_or from the stored p, q.
#pragma omp parallel for schedule(static) if (par)
  for (std::size_t i = 0; i < len; ++i) sgd_step::split(v[i], q[i], p[i], a[i], o[i]);
  moebius_transform(a, n);
  or_transform(o, n);
  stats.loss = sum_abs(a, len) + sum_abs(o, len);
  stats.bound = best_bound;
  stats.iterations = it;
  stats.converged = converged;
  if (trace && tl > 0)
    for (int t = static_cast<int>(it / opt.trace_every) + 1; t < tl; ++t) trace[t] = stats.loss;
  return stats;
}

}  // namespace

void optimal_detail::check_options(const OptimalOptions& opt) {
  if (!(opt.tol > 0)) throw std::invalid_argument("optimal: tol must be > 0");
  if (opt.max_iters < 0) throw std::invalid_argument("optimal: max_iters must be >= 0");
  if (opt.check_every < 1) throw std::invalid_argument("optimal: check_every must be >= 1");
  if (opt.max_basis < 0) throw std::invalid_argument("optimal: max_basis must be >= 0");
  if (opt.trace_every < 0) throw std::invalid_argument("optimal: trace_every must be >= 0");
  if (!(opt.qthres >= 0)) throw std::invalid_argument("optimal: qthres must be >= 0");
}

double optimal_dual_bound(const double* mu, const double* v, int n, double b, double* work) {
  const std::size_t len = subset_count(n);
  const auto sums = chunked_sums<2>(len, elementwise_threads(len),
                                    [&](std::size_t i, std::array<double, 2>& acc) {
                                      acc[0] += mu[i] * v[i];
                                      acc[1] += std::fabs(mu[i]);
                                    });
  const double dot = sums[0], l1 = sums[1];
  std::copy(mu, mu + len, work);
  zeta_transpose(work, n);
  double c = std::max(1.0, max_abs(work, len));
  std::copy(mu, mu + len, work);
  or_synthesis_transpose(work, n);
  c = std::max(c, max_abs(work, len));
  return (dot - b * l1) / c;
}

template <class T>
OptimalStats fit_and_or_optimal(const T* v, int n, const OptimalOptions& opt, T* and_out,
                                T* or_out, T* p, T* q, double* trace, Progress* progress) {
  optimal_detail::check_options(opt);
  const Steps<T> st(n);
  const OptimalStats s = fit_one(v, n, opt, st, and_out, or_out, p, q, trace);
  if (progress) progress->advance(1);
  return s;
}

template <class T>
void fit_and_or_optimal_batch(const T* v, std::size_t samples, int n, const OptimalOptions& opt,
                              AndOrBatch<T>& out, Progress* progress) {
  optimal_detail::check_options(opt);
  const std::size_t len = subset_count(n);
  const int tl = optimal_trace_length(opt);
  out.resize(samples, n, tl);
  out.bound.assign(samples, std::numeric_limits<double>::quiet_NaN());
  out.iterations.assign(samples, 0);
  const Steps<T> st(n);
  auto one = [&](std::size_t s) {
    const OptimalStats r =
        fit_one(v + s * len, n, opt, st, out.and_.data() + s * len, out.or_.data() + s * len,
                out.p.data() + s * len, out.q.data() + s * len,
                tl ? out.trace.data() + s * tl : nullptr);
    out.loss[s] = r.loss;
    out.bound[s] = r.bound;
    out.iterations[s] = r.iterations;
    if (progress) progress->advance(1);
  };
  for_each_sample(samples, len, one);
}

#define HARSANYI_INSTANTIATE(T)                                                                \
  template double optimal_detail::feasible_objective<T>(const T*, const T*, const T*, T, int,  \
                                                        bool, T*, T*, T*, T*);                 \
  template double optimal_detail::crossover_estimate<T>(const T*, const double*, double, int,  \
                                                        std::size_t);                          \
  template bool optimal_detail::crossover_attempt<T>(                                          \
      const T*, const T*, const T*, const double*, double, int, std::size_t, double,           \
      optimal_detail::Crossover&, double*, double*, T*, T*, double*, double&);                 \
  template void or_synthesis_transpose<T>(T*, int);                                            \
  template OptimalStats fit_and_or_optimal<T>(const T*, int, const OptimalOptions&, T*, T*, T*, \
                                              T*, double*, Progress*);                         \
  template void fit_and_or_optimal_batch<T>(const T*, std::size_t, int, const OptimalOptions&, \
                                            AndOrBatch<T>&, Progress*);
HARSANYI_INSTANTIATE(float)
HARSANYI_INSTANTIATE(double)
#undef HARSANYI_INSTANTIATE

}  // namespace harsanyi
