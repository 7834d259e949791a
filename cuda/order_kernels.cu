// The per-order metrics of DESIGN §2.2 on the GPU (order_metrics.h): the lab's folding, the
// salient threshold and the per-order strength and counts, bitwise equal to
// src/interaction_metrics.cpp. The decomposition (tiles, leaf blocks, shuffle pairs, combine
// launches) is that of order_index.h, whose functions the kernels call and
// tests/test_order_index.cpp replays on the CPU.
//
// One batch: fold (optional), the rows' maxima of |I_and|, |I_or| (tile kernel, MaxPolicy), τ per
// sample, then per array the per-order sums (tile kernel, OrderPolicy) and for n > 12 the
// combine launches from the tiles' partial nodes up to the rows' roots.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "abs_sums.cuh"
#include "cuda_check.h"
#include "device_memory.h"
#include "lattice_internal.h"
#include "order_index.h"
#include "order_metrics.h"

namespace harsanyi::cuda {
namespace {

namespace oi = order_index;

constexpr int kThreads = 256;  // the small kernels' blocks

// ---------------------------------------------------------------------------------------------
// Device helpers

template <class V>
__device__ __forceinline__ V shuffle_down(V x, unsigned delta) {
  return __shfl_down_sync(0xFFFFFFFFu, x, delta);
}

template <class V, int L>
__device__ __forceinline__ oi::Sums<V, L> shuffle_down(const oi::Sums<V, L>& s, unsigned delta) {
  oi::Sums<V, L> r;
#pragma unroll
  for (int i = 0; i <= L; ++i) r.bin[i] = __shfl_down_sync(0xFFFFFFFFu, s.bin[i], delta);
  return r;
}

// What a tile kernel reduces. A policy P has: Value (the shared-memory element), Nodes (node
// types, parts and combine of order_index.h), load(e) (element e's Value), leaf(value, e) (its
// node of level 0), write_row<C, L>(row, part) (part C of a row's root, L = n <= 12) and
// write_tile<C>(tile, part) (part C of a tile's root, n > 12).

// The threshold's max: shared memory holds max(|I_and|, |I_or|) of each element (one of the
// magnitudes or 0: exact in T); the rows' maxima go to row_max (zeroed first for n > 12).
template <class T>
struct MaxPolicy {
  using Value = T;
  using Nodes = oi::MaxNodes;
  const T* a;
  const T* o;  // null: AND only
  double* row_max;
  int n;

  __device__ T load(std::uint64_t e) const {
    double m = oi::max_step(0.0, fabs(static_cast<double>(a[e])));
    if (o) m = oi::max_step(m, fabs(static_cast<double>(o[e])));
    return static_cast<T>(m);
  }
  __device__ double leaf(T v, std::uint64_t) const { return static_cast<double>(v); }
  template <int C, int L>
  __device__ void write_row(std::uint64_t row, double m) const {
    row_max[row] = m;
  }
  // Non-negative doubles order as their bit patterns: atomicMax on the bits is the max.
  template <int C>
  __device__ void write_tile(std::uint64_t tile, double m) const {
    atomicMax(reinterpret_cast<unsigned long long*>(row_max) + (tile >> (n - oi::kTileBits)),
              static_cast<unsigned long long>(__double_as_longlong(m)));
  }
};

// The per-order sums of one array under the rows' thresholds tau; the L + 1 bins of a node's
// part C go to out[C] at node·(L + 1) (pos, neg, count): the rows' results (n <= 12) or the
// tiles' partial nodes.
template <class T>
struct OrderPolicy {
  using Value = T;
  using Nodes = oi::OrderNodes;
  const T* x;
  const double* tau;
  int n;
  double* pos;
  double* neg;
  std::int32_t* count;

