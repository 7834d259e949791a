// The papers' sgd protocol (DESIGN §2.1) on the GPU for a batch of samples: the iteration of
// fit_and_or_sgd in src/sgd_solver.cpp, step for step, with the same per-element arithmetic
// (compiled with --fmad=false), the same transforms (bitwise equal in float64) and the loss summed
// in double in the same order as sum_abs. float64 results therefore match the CPU bitwise.
//
// Per iteration (rows a and o of every sample live in one array `ao` of 2·samples rows, so each
// transform is one batched call):
//   combine:  clamp q; a = ½(v+q) + p; o = reverse(-(½(v+q) - p)); save w(∅) = ½(v+q)(∅) - p(∅)
//   Möbius on ao                                    -> I_and, and I_or except at ∅
//   (trace points and last iteration) restore I_or(∅) = w(∅); loss per sample in double
//   sign:     a = sign(a); o = sign(o), o(∅) = 0 and g0 = sign(I_or(∅))   (Oᵀ's D and e∅)
//   Möbius transpose on ao
//   update:   Oᵀ sign = -reverse(o) + e∅·g0; momentum SGD on p and q with eta_t from the host
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "abs_sums.cuh"
#include "butterfly_ops.cuh"
#include "cuda_backend.h"
#include "cuda_check.h"
#include "device_memory.h"
#include "lattice_index.h"
#include "lattice_internal.h"
#include "lattice_transforms.h"
#include "progress.h"
#include "sgd_element_step.h"
#include "sgd_solver.h"

namespace harsanyi::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kProgressEvery = 256;  // iterations between progress updates

// ---------------------------------------------------------------------------------------------
// Kernels

// bound[s] = qthres·|v(N) - v(∅)| of each sample, rounded to T as the CPU does.
template <class T>
__global__ void bound_kernel(const T* __restrict__ v, T* __restrict__ bound, int n,
                             std::uint64_t samples, double qthres) {
  const std::uint64_t len = std::uint64_t{1} << n;
  for (std::uint64_t s = global_thread(); s < samples; s += grid_threads()) {
    const double d = static_cast<double>(v[s * len + len - 1]) - static_cast<double>(v[s * len]);
    bound[s] = static_cast<T>(qthres * fabs(d));
  }
}

// Clamp q; a = h + p; o reversed and negated (the first step of the OR transform) with
// h = ½(v + q); the unreversed o(∅) saved in empty[s] (it becomes I_or(∅)).
template <class T>
__global__ void combine_kernel(const T* __restrict__ v, const T* __restrict__ p, T* __restrict__ q,
                               const T* __restrict__ bound, T* __restrict__ a, T* __restrict__ o,
                               T* __restrict__ empty, int n, std::uint64_t total) {
  const std::uint64_t mask = (std::uint64_t{1} << n) - 1;
  for (std::uint64_t k = global_thread(); k < total; k += grid_threads()) {
    const std::uint64_t s = k >> n;
    const T qi = sgd_step::clamp_q(q[k], bound[s]);
    q[k] = qi;
    T ak, ov;
    sgd_step::split(v[k], qi, p[k], ak, ov);
    a[k] = ak;
    o[index::reversed_element(k, n)] = -ov;
    if ((k & mask) == 0) empty[s] = ov;
  }
}

// Signs of I_and and I_or (rows [0, samples) and [samples, 2·samples) of ao); the OR rows'
// ∅ entry becomes 0 and its sign goes to g0 (the D and e∅ parts of Oᵀ).
template <class T>
__global__ void sign_kernel(T* __restrict__ ao, const T* __restrict__ empty, T* __restrict__ g0,
                            int n, std::uint64_t samples) {
  const std::uint64_t mask = (std::uint64_t{1} << n) - 1;
  const std::uint64_t total = (2 * samples) << n;
  for (std::uint64_t k = global_thread(); k < total; k += grid_threads()) {
    const std::uint64_t row = k >> n;
    if (row >= samples && (k & mask) == 0) {
      g0[row - samples] = sgd_step::sign_of(empty[row - samples]);
      ao[k] = T(0);
    } else {
      ao[k] = sgd_step::sign_of(ao[k]);
    }
  }
}

