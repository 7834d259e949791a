// Batched subset-lattice butterflies on the GPU (see lattice_index.h for the pass structure and
// cuda_backend.h for the API). Bits are done in increasing order for every element, with the same
// per-element operations as src/lattice_transforms.cpp, so float64 results are bitwise equal.
#include <cooperative_groups.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "butterfly_ops.cuh"
#include "cuda_backend.h"
#include "cuda_check.h"
#include "lattice_index.h"
#include "lattice_internal.h"

namespace harsanyi::cuda {
namespace {

using index::BitLevel;
using index::TileShape;

using ops::MoebiusOp;
using ops::MoebiusTOp;
using ops::ZetaOp;
using ops::ZetaTOp;

// New value of one side of a pair whose other side lives in another thread: the same Op on copies.
template <class Op, class T>
__device__ __forceinline__ T own_side(T mine, T other, bool upper) {
  if (upper) {
    T lo = other, hi = mine;
    Op::apply(lo, hi);
    return hi;
  }
  T lo = mine, hi = other;
  Op::apply(lo, hi);
  return lo;
}

constexpr TileShape kTile = index::kKernelTile;
constexpr int kTileThreads = 1 << kTile.thread_bits;
constexpr int kTileRegs = 1 << (kTile.tile_bits - kTile.thread_bits);
constexpr int kTileElems = 1 << kTile.tile_bits;
static_assert(kTile.lane_bits == 5, "lane level assumes warps of 32");
constexpr int kWideThreads = 1 << (index::kWideWarpBits + index::kWideLaneBits);
static_assert(index::kWideLaneBits == 5, "the wide pass assumes warps of 32");
static_assert(kTile.tile_bits >= index::kWideLaneBits, "wide passes need first >= 5");

// Tile pass: bits [0, nbits) (nbits <= tile_bits) of tiles of 2^tile_bits contiguous elements.
// Elements at or beyond `total` (a partial last tile when rows are short) are neither loaded nor
// stored; since rows are aligned to 2^n and nbits <= n, their pairs are never in range.
template <class Op, class T>
__global__ void __launch_bounds__(kTileThreads)
    tile_pass_kernel(T* __restrict__ data, std::uint64_t total, std::uint64_t tiles, int nbits) {
  __shared__ T smem[kTileElems];
  const unsigned thread = threadIdx.x;
  for (std::uint64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    T x[kTileRegs];
#pragma unroll
    for (int r = 0; r < kTileRegs; ++r) {
      const std::uint64_t e = index::tile_element(tile, thread, r, kTile);
      x[r] = e < total ? data[e] : T(0);
    }
#pragma unroll
    for (int b = 0; b < kTile.tile_bits; ++b) {
      if (b >= nbits) continue;  // uniform over the block: every thread skips the same bits
      const BitLevel level = index::tile_bit_level(b, kTile);
      if (level == BitLevel::Lane) {
        const unsigned partner_lane = index::tile_partner_thread(thread, b) & 31u;
#pragma unroll
        for (int r = 0; r < kTileRegs; ++r) {
          const T other = __shfl_sync(0xffffffffu, x[r], partner_lane);
          const bool upper = index::is_upper(index::tile_element(tile, thread, r, kTile), b);
          x[r] = own_side<Op>(x[r], other, upper);
        }
      } else if (level == BitLevel::Block) {
        __syncthreads();  // the previous round's reads of smem are done
#pragma unroll
        for (int r = 0; r < kTileRegs; ++r) smem[index::tile_slot(thread, r, kTile)] = x[r];
        __syncthreads();
        const unsigned partner = index::tile_partner_thread(thread, b);
#pragma unroll
        for (int r = 0; r < kTileRegs; ++r) {
          const T other = smem[index::tile_slot(partner, r, kTile)];
          const bool upper = index::is_upper(index::tile_element(tile, thread, r, kTile), b);
          x[r] = own_side<Op>(x[r], other, upper);
        }
      } else {
#pragma unroll
        for (int r = 0; r < kTileRegs; ++r) {
          const unsigned pr = index::tile_partner_register(r, b, kTile);
          if (static_cast<unsigned>(r) < pr) Op::apply(x[r], x[pr]);
        }
      }
    }
#pragma unroll
    for (int r = 0; r < kTileRegs; ++r) {
      const std::uint64_t e = index::tile_element(tile, thread, r, kTile);
      if (e < total) data[e] = x[r];
    }
    __syncthreads();  // smem is reused by the next tile of this block
  }
}

// Column pass: bits [first, first + G); thread c holds the 2^G elements of column c.
template <class Op, class T, int G>
__global__ void __launch_bounds__(128)
    column_pass_kernel(T* __restrict__ data, std::uint64_t columns, int first) {
  constexpr int R = 1 << G;
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t c = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       c < columns; c += stride) {
    T x[R];
#pragma unroll
    for (int r = 0; r < R; ++r) x[r] = data[index::column_element(c, first, G, r)];
#pragma unroll
    for (int b = 0; b < G; ++b) {
#pragma unroll
      for (int r = 0; r < R; ++r)
        if (!(r & (1 << b))) Op::apply(x[r], x[r | (1 << b)]);
    }
#pragma unroll
    for (int r = 0; r < R; ++r) data[index::column_element(c, first, G, r)] = x[r];
  }
}

// Wide column pass: bits [first, first + G) with 6 <= G <= 9 (lattice_index.h). A block of 8 warps
// takes 32 consecutive columns (lane = column) of all 2^G rows of the group; warp w holds rows
// w·R + j, j < R = 2^(G-3), in registers. The low G-3 bits pair registers; the top 3 bits pair
// warps and go through shared memory, 8 registers at a time: after the exchange, thread
// (warp k, lane) holds the 8 elements of register s0 + k of all warps and does the 3 bits on
// them in increasing order.
template <class Op, class T, int G>
__global__ void __launch_bounds__(kWideThreads)
    wide_column_kernel(T* __restrict__ data, std::uint64_t tiles, int first) {
  constexpr int kRegBits = G - index::kWideWarpBits;
  constexpr int R = 1 << kRegBits;
  constexpr int kWarps = 1 << index::kWideWarpBits;
  constexpr int kSlice = 1 << index::kWideSliceBits;
  static_assert(R % kSlice == 0 && kSlice == kWarps, "a slice gives one register to each warp");
  __shared__ T buf[kWarps][kSlice][32];
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  const std::uint64_t stride = std::uint64_t{1} << first;  // register j: element base + j·stride
  for (std::uint64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    T* base = data + index::wide_element(tile, warp, lane, 0, first, G);
    T x[R];
#pragma unroll
    for (int j = 0; j < R; ++j) x[j] = base[j * stride];
    // Hide that the stores go to the same addresses: otherwise the compiler keeps all R 64-bit
    // addresses live from the loads to the stores and spills.
    asm volatile("" : "+l"(base));
#pragma unroll
    for (int b = 0; b < kRegBits; ++b) {
#pragma unroll
      for (int j = 0; j < R; ++j)
        if (!(j & (1 << b))) Op::apply(x[j], x[j | (1 << b)]);
    }
#pragma unroll
    for (int s0 = 0; s0 < R; s0 += kSlice) {
      // Only thread (warp, lane) touches buf[warp][*][lane] outside the cube step, so the
      // writes of this slice need no barrier against the read-back of the previous one.
#pragma unroll
      for (int k = 0; k < kSlice; ++k) buf[warp][k][lane] = x[s0 + k];
      __syncthreads();
      T c[kWarps];
#pragma unroll
      for (int u = 0; u < kWarps; ++u) c[u] = buf[u][warp][lane];
#pragma unroll
      for (int b = 0; b < index::kWideWarpBits; ++b) {
#pragma unroll
        for (int u = 0; u < kWarps; ++u)
          if (!(u & (1 << b))) Op::apply(c[u], c[u | (1 << b)]);
      }
#pragma unroll
      for (int u = 0; u < kWarps; ++u) buf[u][warp][lane] = c[u];
      __syncthreads();
#pragma unroll
      for (int k = 0; k < kSlice; ++k) x[s0 + k] = buf[warp][k][lane];
    }
#pragma unroll
    for (int j = 0; j < R; ++j) base[j * stride] = x[j];
    __syncthreads();  // the next tile's first slice overwrites slots other warps may still read
  }
}

// In-place x(S) <- -x(N \ S) for every row. `save` (if not null) receives the row's x(∅) before
// the reversal; `add` (if not null) is added to the new x(∅) afterwards.
template <class T>
__global__ void reverse_negate_kernel(T* __restrict__ data, int n, std::uint64_t samples,
                                      T* __restrict__ save, const T* __restrict__ add) {
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  if (n == 0) {
    for (std::uint64_t s = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
         s < samples; s += stride) {
      if (save) save[s] = data[s];
      T v = -data[s];
      if (add) v += add[s];
      data[s] = v;
    }
    return;
  }
  const std::uint64_t pairs = samples << (n - 1);  // one thread per pair (S, N \ S), S < 2^(n-1)
  for (std::uint64_t k = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       k < pairs; k += stride) {
    const std::uint64_t s = k >> (n - 1);
    const std::uint64_t i = (s << n) | (k & ((std::uint64_t{1} << (n - 1)) - 1));
    const std::uint64_t j = index::reversed_element(i, n);
    const T a = data[i], b = data[j];
    if (save && i == (s << n)) save[s] = a;
    T vi = -b;
    if (add && i == (s << n)) vi += add[s];
    data[i] = vi;
    data[j] = -a;
  }
}

// Per row: save x(∅) into `save` (if not null), then set x(∅) to `value` (if not null) or zero.
template <class T>
__global__ void empty_entry_kernel(T* __restrict__ data, int n, std::uint64_t samples,
                                   T* __restrict__ save, const T* __restrict__ value) {
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t s = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       s < samples; s += stride) {
    T& x = data[s << n];
    if (save) save[s] = x;
    x = value ? value[s] : T(0);
  }
}

