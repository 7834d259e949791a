/// @file optimal_element_step.h
/// @brief The per-element arithmetic of the optimal solver (restarted Halpern PDHG on the (x, y)
/// form of DESIGN §2), shared by the CPU solver and the CUDA kernels (host and device), so that
/// both perform the same operations in the same order; also the order of the iteration's sums.
///
/// Notation: x = v_and = ½(v+q)+p, y = v_or = ½(v+q)−p, box |x + y − v| ≤ b; λ_a, λ_o ∈ [−1, 1]
/// the dual variables of Σ|M x| and Σ|O y|. Step sizes are per subset (diagonal preconditioning)
/// and already scaled by the primal weight.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "host_device.h"

namespace harsanyi::optimal_step {

/// x clamped to [lo, hi].
template <class T> HARSANYI_HD T clamp(T x, T lo, T hi) {
  const T m = (x < lo) ? lo : x;
  return (hi < m) ? hi : m;
}

/// @brief Primal step of one subset: (ux, uy) = (x − tx·ga, y − ty·go) projected in the metric
/// diag(1/tx, 1/ty) onto {|ux + uy − v| ≤ b}; writes the new point (xn, yn) and the extrapolated
/// points 2·xn − x and 2·yn − y (inputs of the forward transforms).
template <class T>
HARSANYI_HD void primal_step(T v, T b, T x, T y, T ga, T go, T tx, T ty, T& xn, T& yn, T& xbar,
                             T& ybar) {
  const T ux = x - tx * ga;
  const T uy = y - ty * go;
  const T s = ux + uy;
  const T d = clamp(s, v - b, v + b) - s;
  const T w = tx / (tx + ty);
  xn = ux + w * d;
  yn = uy + (d - w * d);
  xbar = (xn + xn) - x;
  ybar = (yn + yn) - y;
}

/// Dual step of one entry: clip(λ + σ·k, −1, 1).
template <class T> HARSANYI_HD T dual_step(T lambda, T sigma, T k) {
  return clamp(lambda + sigma * k, T(-1), T(1));
}

/// @brief Reflected Halpern update of one entry: z ← w·(2·Tz − z) + (1 − w)·z0, w = k/(k+1).
template <class T> HARSANYI_HD T halpern(T tz, T z, T z0, T w) {
  return w * ((tz + tz) - z) + (T(1) - w) * z0;
}

/// @brief The feasible (p, q) of a primal point: q = clamp(x + y − v, −b, b), p = ½(x − y).
template <class T> HARSANYI_HD void feasible_pq(T v, T b, T x, T y, T& p, T& q) {
  q = clamp((x + y) - v, -b, b);
  p = T(0.5) * (x - y);
}

/// @brief Diagonal (Pock–Chambolle, α = 1) step sizes of subset s of n players: 1 / (nonzeros
/// in the column or row of M or O). tx: column s of M (2^(n−|s|)); ty: column s of O (2^|s|,
/// with the empty set 2 and the full set 2^n − 1); sa: row s of M (2^|s|); so: row s of O
/// (2^|s|, the empty set 1).
template <class T>
HARSANYI_HD void pc_steps(std::uint64_t s, int n, T& tx, T& ty, T& sa, T& so) {
  int k = 0;
  for (std::uint64_t r = s; r != 0; r &= r - 1) ++k;  // popcount, portable to device code
  const std::uint64_t full = (std::uint64_t{1} << n) - 1;
  const double pk = static_cast<double>(std::uint64_t{1} << k);
  tx = static_cast<T>(1.0 / static_cast<double>(std::uint64_t{1} << (n - k)));
  if (s == 0)
    ty = T(0.5);
  else if (s == full)
    ty = static_cast<T>(1.0 / (pk - 1.0));
  else
    ty = static_cast<T>(1.0 / pk);
  sa = static_cast<T>(1.0 / pk);
  so = s == 0 ? T(1) : static_cast<T>(1.0 / pk);
}

/// Elements per chunk of the solver's sums (residuals, certificate): each chunk is summed in a
/// fixed order, the chunks in chunk order, so the sums do not depend on the threads.
constexpr std::uint64_t kSumChunk = 4096;

/// Elements of one chunk of a row of 2^n elements (the whole row when it is shorter).
HARSANYI_HD std::uint64_t sum_chunk_length(int n) {
  const std::uint64_t len = std::uint64_t{1} << n;
  return len < kSumChunk ? len : kSumChunk;
}

/// @name The order of the iteration's three sums (part of the solver's contract)
///
/// Every iteration sums three per-element terms over each sample's row of len = 2^n elements:
/// t0 (the fixed-point residual in the step metric), t1 and t2 (the primal and dual distances
/// from the anchor); the restart rule reads them. The CPU (lane_tree_sums) and the GPU
/// (cuda/optimal_kernels.cu: term_sums_kernel, control_kernel) add them in exactly this order,
/// so float64 runs agree bitwise:
///  - the row is cut into chunks of L = sum_chunk_length(n) = min(len, kSumChunk) elements;
///  - within a chunk, kSumLanes = 32 lane accumulators start at 0.0; lane l adds the terms of
///    the chunk's elements j = l, l + 32, l + 64, ... (< L) in increasing j (lane_element,
///    lane_steps; for L < 32 the lanes without elements stay 0.0);
///  - the lanes are combined by the fixed tree lane_tree: for off = 16, 8, 4, 2, 1 and every
///    l < off, acc[l] = acc[l] + acc[l + off]; the chunk's partial sum is acc[0] (what a warp
///    computes with v += __shfl_down_sync(~0u, v, off), lane 0 holding the result);
///  - the sample's sum is 0.0 + part[0] + part[1] + ... (the chunks' partial sums in order).
/// The other sums of the solver (the loss's sum_abs, the certificate's μᵀv and ‖μ‖₁) keep
/// their own orders.
/// @{

/// Lanes of a chunk sum (a warp).
constexpr int kSumLanes = 32;

/// Additions lane `lane` makes in a chunk of `chunk_len` elements.
HARSANYI_HD std::uint64_t lane_steps(std::uint64_t chunk_len, unsigned lane) {
  return chunk_len > lane ? (chunk_len - lane + (kSumLanes - 1)) / kSumLanes : 0;
}

/// @brief The element (position in the chunk) that lane `lane` adds at its step m (m <
/// lane_steps). Element k of a batch (k = s·2^n + i) is stored at slot k, so lane l of the warp
/// for global chunk c reads slot c·chunk_len + lane_element(l, m): consecutive lanes read
/// consecutive slots.
HARSANYI_HD std::uint64_t lane_element(unsigned lane, std::uint64_t m) {
  return m * kSumLanes + lane;
}

/// @brief The lanes' tree: for off = 16, 8, 4, 2, 1: acc[l] = acc[l] + acc[l + off] for l < off;
/// returns acc[0]. acc: kSumLanes accumulators (overwritten).
HARSANYI_HD double lane_tree(double* acc) {
  for (int off = kSumLanes / 2; off > 0; off /= 2)
    for (int l = 0; l < off; ++l) acc[l] = acc[l] + acc[l + off];
  return acc[0];
}

/// One lane's accumulators of K sums: acc[k] is the lane's accumulator of sum k.
template <int K> struct LaneAcc {
  double (*lanes)[kSumLanes];  // lanes[k][lane]
  int lane;
  double& operator[](int k) const { return lanes[k][lane]; }
};

/// @brief The CPU's sums of K per-element terms over a row [0, len) in the order above (host
/// only): f(i, acc) adds element i's terms into acc[0..K-1], the accumulators of lane i % 32 of
/// i's chunk. Chunks run in parallel under OpenMP when `par`; the result does not depend on the
/// threads. The calls for the 32 elements of a lane group run as one `omp simd` loop (vectorised
/// across the lanes), so f(i, acc) must touch only element i's data and acc.
template <int K, class F> std::array<double, K> lane_tree_sums(std::uint64_t len, bool par, F&& f) {
  const std::uint64_t chunks = (len + kSumChunk - 1) / kSumChunk;
  std::vector<std::array<double, K>> part(chunks);
#pragma omp parallel for schedule(static) if (par)
  for (std::uint64_t c = 0; c < chunks; ++c) {
    double lanes[K][kSumLanes] = {};
    const std::uint64_t begin = c * kSumChunk, end = std::min(len, begin + kSumChunk);
    std::uint64_t g = begin;  // groups of 32 elements: element g + l goes to lane l
    for (; g + kSumLanes <= end; g += kSumLanes) {
#pragma omp simd
      for (int l = 0; l < kSumLanes; ++l) f(g + l, LaneAcc<K>{lanes, l});
    }
    for (int l = 0; g + l < end; ++l) f(g + l, LaneAcc<K>{lanes, l});  // a row shorter than 32
    for (int k = 0; k < K; ++k) part[c][k] = lane_tree(lanes[k]);
  }
  std::array<double, K> total{};
  for (const auto& p : part)
    for (int k = 0; k < K; ++k) total[k] += p[k];
  return total;
}

/// @}

/// @brief The restart scheme of the restarted Halpern PDHG, per sample: a restart when the
/// fixed-point residual r fell to 0.2·r0 (r0 its value after the last restart), or to 0.8·r0
/// and grew since the previous iteration, or when the run since the last restart reached 36%
/// of all iterations; at a restart the primal weight ω moves to the geometric mean of ω and
/// ‖Δλ‖ / ‖Δx‖ (the distances travelled since the last restart). Uses only correctly rounded
/// operations (sqrt, ·, /), so host and device agree bitwise.
struct RestartControl {
  double omega = 1.0;     ///< primal weight (steps τ/ω, σ·ω)
  double r0 = -1.0;       ///< residual after the last restart (< 0: not yet measured)
  double rprev = 0.0;     ///< residual of the previous iteration (when have_prev)
  bool have_prev = false;
  std::int64_t k = 0;     ///< Halpern steps since the last restart
};

/// @brief After iteration `it` (1-based, counted over the whole run) with the squared sums
/// (s_res: fixed-point residual in the step metric; s_x, s_l: primal and dual distances from
/// the anchor): updates `c` and returns true when the iterate restarts.
HARSANYI_HD bool restart_control(RestartControl& c, std::int64_t it, double s_res, double s_x,
                                 double s_l) {
  const double r = sqrt(s_res);
  if (c.r0 < 0) c.r0 = r;
  const bool restart = r <= 0.2 * c.r0 || (r <= 0.8 * c.r0 && c.have_prev && r > c.rprev) ||
                       static_cast<double>(c.k) >= 0.36 * static_cast<double>(it);
  if (restart) {
    const double dx = sqrt(s_x), dl = sqrt(s_l);
    if (dx > 1e-10 && dl > 1e-10) c.omega = sqrt(dl / dx * c.omega);
    c.k = 0;
    c.r0 = -1.0;
    c.have_prev = false;
  } else {
    c.rprev = r;
    c.have_prev = true;
    ++c.k;
  }
  return restart;
}

/// Halpern weight of the next step after k steps since the restart: k / (k + 1), rounded to T.
template <class T> HARSANYI_HD T halpern_weight(std::int64_t k) {
  return static_cast<T>(static_cast<double>(k) / static_cast<double>(k + 1));
}

}  // namespace harsanyi::optimal_step
