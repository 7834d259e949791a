// The optimal AND-OR solver (src/optimal_solver.h) on the GPU for a batch of samples: the
// restarted reflected Halpern PDHG of fit_and_or_optimal, iteration for iteration, with every
// sample's iterate, control state (primal weight, restart bookkeeping) and certificate on the
// device. The host takes part only at the checks (every check_every iterations): it reads each
// sample's loss and bound statistics, keeps the best, decides convergence, and runs the
// crossover (the restricted LP, a dense simplex that stays on the CPU) for the few samples whose
// work ration allows one.
//
// Same arithmetic as the CPU: the per-element steps of src/optimal_element_step.h (compiled with
// --fmad=false), the transforms (bitwise the CPU's), the sums in double in the CPU's orders (the
// iteration's three sums in the lane-tree order of optimal_element_step.h, the loss and the
// certificate's sums in theirs), and a restart rule built from correctly rounded operations
// only. float64 results therefore match the CPU bitwise: I_and, I_or, p, q, loss, bound,
// iterations and trace.
//
// One iteration (launches over the whole batch; samples that have converged are skipped by the
// element kernels and their state is no longer read):
//   xn = Mᵀ λ_a, yn = Oᵀ λ_o              copies and two transposed transforms
//   primal:  (xn, yn) = box step; (ka, ko) = extrapolated points
//   ka = M ka, ko = O ko                   two transforms
//   dual:    λ' = clip(λ + σ·k); per-element terms of the residual and anchor distances
//   sums:    per chunk one warp: lane l adds elements l, l+32, ..., then the shuffle tree
//            (off = 16, 8, 4, 2, 1); then per sample the chunks in chunk order
//   control: restart decision, primal weight, next step scales (one thread per sample)
//   (check iterations: loss of the feasible form of (xn, yn), certificate from (ka, ko))
//   update:  restart to the new point, or the reflected Halpern step towards the anchor
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "abs_sums.cuh"
#include "cuda_backend.h"
#include "cuda_check.h"
#include "device_memory.h"
#include "lattice_internal.h"
#include "lattice_transforms.h"
#include "optimal_element_step.h"
#include "optimal_internal.h"
#include "optimal_solver.h"
#include "progress.h"
#include "sgd_element_step.h"
#include "sgd_solver.h"

namespace harsanyi::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kCandidates = 3;  // certificate candidates: Mᵀλ_a, Oᵀλ_o, their mean
static_assert(kLossChunk == optimal_step::kSumChunk,
              "the loss and the solver's sums share the chunk arrays' sizes");

using optimal_step::RestartControl;

// ---------------------------------------------------------------------------------------------
// Kernels

// Diagonal step sizes of subset i (shared by all samples).
template <class T>
__global__ void steps_kernel(T* __restrict__ tx, T* __restrict__ ty, T* __restrict__ sa,
                             T* __restrict__ so, int n) {
  const std::uint64_t len = std::uint64_t{1} << n;
  for (std::uint64_t i = global_thread(); i < len; i += grid_threads())
    optimal_step::pc_steps(i, n, tx[i], ty[i], sa[i], so[i]);
}

// Start: x = y = ½v, λ = 0, the anchors equal to them.
template <class T>
__global__ void start_kernel(const T* __restrict__ v, T* __restrict__ x, T* __restrict__ y,
                             T* __restrict__ la, T* __restrict__ lo, T* __restrict__ x0,
                             T* __restrict__ y0, T* __restrict__ la0, T* __restrict__ lo0,
                             std::uint64_t total) {
  for (std::uint64_t k = global_thread(); k < total; k += grid_threads()) {
    const T h = T(0.5) * v[k];
    x[k] = y[k] = x0[k] = y0[k] = h;
    la[k] = lo[k] = la0[k] = lo0[k] = T(0);
  }
}

// The feasible form of (x, y) (p into pt, q into qt) and the rows a = ½(v+q)+p, o = ½(v+q)−p
// that the transforms turn into I_and and I_or.
template <class T>
__global__ void feasible_kernel(const T* __restrict__ v, const T* __restrict__ x,
                                const T* __restrict__ y, const T* __restrict__ bound,
                                const unsigned char* __restrict__ active, T* __restrict__ pt,
                                T* __restrict__ qt, T* __restrict__ a, T* __restrict__ o, int n,
                                std::uint64_t total) {
  for (std::uint64_t k = global_thread(); k < total; k += grid_threads()) {
    const std::uint64_t s = k >> n;
    if (!active[s]) continue;
    T p, q;
    optimal_step::feasible_pq(v[k], bound[s], x[k], y[k], p, q);
    pt[k] = p;
    qt[k] = q;
    sgd_step::split(v[k], q, p, a[k], o[k]);
  }
}

// The outputs from the kept (p, q): a = ½(v+q)+p, o = ½(v+q)−p for every sample.
template <class T>
__global__ void split_kernel(const T* __restrict__ v, const T* __restrict__ p,
                             const T* __restrict__ q, T* __restrict__ a, T* __restrict__ o,
                             std::uint64_t total) {
  for (std::uint64_t k = global_thread(); k < total; k += grid_threads())
    sgd_step::split(v[k], q[k], p[k], a[k], o[k]);
}

// p, q = pt, qt for the samples whose feasible point improved the best loss.
template <class T>
__global__ void keep_best_kernel(const T* __restrict__ pt, const T* __restrict__ qt,
                                 const unsigned char* __restrict__ improved, T* __restrict__ p,
                                 T* __restrict__ q, int n, std::uint64_t total) {
  for (std::uint64_t k = global_thread(); k < total; k += grid_threads()) {
    if (!improved[k >> n]) continue;
    p[k] = pt[k];
    q[k] = qt[k];
  }
}