// ---------------------------------------------------------------------------------------------
// Shared-memory passes (LatticePasses::Cluster; index logic in lattice_index.h): a cluster tile
// held in the shared memory of a cluster of 2^RankBits blocks, its bits [lo, hi) done in rounds
// of at most 5 bits, each element read from and written to global memory once.
//
// The rounds' first bits are compile-time constants (lo is 0 in pass 1 and the column bits in
// pass 2; rounds of 5): the swizzle is linear over the bits (XOR), so the slot of cube element j
// is the slot of the cube's first element XOR a constant, and a thread keeps one slot register
// per cube instead of one per element (at 1024 threads a thread has 64 registers).

using index::kSmemRegBits;
static_assert(kSmemRegBits == 5, "rounds of 5 bits: a warp's 32 lanes give the swizzle's bits");

template <class T>
constexpr int kSmemBufferBits = index::log2_count(index::kSmemBufferBytes, sizeof(T));
template <class T>
constexpr int kSmemThreads = 1 << (kSmemBufferBits<T> - kSmemRegBits);
// First extended bit of pass 1 (0) and of pass 2 (the column bits: one 32-byte sector).
template <class T, int RankBits>
constexpr int kSmemLo = RankBits > 0 ? index::log2_count(32, sizeof(T)) : 0;