  __device__ T load(std::uint64_t e) const { return x[e]; }
  __device__ oi::Bins<0> leaf(T v, std::uint64_t e) const {
    return oi::leaf_bins(static_cast<double>(v), __ldg(tau + (e >> n)));
  }
  template <int C, int L, class V>
  __device__ void write_row(std::uint64_t row, const oi::Sums<V, L>& s) const {
    store<C>(row, s);
  }
  template <int C, class V>
  __device__ void write_tile(std::uint64_t tile, const oi::Sums<V, oi::kTileBits>& s) const {
    store<C>(tile, s);
  }
  template <int C, int L, class V>
  __device__ void store(std::uint64_t node, const oi::Sums<V, L>& s) const {
    V* out;
    if constexpr (C == 0) {
      out = pos;
    } else if constexpr (C == 1) {
      out = neg;
    } else {
      out = count;
    }
    const std::uint64_t at = node * (L + 1);
#pragma unroll
    for (int r = 0; r <= L; ++r) out[at + r] = s.bin[r];
  }
};

// Every part of a node of level L (a row's root: L = n) to row `row`.
template <int L, class P, class Node>
__device__ void write_parts(const P& p, std::uint64_t row, const Node& node) {
  using Nodes = typename P::Nodes;
  oi::for_parts<Nodes>([&](auto part) {
    constexpr int C = decltype(part)::value;
    p.template write_row<C, L>(row, Nodes::template part<C>(node));
  });
}

// Levels L + 1 .. Top of one part (node types and combine of Part) by shuffles: at each level
// lane pairs (lane, lane + shuffle_delta), the left lane's node the one kept (holds_node).
template <int L, int Top, class Part>
__device__ typename Part::template Node<Top> shuffle_levels(
    const typename Part::template Node<L>& node) {
  if constexpr (L == Top) {
    return node;
  } else {
    return shuffle_levels<L + 1, Top, Part>(
        Part::template combine<L + 1>(node, shuffle_down(node, oi::shuffle_delta(L + 1))));
  }
}

// ---------------------------------------------------------------------------------------------
// Kernels

// fold_low_orders on every row: I_and(S) += I_or(S), I_or(S) = 0 for |S| <= 1.
template <class T>
__global__ void fold_kernel(T* __restrict__ a, T* __restrict__ o, int n, std::uint64_t samples) {
  const unsigned K = static_cast<unsigned>(n) + 1;
  for (std::uint64_t id = global_thread(); id < samples * K; id += grid_threads()) {
    const std::uint64_t e = ((id / K) << n) + oi::fold_subset(static_cast<unsigned>(id % K));
    a[e] += o[e];
    o[e] = T(0);
  }
}

// Blocks per multiprocessor the tile kernel of variant R is compiled for: 4 (64 registers) for
// the variants that fit them without spills on sm_80 and sm_90 (R <= 5 and the long rows'
// R = 13), 3 (85 registers) for the others.
constexpr int tile_min_blocks(int R) {
  return R <= 5 || R > oi::kTileBits ? 4 : 3;
}

// The canonical tree of every tile of `total` elements, rows of 2^n, R = tile_variant(n):
// coalesced loads into shared memory; in registers, the leaf blocks (levels 1..4, all parts at
// once; for R < 4 the subtree of each row in the block); then part by part the warp shuffles
// (levels 5..9) and warp 0 over the warps' nodes (10..12), up to level R only. The lanes holding
// the nodes of level R write them: the rows' roots (R = n), or for R = 13 the tiles' roots
// (level 12) as partial nodes.
template <class P, int R>
__global__ void __launch_bounds__(oi::kThreads, tile_min_blocks(R))
    tile_kernel(const P p, std::uint64_t total) {
  using Value = typename P::Value;
  using Nodes = typename P::Nodes;
  __shared__ Value tile[oi::kTileElements];
  __shared__ typename Nodes::template Node<oi::kWarpLevel> warp_nodes[oi::kWarps];
  const unsigned t = threadIdx.x, lane = t % oi::kLanes, warp = t / oi::kLanes;
  const std::uint64_t tiles = oi::tile_count(total);
  for (std::uint64_t tile_id = blockIdx.x; tile_id < tiles; tile_id += gridDim.x) {
    const std::uint64_t base = tile_id << oi::kTileBits;
#pragma unroll
    for (unsigned j = 0; j < oi::kLeaves; ++j) {
      const unsigned i = oi::load_index(t, j);
      tile[oi::smem_slot(i, sizeof(Value))] = base + i < total ? p.load(base + i) : Value(0);
    }
    __syncthreads();
    Value leaves[oi::kLeaves];
#pragma unroll
    for (unsigned j = 0; j < oi::kLeaves; ++j)
      leaves[j] = tile[oi::smem_slot(oi::leaf_index(t, j), sizeof(Value))];
    const std::uint64_t first = base + oi::leaf_index(t, 0);
    // a padding element (past `total`: its Value is 0, its nodes never written) takes the last
    // element's row for the leaf's parameters
    const auto leaf = [&](unsigned j) {
      return p.leaf(leaves[j], first + j < total ? first + j : total - 1);
    };
    if constexpr (R < oi::kLeafBits) {
#pragma unroll
      for (unsigned j = 0; j < oi::kLeaves; j += 1u << R)
        if (first + j < total)
          write_parts<R>(p, (first + j) >> R, oi::leaf_subtree<R, Nodes>(leaf, j));
    } else {
      const auto node = oi::leaf_subtree<oi::kLeafBits, Nodes>(leaf, 0);
      if constexpr (R == oi::kLeafBits) {
        if (first < total) write_parts<R>(p, first >> R, node);
      } else {
        constexpr int warp_top = R < oi::kWarpLevel ? R : oi::kWarpLevel;
        const std::uint64_t node_first = base + oi::lane_first_element(warp, lane, warp_top);
        oi::for_parts<Nodes>([&](auto part) {
          constexpr int C = decltype(part)::value;
          const auto top =
              shuffle_levels<oi::kLeafBits, warp_top, typename Nodes::template PartNodes<C>>(
                  Nodes::template part<C>(node));
          if constexpr (R <= oi::kWarpLevel) {
            if (oi::holds_node(lane, R) && node_first < total)
              p.template write_row<C, R>(node_first >> R, top);
          } else if (lane == 0) {
            Nodes::template part<C>(warp_nodes[warp]) = top;
          }
        });
      }
      if constexpr (R > oi::kWarpLevel) {
        __syncthreads();  // also: every thread has read its leaves before the next tile's loads
        constexpr int block_top = R < oi::kTileBits ? R : oi::kTileBits;
        const std::uint64_t node_first = base + oi::lane_first_element(0, lane, block_top);
        if (warp == 0)
          oi::for_parts<Nodes>([&](auto part) {
            constexpr int C = decltype(part)::value;
            const auto root =
                shuffle_levels<oi::kWarpLevel, block_top, typename Nodes::template PartNodes<C>>(
                    Nodes::template part<C>(warp_nodes[lane % oi::kWarps]));
            if constexpr (R <= oi::kTileBits) {
              if (oi::holds_node(lane, R) && node_first < total)
                p.template write_row<C, R>(node_first >> R, root);
            } else if (lane == 0) {
              p.template write_tile<C>(tile_id, root);
            }
          });
      }
    }
    if constexpr (R <= oi::kWarpLevel) __syncthreads();  // the leaves read before the next loads
  }
}

// Nodes of level `level` to level + G: one thread per (parent, bin) sums the bin over the
// parent's 2^G children along the canonical tree (subtree_bin).
template <int G>
__global__ void combine_kernel(const double* __restrict__ pos_in, const double* __restrict__ neg_in,
                               const std::int32_t* __restrict__ count_in, int level,
                               std::uint64_t parents, double* __restrict__ pos_out,
                               double* __restrict__ neg_out, std::int32_t* __restrict__ count_out) {
  const unsigned bins = static_cast<unsigned>(level + G + 1);
  const std::uint64_t children = (std::uint64_t{1} << G) * static_cast<unsigned>(level + 1);
  for (std::uint64_t id = global_thread(); id < parents * bins; id += grid_threads()) {
    const std::uint64_t at = (id / bins) * children;
    const int r = static_cast<int>(id % bins);
    pos_out[id] = oi::subtree_bin<G>(pos_in + at, level, r);
    neg_out[id] = oi::subtree_bin<G>(neg_in + at, level, r);
    count_out[id] = oi::subtree_bin<G>(count_in + at, level, r);
  }
}

// τ of every sample: tau_rel · |v(N) − v(∅)| (value_range) or tau_rel · the row's max.
template <class T>
__global__ void threshold_kernel(const double* __restrict__ row_max, const T* __restrict__ v,
                                 bool value_range, int n, std::uint64_t samples, double tau_rel,
                                 double* __restrict__ tau) {
  const std::uint64_t len = std::uint64_t{1} << n;
  for (std::uint64_t s = global_thread(); s < samples; s += grid_threads())
    tau[s] = value_range ? tau_rel * fabs(static_cast<double>(v[s * len + len - 1]) -
                                          static_cast<double>(v[s * len]))
                         : tau_rel * row_max[s];
}

// ---------------------------------------------------------------------------------------------
// Host side

// Bins of a set of nodes in device memory (node-major).
struct NodeArrays {
  double* pos;
  double* neg;
  std::int32_t* count;
};

// The three parts' device arrays of `values` bins each (freed on destruction).
struct NodeStorage {
  DeviceArray<double> pos, neg;
  DeviceArray<std::int32_t> count;
  explicit NodeStorage(std::uint64_t values) : pos(values), neg(values), count(values) {}
  NodeArrays arrays() const { return {pos.get(), neg.get(), count.get()}; }
};

// The tile kernel of rows of 2^n elements (its variant R = tile_variant(n)).
template <class P, int R = 0>
void launch_tiles(const P& p, std::uint64_t total, int n, cudaStream_t stream) {
  if constexpr (R <= oi::kTileBits) {
    if (oi::tile_variant(n) != R) return launch_tiles<P, R + 1>(p, total, n, stream);
  }
  tile_kernel<P, R><<<launch_blocks(total, oi::kTileElements), oi::kThreads, 0, stream>>>(p, total);
  HARSANYI_CUDA_LAUNCH_CHECK();
}

template <int G>
void launch_combine_g(const NodeArrays& in, int level, std::uint64_t parents, const NodeArrays& out,
                      cudaStream_t stream) {
  const unsigned blocks = launch_blocks(parents * static_cast<unsigned>(level + G + 1), kThreads);
  combine_kernel<G><<<blocks, kThreads, 0, stream>>>(in.pos, in.neg, in.count, level, parents,
                                                     out.pos, out.neg, out.count);
  HARSANYI_CUDA_LAUNCH_CHECK();
}

// One combine launch of g levels (1..kCombineLevels).
void launch_combine(int g, const NodeArrays& in, int level, std::uint64_t parents,
                    const NodeArrays& out, cudaStream_t stream) {
  static_assert(oi::kCombineLevels == 5, "one case per number of levels");
  switch (g) {
    case 1:
      launch_combine_g<1>(in, level, parents, out, stream);
      break;
    case 2:
      launch_combine_g<2>(in, level, parents, out, stream);
      break;
    case 3:
      launch_combine_g<3>(in, level, parents, out, stream);
      break;
    case 4:
      launch_combine_g<4>(in, level, parents, out, stream);
      break;
    case 5:
      launch_combine_g<5>(in, level, parents, out, stream);
      break;
    default:
      throw std::logic_error("order_metrics_batch: combine of " + std::to_string(g) + " levels");
  }
}

// order_strength of every row of d_x (τ of row s in d_tau[s]) into `rows` (n + 1 bins per row);
// for n > 12 through the tiles' partial nodes in partial[0] and the combine launches
// (combine_step: alternating between partial[0] and partial[1], the last one writing `rows`).
template <class T>
void order_sums(const T* d_x, std::size_t samples, int n, const double* d_tau,
                const NodeArrays& rows, const NodeArrays partial[2], cudaStream_t stream) {
  const NodeArrays& tiles_out = n <= oi::kTileBits ? rows : partial[0];
  const OrderPolicy<T> p{d_x, d_tau, n, tiles_out.pos, tiles_out.neg, tiles_out.count};
  launch_tiles(p, std::uint64_t{samples} << n, n, stream);
  for (int k = 0; k < oi::combine_launches(n); ++k) {
    const oi::CombineStep step = oi::combine_step(n, k);
    const int top = step.from + step.levels;
    launch_combine(step.levels, partial[step.in], step.from, oi::node_count(samples, n, top),
                   step.out == oi::kRowsBuffer ? rows : partial[step.out], stream);
  }
}

}  // namespace

template <class T>
void order_metrics_batch(T* d_and, T* d_or, const T* d_v, std::size_t samples, int n,
                         double tau_rel, ThresholdReference ref, bool fold, OrderRows& out,
                         Stream stream) {
  if (n < 0 || n > oi::kMaxOrderPlayers)
    throw std::invalid_argument("order_metrics_batch: n = " + std::to_string(n) + " outside 0.." +
                                std::to_string(oi::kMaxOrderPlayers));
  const bool value_range = ref == ThresholdReference::ValueRange;
  if (samples > 0 && (!d_and || (value_range && !d_v)))
    throw std::invalid_argument(
        std::string("order_metrics_batch: no device ") +
        (d_and ? "values (needed by the value-range threshold)" : "AND rows"));
  const std::size_t bins = samples * (static_cast<std::size_t>(n) + 1);
  const std::size_t or_bins = d_or ? bins : 0;
  out.threshold.resize(samples);
  out.and_pos.resize(bins);
  out.and_neg.resize(bins);
  out.and_count.resize(bins);
  out.or_pos.resize(or_bins);
  out.or_neg.resize(or_bins);
  out.or_count.resize(or_bins);
  if (samples == 0) return;
  cudaStream_t s = stream;
  if (fold && d_or) {
    fold_kernel<T><<<launch_blocks(bins, kThreads), kThreads, 0, s>>>(d_and, d_or, n, samples);
    HARSANYI_CUDA_LAUNCH_CHECK();
  }

  DeviceArray<double> d_max(samples), d_tau(samples);
  if (!value_range) {
    HARSANYI_CUDA_CHECK(cudaMemsetAsync(d_max.get(), 0, samples * sizeof(double), s));
    launch_tiles(MaxPolicy<T>{d_and, d_or, d_max.get(), n}, std::uint64_t{samples} << n, n, s);
  }
  threshold_kernel<T><<<launch_blocks(samples, kThreads), kThreads, 0, s>>>(
      d_max.get(), d_v, value_range, n, samples, tau_rel, d_tau.get());
  HARSANYI_CUDA_LAUNCH_CHECK();

  NodeStorage partial0(oi::partial_values(samples, n, 0)),
      partial1(oi::partial_values(samples, n, 1));
  const NodeArrays partial[2] = {partial0.arrays(), partial1.arrays()};
  NodeStorage and_rows(bins), or_rows(or_bins);
  order_sums(d_and, samples, n, d_tau.get(), and_rows.arrays(), partial, s);
  if (d_or) order_sums(d_or, samples, n, d_tau.get(), or_rows.arrays(), partial, s);

  copy_to_host("order_metrics_batch", out.threshold, d_tau.get(), samples, s);
  copy_to_host("order_metrics_batch", out.and_pos, and_rows.pos.get(), bins, s);
  copy_to_host("order_metrics_batch", out.and_neg, and_rows.neg.get(), bins, s);
  copy_to_host("order_metrics_batch", out.and_count, and_rows.count.get(), bins, s);
  copy_to_host("order_metrics_batch", out.or_pos, or_rows.pos.get(), or_bins, s);
  copy_to_host("order_metrics_batch", out.or_neg, or_rows.neg.get(), or_bins, s);
  copy_to_host("order_metrics_batch", out.or_count, or_rows.count.get(), or_bins, s);
  HARSANYI_CUDA_CHECK(cudaStreamSynchronize(s));
}

#define HARSANYI_INSTANTIATE(T)                                                    \
  template void order_metrics_batch<T>(T*, T*, const T*, std::size_t, int, double, \
                                       ThresholdReference, bool, OrderRows&, Stream);
HARSANYI_INSTANTIATE(float)
HARSANYI_INSTANTIATE(double)
#undef HARSANYI_INSTANTIATE

}  // namespace harsanyi::cuda