// Primal step and extrapolation (xn, yn hold Mᵀλ_a, Oᵀλ_o on entry, the new point on exit).
template <class T>
__global__ void primal_kernel(const T* __restrict__ v, const T* __restrict__ bound,
                              const T* __restrict__ x, const T* __restrict__ y,
                              T* __restrict__ xn, T* __restrict__ yn, T* __restrict__ ka,
                              T* __restrict__ ko, const T* __restrict__ tx,
                              const T* __restrict__ ty, const T* __restrict__ tau,
                              const unsigned char* __restrict__ active, int n,
                              std::uint64_t total) {
  const std::uint64_t mask = (std::uint64_t{1} << n) - 1;
  for (std::uint64_t k = global_thread(); k < total; k += grid_threads()) {
    const std::uint64_t s = k >> n, i = k & mask;
    if (!active[s]) continue;
    const T ts = tau[s];
    T xnew, ynew, xbar, ybar;
    optimal_step::primal_step(v[k], bound[s], x[k], y[k], xn[k], yn[k], ts * tx[i], ts * ty[i],
                              xnew, ynew, xbar, ybar);
    xn[k] = xnew;
    yn[k] = ynew;
    ka[k] = xbar;
    ko[k] = ybar;
  }
}

// Dual step (ka, ko become λ_a', λ_o') and the per-element terms of the three sums of
// fit_one: the fixed-point residual in the step metric, and the primal and dual distances from
// the anchor. Element k's terms go to slot k (element order), which the chunk sums' warps read
// coalesced.
template <class T>
__global__ void dual_kernel(const T* __restrict__ x, const T* __restrict__ y,
                            const T* __restrict__ la, const T* __restrict__ lo,
                            const T* __restrict__ x0, const T* __restrict__ y0,
                            const T* __restrict__ la0, const T* __restrict__ lo0,
                            const T* __restrict__ xn, const T* __restrict__ yn,
                            T* __restrict__ ka, T* __restrict__ ko, const T* __restrict__ tx,
                            const T* __restrict__ ty, const T* __restrict__ sa,
                            const T* __restrict__ so, const T* __restrict__ tau,
                            const T* __restrict__ sigma, const unsigned char* __restrict__ active,
                            double* __restrict__ term0, double* __restrict__ term1,
                            double* __restrict__ term2, int n, std::uint64_t total) {
  const std::uint64_t mask = (std::uint64_t{1} << n) - 1;
  for (std::uint64_t k = global_thread(); k < total; k += grid_threads()) {
    const std::uint64_t s = k >> n, i = k & mask;
    if (!active[s]) continue;
    const T ts = tau[s], ss = sigma[s];
    const T sai = ss * sa[i], soi = ss * so[i];
    const T lan = optimal_step::dual_step(la[k], sai, ka[k]);
    const T lon = optimal_step::dual_step(lo[k], soi, ko[k]);
    ka[k] = lan;
    ko[k] = lon;
    const double dx = static_cast<double>(xn[k]) - static_cast<double>(x[k]);
    const double dy = static_cast<double>(yn[k]) - static_cast<double>(y[k]);
    const double da = static_cast<double>(lan) - static_cast<double>(la[k]);
    const double dd = static_cast<double>(lon) - static_cast<double>(lo[k]);
    const double txs = static_cast<double>(ts * tx[i]);
    const double tys = static_cast<double>(ts * ty[i]);
    const double ex = static_cast<double>(xn[k]) - static_cast<double>(x0[k]);
    const double ey = static_cast<double>(yn[k]) - static_cast<double>(y0[k]);
    const double ea = static_cast<double>(lan) - static_cast<double>(la0[k]);
    const double eo = static_cast<double>(lon) - static_cast<double>(lo0[k]);
    term0[k] = dx * dx / txs + dy * dy / tys + da * da / static_cast<double>(sai) +
               dd * dd / static_cast<double>(soi);
    term1[k] = ex * ex + ey * ey;
    term2[k] = ea * ea + eo * eo;
  }
}

// The three sums of each chunk in the lane-tree order of optimal_element_step.h: one warp per
// chunk (global chunk c covers slots c·chunk_len ..); lane l adds the chunk's elements
// lane_element(l, m) = l + 32m in increasing m, then the warp combines the lanes by
// __shfl_down_sync with off = 16, 8, 4, 2, 1 (lane l adds lane l + off: the tree lane_tree), and
// lane 0 writes part[3c .. 3c + 2]. Every lane of a warp runs the same chunk loop, so the
// shuffles always have the full warp.
__global__ void term_sums_kernel(const double* __restrict__ term0,
                                 const double* __restrict__ term1,
                                 const double* __restrict__ term2, std::uint64_t chunks,
                                 std::uint64_t chunk_len, double* __restrict__ part) {
  constexpr unsigned kLanes = optimal_step::kSumLanes;
  static_assert(kLanes == 32, "one warp per chunk");
  const unsigned lane = threadIdx.x % kLanes;
  const std::uint64_t steps = optimal_step::lane_steps(chunk_len, lane);
  for (std::uint64_t c = global_thread() / kLanes; c < chunks; c += grid_threads() / kLanes) {
    const std::uint64_t base = c * chunk_len;
    double a0 = 0.0, a1 = 0.0, a2 = 0.0;
#pragma unroll 4
    for (std::uint64_t m = 0; m < steps; ++m) {
      const std::uint64_t slot = base + optimal_step::lane_element(lane, m);
      a0 += term0[slot];
      a1 += term1[slot];
      a2 += term2[slot];
    }
    for (int off = kLanes / 2; off > 0; off /= 2) {
      a0 = a0 + __shfl_down_sync(0xffffffffu, a0, off);
      a1 = a1 + __shfl_down_sync(0xffffffffu, a1, off);
      a2 = a2 + __shfl_down_sync(0xffffffffu, a2, off);
    }
    if (lane == 0) {
      part[3 * c] = a0;
      part[3 * c + 1] = a1;
      part[3 * c + 2] = a2;
    }
  }
}

// The iteration counter on the device: the first step of every iteration adds one, so the same
// launches (or one captured graph) serve every iteration.
__global__ void tick_kernel(std::int64_t* __restrict__ iteration) {
  if (blockIdx.x == 0 && threadIdx.x == 0) ++*iteration;
}