// One round of W bits starting at extended bit X0. Not the last round: cubes inside the block's
// buffer, written back to it. The last round: the block's share of the cluster tile's cubes,
// read across the cluster's buffers (`ranks`; the round holds the rank bits, the top bits of j)
// and written to global memory.
template <class Op, class T, int X0, int W, bool Last, int RankBits>
__device__ __forceinline__ void smem_round(T* buf, T* const* ranks, T* __restrict__ data,
                                           std::uint64_t tile, unsigned rank,
                                           const index::SmemPass& p) {
  constexpr int R = 1 << W;
  constexpr int kBufferBits = kSmemBufferBits<T>;
  static_assert(!Last || RankBits == 0 || X0 + W == kBufferBits + RankBits,
                "the last round of pass 2 ends with the rank bits");
  static_assert(Last || X0 + W <= kBufferBits, "rounds before the last stay in the block");
  const unsigned cubes = index::smem_cubes(p, W);
  const int shift = index::smem_element_bit(X0, p);
  for (unsigned k = 0; k < cubes; ++k) {
    const unsigned o = index::smem_cube_index(p, W, Last, rank, k, threadIdx.x);
    const unsigned e0 = index::smem_cube_element(o, 0, X0, W);  // < 2^X0 in the last round
    const unsigned s0 = index::smem_slot(e0 & ((1u << kBufferBits) - 1));
    T x[R];
#pragma unroll
    for (int j = 0; j < R; ++j) {
      constexpr unsigned kMask = (1u << kBufferBits) - 1;
      const unsigned ej = static_cast<unsigned>(j) << X0;
      const T* src = buf;
      if constexpr (Last && RankBits > 0) src = ranks[ej >> kBufferBits];
      x[j] = src[s0 ^ index::smem_slot(ej & kMask)];
    }
#pragma unroll
    for (int b = 0; b < W; ++b) {
#pragma unroll
      for (int j = 0; j < R; ++j)
        if (!(j & (1 << b))) Op::apply(x[j], x[j | (1 << b)]);
    }
    if constexpr (Last) {
      T* out = data + index::smem_element(tile, e0, p);
#pragma unroll
      for (int j = 0; j < R; ++j) out[std::uint64_t(j) << shift] = x[j];
    } else {
#pragma unroll
      for (int j = 0; j < R; ++j) buf[s0 ^ index::smem_slot(static_cast<unsigned>(j) << X0)] = x[j];
    }
  }
}

