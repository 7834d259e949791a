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
#include "progress.h"
#include "sgd_element_step.h"

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

constexpr std::size_t kChunk = 4096;

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

// Primal objective at the feasible point of (x, y): q = clamp(x + y − v), p = (x − y)/2, then
// I_and = M(½(v+q)+p), I_or = O(½(v+q)−p) exactly as the sgd protocol forms them.
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

  const double eta = 0.99;
  double omega = opt.primal_weight > 0 ? opt.primal_weight : 1.0;
  double r0 = -1.0, rprev = std::numeric_limits<double>::infinity();
  std::int64_t k = 0;  // Halpern step since the last restart
  std::int64_t it = 0;
  bool converged = gap_closed();
  while (!converged && it < opt.max_iters) {
    ++it;
    const T tau_scale = static_cast<T>(eta / omega), sigma_scale = static_cast<T>(omega);
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
    const auto sums = chunked_sums<3>(len, par, [&](std::size_t i, std::array<double, 3>& acc) {
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
      if (trace_point) trace[it / opt.trace_every] = best_loss;
      if (converged) break;
    }
    // restart (to the new point) or a reflected Halpern step towards the anchor
    const double r = std::sqrt(sums[0]);
    if (r0 < 0) r0 = r;
    const bool restart = r <= 0.2 * r0 || (r <= 0.8 * r0 && r > rprev) ||
                         static_cast<double>(k) >= 0.36 * static_cast<double>(it);
    if (restart) {
      const double dx = std::sqrt(sums[1]), dl = std::sqrt(sums[2]);
      if (dx > 1e-10 && dl > 1e-10)
        omega = std::exp(0.5 * std::log(dl / dx) + 0.5 * std::log(omega));
      std::swap(w.x, w.xn);
      std::swap(w.y, w.yn);
      std::swap(w.la, w.ka);
      std::swap(w.lo, w.ko);
      w.x0 = w.x;
      w.y0 = w.y;
      w.la0 = w.la;
      w.lo0 = w.lo;
      k = 0;
      r0 = -1.0;
      rprev = std::numeric_limits<double>::infinity();
    } else {
      rprev = r;
      ++k;
      const T hw = static_cast<T>(static_cast<double>(k) / static_cast<double>(k + 1));
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

void check_options(const OptimalOptions& opt) {
  if (!(opt.tol > 0)) throw std::invalid_argument("optimal: tol must be > 0");
  if (opt.max_iters < 0) throw std::invalid_argument("optimal: max_iters must be >= 0");
  if (opt.check_every < 1) throw std::invalid_argument("optimal: check_every must be >= 1");
  if (opt.trace_every < 0) throw std::invalid_argument("optimal: trace_every must be >= 0");
  if (!(opt.qthres >= 0)) throw std::invalid_argument("optimal: qthres must be >= 0");
}

}  // namespace

double optimal_dual_bound(const double* mu, const double* v, int n, double b, double* work) {
  const std::size_t len = subset_count(n);
  double dot = 0.0, l1 = 0.0;
  for (std::size_t i = 0; i < len; ++i) {
    dot += mu[i] * v[i];
    l1 += std::fabs(mu[i]);
  }
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
  check_options(opt);
  const Steps<T> st(n);
  const OptimalStats s = fit_one(v, n, opt, st, and_out, or_out, p, q, trace);
  if (progress) progress->advance(1);
  return s;
}

template <class T>
void fit_and_or_optimal_batch(const T* v, std::size_t samples, int n, const OptimalOptions& opt,
                              AndOrBatch<T>& out, Progress* progress) {
  check_options(opt);
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
  const bool across_samples = samples >= static_cast<std::size_t>(omp_get_max_threads()) ||
                              len < (std::size_t{1} << 14);
  if (across_samples) {
#pragma omp parallel for schedule(dynamic, 1)
    for (std::size_t s = 0; s < samples; ++s) one(s);
  } else {
    for (std::size_t s = 0; s < samples; ++s) one(s);  // threads work inside each fit
  }
}

#define HARSANYI_INSTANTIATE(T)                                                                \
  template void or_synthesis_transpose<T>(T*, int);                                            \
  template OptimalStats fit_and_or_optimal<T>(const T*, int, const OptimalOptions&, T*, T*, T*, \
                                              T*, double*, Progress*);                         \
  template void fit_and_or_optimal_batch<T>(const T*, std::size_t, int, const OptimalOptions&, \
                                            AndOrBatch<T>&, Progress*);
HARSANYI_INSTANTIATE(float)
HARSANYI_INSTANTIATE(double)
#undef HARSANYI_INSTANTIATE

}  // namespace harsanyi
