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

}  // namespace harsanyi::cuda::index