// The last round, k = rounds - 1 (1 or 2), of width w = hi - first bit (1..5).
template <class Op, class T, int RankBits, int K>
__device__ __forceinline__ void smem_last_round(int w, T* buf, T* const* ranks, T* data,
                                                std::uint64_t tile, unsigned rank,
                                                const index::SmemPass& p) {
  constexpr int X0 = kSmemLo<T, RankBits> + K * kSmemRegBits;
  if constexpr (RankBits > 0) {
    constexpr int W = kSmemBufferBits<T> + RankBits - X0;  // pass 2: fixed by T and ranks
    static_assert(W >= RankBits && W <= kSmemRegBits, "pass 2's last round");
    smem_round<Op, T, X0, W, true, RankBits>(buf, ranks, data, tile, rank, p);
  } else {
    switch (w) {
      case 1:
        smem_round<Op, T, X0, 1, true, 0>(buf, ranks, data, tile, rank, p);
        break;
      case 2:
        smem_round<Op, T, X0, 2, true, 0>(buf, ranks, data, tile, rank, p);
        break;
      case 3:
        smem_round<Op, T, X0, 3, true, 0>(buf, ranks, data, tile, rank, p);
        break;
      case 4:
        smem_round<Op, T, X0, 4, true, 0>(buf, ranks, data, tile, rank, p);
        break;
      default:
        smem_round<Op, T, X0, 5, true, 0>(buf, ranks, data, tile, rank, p);
        break;
    }
  }
}

// Block (or cluster) barrier: with RankBits > 0 every block of the cluster has arrived, and its
// shared-memory writes are visible to the cluster's blocks.
template <int RankBits>
__device__ __forceinline__ void smem_barrier() {
  if constexpr (RankBits > 0) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    cooperative_groups::this_cluster().sync();
#else
    __trap();  // the host launches clusters on compute capability 9.0 and above only
#endif
  } else {
    __syncthreads();
  }
}