// Sub-gradients and the momentum step. a = Mᵀ sign(I_and); Oᵀ sign(I_or) = -reverse(o) + e∅·g0.
template <class T>
__global__ void update_kernel(const T* __restrict__ a, const T* __restrict__ o,
                              const T* __restrict__ g0, T* __restrict__ p, T* __restrict__ q,
                              T* __restrict__ bp, T* __restrict__ bq, T eta, T momentum, bool first,
                              int n, std::uint64_t total) {
  const std::uint64_t mask = (std::uint64_t{1} << n) - 1;
  for (std::uint64_t k = global_thread(); k < total; k += grid_threads()) {
    const T ak = a[k];
    T ok = -o[index::reversed_element(k, n)];
    if ((k & mask) == 0) ok += g0[k >> n];
    sgd_step::momentum_step(ak, ok, first, momentum, eta, bp[k], bq[k], p[k], q[k]);
  }
}

// ---------------------------------------------------------------------------------------------
// Fused kernel (n <= kFusedMaxPlayers): one block per sample runs a whole segment of iterations
// with no launch in between. The block's threads own subsets k = tid + j·threads (j < E) and keep
// v, p, q and the momentum buffers of them in registers; the rows a and o live in shared memory,
// where the transforms run bit by bit in increasing order. Every element sees the operations of
// the staged kernels above in the same order, so the results are bitwise the staged ones (and
// the CPU's in float64); the loss is summed as chunk_abs_kernel + pair_loss_kernel sum it (one
// chunk per row, since 2^n <= 4096).

constexpr int kFusedMaxPlayers = 12;
constexpr int kFusedPerThread = 4;  // subsets per thread (registers per array)

int fused_threads(int n) {
  const int len = 1 << n;
  return n <= 8 ? std::max(32, len) : len / kFusedPerThread;  // 32..256, 128..1024
}

// One butterfly transform of the rows a and o (2·len elements in shared memory) by the block.
template <class Op, class T>
__device__ __forceinline__ void block_transform(T* ao, int n) {
  const unsigned len = 1u << n, half = len >> 1;
  for (int b = 0; b < n; ++b) {
    const unsigned low = (1u << b) - 1;
    for (unsigned m = threadIdx.x; m < len; m += blockDim.x) {  // len pairs: half per row
      const unsigned row = m >= half ? 1u : 0u;
      const unsigned j = m - row * half;
      const unsigned lo = ((j & ~low) << 1) | (j & low);
      T* r = ao + row * len;
      Op::apply(r[lo], r[lo | (1u << b)]);
    }
    __syncthreads();
  }
}

