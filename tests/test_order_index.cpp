// The GPU per-order metrics (cuda/order_kernels.cu) replayed on the CPU: the fold, the tile
// kernels thread by thread (coalesced loads into swizzled shared memory, leaf blocks, shuffles
// lane by lane, the warps' nodes through shared memory, the rows' and tiles' writes) and the
// combine launches, with the functions of cuda/order_index.h the kernels use and at the launch
// shapes the host code picks; compared bitwise with the CPU metrics of interaction_metrics.h.
// Pure C++ (no CUDA needed): built and run in every configuration.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "interaction_metrics.h"
#include "lattice_internal.h"
#include "order_index.h"
#include "order_metrics.h"
#include "order_test_support.h"

namespace oi = harsanyi::cuda::order_index;
using harsanyi::ThresholdReference;
using harsanyi::cuda::OrderRows;

namespace {

// ---------------------------------------------------------------------------------------------
// Outputs that count their writes (every output must be written exactly once)

template <class V>
struct Output {
  std::vector<V> value;
  std::vector<int> writes;
  explicit Output(std::uint64_t size)
      : value(size,
              std::numeric_limits<V>::has_quiet_NaN ? std::numeric_limits<V>::quiet_NaN() : V(-7)),
        writes(size, 0) {}
  void set(std::uint64_t i, V v) {
    ASSERT_LT(i, value.size()) << "write out of range";
    value[i] = v;
    ++writes[i];
  }
  bool written_once() const {
    return std::all_of(writes.begin(), writes.end(), [](int w) { return w == 1; });
  }
};

// The three parts of a set of nodes (node-major, the bins of one node consecutive).
struct NodeOutputs {
  Output<double> pos, neg;
  Output<std::int32_t> count;
  explicit NodeOutputs(std::uint64_t size) : pos(size), neg(size), count(size) {}
  template <int C>
  auto& part() {
    if constexpr (C == 0) {
      return pos;
    } else if constexpr (C == 1) {
      return neg;
    } else {
      return count;
    }
  }
};

// ---------------------------------------------------------------------------------------------
// The kernels' policies, with host outputs (same loads, leaves and writes as order_kernels.cu)

template <class T>
struct MaxReplay {
  using Value = T;
  using Nodes = oi::MaxNodes;
  const T* a;
  const T* o;
  std::vector<double>* row_max;
  int n;

  T load(std::uint64_t e) const {
    double m = oi::max_step(0.0, std::fabs(static_cast<double>(a[e])));
    if (o) m = oi::max_step(m, std::fabs(static_cast<double>(o[e])));
    return static_cast<T>(m);
  }
  double leaf(T v, std::uint64_t) const { return static_cast<double>(v); }
  template <int C, int L>
  void write_row(std::uint64_t row, double m) const {
    ASSERT_LT(row, row_max->size());
    (*row_max)[row] = m;
  }
  // atomicMax on the bits of non-negative doubles
  template <int C>
  void write_tile(std::uint64_t tile, double m) const {
    ASSERT_GE(m, 0.0);
    double& slot = (*row_max)[tile >> (n - oi::kTileBits)];
    std::uint64_t have, want;
    std::memcpy(&have, &slot, sizeof(have));
    std::memcpy(&want, &m, sizeof(want));
    if (want > have) slot = m;
  }
};

template <class T>
struct OrderReplay {
  using Value = T;
  using Nodes = oi::OrderNodes;
  const T* x;
  const std::vector<double>* tau;
  int n;
  NodeOutputs* out;