// A pass of 2 or 3 rounds (pass 1: 6 <= hi <= 15 bits from bit 0; pass 2: from the column
// bits to the top rank bit, 13 or 14 bits). Two rounds of 5 bits at most before the last.
template <class Op, class T, int RankBits>
__global__ void __launch_bounds__(kSmemThreads<T>)
    smem_pass_kernel(T* __restrict__ data, std::uint64_t tiles, index::SmemPass p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* buf = reinterpret_cast<T*>(smem_raw);
  constexpr int kRanks = 1 << RankBits;
  constexpr int kLo = kSmemLo<T, RankBits>;
  T* ranks[kRanks];
  unsigned rank = 0;
  if constexpr (RankBits > 0) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    cooperative_groups::cluster_group cluster = cooperative_groups::this_cluster();
    rank = cluster.block_rank();
#pragma unroll
    for (int r = 0; r < kRanks; ++r) ranks[r] = cluster.map_shared_rank(buf, r);
#else
    __trap();
#endif
  } else {
    ranks[0] = buf;
  }
  const unsigned threads = blockDim.x;
  constexpr int kPerThread = 1 << kSmemRegBits;
  const int rounds = index::smem_rounds(p);
  const int last_width = index::smem_round_width(p, rounds - 1);
  const std::uint64_t load_stride = index::smem_load_stride(p);
  std::uint64_t first_tile = blockIdx.x, tile_step = gridDim.x;
  if constexpr (RankBits > 0) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    first_tile = cooperative_groups::grid_group::cluster_rank();  // the same in the cluster
    tile_step = cooperative_groups::grid_group::num_clusters();
#endif
  }
  for (std::uint64_t tile = first_tile; tile < tiles; tile += tile_step) {
    // Load: consecutive threads, consecutive m (whole 32-byte sectors), in two halves of 16
    // loads in flight per thread (fewer registers).
    const T* in = data + index::smem_element(tile, (rank << p.buffer_bits) | threadIdx.x, p);
#pragma unroll
    for (int h = 0; h < kPerThread; h += kPerThread / 2) {
      T x[kPerThread / 2];
#pragma unroll
      for (int r = 0; r < kPerThread / 2; ++r) x[r] = in[(h + r) * load_stride];
#pragma unroll
      for (int r = 0; r < kPerThread / 2; ++r)
        buf[index::smem_slot((h + r) * threads + threadIdx.x)] = x[r];
    }
    __syncthreads();
    smem_round<Op, T, kLo, kSmemRegBits, false, RankBits>(buf, ranks, data, tile, rank, p);
    __syncthreads();
    if (rounds == 3) {
      smem_round<Op, T, kLo + kSmemRegBits, kSmemRegBits, false, RankBits>(buf, ranks, data,
                                                                         tile, rank, p);
      __syncthreads();
    }
    smem_barrier<RankBits>();  // every buffer of the cluster is final
    if (rounds == 3)
      smem_last_round<Op, T, RankBits, 2>(last_width, buf, ranks, data, tile, rank, p);
    else if constexpr (RankBits == 0)
      smem_last_round<Op, T, RankBits, 1>(last_width, buf, ranks, data, tile, rank, p);
    smem_barrier<RankBits>();  // no block refills (or leaves) its buffer while others read it
  }
}

// Whether the current device runs the shared-memory passes: compute capability 9.0 or above
// (clusters, distributed shared memory), 128 KiB of shared memory per block, and kernels built
// for it (a build without sm_90 code would JIT its compute_80 PTX, in which the cluster code is a
// trap). Cached per device; false without a device.
bool smem_passes_supported() {
  constexpr int kDevices = 64;
  static std::atomic<signed char> cache[kDevices];  // 0 unknown, 1 yes, -1 no
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    cudaGetLastError();  // clear the error: the caller falls back to the column passes
    return false;
  }
  if (device < 0 || device >= kDevices) return false;
  if (const signed char known = cache[device].load()) return known > 0;
  int major = 0, cluster = 0, optin = 0;
  HARSANYI_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  HARSANYI_CUDA_CHECK(cudaDeviceGetAttribute(&cluster, cudaDevAttrClusterLaunch, device));
  HARSANYI_CUDA_CHECK(
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  bool ok = major >= 9 && cluster != 0 && optin >= index::kSmemBufferBytes;
  if (ok) {
    cudaFuncAttributes attributes{};
    HARSANYI_CUDA_CHECK(
        cudaFuncGetAttributes(&attributes, smem_pass_kernel<ops::ZetaOp, float, 1>));
    ok = attributes.ptxVersion >= 90 && attributes.binaryVersion >= 90;
  }
  cache[device].store(ok ? 1 : -1);
  return ok;
}

