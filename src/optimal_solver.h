/// @file optimal_solver.h
/// @brief The optimal AND-OR solver (DESIGN §2.1, "beyond the papers"): minimises the objective of
/// DESIGN §2 exactly, to a relative tolerance, with a certified lower bound.
///
/// Method. With x = v_and = ½(v+q)+p and y = v_or = ½(v+q)−p, (p, q) ↔ (x, y) is a bijection and
/// the bound on q becomes a box on x + y, so the problem is the linear program
///
///     min ‖M x‖₁ + ‖O y‖₁   s.t.  v − b ≤ x + y ≤ v + b,   b = qthres·|v(N) − v(∅)|,
///
/// (M the Möbius, O the OR transform). It is solved by the primal-dual hybrid gradient method
/// (Chambolle–Pock) with K = diag(M, O): dual variables λ_a, λ_o ∈ [−1, 1]^(2^n) for the two L1
/// terms, the box as the primal prox (a closed-form two-variable projection per subset), diagonal
/// Pock–Chambolle step sizes (1 / nonzeros of each row and column of M and O), reflected Halpern
/// iterations with fixed-point-residual restarts and primal-weight updates (as in PDLP /
/// r2HPDHG). Each iteration costs the four O(n·2^n) transforms M, O, Mᵀ, Oᵀ.
///
/// Certificate. Any μ with ‖Zᵀμ‖∞ ≤ 1 and ‖O⁻ᵀμ‖∞ ≤ 1 (Z = M⁻¹) gives the lower bound
/// D(μ) = μᵀv − b‖μ‖₁ (weak duality). Every `check_every` iterations the solver forms μ from the
/// dual iterate (Mᵀλ_a, Oᵀλ_o and their mean), divides it by max(1, ‖Zᵀμ‖∞, ‖O⁻ᵀμ‖∞), keeps the
/// best bound, evaluates the primal objective at a feasible point (q clamped to |q| ≤ b), keeps
/// the best, and stops when (loss − bound) ≤ tol·|loss|. The certificate is computed in float64.
///
/// Crossover. Uniform rescaling magnifies the dual's errors by up to φ^n, so the certificate
/// lags far behind the primal. At a check the solver may also solve the LP restricted to the
/// box rows the iterate touches and to as many of its largest entries of (I_and, I_or), exactly
/// (dense tableau simplex on the restricted dual, whose origin is feasible), then add the
/// columns the restricted dual violates and the rows the restricted primal violates and solve
/// again (column and row generation). The restricted primal (projected onto the box) and dual
/// (rescaled) are candidates like the others, valid whatever the guess; once no row and no
/// column is violated they are optimal and the gap closes to rounding. Attempts are
/// rationed by work (see `max_basis` and optimal_solver.cpp): they wait for a point touching at
/// most `max_basis` rows and for iterations worth the previous attempt's work.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sgd_solver.h"

namespace harsanyi {

class Progress;

/// @brief Parameters of the optimal solver (defaults in one place).
struct OptimalOptions {
  double qthres = 0.04;         ///< |q(S)| <= qthres * |v(N) - v(∅)|, as for sgd
  double tol = 1e-3;            ///< stop when (loss - bound) <= tol * |loss|
  int max_iters = 200000;       ///< iteration cap (a sample that hits it is not converged)
  int check_every = 64;         ///< iterations between evaluations of loss and bound
  int trace_every = 0;          ///< record the best loss every K iterations (0: no trace)
  double primal_weight = 0.1;   ///< initial primal weight ω (steps τ/ω, σ·ω)
  int max_basis = 2000;         ///< most touched rows a crossover attempt takes (0: no crossover)
};

/// Number of trace entries of the optimal solver: iterations 0, K, 2K, ... up to max_iters.
int optimal_trace_length(const OptimalOptions& opt);

/// What one optimal fit did.
struct OptimalStats {
  double loss = 0.0;         ///< primal objective at the returned (feasible) point
  double bound = 0.0;        ///< best certified lower bound of the optimum
  std::int64_t iterations = 0;
  bool converged = false;    ///< (loss - bound) <= tol * |loss|
};

/// @brief Fits one sample. Outputs as fit_and_or_sgd: I_and, I_or (raw) at the returned point,
/// its p and q (|q| <= b exactly), and the trace (optimal_trace_length entries; after
/// convergence the remaining entries repeat the final loss) or nullptr.
template <class T>
OptimalStats fit_and_or_optimal(const T* v, int n, const OptimalOptions& opt, T* and_out,
                                T* or_out, T* p, T* q, double* trace,
                                Progress* progress = nullptr);

/// @brief Fits a batch of samples (threaded over samples, or inside the transforms when the
/// batch is smaller than the thread count). Fills out.and_, or_, p, q, loss, trace, bound and
/// iterations. Results are bitwise independent of the thread count. `progress` advances by one
/// per finished sample.
template <class T>
void fit_and_or_optimal_batch(const T* v, std::size_t samples, int n, const OptimalOptions& opt,
                              AndOrBatch<T>& out, Progress* progress = nullptr);

/// Bytes of memory the optimal fit needs per sample (values, outputs and work arrays).
std::size_t optimal_bytes_per_sample(int n, std::size_t element_size);

/// @brief Certified lower bound from a dual candidate μ (2^n values, overwritten by nothing):
/// D(μ / c) with c = max(1, ‖Zᵀμ‖∞, ‖O⁻ᵀμ‖∞), D(μ) = μᵀv − b‖μ‖₁. `work` holds 2^n doubles.
double optimal_dual_bound(const double* mu, const double* v, int n, double b, double* work);

/// @brief Transpose of or_synthesis (O⁻ᵀ) in place: r(∅) = w(∅), r(T) = w(∅) − w(T) for T ≠ ∅,
/// with w = zeta_transpose of the reversed input; equivalently r(T) = Σ_{S∩T≠∅} μ(S) for T ≠ ∅
/// and r(∅) = Σ_S μ(S).
template <class T> void or_synthesis_transpose(T* data, int n);

}  // namespace harsanyi
