/// @file order_index.h
/// @brief Decomposition of the GPU per-order metrics (cuda/order_kernels.cu): which elements a
/// thread, a warp and a block reduce, how tree nodes combine, and the launches of the root
/// combine. Compiles with nvcc and with a plain C++ compiler, so the CPU tests replay the kernels
/// with the very functions they use.
///
/// The sums follow the canonical tree of order_strength (src/interaction_metrics.h): the node at
/// level l over the 2^l consecutive subsets [b, b + 2^l) holds l + 1 *bins* per sign, bin r for
/// the order popcount(b) + r (the other orders are empty, 0.0). Its children's bases are b and
/// b + 2^(l-1), whose popcounts are popcount(b) and popcount(b) + 1, so parent bin r = left bin r
/// + right bin r − 1 (combine): the right child's bins are shifted by one at every level.
///
/// A batch is a flat array of `samples` rows of 2^n elements, row s at [s·2^n, (s+1)·2^n), so
/// every row is a subtree of the tree over the flat index: its root is the node at level n. The
/// kernels reduce the flat array with nodes of that one tree:
///  - tile kernels (the threshold's max and the order sums): a block of kThreads = 256 threads
///    takes a tile of 2^kTileBits = 4096 consecutive elements. It loads the tile coalesced into
///    shared memory (thread t's j-th load is tile element load_index(t, j) = j·256 + t, at the
///    swizzled slot smem_slot), then thread t takes its leaf block, the 16 consecutive elements
///    leaf_index(t, 0..15) = 16t + 0..15, and builds their subtree in registers (levels 1..4,
///    leaf_subtree; every part of a node at once). The 32 lanes of a warp hold 32 consecutive
///    leaf blocks: levels 5..9 pair lane with lane + shuffle_delta(l) (shuffles, part by part:
///    pos, neg, count), the left lane keeping the node. Lane 0 of each warp stores its level-9
///    node in shared memory; lanes 0..7 of warp 0 load them (lane w: warp w's node) and levels
///    10..12 pair lanes the same way. Each kernel is compiled for its rows' level R =
///    tile_variant(n) and stops there: for n <= 12 the nodes of level R = n are the rows' roots
///    and the lanes holding them (holds_node; for n < 4 each thread, one subtree per row of its
///    leaf block) write them; for n > 12 lane 0 writes the tile's root (level 12) as a partial
///    node of its row;
///  - combine launches (n > 12; combine_step): launch k takes the nodes of level 12 + 5k to
///    level 12 + 5k + G (G = combine_levels <= kCombineLevels), one thread per (parent, bin)
///    summing that bin over the parent's 2^G children along the same tree (subtree_bin); the
///    launches alternate between two partial buffers (partial_values), the last writes the rows.
/// Every node is therefore a node of the canonical tree computed from its two children, so the
/// results equal order_strength's bitwise. The max of the threshold is order-independent; its
/// tile roots (n > 12) meet in an atomicMax on the bits of non-negative doubles.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "host_device.h"