template <class Op, class T, int RankBits>
void launch_smem_pass(T* data, std::uint64_t total, const index::SmemPass& p,
                      cudaStream_t stream) {
  auto kernel = smem_pass_kernel<Op, T, RankBits>;
  const std::size_t bytes = std::size_t{sizeof(T)} << p.buffer_bits;
  HARSANYI_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(bytes)));
  const std::uint64_t tiles = index::smem_tiles(total, p);
  const std::uint64_t clusters = std::min<std::uint64_t>(tiles, kMaxBlocks >> RankBits);
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(clusters << RankBits));
  config.blockDim = dim3(index::smem_threads(p));
  config.dynamicSmemBytes = bytes;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  if (RankBits > 0) {
    attribute[0].id = cudaLaunchAttributeClusterDimension;
    attribute[0].val.clusterDim.x = 1u << RankBits;
    attribute[0].val.clusterDim.y = 1;
    attribute[0].val.clusterDim.z = 1;
    config.attrs = attribute;
    config.numAttrs = 1;
  }
  HARSANYI_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, data, tiles, p));
}

// The plan of the shared-memory passes for rows of 2^n elements of T when they apply (n where
// the column passes take three, a plan of the compiled shapes, a device with clusters).
template <class T>
bool smem_plan_applies(int n, index::SmemPlan& plan) {
  const index::PassPlan columns =
      index::make_pass_plan(n, kTile.tile_bits, index::column_max_group(sizeof(T)));
  if (1 + columns.groups <= 2) return false;
  plan = index::make_smem_plan(n, sizeof(T));
  if (!index::smem_plan_fits_kernels(plan, sizeof(T))) return false;
  return smem_passes_supported();
}

// The two shared-memory passes when they apply (n = 21..28, 29 in float: where the column
// passes take three and the device has clusters); false otherwise.
template <class Op, class T>
bool smem_butterfly(T* data, int n, std::uint64_t samples, cudaStream_t stream) {
  index::SmemPlan plan;
  if (!smem_plan_applies<T>(n, plan)) return false;
  const std::uint64_t total = samples << n;
  launch_smem_pass<Op, T, 0>(data, total, plan.pass[0], stream);
  if (plan.pass[1].rank_bits == 2)
    launch_smem_pass<Op, T, 2>(data, total, plan.pass[1], stream);
  else
    launch_smem_pass<Op, T, 1>(data, total, plan.pass[1], stream);
  return true;
}

template <class Op, class T, int G>
void launch_column(T* data, std::uint64_t columns, int first, cudaStream_t stream) {
  constexpr int threads = 128;
  const unsigned blocks = launch_blocks(columns, threads);
  column_pass_kernel<Op, T, G><<<blocks, threads, 0, stream>>>(data, columns, first);
  HARSANYI_CUDA_LAUNCH_CHECK();
}

template <class Op, class T, int G>
void launch_wide(T* data, std::uint64_t total, int first, cudaStream_t stream) {
  const std::uint64_t tiles = index::wide_tile_count(total, G);
  const unsigned blocks = static_cast<unsigned>(std::min<std::uint64_t>(tiles, kMaxBlocks));
  wide_column_kernel<Op, T, G><<<blocks, kWideThreads, 0, stream>>>(data, tiles, first);
  HARSANYI_CUDA_LAUNCH_CHECK();
}

