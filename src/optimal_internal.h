/// @file optimal_internal.h
/// @brief Parts of the optimal solver (optimal_solver.cpp) that its GPU version
/// (cuda/optimal_kernels.cu) shares with the CPU one: the step constants, the feasible objective,
/// and the crossover, which always runs on the host. Not part of the public interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "optimal_solver.h"

namespace harsanyi::optimal_detail {

/// Step-size safety factor η < 1 of the primal steps (τ·η/ω).
constexpr double kStepEta = 0.99;

/// The primal weight ω the run starts with.
inline double initial_primal_weight(const OptimalOptions& opt) {
  return opt.primal_weight > 0 ? opt.primal_weight : 1.0;
}

/// Throws std::invalid_argument naming the first invalid option.
void check_options(const OptimalOptions& opt);

/// @brief Primal objective at the feasible point of (x, y): q = clamp(x + y − v, −b, b),
/// p = (x − y)/2, then I_and = M(½(v+q)+p) into `a`, I_or = O(½(v+q)−p) into `o`, exactly as the
/// sgd protocol forms them; returns sum_abs(a) + sum_abs(o). `par`: thread the element loops.
template <class T>
double feasible_objective(const T* v, const T* x, const T* y, T b, int n, bool par, T* p, T* q,
                          T* a, T* o);

/// Per-sample state of the crossover (restricted LP) and its work rationing.
struct Crossover {
  std::vector<std::uint64_t> rows, cols, sol_cols;  // sol_cols: the columns of a_c
  std::vector<double> tab, mu_r, a_c, mu;
  std::vector<std::size_t> basis;
  std::vector<std::pair<double, std::uint64_t>> cand;
  double credit = 0.0;  // work units of iterations since the last attempt
  double need = 0.0;    // credit the next attempt waits for (the last attempt's work)
};

/// Work units of one iteration of n players (the unit of the crossover's rationing).
inline double iteration_units(int n) {
  return static_cast<double>(std::uint64_t{1} << n) * (4 * n + 24);
}

/// @brief Estimated work units of a crossover attempt at a point whose feasible form has q;
/// infinite when it touches no row or more than max_basis rows. vd: v in double; bd: the bound b.
template <class T>
double crossover_estimate(const T* q, const double* vd, double bd, int n, std::size_t max_basis);

/// @brief One crossover attempt at the point with I_and `a`, I_or `o` and feasible q `q`: false
/// when no restricted LP could be solved within `budget` work units; else the restricted primal
/// in xb, yb and the restricted dual in mu (2^n each). full_a, full_o: 2^n doubles of scratch.
/// `units` returns the work spent.
template <class T>
bool crossover_attempt(const T* a, const T* o, const T* q, const double* vd, double bd, int n,
                       std::size_t max_basis, double budget, Crossover& cx, double* full_a,
                       double* full_o, T* xb, T* yb, double* mu, double& units);

}  // namespace harsanyi::optimal_detail
