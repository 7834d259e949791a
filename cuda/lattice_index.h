/// @file lattice_index.h
/// @brief Index arithmetic of the CUDA lattice kernels: which elements a thread of a given block or
/// tile touches, and which bits each pass does. Compiles with nvcc and with a plain C++ compiler,
/// so the CPU tests replay exactly the kernels' index logic.
///
/// A batch is a flat array of `samples` rows of 2^n elements; element k of the flat array is
/// subset `k & (2^n - 1)` of row `k >> n`. For a bit b < n the butterfly pairs k and k ^ (1 << b),
/// always inside one row. The kernels do:
///  - one *tile pass* over bits [0, low_bits): a block loads a tile of 2^tile_bits contiguous
///    elements, thread t holding elements `tile·2^tile_bits + r·2^thread_bits + t` in registers
///    r = 0 .. 2^(tile_bits - thread_bits) - 1 (coalesced loads). Bits below lane_bits pair
///    threads of one warp (shuffles), bits below thread_bits pair threads of the block (shared
///    memory), the remaining bits pair registers of one thread;
///  - *column passes* over groups of higher bits [first, first + count): thread c owns the 2^count
///    elements of column c (consecutive threads, consecutive low indices: coalesced) in registers
///    (count <= kKernelRegisterGroup);
///  - *wide column passes* over groups of kKernelWideMin .. kKernelMaxGroup higher bits: a block
///    of 8 warps takes 32 consecutive columns (lane = column) and the 2^count rows of the group;
///    warp w holds rows w·R + j in its registers j < R = 2^(count-3). The low count-3 bits of the
///    group pair registers of one thread; the top 3 (the warp bits) go through shared memory in
///    slices of 8 registers: a thread takes the 8 elements of one (register, lane) cube across
///    the warps and does the 3 bits on them. Each pass reads and writes every element once, so
///    n = 28 takes 3 passes (11 + 9 + 8 bits).
/// Bits are done in increasing order for every element, exactly as the CPU kernels do, so
/// float64 results are bitwise equal to the CPU's.
#pragma once

#include <cstdint>

#include "host_device.h"