// Per sample: the sums in chunk order, the restart decision (restart[s]) and the step scales of
// the next iteration.
template <class T>
__global__ void control_kernel(const double* __restrict__ part, std::uint64_t chunks_per_row,
                               const unsigned char* __restrict__ active,
                               RestartControl* __restrict__ ctl,
                               unsigned char* __restrict__ restart, T* __restrict__ tau,
                               T* __restrict__ sigma, T* __restrict__ hw,
                               const std::int64_t* __restrict__ iteration, double eta,
                               std::uint64_t samples) {
  const std::int64_t it = *iteration;
  for (std::uint64_t s = global_thread(); s < samples; s += grid_threads()) {
    if (!active[s]) continue;
    double t0 = 0.0, t1 = 0.0, t2 = 0.0;
    for (std::uint64_t c = 0; c < chunks_per_row; ++c) {
      const double* p = part + 3 * (s * chunks_per_row + c);
      t0 += p[0];
      t1 += p[1];
      t2 += p[2];
    }
    RestartControl c = ctl[s];
    restart[s] = optimal_step::restart_control(c, it, t0, t1, t2) ? 1 : 0;
    ctl[s] = c;
    tau[s] = static_cast<T>(eta / c.omega);
    sigma[s] = static_cast<T>(c.omega);
    hw[s] = optimal_step::halpern_weight<T>(c.k);
  }
}

// Restart (the iterate and the anchor become the new point) or the reflected Halpern step.
template <class T>
__global__ void update_kernel(T* __restrict__ x, T* __restrict__ y, T* __restrict__ la,
                              T* __restrict__ lo, T* __restrict__ x0, T* __restrict__ y0,
                              T* __restrict__ la0, T* __restrict__ lo0, const T* __restrict__ xn,
                              const T* __restrict__ yn, const T* __restrict__ ka,
                              const T* __restrict__ ko, const unsigned char* __restrict__ restart,
                              const T* __restrict__ hw, const unsigned char* __restrict__ active,
                              int n, std::uint64_t total) {
  for (std::uint64_t k = global_thread(); k < total; k += grid_threads()) {
    const std::uint64_t s = k >> n;
    if (!active[s]) continue;
    if (restart[s]) {
      x[k] = x0[k] = xn[k];
      y[k] = y0[k] = yn[k];
      la[k] = la0[k] = ka[k];
      lo[k] = lo0[k] = ko[k];
    } else {
      const T w = hw[s];
      x[k] = optimal_step::halpern(xn[k], x[k], x0[k], w);
      y[k] = optimal_step::halpern(yn[k], y[k], y0[k], w);
      la[k] = optimal_step::halpern(ka[k], la[k], la0[k], w);
      lo[k] = optimal_step::halpern(ko[k], lo[k], lo0[k], w);
    }
  }
}

// mu_a, mu_o = λ_a, λ_o in double (the certificate is computed in double).
template <class T>
__global__ void widen_kernel(const T* __restrict__ la, const T* __restrict__ lo,
                             double* __restrict__ mu_a, double* __restrict__ mu_o,
                             std::uint64_t total) {
  for (std::uint64_t k = global_thread(); k < total; k += grid_threads()) {
    mu_a[k] = static_cast<double>(la[k]);
    mu_o[k] = static_cast<double>(lo[k]);
  }
}

// mu_a = ½(mu_a + mu_o): the third candidate.
__global__ void mean_kernel(double* __restrict__ mu_a, const double* __restrict__ mu_o,
                            std::uint64_t total) {
  for (std::uint64_t k = global_thread(); k < total; k += grid_threads())
    mu_a[k] = 0.5 * (mu_a[k] + mu_o[k]);
}

// μᵀv and ‖μ‖₁ of each chunk in element order (optimal_dual_bound's order).
template <class T>
__global__ void dot_l1_kernel(const double* __restrict__ mu, const T* __restrict__ v,
                              std::uint64_t chunks, std::uint64_t chunk_len,
                              double* __restrict__ part) {
  for (std::uint64_t c = global_thread(); c < chunks; c += grid_threads()) {
    const std::uint64_t base = c * chunk_len;
    double dot = 0.0, l1 = 0.0;
    for (std::uint64_t j = 0; j < chunk_len; ++j) {
      const double m = mu[base + j];
      dot += m * static_cast<double>(v[base + j]);
      l1 += fabs(m);
    }
    part[2 * c] = dot;
    part[2 * c + 1] = l1;
  }
}

// work(S) = mu(N \ S): the reversal of or_synthesis_transpose.
__global__ void reverse_copy_kernel(const double* __restrict__ mu, double* __restrict__ work,
                                    int n, std::uint64_t total) {
  const std::uint64_t mask = (std::uint64_t{1} << n) - 1;
  for (std::uint64_t k = global_thread(); k < total; k += grid_threads())
    work[k] = mu[k ^ mask];
}

// max_S |r(S)| of each row (a max, exact in any order; NaN entries are skipped as std::max
// skips them). synthesis: r(∅) = w(∅), r(S) = w(∅) − w(S) (the end of or_synthesis_transpose);
// otherwise r = w. One block per row.
__global__ void row_max_abs_kernel(const double* __restrict__ w, int n, std::uint64_t rows,
                                   bool synthesis, double* __restrict__ out) {
  __shared__ double block_max[kThreads];
  const std::uint64_t len = std::uint64_t{1} << n;
  for (std::uint64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const double* row = w + r * len;
    const double w0 = row[0];
    double m = 0.0;
    for (std::uint64_t i = threadIdx.x; i < len; i += blockDim.x) {
      const double x = fabs(synthesis && i > 0 ? w0 - row[i] : row[i]);
      m = (m < x) ? x : m;
    }
    block_max[threadIdx.x] = m;
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
      if (threadIdx.x < half) {
        const double x = block_max[threadIdx.x + half];
        block_max[threadIdx.x] = (block_max[threadIdx.x] < x) ? x : block_max[threadIdx.x];
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) out[r] = block_max[0];
    __syncthreads();  // block_max is reused by the next row
  }
}

// ---------------------------------------------------------------------------------------------
// Host side