template <class T>
__global__ void __launch_bounds__(1024)
    fused_sgd_kernel(const T* __restrict__ v, T* __restrict__ p, T* __restrict__ q,
                     T* __restrict__ bp, T* __restrict__ bq, const T* __restrict__ bound,
                     T* __restrict__ ao_out, const T* __restrict__ eta, int n,
                     std::uint64_t samples, int t0, int t1, int iters, T momentum,
                     double* __restrict__ loss, double* __restrict__ trace, int trace_len,
                     int trace_every) {
  extern __shared__ __align__(16) unsigned char fused_smem[];
  T* a = reinterpret_cast<T*>(fused_smem);
  const unsigned len = 1u << n, tid = threadIdx.x, threads = blockDim.x;
  T* o = a + len;
  __shared__ double lane_sums[2 * kLossLanes];
  __shared__ T w_empty;
  for (std::uint64_t s = blockIdx.x; s < samples; s += gridDim.x) {
    const std::uint64_t row0 = s << n;
    T rv[kFusedPerThread], rp[kFusedPerThread], rq[kFusedPerThread], rbp[kFusedPerThread],
        rbq[kFusedPerThread];
#pragma unroll
    for (int j = 0; j < kFusedPerThread; ++j) {
      const unsigned k = tid + j * threads;
      if (k < len) {
        rv[j] = v[row0 + k];
        rp[j] = p[row0 + k];
        rq[j] = q[row0 + k];
        rbp[j] = bp[row0 + k];
        rbq[j] = bq[row0 + k];
      }
    }
    const T bnd = bound[s];
    for (int t = t0; t < t1; ++t) {
      // combine
#pragma unroll
      for (int j = 0; j < kFusedPerThread; ++j) {
        const unsigned k = tid + j * threads;
        if (k < len) {
          const T qi = sgd_step::clamp_q(rq[j], bnd);
          rq[j] = qi;
          T ak, ov;
          sgd_step::split(rv[j], qi, rp[j], ak, ov);
          a[k] = ak;
          o[len - 1 - k] = -ov;
          if (k == 0) w_empty = ov;
        }
      }
      __syncthreads();
      block_transform<ops::MoebiusOp, T>(a, n);
      const bool traced = trace_len > 0 && t % trace_every == 0;
      const bool last = t + 1 == iters;
      if (traced || last) {
        if (tid == 0) o[0] = w_empty;  // I_or(∅) = w(∅)
        __syncthreads();
        if (tid < 2 * kLossLanes) {  // chunk_abs_kernel's lanes: 8 for row a, 8 for row o
          lane_sums[tid] = lane_abs_sum(tid < kLossLanes ? a : o, len / kLossLanes,
                                        tid & (kLossLanes - 1));
        }
        __syncthreads();
        if (tid == 0) {
          double chunk[2];
          for (int r = 0; r < 2; ++r) {
            double c = 0.0;
            for (unsigned k = 0; k < kLossLanes; ++k) c += lane_sums[r * kLossLanes + k];
            chunk[r] = add_abs_tail(c, r == 0 ? a : o, (len / kLossLanes) * kLossLanes, len);
          }
          double ta = 0.0, to = 0.0;
          ta += chunk[0];
          to += chunk[1];
          const double l = ta + to;
          loss[s] = l;
          if (traced) trace[s * static_cast<std::uint64_t>(trace_len) + t / trace_every] = l;
        }
        __syncthreads();  // thread 0 reads a and o (the tail when n < 3) before they change
      }
      if (last) break;
      // sign (o(∅) becomes 0; its sign is g0)
      const T g0 = sgd_step::sign_of(w_empty);
#pragma unroll
      for (int j = 0; j < kFusedPerThread; ++j) {
        const unsigned k = tid + j * threads;
        if (k < len) {
          a[k] = sgd_step::sign_of(a[k]);
          o[k] = k == 0 ? T(0) : sgd_step::sign_of(o[k]);
        }
      }
      __syncthreads();
      block_transform<ops::MoebiusTOp, T>(a, n);
      // update
#pragma unroll
      for (int j = 0; j < kFusedPerThread; ++j) {
        const unsigned k = tid + j * threads;
        if (k < len) {
          T ok = -o[len - 1 - k];
          if (k == 0) ok += g0;
          sgd_step::momentum_step(a[k], ok, t == 0, momentum, eta[t], rbp[j], rbq[j], rp[j],
                                  rq[j]);
        }
      }
      __syncthreads();  // the next combine overwrites a and o
    }
#pragma unroll
    for (int j = 0; j < kFusedPerThread; ++j) {
      const unsigned k = tid + j * threads;
      if (k < len) {
        p[row0 + k] = rp[j];
        q[row0 + k] = rq[j];
        bp[row0 + k] = rbp[j];
        bq[row0 + k] = rbq[j];
      }
    }
    if (t1 == iters) {  // the result rows: I_and to row s, I_or to row samples + s
      for (unsigned k = tid; k < len; k += threads) {
        ao_out[row0 + k] = a[k];
        ao_out[((samples + s) << n) + k] = o[k];
      }
    }
    __syncthreads();  // the next sample of this block reuses a, o and w_empty
  }
}

