/// @file sgd_solver.h
/// @brief The papers' AND-OR decomposition protocol (DESIGN §2.1 `sgd`), batched over samples.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "huge_page_allocator.h"

namespace harsanyi {

class Progress;

/// @brief Parameters of the sgd protocol. Defaults are the project's (DESIGN §2.1).
struct SgdOptions {
  int iters = 20000;       ///< iterations t = 0..iters-1 (the loss is recorded at each)
  double lr = 1e-5;        ///< first learning rate; decays 10x over the run (logspace)
  double momentum = 0.9;   ///< PyTorch SGD momentum (first buffer = gradient, no dampening)
  double qthres = 0.04;    ///< |q(S)| <= qthres * |v(N) - v(∅)|
  int trace_every = 0;     ///< record the loss at t = 0, K, 2K, ... (0: no trace)
};

/// Number of trace entries recorded for `iters` iterations every `trace_every` (0 if none).
int trace_length(int iters, int trace_every);

/// Learning rate of iteration t: logspace(log10(lr), log10(lr) - 1, iters)[t].
double sgd_learning_rate(double lr, int iters, int t);

/// @brief Outputs of an AND-OR fit of a batch, [samples, 2^n] row-major unless noted.
template <class T> struct AndOrBatch {
  LatticeVector<T> and_, or_, p, q;  ///< I_and, I_or (raw, not folded), p, q
  std::vector<double> loss;        ///< [samples] loss at the last iteration
  std::vector<double> trace;       ///< [samples, trace_length] (empty when not asked)
  /// [samples] certified lower bound of the optimum (optimal solver; NaN for solvers without a
  /// certificate). Not touched by resize(): the solver that fills it sizes it.
  std::vector<double> bound;
  std::vector<std::int64_t> iterations;  ///< [samples] iterations run (filled like `bound`)
  void resize(std::size_t samples, int n, int trace_len);
};

/// @brief Fits p and q of one sample with the papers' sgd protocol.
/// @param v        2^n values v(S)
/// @param and_out  I_and at the last iteration; @param or_out I_or at the last iteration
/// @param p,q      the fitted p and q (q clamped to its bound)
/// @param trace    trace_length(iters, trace_every) losses, or nullptr
/// @param progress advanced by the number of iterations done (may be nullptr)
/// @return the loss Σ|I_and| + Σ|I_or| at the last iteration
template <class T>
double fit_and_or_sgd(const T* v, int n, const SgdOptions& opt, T* and_out, T* or_out, T* p, T* q,
                      double* trace, Progress* progress = nullptr);

/// @brief Fits a batch of samples (threaded over samples, or inside the transforms when the
/// batch is smaller than the thread count). Results do not depend on the thread count.
template <class T>
void fit_and_or_sgd_batch(const T* v, std::size_t samples, int n, const SgdOptions& opt,
                          AndOrBatch<T>& out, Progress* progress = nullptr);

/// Bytes of memory the sgd fit needs per sample (values, outputs and work arrays).
std::size_t sgd_bytes_per_sample(int n, std::size_t element_size);

/// Σ|x| over `len` elements, accumulated in double in a fixed order (thread-count independent).
template <class T> double sum_abs(const T* x, std::size_t len);

}  // namespace harsanyi