template <class T> void upload(T* dst, const T* src, std::size_t count, cudaStream_t stream) {
  copy_async(dst, src, count, cudaMemcpyHostToDevice, stream);
}
template <class T> void download(T* dst, const T* src, std::size_t count, cudaStream_t stream) {
  copy_async(dst, src, count, cudaMemcpyDeviceToHost, stream);
}
template <class T> void device_copy(T* dst, const T* src, std::size_t count, cudaStream_t stream) {
  copy_async(dst, src, count, cudaMemcpyDeviceToDevice, stream);
}

// Arrays of 2^n elements per sample that the fit keeps on the device.
constexpr std::size_t kRowsOfT = 19;      // v, x, y, λ_a, λ_o, 4 anchors, xn, yn, ka, ko,
                                          // pt, qt, p, q, I_and, I_or
constexpr std::size_t kRowsOfDouble = 3;  // μ_a, μ_o and the certificate's work row

// The whole device state of one batch.
template <class T> struct OptimalDevice {
  std::uint64_t samples, len, total, chunk_len, chunks_per_row, chunks;
  int n;
  DeviceArray<T> v, x, y, la, lo, x0, y0, la0, lo0, xn, yn, ka, ko, pt, qt, p, q, ao;
  DeviceArray<T> tx, ty, sa, so;                          // step sizes, one row
  DeviceArray<T> bound, tau, sigma, hw;                   // per sample
  DeviceArray<unsigned char> active, improved, restart;   // per sample
  DeviceArray<RestartControl> ctl;                        // per sample
  DeviceArray<double> mu_a, mu_o, work;                   // certificate rows; also the terms
  DeviceArray<double> part;                               // chunk sums (3 per chunk)
  DeviceArray<double> abs_part, loss;                     // the loss's chunk sums, per sample
  DeviceArray<double> dl_part, maxes;                     // certificate statistics
  DeviceArray<T> empty;                                   // ∅ entries of the OR transforms
  DeviceArray<double> empty_d;                            // the same for the certificate
  DeviceArray<std::int64_t> iteration;                    // the iteration counter
  OptimalDevice(std::uint64_t samples_, int n_)
      : samples(samples_), len(subset_count(n_)), total(samples_ * subset_count(n_)),
        chunk_len(optimal_step::sum_chunk_length(n_)), chunks_per_row(len / chunk_len),
        chunks(samples_ * chunks_per_row), n(n_), v(total), x(total), y(total), la(total),
        lo(total), x0(total), y0(total), la0(total), lo0(total), xn(total), yn(total),
        ka(total), ko(total), pt(total), qt(total), p(total), q(total), ao(2 * total), tx(len),
        ty(len), sa(len), so(len), bound(samples), tau(samples), sigma(samples), hw(samples),
        active(samples), improved(samples), restart(samples), ctl(samples), mu_a(total),
        mu_o(total), work(total), part(3 * chunks), abs_part(2 * chunks), loss(samples),
        dl_part(2 * kCandidates * chunks), maxes(2 * kCandidates * samples), empty(samples),
        empty_d(samples), iteration(1) {}
  T* a() const { return ao.get(); }
  T* o() const { return ao.get() + total; }
};

unsigned blocks_for(std::uint64_t work) { return launch_blocks(work, kThreads); }

// The OR transform and its transpose of `samples` rows, with the steps of cuda::or_transform and
// cuda::or_transform_transpose (the same kernels in the same order) but with the ∅ entries kept
// in a preallocated array instead of scratch allocated at every call.
template <class T>
void or_rows(T* rows, int n, std::uint64_t samples, T* empty, cudaStream_t stream) {
  reverse_negate_rows<T>(rows, n, samples, empty, nullptr, stream);
  lattice_transform(LatticeOp::Moebius, rows, n, samples, stream);
  set_empty_entries<T>(rows, n, samples, nullptr, empty, stream);
}
template <class T>
void or_rows_transpose(T* rows, int n, std::uint64_t samples, T* empty, cudaStream_t stream) {
  set_empty_entries<T>(rows, n, samples, empty, nullptr, stream);
  lattice_transform(LatticeOp::MoebiusTranspose, rows, n, samples, stream);
  reverse_negate_rows<T>(rows, n, samples, nullptr, empty, stream);
}

// loss[s] = sum_abs(I_and row) + sum_abs(I_or row) of the rows a, o of dev.ao.
template <class T> void pair_loss(OptimalDevice<T>& d, cudaStream_t stream) {
  const std::uint64_t cpr = loss_chunks_per_row(d.len), chunks = 2 * d.samples * cpr;
  chunk_abs_kernel<T><<<blocks_for(chunks * kLossLanes), kThreads, 0, stream>>>(
      d.ao.get(), d.n, chunks, cpr, loss_chunk_length(d.len), d.abs_part.get());
  HARSANYI_CUDA_LAUNCH_CHECK();
  pair_loss_kernel<double><<<blocks_for(d.samples), kThreads, 0, stream>>>(
      d.abs_part.get(), d.samples, cpr, d.loss.get(), nullptr, 0, -1);
  HARSANYI_CUDA_LAUNCH_CHECK();
}

// d.loss = the objective at the feasible form of (x, y) for the active samples; its p, q in
// d.pt, d.qt and its I_and, I_or in d.ao.
template <class T>
void evaluate(OptimalDevice<T>& d, const T* x, const T* y, cudaStream_t stream) {
  feasible_kernel<T><<<blocks_for(d.total), kThreads, 0, stream>>>(
      d.v.get(), x, y, d.bound.get(), d.active.get(), d.pt.get(), d.qt.get(), d.a(), d.o(), d.n,
      d.total);
  HARSANYI_CUDA_LAUNCH_CHECK();
  lattice_transform(LatticeOp::Moebius, d.a(), d.n, d.samples, stream);
  or_rows(d.o(), d.n, d.samples, d.empty.get(), stream);
  pair_loss(d, stream);
}