// The iterations with one launch per step over the whole batch (any n).
template <class T>
void staged_iterations(const T* v, T* p, T* q, T* bp, T* bq, T* ao, const T* bound, double* loss,
                       double* trace, int n, std::uint64_t samples, const SgdOptions& opt, int tl,
                       T momentum, cudaStream_t stream, Progress* progress) {
  const std::uint64_t len = subset_count(n);
  const std::uint64_t total = samples * len;
  const std::uint64_t cpr = loss_chunks_per_row(len);
  // The staged steps' own scratch: w(∅) and sign(I_or(∅)) per sample, the loss's chunk sums.
  DeviceArray<T> empty_array(samples), g0_array(samples);
  DeviceArray<double> chunk_array(2 * samples * cpr);
  T* empty = empty_array.get();
  T* g0 = g0_array.get();
  double* chunk_sums = chunk_array.get();
  T* a = ao;
  T* o = ao + total;
  const unsigned blocks = launch_blocks(total, kThreads);
  const unsigned blocks2 = launch_blocks(2 * total, kThreads);
  const std::uint64_t chunks = 2 * samples * cpr;
  const unsigned loss_blocks = launch_blocks(chunks * kLossLanes, kThreads);
  for (int t = 0; t < opt.iters; ++t) {
    combine_kernel<T><<<blocks, kThreads, 0, stream>>>(v, p, q, bound, a, o, empty, n, total);
    HARSANYI_CUDA_LAUNCH_CHECK();
    lattice_transform(LatticeOp::Moebius, ao, n, 2 * samples, stream);

    const bool traced = tl > 0 && t % opt.trace_every == 0;
    const bool last = t + 1 == opt.iters;
    if (traced || last) {
      set_empty_entries<T>(o, n, samples, nullptr, empty, stream);  // I_or(∅) = w(∅)
      chunk_abs_kernel<T><<<loss_blocks, kThreads, 0, stream>>>(
          ao, n, chunks, cpr, loss_chunk_length(len), chunk_sums);
      HARSANYI_CUDA_LAUNCH_CHECK();
      pair_loss_kernel<<<launch_blocks(samples, kThreads), kThreads, 0, stream>>>(
          chunk_sums, samples, cpr, loss, trace, tl, traced ? t / opt.trace_every : -1);
      HARSANYI_CUDA_LAUNCH_CHECK();
    }
    if (progress && (t + 1) % kProgressEvery == 0)
      progress->advance(static_cast<std::uint64_t>(kProgressEvery) * samples);
    if (last) break;

    sign_kernel<T><<<blocks2, kThreads, 0, stream>>>(ao, empty, g0, n, samples);
    HARSANYI_CUDA_LAUNCH_CHECK();
    lattice_transform(LatticeOp::MoebiusTranspose, ao, n, 2 * samples, stream);
    const T eta = static_cast<T>(sgd_learning_rate(opt.lr, opt.iters, t));
    update_kernel<T><<<blocks, kThreads, 0, stream>>>(a, o, g0, p, q, bp, bq, eta, momentum,
                                                      t == 0, n, total);
    HARSANYI_CUDA_LAUNCH_CHECK();
  }
  if (progress) progress->advance(static_cast<std::uint64_t>(opt.iters % kProgressEvery) * samples);
}

}  // namespace

std::size_t sgd_device_bytes_per_sample(int n, std::size_t element_size) {
  const std::uint64_t len = subset_count(n);
  // v, p, q, two momentum buffers, I_and, I_or; bound, w(∅), sign(I_or(∅)); the loss and the
  // loss's chunk sums of both rows. The trace (8 bytes per entry) comes on top.
  return 7 * len * element_size + 3 * element_size + sizeof(double) +
         2 * loss_chunks_per_row(len) * sizeof(double);
}

