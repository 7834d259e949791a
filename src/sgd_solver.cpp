// The papers' sgd protocol on p and q. See sgd_solver.h and DESIGN §2.1.
#include "sgd_solver.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "lattice_transforms.h"
#include "progress.h"
#include "sample_schedule.h"
#include "sgd_element_step.h"

namespace harsanyi {

int trace_length(int iters, int trace_every) {
  if (trace_every <= 0 || iters <= 0) return 0;
  return (iters - 1) / trace_every + 1;
}

double sgd_learning_rate(double lr, int iters, int t) {
  // numpy.logspace(a, a - 1, iters) = 10 ** linspace(a, a - 1, iters)
  const double a = std::log10(lr);
  if (iters <= 1) return std::pow(10.0, a);
  const double step = -1.0 / static_cast<double>(iters - 1);
  return std::pow(10.0, a + static_cast<double>(t) * step);
}

template <class T> void AndOrBatch<T>::resize(std::size_t samples, int n, int trace_len) {
  const std::size_t len = samples * subset_count(n);
  and_.assign(len, T(0));
  or_.assign(len, T(0));
  p.assign(len, T(0));
  q.assign(len, T(0));
  loss.assign(samples, 0.0);
  trace.assign(samples * static_cast<std::size_t>(trace_len), 0.0);
}

std::size_t sgd_bytes_per_sample(int n, std::size_t element_size) {
  // v, I_and, I_or, p, q, two momentum buffers
  return 7 * subset_count(n) * element_size;
}

namespace {

// Σ|x| over one chunk: eight lanes, then the lanes, then the tail, always in this order.
template <class T> double chunk_sum_abs(const T* x, std::size_t begin, std::size_t end) {
  constexpr std::size_t kLanes = 8;
  double acc[kLanes] = {};
  std::size_t i = begin;
  for (; i + kLanes <= end; i += kLanes)
    for (std::size_t k = 0; k < kLanes; ++k) acc[k] += std::fabs(static_cast<double>(x[i + k]));
  double chunk = 0.0;
  for (std::size_t k = 0; k < kLanes; ++k) chunk += acc[k];
  for (; i < end; ++i) chunk += std::fabs(static_cast<double>(x[i]));
  return chunk;
}

}  // namespace

template <class T> double sum_abs(const T* x, std::size_t len) {
  // Fixed chunks summed in chunk order: the same result whether the chunks run in parallel or not.
  constexpr std::size_t kChunk = 4096;
  const std::size_t chunks = (len + kChunk - 1) / kChunk;
  if (len < (std::size_t{1} << 17) || omp_in_parallel()) {
    double total = 0.0;
    for (std::size_t c = 0; c < chunks; ++c)
      total += chunk_sum_abs(x, c * kChunk, std::min(len, (c + 1) * kChunk));
    return total;
  }
  std::vector<double> partial(chunks);
#pragma omp parallel for schedule(static)
  for (std::size_t c = 0; c < chunks; ++c)
    partial[c] = chunk_sum_abs(x, c * kChunk, std::min(len, (c + 1) * kChunk));
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

namespace {

// Elementwise loops are threaded only for large single-sample fits.
inline bool elementwise_threads(std::size_t len) {
  return len >= (std::size_t{1} << 16) && !omp_in_parallel();
}

}  // namespace

template <class T>
double fit_and_or_sgd(const T* v, int n, const SgdOptions& opt, T* a, T* o, T* p, T* q,
                      double* trace, Progress* progress) {
  if (opt.iters < 1) throw std::invalid_argument("sgd: iters must be >= 1");
  const std::size_t len = subset_count(n);
  const bool par = elementwise_threads(len);
  LatticeVector<T> bp(len), bq(len);  // momentum buffers
  std::fill(p, p + len, T(0));
  std::fill(q, q + len, T(0));
  const T bound = static_cast<T>(opt.qthres * std::fabs(static_cast<double>(v[len - 1]) -
                                                         static_cast<double>(v[0])));
  const T momentum = static_cast<T>(opt.momentum);
  double loss = 0.0;
  constexpr int kProgressEvery = 64;
  for (int t = 0; t < opt.iters; ++t) {
    // clamp q; v_and = ½(v + q) + p, v_or = ½(v + q) − p
#pragma omp parallel for schedule(static) if (par)
    for (std::size_t i = 0; i < len; ++i) {
      q[i] = sgd_step::clamp_q(q[i], bound);
      sgd_step::split(v[i], q[i], p[i], a[i], o[i]);
    }
    moebius_transform(a, n);
    or_transform(o, n);
    loss = sum_abs(a, len) + sum_abs(o, len);
    if (trace && opt.trace_every > 0 && t % opt.trace_every == 0) trace[t / opt.trace_every] = loss;
    if (progress && (t + 1) % kProgressEvery == 0) progress->advance(kProgressEvery);
    if (t + 1 == opt.iters) break;

    // sub-gradients: ∂L/∂p = Mᵀ sign(I_and) − Oᵀ sign(I_or), ∂L/∂q = ½Mᵀ sign(I_and) + ½Oᵀ sign(I_or)
#pragma omp parallel for schedule(static) if (par)
    for (std::size_t i = 0; i < len; ++i) {
      a[i] = sgd_step::sign_of(a[i]);
      o[i] = sgd_step::sign_of(o[i]);
    }
    moebius_transpose(a, n);
    or_transform_transpose(o, n);
    const T eta = static_cast<T>(sgd_learning_rate(opt.lr, opt.iters, t));
    const bool first = (t == 0);
#pragma omp parallel for schedule(static) if (par)
    for (std::size_t i = 0; i < len; ++i)
      sgd_step::momentum_step(a[i], o[i], first, momentum, eta, bp[i], bq[i], p[i], q[i]);
  }
  if (progress) progress->advance(static_cast<std::uint64_t>(opt.iters % kProgressEvery));
  return loss;
}

template <class T>
void fit_and_or_sgd_batch(const T* v, std::size_t samples, int n, const SgdOptions& opt,
                          AndOrBatch<T>& out, Progress* progress) {
  const std::size_t len = subset_count(n);
  const int tl = trace_length(opt.iters, opt.trace_every);
  out.resize(samples, n, tl);
  auto one = [&](std::size_t s) {
    out.loss[s] = fit_and_or_sgd(v + s * len, n, opt, out.and_.data() + s * len,
                                 out.or_.data() + s * len, out.p.data() + s * len,
                                 out.q.data() + s * len, tl ? out.trace.data() + s * tl : nullptr,
                                 progress);
  };
  for_each_sample(samples, len, one);
}

#define HARSANYI_INSTANTIATE(T)                                                                 \
  template struct AndOrBatch<T>;                                                                \
  template double sum_abs<T>(const T*, std::size_t);                                            \
  template double fit_and_or_sgd<T>(const T*, int, const SgdOptions&, T*, T*, T*, T*, double*, \
                                    Progress*);                                                 \
  template void fit_and_or_sgd_batch<T>(const T*, std::size_t, int, const SgdOptions&,         \
                                        AndOrBatch<T>&, Progress*);
HARSANYI_INSTANTIATE(float)
HARSANYI_INSTANTIATE(double)
#undef HARSANYI_INSTANTIATE

}  // namespace harsanyi