// Statistics of certificate candidate `c` held in `mu`: the chunk sums of μᵀv and ‖μ‖₁, and
// max|Zᵀμ|, max|O⁻ᵀμ| per sample.
template <class T>
void candidate_stats(OptimalDevice<T>& d, const double* mu, int c, cudaStream_t stream) {
  dot_l1_kernel<T><<<blocks_for(d.chunks), kThreads, 0, stream>>>(
      mu, d.v.get(), d.chunks, d.chunk_len, d.dl_part.get() + 2 * c * d.chunks);
  HARSANYI_CUDA_LAUNCH_CHECK();
  const unsigned row_blocks =
      static_cast<unsigned>(std::min<std::uint64_t>(d.samples, kMaxBlocks));
  double* m = d.maxes.get() + 2 * c * d.samples;
  device_copy(d.work.get(), mu, d.total, stream);
  lattice_transform(LatticeOp::ZetaTranspose, d.work.get(), d.n, d.samples, stream);
  row_max_abs_kernel<<<row_blocks, kThreads, 0, stream>>>(d.work.get(), d.n, d.samples, false, m);
  HARSANYI_CUDA_LAUNCH_CHECK();
  reverse_copy_kernel<<<blocks_for(d.total), kThreads, 0, stream>>>(mu, d.work.get(), d.n,
                                                                    d.total);
  HARSANYI_CUDA_LAUNCH_CHECK();
  lattice_transform(LatticeOp::ZetaTranspose, d.work.get(), d.n, d.samples, stream);
  row_max_abs_kernel<<<row_blocks, kThreads, 0, stream>>>(d.work.get(), d.n, d.samples, true,
                                                          m + d.samples);
  HARSANYI_CUDA_LAUNCH_CHECK();
}

// The certificate candidates of the dual point (ka, ko): Mᵀλ_a, Oᵀλ_o and their mean.
template <class T> void certify(OptimalDevice<T>& d, cudaStream_t stream) {
  widen_kernel<T><<<blocks_for(d.total), kThreads, 0, stream>>>(d.ka.get(), d.ko.get(),
                                                                d.mu_a.get(), d.mu_o.get(),
                                                                d.total);
  HARSANYI_CUDA_LAUNCH_CHECK();
  lattice_transform(LatticeOp::MoebiusTranspose, d.mu_a.get(), d.n, d.samples, stream);
  or_rows_transpose(d.mu_o.get(), d.n, d.samples, d.empty_d.get(), stream);
  candidate_stats(d, d.mu_a.get(), 0, stream);
  candidate_stats(d, d.mu_o.get(), 1, stream);
  mean_kernel<<<blocks_for(d.total), kThreads, 0, stream>>>(d.mu_a.get(), d.mu_o.get(), d.total);
  HARSANYI_CUDA_LAUNCH_CHECK();
  candidate_stats(d, d.mu_a.get(), 2, stream);
}

// One iteration up to the check: the steps of fit_one from Mᵀλ to the restart decision.
template <class T> void iteration_steps(OptimalDevice<T>& d, cudaStream_t stream) {
  const int n = d.n;
  const std::uint64_t samples = d.samples, total = d.total;
  tick_kernel<<<1, 32, 0, stream>>>(d.iteration.get());
  HARSANYI_CUDA_LAUNCH_CHECK();
  // xn = Mᵀλ_a, yn = Oᵀλ_o
  device_copy(d.xn.get(), d.la.get(), total, stream);
  device_copy(d.yn.get(), d.lo.get(), total, stream);
  lattice_transform(LatticeOp::MoebiusTranspose, d.xn.get(), n, samples, stream);
  or_rows_transpose(d.yn.get(), n, samples, d.empty.get(), stream);
  primal_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
      d.v.get(), d.bound.get(), d.x.get(), d.y.get(), d.xn.get(), d.yn.get(), d.ka.get(),
      d.ko.get(), d.tx.get(), d.ty.get(), d.tau.get(), d.active.get(), n, total);
  HARSANYI_CUDA_LAUNCH_CHECK();
  lattice_transform(LatticeOp::Moebius, d.ka.get(), n, samples, stream);
  or_rows(d.ko.get(), n, samples, d.empty.get(), stream);
  // The control kernel below overwrites tau and sigma with the next iteration's scales, after
  // the dual kernel has used this iteration's.
  dual_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
      d.x.get(), d.y.get(), d.la.get(), d.lo.get(), d.x0.get(), d.y0.get(), d.la0.get(),
      d.lo0.get(), d.xn.get(), d.yn.get(), d.ka.get(), d.ko.get(), d.tx.get(), d.ty.get(),
      d.sa.get(), d.so.get(), d.tau.get(), d.sigma.get(), d.active.get(), d.mu_a.get(),
      d.mu_o.get(), d.work.get(), n, total);
  HARSANYI_CUDA_LAUNCH_CHECK();
  term_sums_kernel<<<blocks_for(d.chunks * optimal_step::kSumLanes), kThreads, 0, stream>>>(
      d.mu_a.get(), d.mu_o.get(), d.work.get(), d.chunks, d.chunk_len, d.part.get());
  HARSANYI_CUDA_LAUNCH_CHECK();
  control_kernel<T><<<blocks_for(samples), kThreads, 0, stream>>>(
      d.part.get(), d.chunks_per_row, d.active.get(), d.ctl.get(), d.restart.get(), d.tau.get(),
      d.sigma.get(), d.hw.get(), d.iteration.get(), optimal_detail::kStepEta, samples);
  HARSANYI_CUDA_LAUNCH_CHECK();
}

// The end of an iteration: restart or Halpern step.
template <class T> void update_step(OptimalDevice<T>& d, cudaStream_t stream) {
  update_kernel<T><<<blocks_for(d.total), kThreads, 0, stream>>>(
      d.x.get(), d.y.get(), d.la.get(), d.lo.get(), d.x0.get(), d.y0.get(), d.la0.get(),
      d.lo0.get(), d.xn.get(), d.yn.get(), d.ka.get(), d.ko.get(), d.restart.get(), d.hw.get(),
      d.active.get(), d.n, d.total);
  HARSANYI_CUDA_LAUNCH_CHECK();
}