template <class T>
void fit_and_or_sgd_batch(const T* values, std::size_t samples, int n, const SgdOptions& opt,
                          AndOrBatch<T>& out, Progress* progress, SgdKernel kernel,
                          const DeviceEpilogue<T>* epilogue) {
  if (opt.iters < 1) throw std::invalid_argument("sgd (GPU): iters must be >= 1");
  if (n < 0 || n > kMaxDevicePlayers)
    throw std::invalid_argument("sgd (GPU): n = " + std::to_string(n) + " out of range");
  const int tl = trace_length(opt.iters, opt.trace_every);
  if (samples == 0) {
    out.resize(samples, n, tl);
    return;
  }
  if (values == nullptr) throw std::invalid_argument("sgd (GPU): null values");
  const std::uint64_t len = subset_count(n);
  if (samples > (~std::uint64_t{0} >> (n + 1)))
    throw std::invalid_argument("sgd (GPU): batch too large");
  const std::uint64_t total = samples * len;

  // Refuse before allocating anything (device or host) when the batch cannot fit.
  const std::uint64_t need = samples * (sgd_device_bytes_per_sample(n, sizeof(T)) +
                                        static_cast<std::uint64_t>(tl) * sizeof(double));
  refuse_unless_fits("sgd (GPU)", samples, n, need);

  size_outputs(out, samples, n, tl, epilogue);
  OwnStream own;
  const cudaStream_t stream = own.get();
  DeviceArray<T> v(total), p(total), q(total), bp(total), bq(total), ao(2 * total);
  DeviceArray<T> bound(samples);
  DeviceArray<double> loss(samples);
  DeviceArray<double> trace(samples * static_cast<std::uint64_t>(tl));
  T* a = ao.get();
  T* o = ao.get() + total;

  copy_async(v.get(), values, total, cudaMemcpyDefault, stream);  // from the host or the device
  HARSANYI_CUDA_CHECK(cudaMemsetAsync(p.get(), 0, total * sizeof(T), stream));
  HARSANYI_CUDA_CHECK(cudaMemsetAsync(q.get(), 0, total * sizeof(T), stream));
  HARSANYI_CUDA_CHECK(cudaMemsetAsync(bp.get(), 0, total * sizeof(T), stream));
  HARSANYI_CUDA_CHECK(cudaMemsetAsync(bq.get(), 0, total * sizeof(T), stream));
  bound_kernel<T><<<launch_blocks(samples, kThreads), kThreads, 0, stream>>>(
      v.get(), bound.get(), n, samples, opt.qthres);
  HARSANYI_CUDA_LAUNCH_CHECK();

  const T momentum = static_cast<T>(opt.momentum);
  const bool fused = kernel == SgdKernel::Fused || (kernel == SgdKernel::Auto && n <= kFusedMaxPlayers);
  if (fused) {
    if (n > kFusedMaxPlayers)
      throw std::invalid_argument("sgd (GPU): the fused kernel takes n <= " +
                                  std::to_string(kFusedMaxPlayers) + ", not " + std::to_string(n));
    std::vector<T> h_eta(static_cast<std::size_t>(opt.iters));
    for (int t = 0; t < opt.iters; ++t)
      h_eta[t] = static_cast<T>(sgd_learning_rate(opt.lr, opt.iters, t));
    DeviceArray<T> eta(h_eta.size());
    copy_async(eta.get(), h_eta.data(), h_eta.size(), cudaMemcpyHostToDevice, stream);
    const int threads = fused_threads(n);
    const std::size_t smem = 2 * len * sizeof(T);
    HARSANYI_CUDA_CHECK(cudaFuncSetAttribute(fused_sgd_kernel<T>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(smem)));
    const unsigned grid = static_cast<unsigned>(std::min<std::uint64_t>(samples, kMaxBlocks));
    for (int t0 = 0; t0 < opt.iters; t0 += kProgressEvery) {
      const int t1 = std::min(opt.iters, t0 + kProgressEvery);
      fused_sgd_kernel<T><<<grid, threads, smem, stream>>>(
          v.get(), p.get(), q.get(), bp.get(), bq.get(), bound.get(), ao.get(), eta.get(), n,
          samples, t0, t1, opt.iters, momentum, loss.get(), trace.get(), tl, opt.trace_every);
      HARSANYI_CUDA_LAUNCH_CHECK();
      if (progress) {  // report what the device has done, not what the host has queued
        HARSANYI_CUDA_CHECK(cudaStreamSynchronize(stream));
        progress->advance(static_cast<std::uint64_t>(t1 - t0) * samples);
      }
    }
  } else {
    staged_iterations(v.get(), p.get(), q.get(), bp.get(), bq.get(), ao.get(), bound.get(),
                      loss.get(), trace.get(), n, samples, opt, tl, momentum, stream, progress);
  }

  finish_fit("sgd (GPU)", epilogue, a, o, p.get(), q.get(), v.get(), total, out, stream);
  copy_to_host("sgd (GPU)", out.loss, loss.get(), samples, stream);
  copy_to_host("sgd (GPU)", out.trace, trace.get(), samples * static_cast<std::uint64_t>(tl), stream);
  HARSANYI_CUDA_CHECK(cudaStreamSynchronize(stream));
}

#define HARSANYI_INSTANTIATE(T)                                                        \
  template void fit_and_or_sgd_batch<T>(const T*, std::size_t, int, const SgdOptions&, \
                                        AndOrBatch<T>&, Progress*, SgdKernel,          \
                                        const DeviceEpilogue<T>*);
HARSANYI_INSTANTIATE(float)
HARSANYI_INSTANTIATE(double)
#undef HARSANYI_INSTANTIATE

}  // namespace harsanyi::cuda