namespace harsanyi::cuda::index {

/// Shape of the tile pass (all sizes as bit counts).
struct TileShape {
  int lane_bits;    ///< index bits given by the lane inside a warp (pairs exchanged by shuffles)
  int thread_bits;  ///< index bits given by the thread inside the block (block = 2^thread_bits)
  int tile_bits;    ///< index bits inside the tile (registers per thread: 2^(tile - thread))
};

/// The shape the CUDA kernels use: warps of 32, blocks of 256 threads, tiles of 2048 elements.
constexpr TileShape kKernelTile{5, 8, 11};
/// Largest group of bits of a (wide) column pass.
constexpr int kKernelMaxGroup = 9;
/// Largest group the register column pass takes (2^5 elements per thread); larger groups, from
/// kKernelWideMin on, take the wide pass.
constexpr int kKernelRegisterGroup = 5;
constexpr int kKernelWideMin = 6;
/// Shape of the wide pass: 2^3 warps of 2^5 lanes; registers exchanged in slices of 2^3.
constexpr int kWideWarpBits = 3;
constexpr int kWideLaneBits = 5;
constexpr int kWideSliceBits = 3;

/// @brief Largest group of bits of one column pass for elements of `element_size` bytes: the
/// wide pass holds 2^(9-3) = 64 elements per thread, in floats and in doubles alike.
HARSANYI_HD int column_max_group(unsigned /*element_size*/) {
  return kKernelMaxGroup;
}

/// @brief Whether a column group of `count` bits takes the wide pass (else the register pass).
HARSANYI_HD bool is_wide_group(int count) {
  return count >= kKernelWideMin;
}

/// @brief Number of blocks (tiles of 32 columns × 2^count rows) of a wide pass.
HARSANYI_HD std::uint64_t wide_tile_count(std::uint64_t total, int count) {
  return total >> (count + kWideLaneBits);
}

/// @brief Flat element of tile `tile`, warp `warp`, lane `lane`, register `j` of a wide pass over
/// bits [first, first + count); needs first >= 5 (32 consecutive low indices per row of the tile).
HARSANYI_HD std::uint64_t wide_element(std::uint64_t tile, unsigned warp, unsigned lane,
                                       unsigned j, int first, int count) {
  const int reg_bits = count - kWideWarpBits;
  const std::uint64_t row = (std::uint64_t{warp} << reg_bits) | j;  // index inside the group
  const int low_tile_bits = first - kWideLaneBits;  // tiles along the low bits come first
  const std::uint64_t low_tiles = std::uint64_t{1} << low_tile_bits;
  const std::uint64_t low = ((tile & (low_tiles - 1)) << kWideLaneBits) | lane;
  const std::uint64_t high = tile >> low_tile_bits;
  return (high << (first + count)) | (row << first) | low;
}

/// How a bit of the tile pass is exchanged.
enum class BitLevel { Lane, Block, Register };

/// @brief Which mechanism pairs the elements of bit b (b < tile_bits) in the tile pass.
HARSANYI_HD BitLevel tile_bit_level(int b, TileShape s) {
  return b < s.lane_bits ? BitLevel::Lane
                         : (b < s.thread_bits ? BitLevel::Block : BitLevel::Register);
}

/// @brief Number of registers (elements) per thread in the tile pass.
HARSANYI_HD unsigned tile_registers(TileShape s) {
  return 1u << (s.tile_bits - s.thread_bits);
}

/// @brief Number of tiles covering `total` elements (the last one may be partial when rows are
/// shorter than a tile).
HARSANYI_HD std::uint64_t tile_count(std::uint64_t total, TileShape s) {
  return (total + (std::uint64_t{1} << s.tile_bits) - 1) >> s.tile_bits;
}

/// @brief Flat element held by thread `thread` in register `reg` of tile `tile`.
HARSANYI_HD std::uint64_t tile_element(std::uint64_t tile, unsigned thread, unsigned reg,
                                       TileShape s) {
  return (tile << s.tile_bits) | (std::uint64_t{reg} << s.thread_bits) | std::uint64_t{thread};
}

/// @brief Shared-memory slot of (thread, reg) in the tile pass (the element's offset in the tile).
HARSANYI_HD unsigned tile_slot(unsigned thread, unsigned reg, TileShape s) {
  return (reg << s.thread_bits) | thread;
}

/// @brief Thread holding the partner of bit b (Lane and Block levels; same register).
HARSANYI_HD unsigned tile_partner_thread(unsigned thread, int b) {
  return thread ^ (1u << b);
}

/// @brief Register holding the partner of bit b (Register level; same thread).
HARSANYI_HD unsigned tile_partner_register(unsigned reg, int b, TileShape s) {
  return reg ^ (1u << (b - s.thread_bits));
}

/// @brief Whether `element` is the upper element (bit b set) of its butterfly pair of bit b.
HARSANYI_HD bool is_upper(std::uint64_t element, int b) {
  return ((element >> b) & 1u) != 0;
}

/// @brief Number of columns of a column pass over a group of `count` bits.
HARSANYI_HD std::uint64_t column_count(std::uint64_t total, int count) {
  return total >> count;
}

/// @brief Flat element in register r of column c of a pass over bits [first, first + count).
HARSANYI_HD std::uint64_t column_element(std::uint64_t column, int first, int count, unsigned r) {
  const std::uint64_t low = column & ((std::uint64_t{1} << first) - 1);
  return ((column >> first) << (first + count)) | (std::uint64_t{r} << first) | low;
}

/// @brief Flat index of the reversed subset N \ S of the same row (k = row·2^n + S).
HARSANYI_HD std::uint64_t reversed_element(std::uint64_t k, int n) {
  return k ^ ((std::uint64_t{1} << n) - 1);
}

/// Passes of one transform: a tile pass over the low bits, then column passes over groups.
struct PassPlan {
  int low_bits = 0;    ///< bits [0, low_bits) in the tile pass
  int groups = 0;      ///< number of column passes
  int first[64] = {};  ///< first bit of each column pass
  int count[64] = {};  ///< number of bits of each column pass (1 .. max_group)
};

/// @brief Plan of the passes for rows of 2^n elements: the high bits are split into the fewest
/// groups of at most `max_group` bits, of nearly equal sizes (larger groups first).
HARSANYI_HD PassPlan make_pass_plan(int n, int tile_bits, int max_group) {
  PassPlan plan;
  plan.low_bits = n < tile_bits ? n : tile_bits;
  const int rest = n - plan.low_bits;
  if (rest <= 0 || max_group < 1) return plan;
  plan.groups = (rest + max_group - 1) / max_group;
  int first = plan.low_bits;
  for (int g = 0; g < plan.groups; ++g) {
    plan.first[g] = first;
    plan.count[g] = rest / plan.groups + (g < rest % plan.groups ? 1 : 0);
    first += plan.count[g];
  }
  return plan;
}


// ---------------------------------------------------------------------------------------------
// Shared-memory passes (LatticePasses::Cluster): n = 21..28 (29 in float) in two passes over
// the array.
//
// A pass loads a *cluster tile* into the shared memory of a cluster of 2^rank_bits blocks, each
// block holding 2^buffer_bits elements (128 KiB: 2^15 floats or 2^14 doubles), does a range of
// bits on it, and writes it back. Inside the tile an element has the extended index
// e = (rank << buffer_bits) | m, m its slot in its block's buffer, m = (i << column_bits) | c:
// c one of 2^column_bits consecutive elements (columns; one 32-byte sector), i its row. Bit x
// of e is element bit x for x < column_bits and element bit first + x - column_bits above, so
// rows i (and ranks) run along the group of bits [first, first + group) of the element index.
//  - pass 1 (rank_bits = 0, column_bits = buffer_bits): tiles of 2^buffer_bits contiguous
//    elements, bits [0, L);
//  - pass 2 (rank_bits = 1 or 2): 2^column_bits consecutive columns times the 2^group rows of
//    bits [L, n), group = buffer_bits - column_bits + rank_bits; the top rank_bits bits pair
//    elements of different blocks of the cluster (distributed shared memory).
// The bits [lo, hi) of e are done in rounds of at most reg_bits consecutive bits, in increasing
// order: in a round a thread takes cubes of 2^w elements (o = cube·threads + thread, the round's
// bits deposited into o), does the w bits on them in registers and writes them back. The last
// round reads the cubes from the buffers of all the cluster's blocks (its bits include the rank
// bits), each block a share of them, and writes them straight to global memory.
// Buffer slots are swizzled (smem_slot) so that the 32 threads of a warp hit 32 different banks
// in every load, round and store.

/// One shared-memory pass.
struct SmemPass {
  int buffer_bits = 0;  ///< 2^buffer_bits elements per block
  int reg_bits = 5;     ///< elements per thread 2^reg_bits (threads = 2^(buffer_bits - reg_bits))
  int column_bits = 0;  ///< consecutive elements per row of the tile
  int rank_bits = 0;    ///< blocks per cluster 2^rank_bits (0: no cluster)
  int first = 0;        ///< element bit of extended bit column_bits
  int lo = 0, hi = 0;   ///< extended bits done: [lo, hi)
};

/// Two shared-memory passes of one transform (valid = false: the transform does not fit them).
struct SmemPlan {
  bool valid = false;
  SmemPass pass[2];
};

/// Bytes of shared memory per block of the shared-memory passes.
constexpr int kSmemBufferBytes = 128 * 1024;

/// @brief log2 of an element count that fits `bytes` (bytes / element_size a power of two).
HARSANYI_HD constexpr int log2_count(unsigned bytes, unsigned element_size) {
  int b = 0;
  while ((element_size << (b + 1)) <= bytes) ++b;
  return b;
}

/// @brief Bits of the element index the rows and ranks of a pass span.
HARSANYI_HD int smem_group_bits(const SmemPass& p) {
  return p.buffer_bits - p.column_bits + p.rank_bits;
}

/// @brief Threads per block.
HARSANYI_HD unsigned smem_threads(const SmemPass& p) {
  return 1u << (p.buffer_bits - p.reg_bits);
}

/// @brief Cluster tiles covering `total` elements.
HARSANYI_HD std::uint64_t smem_tiles(std::uint64_t total, const SmemPass& p) {
  return total >> (p.buffer_bits + p.rank_bits);
}

/// @brief Element bit of extended bit x; within a round (whose bits lie on one side of
/// column_bits) the elements of e and e + (j << x) are j << smem_element_bit(x) apart.
HARSANYI_HD int smem_element_bit(int x, const SmemPass& p) {
  return x < p.column_bits ? x : p.first + x - p.column_bits;
}

/// @brief Flat element of extended index e of cluster tile `tile`.
HARSANYI_HD std::uint64_t smem_element(std::uint64_t tile, std::uint64_t e, const SmemPass& p) {
  const std::uint64_t c = e & ((std::uint64_t{1} << p.column_bits) - 1);
  const std::uint64_t g = e >> p.column_bits;  // row i and rank
  const int low_bits = p.first - p.column_bits;  // tiles along the low bits come first
  const std::uint64_t low = tile & ((std::uint64_t{1} << low_bits) - 1);
  const std::uint64_t high = tile >> low_bits;
  return (high << (p.first + smem_group_bits(p))) | (g << p.first) | (low << p.column_bits) | c;
}

/// @brief Distance between the elements of extended indices e and e + threads of a tile, the same
/// for every e a thread loads (e = r·threads + thread, r < 2^reg_bits): loads walk one pointer.
HARSANYI_HD std::uint64_t smem_load_stride(const SmemPass& p) {
  const unsigned threads = smem_threads(p);
  if (p.column_bits >= p.buffer_bits) return threads;  // pass 1: contiguous tiles
  return std::uint64_t{threads >> p.column_bits} << p.first;  // whole rows of columns
}

/// @brief Swizzled buffer slot of m: a bijection of [0, 2^buffer_bits) that XORs bits 5..9 into
/// bits 0..4, linear over the bits (slot(a | b) = slot(a) ^ slot(b) for disjoint a, b).
HARSANYI_HD unsigned smem_slot(unsigned m) {
  return m ^ ((m >> 5) & 31u);
}

/// @brief Number of rounds of a pass.
HARSANYI_HD int smem_rounds(const SmemPass& p) {
  return (p.hi - p.lo + p.reg_bits - 1) / p.reg_bits;
}

/// @brief First extended bit of round k.
HARSANYI_HD int smem_round_first(const SmemPass& p, int k) {
  return p.lo + k * p.reg_bits;
}

/// @brief Bits of round k.
HARSANYI_HD int smem_round_width(const SmemPass& p, int k) {
  const int rest = p.hi - smem_round_first(p, k);
  return rest < p.reg_bits ? rest : p.reg_bits;
}

/// @brief Cubes per thread in a round of w bits (the same in every round: in the last round the
/// cluster's blocks share the cubes of the cluster tile).
HARSANYI_HD unsigned smem_cubes(const SmemPass& p, int w) {
  return 1u << (p.reg_bits - w);
}

/// @brief The cube (index o of the others bits) thread t of block `rank` takes as its k-th cube
/// in a round of w bits: consecutive threads, consecutive cubes (coalesced); in the last round,
/// block r takes the r-th share of the 2^(buffer_bits + rank_bits - w) cubes of the cluster
/// tile, reads their elements from all the cluster's buffers and stores all of them.
HARSANYI_HD unsigned smem_cube_index(const SmemPass& p, int w, bool last, unsigned rank,
                                     unsigned k, unsigned t) {
  const unsigned share = last ? rank << (p.buffer_bits - w) : 0u;
  return share + k * smem_threads(p) + t;
}

/// @brief Extended index of element j of the cube `o` of a round over bits [x0, x0 + w).
HARSANYI_HD unsigned smem_cube_element(unsigned o, unsigned j, int x0, int w) {
  const unsigned low = o & ((1u << x0) - 1);
  return ((o >> x0) << (x0 + w)) | (j << x0) | low;
}

/// @brief Whether a pass is well formed: the rounds cover [lo, hi) inside the extended index,
/// the last round holds every rank bit (and only it reads other blocks), the tile's rows lie
/// above its columns.
HARSANYI_HD bool smem_pass_valid(const SmemPass& p) {
  if (p.reg_bits < 1 || p.buffer_bits < p.reg_bits || p.column_bits < 0 || p.rank_bits < 0 ||
      p.column_bits > p.buffer_bits || p.first < p.column_bits || p.lo < 0 || p.lo >= p.hi ||
      p.hi > p.buffer_bits + p.rank_bits)
    return false;
  if (p.rank_bits > 0 && (p.lo < p.column_bits || p.hi != p.buffer_bits + p.rank_bits))
    return false;
  if (p.rank_bits == 0 && p.hi > p.column_bits) return false;  // pass 1: bits inside the tile
  if (p.buffer_bits + p.rank_bits > 30 || (p.rank_bits > 0 && p.column_bits > p.buffer_bits - p.reg_bits))
    return false;  // extended indices in 32 bits; pass 2 loads whole rows of columns
  const int last = smem_rounds(p) - 1;
  return smem_round_first(p, last) <= p.buffer_bits &&
         smem_round_width(p, last) >= p.rank_bits;
}

/// @brief The two passes of rows of 2^n elements of `element_size` bytes with `buffer_bytes` of
/// shared memory per block; with the kernels' 128 KiB, valid for n = 19..29 in float and
/// n = 19..28 in double (used where the column passes take three: n >= 21).
/// Pass 2 takes one 32-byte sector of columns and group = buffer - columns + rank bits (one rank
/// bit, two when pass 1 would exceed the buffer); pass 1 the remaining low bits.
/// `min_rank_bits` > 1 forces larger clusters (for tests).
HARSANYI_HD SmemPlan make_smem_plan(int n, unsigned element_size,
                                    unsigned buffer_bytes = kSmemBufferBytes, int reg_bits = 5,
                                    unsigned sector_bytes = 32, int min_rank_bits = 1) {
  SmemPlan plan;
  const int buffer_bits = log2_count(buffer_bytes, element_size);
  const int column_bits = log2_count(sector_bytes, element_size);
  for (int rank_bits = min_rank_bits; rank_bits <= 2 && !plan.valid; ++rank_bits) {
    const int group = buffer_bits - column_bits + rank_bits;
    const int low = n - group;
    // Two passes only where the column plan needs three: the low pass needs its last round
    // above bit 4 (coalesced stores) and at least the columns below the group.
    if (low > buffer_bits || low < column_bits || low <= reg_bits) continue;
    SmemPass& p1 = plan.pass[0];
    p1.buffer_bits = buffer_bits;
    p1.reg_bits = reg_bits;
    p1.column_bits = buffer_bits;
    p1.first = buffer_bits;
    p1.lo = 0;
    p1.hi = low;
    SmemPass& p2 = plan.pass[1];
    p2.buffer_bits = buffer_bits;
    p2.reg_bits = reg_bits;
    p2.column_bits = column_bits;
    p2.rank_bits = rank_bits;
    p2.first = low;
    p2.lo = column_bits;
    p2.hi = buffer_bits + rank_bits;
    plan.valid = smem_pass_valid(p1) && smem_pass_valid(p2);
  }
  return plan;
}

/// Rounds of 5 bits in the kernels; their first bits are compile-time constants there.
constexpr int kSmemRegBits = 5;

/// @brief Whether a plan has the shapes smem_pass_kernel is compiled for (elements of
/// `element_size` bytes): 128 KiB buffers, rounds of 5 bits; pass 1 from bit 0 over its whole
/// tile in 2 or 3 rounds; pass 2 over 32-byte columns from the column bits to the top rank bit
/// (1 or 2 rank bits) in 3 rounds. The kernel's round k starts at lo + 5k.
HARSANYI_HD bool smem_plan_fits_kernels(const SmemPlan& plan, unsigned element_size) {
  const SmemPass& p1 = plan.pass[0];
  const SmemPass& p2 = plan.pass[1];
  const int buffer_bits = log2_count(kSmemBufferBytes, element_size);
  const int column_bits = log2_count(32, element_size);
  const int rounds1 = smem_rounds(p1), rounds2 = smem_rounds(p2);
  return plan.valid && p1.reg_bits == kSmemRegBits && p2.reg_bits == kSmemRegBits &&
         p1.buffer_bits == buffer_bits && p2.buffer_bits == buffer_bits &&
         p1.column_bits == buffer_bits && p1.first == buffer_bits && p1.rank_bits == 0 &&
         p1.lo == 0 && (rounds1 == 2 || rounds1 == 3) && p2.column_bits == column_bits &&
         p2.lo == column_bits && rounds2 == 3 && p2.hi == buffer_bits + p2.rank_bits &&
         (p2.rank_bits == 1 || p2.rank_bits == 2);
}

}  // namespace harsanyi::cuda::index