template <class Op, class T>
void butterfly(T* data, int n, std::uint64_t samples, cudaStream_t stream, LatticePasses passes) {
  if (passes == LatticePasses::Cluster && smem_butterfly<Op>(data, n, samples, stream)) return;
  const std::uint64_t total = samples << n;
  const index::PassPlan plan =
      index::make_pass_plan(n, kTile.tile_bits, index::column_max_group(sizeof(T)));
  if (plan.low_bits > 0) {
    const std::uint64_t tiles = index::tile_count(total, kTile);
    const unsigned blocks = static_cast<unsigned>(std::min<std::uint64_t>(tiles, kMaxBlocks));
    tile_pass_kernel<Op, T><<<blocks, kTileThreads, 0, stream>>>(data, total, tiles, plan.low_bits);
    HARSANYI_CUDA_LAUNCH_CHECK();
  }
  for (int g = 0; g < plan.groups; ++g) {
    const int count = plan.count[g], first = plan.first[g];
    const std::uint64_t columns = index::column_count(total, count);
    if (index::is_wide_group(count) && first < index::kWideLaneBits)
      throw std::logic_error("lattice_transform: a wide pass below bit 5");
    switch (count) {
      case 1:
        launch_column<Op, T, 1>(data, columns, first, stream);
        break;
      case 2:
        launch_column<Op, T, 2>(data, columns, first, stream);
        break;
      case 3:
        launch_column<Op, T, 3>(data, columns, first, stream);
        break;
      case 4:
        launch_column<Op, T, 4>(data, columns, first, stream);
        break;
      case 5:
        launch_column<Op, T, 5>(data, columns, first, stream);
        break;
      case 6:
        launch_wide<Op, T, 6>(data, total, first, stream);
        break;
      case 7:
        launch_wide<Op, T, 7>(data, total, first, stream);
        break;
      case 8:
        launch_wide<Op, T, 8>(data, total, first, stream);
        break;
      case 9:
        launch_wide<Op, T, 9>(data, total, first, stream);
        break;
      default:
        throw std::logic_error("lattice_transform: bad column group size");
    }
  }
}
static_assert(index::kKernelMaxGroup == 9 && index::kKernelRegisterGroup == 5 &&
                  index::kKernelWideMin == 6,
              "update the switch in butterfly()");

void check_args(const void* data, int n, std::size_t samples, const char* what) {
  if (n < 0 || n > kMaxDevicePlayers)
    throw std::invalid_argument(std::string(what) + ": n = " + std::to_string(n) +
                                " out of range [0, " + std::to_string(kMaxDevicePlayers) + "]");
  if (samples > 0 && data == nullptr)
    throw std::invalid_argument(std::string(what) + ": null device pointer");
  if (n > 0 && samples > (~std::uint64_t{0} >> n))
    throw std::invalid_argument(std::string(what) + ": samples << n overflows");
}

// Device scratch of `count` elements, allocated and freed in stream order.
template <class T>
class StreamScratch {
 public:
  StreamScratch(std::size_t count, cudaStream_t stream) : stream_(stream) {
    HARSANYI_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&ptr_),
                                        std::max<std::size_t>(count, 1) * sizeof(T), stream));
  }
  ~StreamScratch() { cudaFreeAsync(ptr_, stream_); }  // no throw from a destructor
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;
  T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
  cudaStream_t stream_;
};

// Auto: the cluster passes from n = 25, where they measured faster than the column passes on
// an H100 in both precisions (n = 28 f32: 1.95 vs 2.24 ms, 2.72x a copy against 3.12x; at
// n = 21..24 the three column passes were as fast or faster). Where the cluster passes do not
// apply (older devices, n above their range) Cluster falls back to Columns anyway.
LatticePasses resolve_passes(LatticePasses passes, int n) {
  if (passes != LatticePasses::Auto) return passes;
  return n >= kAutoClusterMinPlayers ? LatticePasses::Cluster : LatticePasses::Columns;
}

}  // namespace

unsigned launch_blocks(std::uint64_t work, int threads) {
  const std::uint64_t blocks = (work + threads - 1) / threads;
  return static_cast<unsigned>(
      std::max<std::uint64_t>(1, std::min<std::uint64_t>(blocks, kMaxBlocks)));
}

int lattice_pass_count(LatticePasses passes, int n, std::size_t element_size) {
  if (element_size != sizeof(float) && element_size != sizeof(double))
    throw std::invalid_argument("lattice_pass_count: elements of 4 or 8 bytes");
  if (n < 0 || n > kMaxDevicePlayers)
    throw std::invalid_argument("lattice_pass_count: n = " + std::to_string(n) +
                                " out of range [0, " + std::to_string(kMaxDevicePlayers) + "]");
  if (n == 0) return 0;
  passes = resolve_passes(passes, n);
  index::SmemPlan smem;
  if (passes == LatticePasses::Cluster &&
      (element_size == sizeof(float) ? smem_plan_applies<float>(n, smem)
                                     : smem_plan_applies<double>(n, smem)))
    return 2;
  const index::PassPlan plan =
      index::make_pass_plan(n, kTile.tile_bits, index::column_max_group(element_size));
  return (plan.low_bits > 0 ? 1 : 0) + plan.groups;
}