namespace harsanyi::cuda::order_index {

constexpr int kLeafBits = 4;  ///< a thread's leaf block: 16 consecutive elements
constexpr int kLaneBits = 5;  ///< 32 leaf blocks per warp
constexpr int kWarpBits = 3;  ///< 8 warps per block
constexpr int kThreadBits = kLaneBits + kWarpBits;
constexpr int kTileBits = kLeafBits + kThreadBits;  ///< 4096 elements per tile
constexpr unsigned kLeaves = 1u << kLeafBits;
constexpr unsigned kLanes = 1u << kLaneBits;
constexpr unsigned kWarps = 1u << kWarpBits;
constexpr unsigned kThreads = 1u << kThreadBits;
constexpr unsigned kTileElements = 1u << kTileBits;
constexpr int kWarpLevel = kLeafBits + kLaneBits;  ///< level of a warp's node (9)
constexpr int kCombineLevels = 5;  ///< most levels one combine launch adds (2^5 children)
/// Largest n: the counts of a row (at most C(32, 16)) fit int32.
constexpr int kMaxOrderPlayers = 32;

/// The bins of one sum over a tree node at level L: bin r is the order popcount(base) + r.
template <class V, int L>
struct Sums {
  V bin[L + 1];
};

/// All the bins of a tree node at level L: its three parts, each reduced separately by the
/// shuffle levels (which bounds the registers they need).
template <int L>
struct Bins {
  Sums<double, L> pos;          ///< sums of the positive contributions
  Sums<double, L> neg;          ///< sums of the magnitudes of the negative ones
  Sums<std::int32_t, L> count;  ///< salient elements
};

/// @brief A leaf (level 0): x's contribution under threshold tau, exactly as order_strength.
HARSANYI_HD Bins<0> leaf_bins(double x, double tau) {
  const bool salient = fabs(x) > tau;
  Bins<0> b;
  b.pos.bin[0] = salient && x > 0 ? x : 0.0;
  b.neg.bin[0] = salient && !(x > 0) ? fabs(x) : 0.0;
  b.count.bin[0] = salient ? 1 : 0;
  return b;
}

/// @brief Sums of level L from its children's of level L − 1: bin r = left bin r + right bin
/// r − 1; bin 0 only the left child has, bin L only the right one (copied: adding 0.0 is exact).
template <class V, int L>
HARSANYI_HD Sums<V, L> combine_sums(const Sums<V, L - 1>& left, const Sums<V, L - 1>& right) {
  Sums<V, L> s;
  s.bin[0] = left.bin[0];
  for (int r = 1; r < L; ++r) s.bin[r] = left.bin[r] + right.bin[r - 1];
  s.bin[L] = right.bin[L - 1];
  return s;
}

/// @brief std::max(m, x) of salient_threshold: keeps m unless m < x (so a NaN x is skipped).
HARSANYI_HD double max_step(double m, double x) {
  return m < x ? x : m;
}

/// Node types and combination of one sum (a part of the order sums' nodes).
template <class V>
struct SumNodes {
  template <int L>
  using Node = Sums<V, L>;
  /// The node of level L from its two children (combine_sums).
  template <int L>
  static HARSANYI_HD Sums<V, L> combine(const Sums<V, L - 1>& left, const Sums<V, L - 1>& right) {
    return combine_sums<V, L>(left, right);
  }
};

/// Node types and combination of the order sums (the kernels' and the replays' `Nodes`): a
/// node is its kParts parts, part<C>(node) (pos, neg, count), each combined on its own.
struct OrderNodes {
  template <int L>
  using Node = Bins<L>;
  static constexpr int kParts = 3;
  /// Node types and combination of part C.
  template <int C>
  using PartNodes = SumNodes<typename std::conditional<C == 2, std::int32_t, double>::type>;
  /// The node of level L from its two children, part by part.
  template <int L>
  static HARSANYI_HD Bins<L> combine(const Bins<L - 1>& left, const Bins<L - 1>& right) {
    return {combine_sums<double, L>(left.pos, right.pos),
            combine_sums<double, L>(left.neg, right.neg),
            combine_sums<std::int32_t, L>(left.count, right.count)};
  }
  /// Part C of a node (const or not): 0 pos, 1 neg, 2 count.
  template <int C, class N>
  static HARSANYI_HD auto& part(N& node) {
    if constexpr (C == 0) {
      return node.pos;
    } else if constexpr (C == 1) {
      return node.neg;
    } else {
      return node.count;
    }
  }
};

/// Node types and combination of the threshold's max: one double at every level, one part.
struct MaxNodes {
  template <int L>
  using Node = double;
  static constexpr int kParts = 1;
  /// Node types and combination of the one part: these.
  template <int C>
  using PartNodes = MaxNodes;
  /// The max of the two children (max_step).
  template <int L>
  static HARSANYI_HD double combine(double left, double right) {
    return max_step(left, right);
  }
  /// The one part of a node: the node.
  template <int C, class N>
  static HARSANYI_HD N& part(N& node) {
    return node;
  }
};

/// A compile-time int as a type (a tree level, a part; usable in device code).
template <int I>
struct Constant {
  static constexpr int value = I;
};

/// @brief f(Constant<C>{}) for every part C = 0 .. Nodes::kParts − 1, in order.
template <class Nodes, int C = 0, class F>
HARSANYI_HD void for_parts(const F& f) {
  if constexpr (C < Nodes::kParts) {
    f(Constant<C>{});
    for_parts<Nodes, C + 1>(f);
  }
}

/// @brief The node of level L over leaves [first, first + 2^L) of a leaf block, left half
/// first; `leaf(j)` gives leaf j's node (level 0).
template <int L, class Nodes, class Leaf>
HARSANYI_HD typename Nodes::template Node<L> leaf_subtree(const Leaf& leaf, unsigned first) {
  if constexpr (L == 0) {
    return leaf(first);
  } else {
    return Nodes::template combine<L>(leaf_subtree<L - 1, Nodes>(leaf, first),
                                      leaf_subtree<L - 1, Nodes>(leaf, first + (1u << (L - 1))));
  }
}

/// @brief Tiles of 2^kTileBits elements covering `total` (the last one partial when rows are
/// shorter than a tile and the batch is not a whole number of tiles).
HARSANYI_HD std::uint64_t tile_count(std::uint64_t total) {
  return (total + kTileElements - 1) >> kTileBits;
}

/// @brief Tile element of thread t's j-th coalesced load (j < kLeaves).
HARSANYI_HD unsigned load_index(unsigned thread, unsigned j) {
  return (j << kThreadBits) | thread;
}

/// @brief Tile element of thread t's leaf j (its leaf block: 16 consecutive elements).
HARSANYI_HD unsigned leaf_index(unsigned thread, unsigned j) {
  return (thread << kLeafBits) | j;
}

/// @brief Shared-memory slot of tile element i for elements of `element_size` (4 or 8) bytes: i
/// with the bits above one 128-byte bank row (5 for floats, 4 for doubles) XORed into its low 4
/// bits. A bijection of the tile, inside each aligned group of 16; the loads (32 consecutive
/// elements) and the leaf reads (16t + j for the 32 lanes) hit distinct banks.
HARSANYI_HD unsigned smem_slot(unsigned i, unsigned element_size) {
  const int row_bits = element_size == 4 ? 5 : 4;
  return i ^ ((i >> row_bits) & (kLeaves - 1));
}

/// @brief Whether level l (1..kTileBits) is reduced by shuffles among warp lanes (5..9) or
/// among the lanes of warp 0 standing for the block's warps (10..12).
HARSANYI_HD bool is_warp_level(int level) {
  return level <= kWarpLevel;
}

/// @brief Lane distance of the pairs of level l (warp and block levels): 2^(l − 1 − first
/// level's offset), i.e. 1, 2, 4, 8, 16 for levels 5..9 and 1, 2, 4 for levels 10..12.
HARSANYI_HD unsigned shuffle_delta(int level) {
  return 1u << (level - 1 - (is_warp_level(level) ? kLeafBits : kWarpLevel));
}

/// @brief Whether `lane` holds a node of level l after the shuffle of that level: the left lane
/// of each aligned group of 2·delta (and, in the block levels, one of the kWarps lanes that
/// stand for a warp).
HARSANYI_HD bool holds_node(unsigned lane, int level) {
  const unsigned group = 2 * shuffle_delta(level);
  return (is_warp_level(level) || lane < kWarps) && (lane & (group - 1)) == 0;
}

/// @brief Tile element where the node held by `lane` of warp `warp` starts: its leaf block in
/// the warp levels, warp `lane`'s first element in the block levels (warp 0's lanes).
HARSANYI_HD unsigned lane_first_element(unsigned warp, unsigned lane, int level) {
  return is_warp_level(level) ? (warp << kWarpLevel) | (lane << kLeafBits) : lane << kWarpLevel;
}

/// @brief The tile kernels' variant for rows of 2^n elements: n for n <= kTileBits (the tile
/// tree goes up to the rows' roots, level n, and the lanes holding them write them), kTileBits
/// + 1 for longer rows (the whole tile tree, its root written as a partial node).
HARSANYI_HD int tile_variant(int n) {
  return n <= kTileBits ? n : kTileBits + 1;
}

/// @brief Nodes of level l of `samples` rows of 2^n elements (l <= n).
HARSANYI_HD std::uint64_t node_count(std::uint64_t samples, int n, int level) {
  return samples << (n - level);
}

/// @brief Values per part of the nodes of level l of `samples` rows of 2^n elements
/// (node_count · (l + 1)); 0 for l >= n (no partial nodes there).
HARSANYI_HD std::uint64_t node_values(std::uint64_t samples, int n, int level) {
  return level < n ? node_count(samples, n, level) * static_cast<unsigned>(level + 1) : 0;
}

/// @brief Levels the combine launch from level `from` (kTileBits <= from < n) adds.
HARSANYI_HD int combine_levels(int n, int from) {
  return n - from < kCombineLevels ? n - from : kCombineLevels;
}

/// @brief Number of combine launches for rows of 2^n elements (0 for n <= kTileBits).
HARSANYI_HD int combine_launches(int n) {
  return n <= kTileBits ? 0 : (n - kTileBits + kCombineLevels - 1) / kCombineLevels;
}

/// @brief Values per part of partial buffer b (0 or 1) for rows of 2^n elements (n >
/// kTileBits): buffer 0 holds the tiles' roots (level kTileBits), buffer 1 the first combine
/// launch's output when more launches follow. Later launches alternate between them (buffer 0,
/// 1, 0, ...), their levels needing fewer values: nodes of level l + G take 2^-G (l + G + 1) /
/// (l + 1) < 1 times the values of level l. The last launch writes the rows.
HARSANYI_HD std::uint64_t partial_values(std::uint64_t samples, int n, int buffer) {
  if (n <= kTileBits) return 0;
  if (buffer == 0) return node_values(samples, n, kTileBits);
  return combine_launches(n) > 1 ? node_values(samples, n, kTileBits + combine_levels(n, kTileBits))
                                 : 0;
}

/// Where the rows' roots go: the `out` of the last combine launch.
constexpr int kRowsBuffer = 2;

/// One combine launch: the nodes of level `from` in partial buffer `in` to level from + levels
/// in buffer `out` (0, 1, or kRowsBuffer for the last launch).
struct CombineStep {
  int from, levels, in, out;
};

/// @brief Launch k (0 <= k < combine_launches(n)) of rows of 2^n elements: from level
/// kTileBits + k·kCombineLevels, alternating buffers from buffer 0 (the tiles' roots).
HARSANYI_HD CombineStep combine_step(int n, int k) {
  CombineStep step;
  step.from = kTileBits + k * kCombineLevels;
  step.levels = combine_levels(n, step.from);
  step.in = k % 2;
  step.out = k + 1 == combine_launches(n) ? kRowsBuffer : (k + 1) % 2;
  return step;
}

/// @brief Bin r (0 <= r <= l + G) of the subtree over the 2^G consecutive nodes of level l at
/// `children` (l + 1 values each, node-major): the canonical tree over them, left half first,
/// the right half's bins shifted by one; a bin only one half has is taken from it.
template <int G, class V>
HARSANYI_HD V subtree_bin(const V* children, int l, int r) {
  if constexpr (G == 0) {
    return children[r];
  } else {
    const V* right = children + (std::uint64_t{1} << (G - 1)) * static_cast<unsigned>(l + 1);
    const int top = l + G - 1;  // highest bin of each half
    if (r == 0) return subtree_bin<G - 1>(children, l, 0);
    if (r > top) return subtree_bin<G - 1>(right, l, r - 1);
    return subtree_bin<G - 1>(children, l, r) + subtree_bin<G - 1>(right, l, r - 1);
  }
}

/// @brief The subset of the i-th folded entry (i = 0..n): ∅, then {i − 1}.
HARSANYI_HD std::uint64_t fold_subset(unsigned i) {
  return i == 0 ? 0 : std::uint64_t{1} << (i - 1);
}

}  // namespace harsanyi::cuda::order_index
