/// @file abs_sums.cuh
/// @brief Device code shared by the GPU solvers (CUDA only): grid-stride helpers and the loss
/// Σ|I_and| + Σ|I_or| of each sample summed in double in exactly the order of the CPU's
/// sum_abs (src/sgd_solver.cpp), so float64 losses match the CPU bitwise.
///
/// sum_abs's order: fixed chunks of 4096 elements added in chunk order; within a chunk, lane
/// l < 8 sums |x[m·8 + l]| over the full groups m in order, the lanes 0..7 are added in order,
/// then the tail elements.
#pragma once

#include <algorithm>
#include <cstdint>

namespace harsanyi::cuda {

constexpr std::uint64_t kLossChunk = 4096;  // chunk of sum_abs in src/sgd_solver.cpp
constexpr unsigned kLossLanes = 8;          // its accumulator lanes

inline std::uint64_t loss_chunk_length(std::uint64_t len) { return std::min(len, kLossChunk); }
inline std::uint64_t loss_chunks_per_row(std::uint64_t len) {
  return len / loss_chunk_length(len);
}

__device__ __forceinline__ std::uint64_t global_thread() {
  return static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ std::uint64_t grid_threads() {
  return static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
}

/// Lane `lane`'s sum of one chunk starting at `base` with `groups` full groups of 8.
template <class T>
__device__ __forceinline__ double lane_abs_sum(const T* base, std::uint64_t groups, unsigned lane) {
  double acc = 0.0;
  for (std::uint64_t m = 0; m < groups; ++m)
    acc += fabs(static_cast<double>(base[m * kLossLanes + lane]));
  return acc;
}
/// The chunk's tail elements [from, to) added to the lanes' total `chunk`.
template <class T>
__device__ __forceinline__ double add_abs_tail(double chunk, const T* base, std::uint64_t from,
                                               std::uint64_t to) {
  for (std::uint64_t i = from; i < to; ++i) chunk += fabs(static_cast<double>(base[i]));
  return chunk;
}

/// @brief Σ|x| of each chunk of each row of 2^n elements (`chunks` chunks in all,
/// `chunks_per_row` per row) into out[chunk]. Eight consecutive threads handle one chunk (the
/// same loop trip for all eight).
template <class T>
__global__ void chunk_abs_kernel(const T* __restrict__ x, int n, std::uint64_t chunks,
                                 std::uint64_t chunks_per_row, std::uint64_t chunk_len,
                                 double* __restrict__ out) {
  const unsigned lane = threadIdx.x & (kLossLanes - 1);
  const unsigned group_mask = 0xFFu << (threadIdx.x & 24u);
  const std::uint64_t groups = chunk_len / kLossLanes;
  for (std::uint64_t id = global_thread() / kLossLanes; id < chunks;
       id += grid_threads() / kLossLanes) {
    const std::uint64_t row = id / chunks_per_row, c = id % chunks_per_row;
    const T* base = x + (row << n) + c * chunk_len;
    const double acc = lane_abs_sum(base, groups, lane);
    double chunk = 0.0;
    for (unsigned k = 0; k < kLossLanes; ++k)
      chunk += __shfl_sync(group_mask, acc, static_cast<int>(k), kLossLanes);
    if (lane == 0) out[id] = add_abs_tail(chunk, base, groups * kLossLanes, chunk_len);
  }
}

/// @brief loss[s] = Σ chunks of row s + Σ chunks of row samples + s (each in chunk order), the
/// I_and and I_or rows of sample s; also into trace[s·trace_len + slot] when slot >= 0.
/// (A template so that every .cu file including this header has its own instance.)
template <class Sum = double>
__global__ void pair_loss_kernel(const Sum* __restrict__ chunk_sums, std::uint64_t samples,
                                 std::uint64_t chunks_per_row, Sum* __restrict__ loss,
                                 Sum* __restrict__ trace, int trace_len, int slot) {
  for (std::uint64_t s = global_thread(); s < samples; s += grid_threads()) {
    const Sum* ca = chunk_sums + s * chunks_per_row;
    const Sum* co = chunk_sums + (samples + s) * chunks_per_row;
    Sum ta = 0.0, to = 0.0;
    for (std::uint64_t c = 0; c < chunks_per_row; ++c) ta += ca[c];
    for (std::uint64_t c = 0; c < chunks_per_row; ++c) to += co[c];
    const Sum l = ta + to;
    loss[s] = l;
    if (slot >= 0) trace[s * static_cast<std::uint64_t>(trace_len) + slot] = l;
  }
}

}  // namespace harsanyi::cuda