// A sequence of launches on one stream, replayed as a CUDA graph (captured at the first run)
// or launched one by one. Every pointer and scalar the launches take is fixed for the batch
// (what changes between iterations lives in device memory), so one capture serves every run.
class Replayed {
 public:
  Replayed(bool graph, cudaStream_t stream) : graph_(graph), stream_(stream) {}
  ~Replayed() {
    if (exec_) cudaGraphExecDestroy(exec_);
    if (g_) cudaGraphDestroy(g_);
  }
  Replayed(const Replayed&) = delete;
  Replayed& operator=(const Replayed&) = delete;

  template <class F> void run(F&& launches) {
    if (!graph_) {
      launches();
      return;
    }
    if (!exec_) {
      HARSANYI_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
      try {
        launches();
      } catch (...) {
        cudaGraph_t broken = nullptr;
        cudaStreamEndCapture(stream_, &broken);  // leave the stream usable
        if (broken) cudaGraphDestroy(broken);
        throw;
      }
      HARSANYI_CUDA_CHECK(cudaStreamEndCapture(stream_, &g_));
      HARSANYI_CUDA_CHECK(cudaGraphInstantiate(&exec_, g_, 0));
    }
    HARSANYI_CUDA_CHECK(cudaGraphLaunch(exec_, stream_));
  }

 private:
  bool graph_;
  cudaStream_t stream_;
  cudaGraph_t g_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

// One sample's host-side bookkeeping (fit_one's scalars). The crossover's work arrays are not
// kept per sample (they can reach hundreds of MB): each attempt has its own.
struct SampleBook {
  double bd = 0.0;  // the bound b in double
  double best_loss = std::numeric_limits<double>::infinity();
  double best_bound = -std::numeric_limits<double>::infinity();
  std::int64_t iterations = 0;
  bool converged = false;
  double credit = 0.0;  // the crossover's work ration (Crossover::credit, Crossover::need)
  double need = 0.0;
};

// The host copies of the check's statistics.
struct CheckStats {
  std::vector<double> loss, dl_part, maxes;
};

// The certified bound of candidate c of sample s from its statistics (optimal_dual_bound).
double candidate_bound(const CheckStats& cs, std::uint64_t samples, std::uint64_t cpr,
                       std::uint64_t chunks, std::uint64_t s, int c, double bd) {
  double dot = 0.0, l1 = 0.0;
  for (std::uint64_t k = 0; k < cpr; ++k) {
    const double* p = cs.dl_part.data() + 2 * (c * chunks + s * cpr + k);
    dot += p[0];
    l1 += p[1];
  }
  double m = std::max(1.0, cs.maxes[2 * c * samples + s]);
  m = std::max(m, cs.maxes[2 * c * samples + samples + s]);
  return (dot - bd * l1) / m;
}

bool gap_closed(const SampleBook& b, double tol) {
  return b.best_loss - b.best_bound <= tol * std::max(std::fabs(b.best_loss), 1e-300);
}

}  // namespace

std::size_t optimal_device_bytes_per_sample(int n, std::size_t element_size) {
  const std::uint64_t len = subset_count(n);
  const std::uint64_t cpr = len / optimal_step::sum_chunk_length(n);
  // The rows; the per-sample scalars and flags; the chunk sums of the iteration (3), of the
  // loss (2) and of the certificate (2 per candidate), the maxima (2 per candidate), the loss.
  return len * (kRowsOfT * element_size + kRowsOfDouble * sizeof(double)) + 5 * element_size +
         sizeof(double) + 3 + sizeof(RestartControl) + cpr * (3 + 2 + 2 * kCandidates) * sizeof(double) +
         (2 * kCandidates + 1) * sizeof(double);
}