template <class T>
void lattice_transform(LatticeOp op, T* d_data, int n, std::size_t samples, Stream stream,
                       LatticePasses passes) {
  check_args(d_data, n, samples, "lattice_transform");
  if (n == 0 || samples == 0) return;
  passes = resolve_passes(passes, n);
  switch (op) {
    case LatticeOp::Moebius:
      butterfly<MoebiusOp>(d_data, n, samples, stream, passes);
      break;
    case LatticeOp::MoebiusTranspose:
      butterfly<MoebiusTOp>(d_data, n, samples, stream, passes);
      break;
    case LatticeOp::Zeta:
      butterfly<ZetaOp>(d_data, n, samples, stream, passes);
      break;
    case LatticeOp::ZetaTranspose:
      butterfly<ZetaTOp>(d_data, n, samples, stream, passes);
      break;
  }
}

template <class T>
void reverse_negate_rows(T* d_data, int n, std::size_t samples, T* d_save, const T* d_add,
                         Stream stream) {
  if (samples == 0) return;
  const std::uint64_t work = n == 0 ? samples : (std::uint64_t{samples} << (n - 1));
  constexpr int threads = 256;
  reverse_negate_kernel<T>
      <<<launch_blocks(work, threads), threads, 0, stream>>>(d_data, n, samples, d_save, d_add);
  HARSANYI_CUDA_LAUNCH_CHECK();
}

template <class T>
void set_empty_entries(T* d_data, int n, std::size_t samples, T* d_save, const T* d_value,
                       Stream stream) {
  if (samples == 0) return;
  constexpr int threads = 256;
  empty_entry_kernel<T><<<launch_blocks(samples, threads), threads, 0, stream>>>(d_data, n, samples,
                                                                                 d_save, d_value);
  HARSANYI_CUDA_LAUNCH_CHECK();
}

// I_or = -Möbius(u) with u(T) = w(N\T), except I_or(∅) = w(∅) (as the CPU or_transform).
template <class T>
void or_transform(T* d_data, int n, std::size_t samples, Stream stream) {
  check_args(d_data, n, samples, "or_transform");
  if (samples == 0) return;
  StreamScratch<T> empty(samples, stream);
  reverse_negate_rows<T>(d_data, n, samples, empty.get(), nullptr, stream);
  lattice_transform(LatticeOp::Moebius, d_data, n, samples, stream);
  set_empty_entries<T>(d_data, n, samples, nullptr, empty.get(), stream);
}

// Oᵀg = -R·Mᵀ·(D g) + e∅·g(∅) (as the CPU or_transform_transpose).
template <class T>
void or_transform_transpose(T* d_data, int n, std::size_t samples, Stream stream) {
  check_args(d_data, n, samples, "or_transform_transpose");
  if (samples == 0) return;
  StreamScratch<T> empty(samples, stream);
  set_empty_entries<T>(d_data, n, samples, empty.get(), nullptr, stream);
  lattice_transform(LatticeOp::MoebiusTranspose, d_data, n, samples, stream);
  reverse_negate_rows<T>(d_data, n, samples, nullptr, empty.get(), stream);
}

#define HARSANYI_INSTANTIATE(T)                                                     \
  template void lattice_transform<T>(LatticeOp, T*, int, std::size_t, Stream,       \
                                     LatticePasses);                                \
  template void or_transform<T>(T*, int, std::size_t, Stream);                      \
  template void or_transform_transpose<T>(T*, int, std::size_t, Stream);            \
  template void reverse_negate_rows<T>(T*, int, std::size_t, T*, const T*, Stream); \
  template void set_empty_entries<T>(T*, int, std::size_t, T*, const T*, Stream);
HARSANYI_INSTANTIATE(float)
HARSANYI_INSTANTIATE(double)
#undef HARSANYI_INSTANTIATE

}  // namespace harsanyi::cuda
