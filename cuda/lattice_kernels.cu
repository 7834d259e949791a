// Batched subset-lattice butterflies on the GPU (see lattice_index.h for the pass structure and
// cuda_backend.h for the API). Bits are done in increasing order for every element, with the same
// per-element operations as src/lattice_transforms.cpp, so float64 results are bitwise equal.
#include <algorithm>
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
void butterfly(T* data, int n, std::uint64_t samples, cudaStream_t stream) {
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

}  // namespace

unsigned launch_blocks(std::uint64_t work, int threads) {
  const std::uint64_t blocks = (work + threads - 1) / threads;
  return static_cast<unsigned>(
      std::max<std::uint64_t>(1, std::min<std::uint64_t>(blocks, kMaxBlocks)));
}

template <class T>
void lattice_transform(LatticeOp op, T* d_data, int n, std::size_t samples, Stream stream) {
  check_args(d_data, n, samples, "lattice_transform");
  if (n == 0 || samples == 0) return;
  switch (op) {
    case LatticeOp::Moebius:
      butterfly<MoebiusOp>(d_data, n, samples, stream);
      break;
    case LatticeOp::MoebiusTranspose:
      butterfly<MoebiusTOp>(d_data, n, samples, stream);
      break;
    case LatticeOp::Zeta:
      butterfly<ZetaOp>(d_data, n, samples, stream);
      break;
    case LatticeOp::ZetaTranspose:
      butterfly<ZetaTOp>(d_data, n, samples, stream);
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
  template void lattice_transform<T>(LatticeOp, T*, int, std::size_t, Stream);      \
  template void or_transform<T>(T*, int, std::size_t, Stream);                      \
  template void or_transform_transpose<T>(T*, int, std::size_t, Stream);            \
  template void reverse_negate_rows<T>(T*, int, std::size_t, T*, const T*, Stream); \
  template void set_empty_entries<T>(T*, int, std::size_t, T*, const T*, Stream);
HARSANYI_INSTANTIATE(float)
HARSANYI_INSTANTIATE(double)
#undef HARSANYI_INSTANTIATE

}  // namespace harsanyi::cuda