template <class T>
void fit_and_or_optimal_batch(const T* values, std::size_t samples, int n,
                              const OptimalOptions& opt, AndOrBatch<T>& out, Progress* progress,
                              Launch launch, const DeviceEpilogue<T>* epilogue,
                              OptimalTimes* times) {
  optimal_detail::check_options(opt);
  using Clock = std::chrono::steady_clock;
  const Clock::time_point t_begin = Clock::now();
  Clock::time_point t_mark = t_begin;
  auto lap = [&] {  // seconds since the previous lap
    const Clock::time_point now = Clock::now();
    const double s = std::chrono::duration<double>(now - t_mark).count();
    t_mark = now;
    return s;
  };
  if (times) *times = OptimalTimes{};
  if (n < 0 || n > kMaxDevicePlayers)
    throw std::invalid_argument("optimal (GPU): n = " + std::to_string(n) + " out of range");
  const int tl = optimal_trace_length(opt);
  if (samples == 0) {
    out.resize(samples, n, tl);
    out.bound.clear();
    out.iterations.clear();
    return;
  }
  if (values == nullptr) throw std::invalid_argument("optimal (GPU): null values");
  if (samples > (~std::uint64_t{0} >> (n + 1)))
    throw std::invalid_argument("optimal (GPU): batch too large");
  const std::uint64_t len = subset_count(n);
  const std::uint64_t total = samples * len;

  // Refuse before allocating anything when the batch cannot fit.
  // (+ the step sizes, one row shared by all samples)
  const std::uint64_t need = samples * optimal_device_bytes_per_sample(n, sizeof(T)) +
                             4 * len * sizeof(T);
  refuse_unless_fits("optimal (GPU)", samples, n, need);

  size_outputs(out, samples, n, tl, epilogue);
  out.bound.assign(samples, std::numeric_limits<double>::quiet_NaN());
  out.iterations.assign(samples, 0);
  OwnStream own;
  const cudaStream_t stream = own.get();
  OptimalDevice<T> d(samples, n);

  // The crossovers read v on the host: values in device memory get one host copy.
  std::vector<T> staged;
  const T* h_values = values;
  if (is_device_pointer(values)) {
    staged.resize(total);
    copy_async(staged.data(), values, total, cudaMemcpyDeviceToHost, stream);
    HARSANYI_CUDA_CHECK(cudaStreamSynchronize(stream));
    h_values = staged.data();
  }
  // Host bookkeeping and the per-sample values the device starts from.
  std::vector<SampleBook> book(samples);
  std::vector<T> h_bound(samples), h_tau(samples), h_sigma(samples);
  std::vector<RestartControl> h_ctl(samples);
  const double omega0 = optimal_detail::initial_primal_weight(opt);
  for (std::uint64_t s = 0; s < samples; ++s) {
    const T* v = h_values + s * len;
    book[s].bd = opt.qthres * std::fabs(static_cast<double>(v[len - 1]) -
                                        static_cast<double>(v[0]));
    h_bound[s] = static_cast<T>(book[s].bd);
    h_ctl[s].omega = omega0;
    h_tau[s] = static_cast<T>(optimal_detail::kStepEta / omega0);
    h_sigma[s] = static_cast<T>(omega0);
  }
  std::vector<unsigned char> h_active(samples, 1), h_improved(samples, 0);
  copy_async(d.v.get(), values, total, cudaMemcpyDefault, stream);  // from the host or the device
  upload(d.bound.get(), h_bound.data(), samples, stream);
  upload(d.tau.get(), h_tau.data(), samples, stream);
  upload(d.sigma.get(), h_sigma.data(), samples, stream);
  upload(d.ctl.get(), h_ctl.data(), samples, stream);
  upload(d.active.get(), h_active.data(), samples, stream);
  steps_kernel<T><<<blocks_for(len), kThreads, 0, stream>>>(d.tx.get(), d.ty.get(), d.sa.get(),
                                                            d.so.get(), n);
  HARSANYI_CUDA_LAUNCH_CHECK();
  start_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
      d.v.get(), d.x.get(), d.y.get(), d.la.get(), d.lo.get(), d.x0.get(), d.y0.get(),
      d.la0.get(), d.lo0.get(), total);
  HARSANYI_CUDA_LAUNCH_CHECK();

  CheckStats cs;
  cs.loss.resize(samples);
  cs.dl_part.resize(2 * kCandidates * d.chunks);
  cs.maxes.resize(2 * kCandidates * samples);
  std::uint64_t remaining = samples;
  auto finish = [&](std::uint64_t s, std::int64_t it) {
    book[s].converged = gap_closed(book[s], opt.tol);
    if (!book[s].converged) return;
    book[s].iterations = it;
    h_active[s] = 0;
    --remaining;
    if (progress) progress->advance(1);
  };

  // Iteration 0: the starting point (p = 0, q = 0) and the trivial certificate μ = 0. As on
  // the CPU, p and q keep zeros when the loss is not below +inf (NaN).
  HARSANYI_CUDA_CHECK(cudaMemsetAsync(d.p.get(), 0, total * sizeof(T), stream));
  HARSANYI_CUDA_CHECK(cudaMemsetAsync(d.q.get(), 0, total * sizeof(T), stream));
  evaluate(d, d.x.get(), d.y.get(), stream);
  download(cs.loss.data(), d.loss.get(), samples, stream);
  HARSANYI_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (std::uint64_t s = 0; s < samples; ++s) {
    h_improved[s] = cs.loss[s] < book[s].best_loss ? 1 : 0;
    if (h_improved[s]) book[s].best_loss = cs.loss[s];
    book[s].best_bound = 0.0;
    if (tl > 0) out.trace[s * tl] = book[s].best_loss;
    finish(s, 0);
  }
  upload(d.improved.get(), h_improved.data(), samples, stream);
  keep_best_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
      d.pt.get(), d.qt.get(), d.improved.get(), d.p.get(), d.q.get(), n, total);
  HARSANYI_CUDA_LAUNCH_CHECK();
  upload(d.active.get(), h_active.data(), samples, stream);

  const double iter_units = optimal_detail::iteration_units(n);
  const std::size_t max_basis = static_cast<std::size_t>(opt.max_basis);
  std::int64_t last_check = 0;  // the iteration of the previous check (credit bookkeeping)
  std::int64_t it = 0;
  std::vector<std::uint64_t> attempt;  // samples with a crossover attempt at this check
  std::vector<T> host_rows;            // their qt, I_and and I_or rows
  std::vector<unsigned char> host_best;
  std::vector<T> host_pq;              // p, q of crossover points that became the best
  HARSANYI_CUDA_CHECK(cudaMemsetAsync(d.iteration.get(), 0, sizeof(std::int64_t), stream));
  const bool graphs = launch == Launch::Graph;
  Replayed iteration(graphs, stream), update(graphs, stream);
  if (times) lap();  // the set-up so far counts as `other`
  while (remaining > 0 && it < opt.max_iters) {
    ++it;
    iteration.run([&] { iteration_steps(d, stream); });
    const bool trace_point = tl > 0 && it % opt.trace_every == 0;
    if (it % opt.check_every == 0 || trace_point || it == opt.max_iters) {
      if (times) {  // the iterations since the previous check, to completion
        HARSANYI_CUDA_CHECK(cudaStreamSynchronize(stream));
        times->iterate_s += lap();
        ++times->checks;
      }
      // Loss and certificate of every active sample at the new point.
      evaluate(d, d.xn.get(), d.yn.get(), stream);
      certify(d, stream);
      download(cs.loss.data(), d.loss.get(), samples, stream);
      download(cs.dl_part.data(), d.dl_part.get(), cs.dl_part.size(), stream);
      download(cs.maxes.data(), d.maxes.get(), cs.maxes.size(), stream);
      HARSANYI_CUDA_CHECK(cudaStreamSynchronize(stream));
      attempt.clear();
      for (std::uint64_t s = 0; s < samples; ++s) {
        h_improved[s] = 0;
        if (!h_active[s]) continue;
        SampleBook& b = book[s];
        for (std::int64_t t = last_check; t < it; ++t) b.credit += iter_units;
        if (cs.loss[s] < b.best_loss) {
          b.best_loss = cs.loss[s];
          h_improved[s] = 1;
        }
        double cert = candidate_bound(cs, samples, d.chunks_per_row, d.chunks, s, 0, b.bd);
        cert = std::max(cert, candidate_bound(cs, samples, d.chunks_per_row, d.chunks, s, 1,
                                              b.bd));
        cert = std::max(cert, candidate_bound(cs, samples, d.chunks_per_row, d.chunks, s, 2,
                                              b.bd));
        b.best_bound = std::max(b.best_bound, cert);
        b.converged = gap_closed(b, opt.tol);
        if (!b.converged && max_basis > 0 && b.credit >= b.need) attempt.push_back(s);
      }
      last_check = it;
      upload(d.improved.get(), h_improved.data(), samples, stream);
      keep_best_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
          d.pt.get(), d.qt.get(), d.improved.get(), d.p.get(), d.q.get(), n, total);
      HARSANYI_CUDA_LAUNCH_CHECK();

      // Crossover attempts on the host, from the point's q, I_and and I_or.
      if (!attempt.empty()) {
        if (times) {
          times->check_s += lap();
          times->crossovers += static_cast<std::int64_t>(attempt.size());
        }
        const std::size_t m = attempt.size();
        host_rows.resize(3 * m * len);
        for (std::size_t j = 0; j < m; ++j) {
          const std::uint64_t row = attempt[j] * len;
          download(host_rows.data() + (3 * j) * len, d.qt.get() + row, len, stream);
          download(host_rows.data() + (3 * j + 1) * len, d.a() + row, len, stream);
          download(host_rows.data() + (3 * j + 2) * len, d.o() + row, len, stream);
        }
        HARSANYI_CUDA_CHECK(cudaStreamSynchronize(stream));
        host_best.assign(m, 0);
        host_pq.resize(2 * m * len);
        const T* hv = h_values;
#pragma omp parallel for schedule(dynamic, 1)
        for (std::size_t j = 0; j < m; ++j) {
          const std::uint64_t s = attempt[j];
          SampleBook& b = book[s];
          const T* v = hv + s * len;
          const T* qt = host_rows.data() + (3 * j) * len;
          std::vector<double> vd(v, v + len);
          if (!(b.credit >= optimal_detail::crossover_estimate(qt, vd.data(), b.bd, n,
                                                               max_basis)))
            continue;
          optimal_detail::Crossover cx;  // its arrays are rebuilt by every attempt
          std::vector<double> full_a(len), full_o(len), mu(len);
          std::vector<T> xb(len), yb(len), a(len), o(len);
          double units = 0.0;
          const bool formed = optimal_detail::crossover_attempt(
              host_rows.data() + (3 * j + 1) * len, host_rows.data() + (3 * j + 2) * len, qt,
              vd.data(), b.bd, n, max_basis, 2.0 * b.credit, cx, full_a.data(), full_o.data(),
              xb.data(), yb.data(), mu.data(), units);
          b.credit = 0.0;
          b.need = units;
          if (!formed) continue;
          b.best_bound = std::max(
              b.best_bound, optimal_dual_bound(mu.data(), vd.data(), n, b.bd, full_a.data()));
          T* pq = host_pq.data() + 2 * j * len;
          const double loss = optimal_detail::feasible_objective(
              v, xb.data(), yb.data(), h_bound[s], n, false, pq, pq + len, a.data(), o.data());
          if (loss < b.best_loss) {
            b.best_loss = loss;
            host_best[j] = 1;
          }
          b.converged = gap_closed(b, opt.tol);
        }
        for (std::size_t j = 0; j < m; ++j)
          if (host_best[j]) {
            const std::uint64_t row = attempt[j] * len;
            upload(d.p.get() + row, host_pq.data() + 2 * j * len, len, stream);
            upload(d.q.get() + row, host_pq.data() + (2 * j + 1) * len, len, stream);
          }
        if (times) {
          HARSANYI_CUDA_CHECK(cudaStreamSynchronize(stream));
          times->crossover_s += lap();
        }
      }
      for (std::uint64_t s = 0; s < samples; ++s) {
        if (!h_active[s]) continue;
        if (trace_point) out.trace[s * tl + it / opt.trace_every] = book[s].best_loss;
        finish(s, it);
      }
      upload(d.active.get(), h_active.data(), samples, stream);
      // host_pq and h_active must outlive their copies; the next check reuses them.
      HARSANYI_CUDA_CHECK(cudaStreamSynchronize(stream));
      if (times) times->check_s += lap();
      if (remaining == 0) break;
    }
    update.run([&] { update_step(d, stream); });
  }
  for (std::uint64_t s = 0; s < samples; ++s)
    if (h_active[s]) book[s].iterations = it;  // not converged: ran to max_iters

  // The outputs at each sample's best point: I_and, I_or recomputed from the kept p, q.
  split_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(d.v.get(), d.p.get(), d.q.get(),
                                                              d.a(), d.o(), total);
  HARSANYI_CUDA_LAUNCH_CHECK();
  lattice_transform(LatticeOp::Moebius, d.a(), n, samples, stream);
  or_rows(d.o(), n, samples, d.empty.get(), stream);
  pair_loss(d, stream);
  finish_fit("optimal (GPU)", epilogue, d.a(), d.o(), d.p.get(), d.q.get(), d.v.get(), total, out,
             stream);
  copy_to_host("optimal (GPU)", out.loss, d.loss.get(), samples, stream);
  HARSANYI_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (std::uint64_t s = 0; s < samples; ++s) {
    out.bound[s] = book[s].best_bound;
    out.iterations[s] = book[s].iterations;
    if (tl > 0)
      for (int t = static_cast<int>(book[s].iterations / opt.trace_every) + 1; t < tl; ++t)
        out.trace[s * tl + t] = out.loss[s];
    if (h_active[s] && progress) progress->advance(1);
  }
  if (times) {
    times->iterations = it;
    times->other_s = std::max(0.0, std::chrono::duration<double>(Clock::now() - t_begin).count() -
                                       times->iterate_s - times->check_s - times->crossover_s);
  }
}

#define HARSANYI_INSTANTIATE(T)                                                             \
  template void fit_and_or_optimal_batch<T>(const T*, std::size_t, int, const OptimalOptions&, \
                                            AndOrBatch<T>&, Progress*, Launch,       \
                                            const DeviceEpilogue<T>*, OptimalTimes*);
HARSANYI_INSTANTIATE(float)
HARSANYI_INSTANTIATE(double)
#undef HARSANYI_INSTANTIATE

}  // namespace harsanyi::cuda