  T load(std::uint64_t e) const { return x[e]; }
  oi::Bins<0> leaf(T v, std::uint64_t e) const {
    return oi::leaf_bins(static_cast<double>(v), tau->at(e >> n));  // throws out of the rows
  }
  template <int C, int L, class V>
  void write_row(std::uint64_t row, const oi::Sums<V, L>& s) const {
    store<C>(row, s);
  }
  template <int C, class V>
  void write_tile(std::uint64_t tile, const oi::Sums<V, oi::kTileBits>& s) const {
    store<C>(tile, s);
  }
  template <int C, int L, class V>
  void store(std::uint64_t node, const oi::Sums<V, L>& s) const {
    for (int r = 0; r <= L; ++r) out->template part<C>().set(node * (L + 1) + r, s.bin[r]);
  }
};

// ---------------------------------------------------------------------------------------------
// The tile kernel, lane by lane

template <int L, class P, class Node>
void write_parts(const P& p, std::uint64_t row, const Node& node) {
  using Nodes = typename P::Nodes;
  oi::for_parts<Nodes>([&](auto part) {
    constexpr int C = decltype(part)::value;
    p.template write_row<C, L>(row, Nodes::template part<C>(node));
  });
}

// __shfl_down_sync over a warp: lane + delta's value, the lane's own beyond the warp.
template <class Node>
Node shuffle_down(const std::array<Node, oi::kLanes>& nodes, unsigned lane, unsigned delta) {
  return nodes[lane + delta < oi::kLanes ? lane + delta : lane];
}

// shuffle_levels of order_kernels.cu for the 32 lanes of a warp at once.
template <int L, int Top, class Part>
std::array<typename Part::template Node<Top>, oi::kLanes> shuffle_levels(
    const std::array<typename Part::template Node<L>, oi::kLanes>& nodes) {
  if constexpr (L == Top) {
    return nodes;
  } else {
    std::array<typename Part::template Node<L + 1>, oi::kLanes> up;
    for (unsigned lane = 0; lane < oi::kLanes; ++lane)
      up[lane] = Part::template combine<L + 1>(nodes[lane],
                                               shuffle_down(nodes, lane, oi::shuffle_delta(L + 1)));
    return shuffle_levels<L + 1, Top, Part>(up);
  }
}

// One tile of tile_kernel<P, R>, every thread and lane in turn, stage by stage.
template <int R, class P>
void replay_tile(const P& p, std::uint64_t tile_id, std::uint64_t total) {
  using Value = typename P::Value;
  using Nodes = typename P::Nodes;
  const std::uint64_t base = tile_id << oi::kTileBits;
  std::vector<Value> tile(oi::kTileElements);
  for (unsigned t = 0; t < oi::kThreads; ++t)
    for (unsigned j = 0; j < oi::kLeaves; ++j) {
      const unsigned i = oi::load_index(t, j);
      tile[oi::smem_slot(i, sizeof(Value))] = base + i < total ? p.load(base + i) : Value(0);
    }
  // __syncthreads(); the leaf blocks and the in-thread levels
  std::array<std::array<typename Nodes::template Node<oi::kLeafBits>, oi::kLanes>, oi::kWarps>
      nodes;
  for (unsigned t = 0; t < oi::kThreads; ++t) {
    Value leaves[oi::kLeaves];
    for (unsigned j = 0; j < oi::kLeaves; ++j)
      leaves[j] = tile[oi::smem_slot(oi::leaf_index(t, j), sizeof(Value))];
    const std::uint64_t first = base + oi::leaf_index(t, 0);
    const auto leaf = [&](unsigned j) {
      return p.leaf(leaves[j], first + j < total ? first + j : total - 1);
    };
    if constexpr (R < oi::kLeafBits) {
      for (unsigned j = 0; j < oi::kLeaves; j += 1u << R)
        if (first + j < total)
          write_parts<R>(p, (first + j) >> R, oi::leaf_subtree<R, Nodes>(leaf, j));
    } else {
      nodes[t / oi::kLanes][t % oi::kLanes] = oi::leaf_subtree<oi::kLeafBits, Nodes>(leaf, 0);
      if constexpr (R == oi::kLeafBits)
        if (first < total) write_parts<R>(p, first >> R, nodes[t / oi::kLanes][t % oi::kLanes]);
    }
  }
  if constexpr (R > oi::kLeafBits) {
    // the warp levels, part by part
    constexpr int warp_top = R < oi::kWarpLevel ? R : oi::kWarpLevel;
    std::array<typename Nodes::template Node<oi::kWarpLevel>, oi::kWarps> warp_nodes;
    for (unsigned warp = 0; warp < oi::kWarps; ++warp)
      oi::for_parts<Nodes>([&](auto part) {
        constexpr int C = decltype(part)::value;
        using Part = typename Nodes::template PartNodes<C>;
        std::array<typename Part::template Node<oi::kLeafBits>, oi::kLanes> lanes;
        for (unsigned lane = 0; lane < oi::kLanes; ++lane)
          lanes[lane] = Nodes::template part<C>(nodes[warp][lane]);
        const auto top = shuffle_levels<oi::kLeafBits, warp_top, Part>(lanes);
        for (unsigned lane = 0; lane < oi::kLanes; ++lane) {
          const std::uint64_t node_first = base + oi::lane_first_element(warp, lane, warp_top);
          if constexpr (R <= oi::kWarpLevel) {
            if (oi::holds_node(lane, R) && node_first < total)
              p.template write_row<C, R>(node_first >> R, top[lane]);
          } else if (lane == 0) {
            Nodes::template part<C>(warp_nodes[warp]) = top[lane];
          }
        }
      });
    if constexpr (R > oi::kWarpLevel) {
      // __syncthreads(); warp 0 over the warps' nodes
      constexpr int block_top = R < oi::kTileBits ? R : oi::kTileBits;
      oi::for_parts<Nodes>([&](auto part) {
        constexpr int C = decltype(part)::value;
        using Part = typename Nodes::template PartNodes<C>;
        std::array<typename Part::template Node<oi::kWarpLevel>, oi::kLanes> lanes;
        for (unsigned lane = 0; lane < oi::kLanes; ++lane)
          lanes[lane] = Nodes::template part<C>(warp_nodes[lane % oi::kWarps]);
        const auto root = shuffle_levels<oi::kWarpLevel, block_top, Part>(lanes);
        for (unsigned lane = 0; lane < oi::kLanes; ++lane) {
          const std::uint64_t node_first = base + oi::lane_first_element(0, lane, block_top);
          if constexpr (R <= oi::kTileBits) {
            if (oi::holds_node(lane, R) && node_first < total)
              p.template write_row<C, R>(node_first >> R, root[lane]);
          } else if (lane == 0) {
            p.template write_tile<C>(tile_id, root[lane]);
          }
        }
      });
    }
  }
}

// The launch of launch_tiles: variant R = tile_variant(n), blocks taking tiles grid-stride.
template <class P, int R = 0>
void replay_tiles(const P& p, std::uint64_t total, int n) {
  if constexpr (R <= oi::kTileBits) {
    if (oi::tile_variant(n) != R) return replay_tiles<P, R + 1>(p, total, n);
  }
  const std::uint64_t tiles = oi::tile_count(total);
  const std::uint64_t grid =
      std::max<std::uint64_t>(1, std::min(tiles, harsanyi::cuda::kMaxBlocks));
  for (std::uint64_t block = 0; block < grid; ++block)
    for (std::uint64_t tile = block; tile < tiles; tile += grid) replay_tile<R>(p, tile, total);
}

// ---------------------------------------------------------------------------------------------
// The combine launches and the host function

// combine_kernel<G>: one thread per (parent, bin).
template <int G>
void replay_combine(NodeOutputs& in, int level, std::uint64_t parents, NodeOutputs& out) {
  const unsigned bins = static_cast<unsigned>(level + G + 1);
  const std::uint64_t children = (std::uint64_t{1} << G) * static_cast<unsigned>(level + 1);
  ASSERT_LE(parents * children, in.pos.value.size()) << "children beyond the partial buffer";
  for (std::uint64_t id = 0; id < parents * bins; ++id) {
    const std::uint64_t at = (id / bins) * children;
    const int r = static_cast<int>(id % bins);
    out.pos.set(id, oi::subtree_bin<G>(in.pos.value.data() + at, level, r));
    out.neg.set(id, oi::subtree_bin<G>(in.neg.value.data() + at, level, r));
    out.count.set(id, oi::subtree_bin<G>(in.count.value.data() + at, level, r));
  }
}

void replay_combine(int g, NodeOutputs& in, int level, std::uint64_t parents, NodeOutputs& out) {
  switch (g) {
    case 1:
      replay_combine<1>(in, level, parents, out);
      break;
    case 2:
      replay_combine<2>(in, level, parents, out);
      break;
    case 3:
      replay_combine<3>(in, level, parents, out);
      break;
    case 4:
      replay_combine<4>(in, level, parents, out);
      break;
    case 5:
      replay_combine<5>(in, level, parents, out);
      break;
    default:
      FAIL() << "combine of " << g << " levels";
  }
}

// The combine launches of order_sums from the tiles' roots in partial[0] to `rows`.
void replay_combines(std::uint64_t samples, int n, NodeOutputs partial[2], NodeOutputs& rows) {
  for (int k = 0; k < oi::combine_launches(n); ++k) {
    const oi::CombineStep step = oi::combine_step(n, k);
    ASSERT_NE(step.in, step.out);
    ASSERT_NE(step.in, oi::kRowsBuffer);
    NodeOutputs& out = step.out == oi::kRowsBuffer ? rows : partial[step.out];
    std::fill(out.pos.writes.begin(), out.pos.writes.end(), 0);
    std::fill(out.neg.writes.begin(), out.neg.writes.end(), 0);
    std::fill(out.count.writes.begin(), out.count.writes.end(), 0);
    replay_combine(step.levels, partial[step.in], step.from,
                   oi::node_count(samples, n, step.from + step.levels), out);
  }
}

// order_sums: the tile kernel (rows, or the tiles' roots for n > 12), then the combines.
template <class T>
void replay_order_sums(const std::vector<T>& x, std::uint64_t samples, int n,
                       const std::vector<double>& tau, NodeOutputs& rows) {
  NodeOutputs partial[2] = {NodeOutputs(oi::partial_values(samples, n, 0)),
                            NodeOutputs(oi::partial_values(samples, n, 1))};
  NodeOutputs& tiles_out = n <= oi::kTileBits ? rows : partial[0];
  replay_tiles(OrderReplay<T>{x.data(), &tau, n, &tiles_out}, samples << n, n);
  if (n > oi::kTileBits) {
    EXPECT_TRUE(partial[0].pos.written_once() && partial[0].count.written_once())
        << "tile roots, n = " << n;
  }
  replay_combines(samples, n, partial, rows);
}

struct Batch {
  int n = 0;
  std::size_t samples = 0;
  double tau_rel = 0.05;
  ThresholdReference ref = ThresholdReference::MaxInteraction;
  bool with_or = true, fold = true;
};

// order_metrics_batch on host copies of the device rows (a and o are folded in place).
template <class T>
OrderRows replay_batch(const Batch& b, std::vector<T>& a, std::vector<T>& o,
                       const std::vector<T>& v) {
  const std::uint64_t samples = b.samples, K = static_cast<unsigned>(b.n) + 1;
  const int n = b.n;
  if (b.fold && b.with_or)  // fold_kernel: one thread per (sample, entry)
    for (std::uint64_t id = 0; id < samples * K; ++id) {
      const std::uint64_t e = ((id / K) << n) + oi::fold_subset(static_cast<unsigned>(id % K));
      a[e] += o[e];
      o[e] = T(0);
    }
  std::vector<double> row_max(samples, 0.0);  // cudaMemsetAsync
  const bool value_range = b.ref == ThresholdReference::ValueRange;
  if (!value_range)
    replay_tiles(MaxReplay<T>{a.data(), b.with_or ? o.data() : nullptr, &row_max, n}, samples << n,
                 n);
  OrderRows out;
  out.threshold.resize(samples);
  const std::uint64_t len = std::uint64_t{1} << n;
  for (std::uint64_t s = 0; s < samples; ++s)  // threshold_kernel
    out.threshold[s] = value_range
                           ? b.tau_rel * std::fabs(static_cast<double>(v[s * len + len - 1]) -
                                                   static_cast<double>(v[s * len]))
                           : b.tau_rel * row_max[s];
  const auto sums = [&](const std::vector<T>& x, std::vector<double>& pos, std::vector<double>& neg,
                        std::vector<std::int32_t>& count) {
    NodeOutputs rows(samples * K);
    replay_order_sums(x, samples, n, out.threshold, rows);
    EXPECT_TRUE(rows.pos.written_once() && rows.neg.written_once() && rows.count.written_once())
        << "rows, n = " << n;
    pos = rows.pos.value;
    neg = rows.neg.value;
    count = rows.count.value;
  };
  sums(a, out.and_pos, out.and_neg, out.and_count);
  if (b.with_or) sums(o, out.or_pos, out.or_neg, out.or_count);
  return out;
}

// Interaction-like rows: mostly small values, a few large ones, exact zeros of both signs and
// a NaN now and then (never salient, skipped by the max).
template <class T>
std::vector<T> random_rows(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<T> x(count);
  const T special[] = {T(0), -T(0), std::numeric_limits<T>::quiet_NaN()};
  for (T& e : x) {
    const std::uint64_t kind = rng() % 32;
    e = kind < 3 ? special[kind] : static_cast<T>(normal(rng) * std::exp(2 * normal(rng)));
  }
  return x;
}

template <class T>
void expect_replay_matches_cpu(const Batch& b, std::uint64_t seed) {
  const std::size_t count = b.samples << b.n;
  std::vector<T> a = random_rows<T>(count, seed), o = random_rows<T>(count, seed + 1);
  const std::vector<T> v = random_rows<T>(count, seed + 2);
  if (!b.with_or) o.clear();
  std::vector<T> a_cpu = a, o_cpu = o;
  const OrderRows gpu = replay_batch(b, a, o, v);
  const OrderRows cpu =
      harsanyi::order_rows(a_cpu.data(), harsanyi::testing::data_or_null(o_cpu), v.data(),
                           b.samples, b.n, b.tau_rel, b.ref, b.fold);
  const std::string what =
      std::string(sizeof(T) == 4 ? "float" : "double") + " n = " + std::to_string(b.n) +
      " samples = " + std::to_string(b.samples) + (b.with_or ? " and-or" : " and") +
      (b.fold ? " fold" : "") + (b.ref == ThresholdReference::ValueRange ? " vrange" : " max");
  EXPECT_TRUE(harsanyi::testing::same_row_bits(a, a_cpu) &&
              harsanyi::testing::same_row_bits(o, o_cpu))
      << "folded rows, " << what;
  harsanyi::testing::expect_same_rows(gpu, cpu, what);
}

// The canonical tree over nodes of level l (l + 1 bins each, node-major), written directly:
// parent bin r = left bin r + right bin r − 1.
std::vector<double> reference_tree(const std::vector<double>& nodes, int l, std::uint64_t first,
                                   std::uint64_t count) {
  if (count == 1)
    return std::vector<double>(nodes.begin() + first * (l + 1),
                               nodes.begin() + (first + 1) * (l + 1));
  int half_level = l;
  for (std::uint64_t c = count / 2; c > 1; c /= 2) ++half_level;
  const std::vector<double> left = reference_tree(nodes, l, first, count / 2);
  const std::vector<double> right = reference_tree(nodes, l, first + count / 2, count / 2);
  std::vector<double> parent(half_level + 2);
  parent[0] = left[0];
  for (int r = 1; r <= half_level; ++r) parent[r] = left[r] + right[r - 1];
  parent[half_level + 1] = right[half_level];
  return parent;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST(OrderIndex, RightChildBinsAreTheLeftChildsShiftedByOne) {
  for (int l = 1; l <= 20; ++l)
    for (std::uint64_t b = 0; b < (std::uint64_t{1} << 22); b += std::uint64_t{1} << l)
      ASSERT_EQ(__builtin_popcountll(b + (std::uint64_t{1} << (l - 1))),
                __builtin_popcountll(b) + 1)
          << "level " << l << " base " << b;
}

TEST(OrderIndex, SharedMemorySlotsAreABijectionWithoutBankConflicts) {
  for (unsigned size : {4u, 8u}) {
    std::set<unsigned> slots;
    for (unsigned i = 0; i < oi::kTileElements; ++i) {
      const unsigned slot = oi::smem_slot(i, size);
      EXPECT_LT(slot, oi::kTileElements);
      EXPECT_EQ(slot >> oi::kLeafBits, i >> oi::kLeafBits) << "slot leaves its group of 16";
      slots.insert(slot);
    }
    EXPECT_EQ(slots.size(), std::size_t{oi::kTileElements}) << size << "-byte slots collide";
    // One warp instruction: the 32 lanes' slots; 8-byte accesses go in two halves of 16 lanes.
    // Each (half) warp's 128 bytes must hit distinct 4-byte banks.
    const unsigned group = size == 4 ? 32 : 16, banks = 128 / size;
    for (unsigned warp = 0; warp < oi::kWarps; ++warp)
      for (unsigned j = 0; j < oi::kLeaves; ++j)
        for (int access = 0; access < 2; ++access)
          for (unsigned half = 0; half < oi::kLanes; half += group) {
            std::set<unsigned> bank;
            for (unsigned lane = half; lane < half + group; ++lane) {
              const unsigned t = warp * oi::kLanes + lane;
              const unsigned i = access == 0 ? oi::load_index(t, j) : oi::leaf_index(t, j);
              bank.insert(oi::smem_slot(i, size) % banks);
            }
            EXPECT_EQ(bank.size(), group) << (access ? "leaf reads" : "loads") << ", " << size
                                          << "-byte elements, warp " << warp << " j " << j;
          }
  }
}

TEST(OrderIndex, EveryTileElementIsLoadedOnceAndIsOneThreadsLeaf) {
  std::vector<int> loads(oi::kTileElements, 0), leaves(oi::kTileElements, 0);
  for (unsigned t = 0; t < oi::kThreads; ++t)
    for (unsigned j = 0; j < oi::kLeaves; ++j) {
      ++loads[oi::load_index(t, j)];
      ++leaves[oi::leaf_index(t, j)];
      EXPECT_EQ(oi::leaf_index(t, j), oi::leaf_index(t, 0) + j) << "leaf block not consecutive";
      if (t % oi::kLanes > 0) {
        EXPECT_EQ(oi::load_index(t, j), oi::load_index(t - 1, j) + 1);
      }
    }
  EXPECT_TRUE(std::all_of(loads.begin(), loads.end(), [](int c) { return c == 1; }));
  EXPECT_TRUE(std::all_of(leaves.begin(), leaves.end(), [](int c) { return c == 1; }));
}

TEST(OrderIndex, NodeHoldersTileEachLevelOnce) {
  // After the shuffles of level l, the lanes holding a node start exactly at the multiples of
  // 2^l of the tile, and each node's left child is held by the same lane one level below.
  for (int level = oi::kLeafBits + 1; level <= oi::kTileBits; ++level) {
    std::set<unsigned> starts;
    const unsigned warps = oi::is_warp_level(level) ? oi::kWarps : 1;
    for (unsigned warp = 0; warp < warps; ++warp)
      for (unsigned lane = 0; lane < oi::kLanes; ++lane) {
        if (!oi::holds_node(lane, level)) continue;
        const unsigned first = oi::lane_first_element(warp, lane, level);
        EXPECT_EQ(first % (1u << level), 0u) << "level " << level << " lane " << lane;
        EXPECT_TRUE(starts.insert(first).second) << "two holders, level " << level;
        const unsigned partner = lane + oi::shuffle_delta(level);
        ASSERT_LT(partner, oi::kLanes);
        EXPECT_EQ(oi::lane_first_element(warp, partner, level), first + (1u << (level - 1)))
            << "the right child is not the next node, level " << level;
        if (level > oi::kLeafBits + 1 && level != oi::kWarpLevel + 1) {
          EXPECT_TRUE(oi::holds_node(lane, level - 1));
          EXPECT_TRUE(oi::holds_node(partner, level - 1));
        }
      }
    EXPECT_EQ(starts.size(), std::size_t{oi::kTileElements >> level}) << "level " << level;
  }
}

TEST(OrderIndex, CombinePlanBuffersHoldEveryLaunch) {
  for (std::uint64_t samples : {1u, 3u, 1000u})
    for (int n = 0; n <= oi::kMaxOrderPlayers; ++n) {
      const int launches = oi::combine_launches(n);
      EXPECT_EQ(launches == 0, n <= oi::kTileBits);
      int level = oi::kTileBits, in = 0;
      for (int k = 0; k < launches; ++k) {
        const oi::CombineStep step = oi::combine_step(n, k);
        EXPECT_EQ(step.from, level);
        EXPECT_EQ(step.in, in);
        EXPECT_GE(step.levels, 1);
        EXPECT_LE(step.levels, oi::kCombineLevels);
        EXPECT_LE(oi::node_values(samples, n, step.from), oi::partial_values(samples, n, step.in))
            << "n = " << n << " launch " << k << " input";
        level += step.levels;
        if (step.out != oi::kRowsBuffer) {
          EXPECT_LE(oi::node_values(samples, n, level), oi::partial_values(samples, n, step.out))
              << "n = " << n << " launch " << k << " output";
          in = step.out;
        }
        EXPECT_EQ(step.out == oi::kRowsBuffer, k + 1 == launches);
      }
      EXPECT_EQ(level, std::max(n, oi::kTileBits)) << "n = " << n;
    }
}

TEST(OrderIndex, CombineLaunchesFollowTheCanonicalTreeForLargeRows) {
  // Rows up to n = 28 scaled down: random tiles' roots (level 12, non-negative sums) instead of
  // 2^28 elements, through the same launches, against the tree over those roots.
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> sizes(1.0);
  for (int n : {13, 17, 18, 21, 23, 26, 28}) {
    const std::uint64_t samples = n <= 23 ? 2 : 1;
    NodeOutputs partial[2] = {NodeOutputs(oi::partial_values(samples, n, 0)),
                              NodeOutputs(oi::partial_values(samples, n, 1))};
    for (std::uint64_t i = 0; i < partial[0].pos.value.size(); ++i) {
      partial[0].pos.set(i, rng() % 4 ? sizes(rng) : 0.0);
      partial[0].neg.set(i, sizes(rng) * 1e-3);
      partial[0].count.set(i, static_cast<std::int32_t>(rng() % 4097));
    }
    const std::vector<double> roots_pos = partial[0].pos.value;  // the launches reuse buffer 0
    const std::vector<double> roots_count(partial[0].count.value.begin(),
                                          partial[0].count.value.end());
    const std::uint64_t K = static_cast<unsigned>(n) + 1;
    NodeOutputs rows(samples * K);
    replay_combines(samples, n, partial, rows);
    EXPECT_TRUE(rows.pos.written_once() && rows.count.written_once()) << "n = " << n;
    const std::uint64_t per_row = oi::node_count(1, n, oi::kTileBits);
    for (std::uint64_t s = 0; s < samples; ++s) {
      const std::vector<double> pos =
          reference_tree(roots_pos, oi::kTileBits, s * per_row, per_row);
      const std::vector<double> count =
          reference_tree(roots_count, oi::kTileBits, s * per_row, per_row);
      ASSERT_EQ(pos.size(), K);
      EXPECT_EQ(std::memcmp(pos.data(), &rows.pos.value[s * K], K * sizeof(double)), 0)
          << "n = " << n << " sample " << s;
      for (std::uint64_t k = 0; k < K; ++k)
        EXPECT_EQ(rows.count.value[s * K + k], count[k]) << "n = " << n << " order " << k;
    }
  }
}

TEST(OrderIndex, ReplayedKernelsEqualTheCpuMetricsBitwise) {
  for (int n = 0; n <= 20; ++n) {
    // several rows per tile (n < 12, a partial last tile for most), one tile, many tiles
    const std::size_t samples = n <= 8 ? 5 : n <= 14 ? 3 : n <= 17 ? 2 : 1;
    Batch b;
    b.n = n;
    b.samples = samples;
    const std::uint64_t seed = 100 + 10 * static_cast<std::uint64_t>(n);
    expect_replay_matches_cpu<double>(b, seed);  // AND-OR, folded, τ from the max
    b.ref = ThresholdReference::ValueRange;
    b.fold = false;
    b.tau_rel = 0.3;
    expect_replay_matches_cpu<float>(b, seed + 3);  // AND-OR unfolded, τ from v
    b.with_or = false;
    expect_replay_matches_cpu<double>(b, seed + 6);  // AND only
    b.ref = ThresholdReference::MaxInteraction;
    b.fold = true;
    b.tau_rel = 0.01;
    expect_replay_matches_cpu<float>(b, seed + 9);
  }
}
