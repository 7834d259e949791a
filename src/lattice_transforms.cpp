// Cache-blocked butterflies over the subset lattice. See lattice_transforms.h.
#include "lattice_transforms.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

namespace harsanyi {
namespace {

// One butterfly between the element without a bit (lo) and the element with it (hi).
struct MoebiusOp {  // I(S) -= I(S \ b)
  template <class T> static inline void apply(T& lo, T& hi) { hi -= lo; }
};
struct MoebiusTOp {  // transpose: g(S \ b) -= g(S)
  template <class T> static inline void apply(T& lo, T& hi) { lo -= hi; }
};
struct ZetaOp {  // f(S) += f(S \ b)
  template <class T> static inline void apply(T& lo, T& hi) { hi += lo; }
};
struct ZetaTOp {  // transpose: f(S \ b) += f(S)
  template <class T> static inline void apply(T& lo, T& hi) { lo += hi; }
};

// One radix-2^R step: bits [b, b+R) of a contiguous array, the 2^R elements of each butterfly
// group held in registers. Per element, the operations and their order are those of R
// consecutive single-bit stages, so results are bitwise those of the per-bit loop.
template <class Op, int R, class T>
inline void radix_stage(T* __restrict f, std::size_t len, int b) {
  constexpr int kPoints = 1 << R;
  const std::size_t s = std::size_t{1} << b;
  for (std::size_t base = 0; base < len; base += kPoints * s) {
    T* __restrict g = f + base;
#pragma GCC ivdep
    for (std::size_t j = 0; j < s; ++j) {
      T x[kPoints];
      for (int m = 0; m < kPoints; ++m) x[m] = g[m * s + j];
      for (int r = 0; r < R; ++r)
        for (int m = 0; m < kPoints; ++m)
          if (m & (1 << r)) Op::apply(x[m ^ (1 << r)], x[m]);
      for (int m = 0; m < kPoints; ++m) g[m * s + j] = x[m];
    }
  }
}

// Bits [first, first+count) of a contiguous array of `len` elements, three bits per sweep.
template <class Op, class T>
inline void stages_contiguous(T* __restrict f, std::size_t len, int first, int count) {
  int b = first;
  const int end = first + count;
  for (; b + 3 <= end; b += 3) radix_stage<Op, 3>(f, len, b);
  if (end - b == 2) radix_stage<Op, 2>(f, len, b);
  if (end - b == 1) radix_stage<Op, 1>(f, len, b);
}

// Bits 0, 1, 2 of each group of 8 consecutive elements, as lane shuffles and selects on one
// 8-lane vector (GCC vector extensions: AVX-512, AVX2 or SSE, whatever the target has). Lanes
// outside an Op's target keep their value exactly (a select, not an add of zero).
template <class T> struct Lanes8;
template <> struct Lanes8<double> {
  typedef double V __attribute__((vector_size(64)));
  typedef long long M __attribute__((vector_size(64)));
};
template <> struct Lanes8<float> {
  typedef float V __attribute__((vector_size(32)));
  typedef int M __attribute__((vector_size(32)));
};

template <class Op, class T> inline void radix8_low(T* __restrict f, std::size_t len) {
  using V = typename Lanes8<T>::V;
  using M = typename Lanes8<T>::M;
  // partner lane (i ^ 2^r) and the lanes whose bit r is set, for r = 0, 1, 2
  const M partner[3] = {M{1, 0, 3, 2, 5, 4, 7, 6}, M{2, 3, 0, 1, 6, 7, 4, 5},
                        M{4, 5, 6, 7, 0, 1, 2, 3}};
  const M high[3] = {M{0, -1, 0, -1, 0, -1, 0, -1}, M{0, 0, -1, -1, 0, 0, -1, -1},
                     M{0, 0, 0, 0, -1, -1, -1, -1}};
  for (std::size_t base = 0; base < len; base += 8) {
    V x;
    std::memcpy(&x, f + base, sizeof x);
    for (int r = 0; r < 3; ++r) {
      const V p = __builtin_shuffle(x, partner[r]);
      // apply Op to (lo, hi) = (p, x) in high lanes and to (x, p) in low lanes
      V lo_lane = p, hi_lane = x;
      V lo_self = x, hi_other = p;
      Op::apply(lo_lane, hi_lane);   // value of a high lane after the butterfly
      Op::apply(lo_self, hi_other);  // value of a low lane after the butterfly
      x = high[r] ? hi_lane : lo_self;
    }
    std::memcpy(f + base, &x, sizeof x);
  }
}

// All bits of a contiguous block of 2^k elements.
template <class Op, class T> inline void block_all_bits(T* __restrict f, int k) {
  const std::size_t len = std::size_t{1} << k;
  if (k >= 3) {
    radix8_low<Op>(f, len);
    stages_contiguous<Op>(f, len, 3, k - 3);
  } else {
    stages_contiguous<Op>(f, len, 0, k);
  }
}

// Plan of the passes: the low group of bits is done inside contiguous blocks, the high bits in
// groups whose strided rows are gathered into a small buffer.
struct PassPlan {
  int low_bits;                  // bits [0, low_bits) inside contiguous blocks
  std::vector<std::pair<int, int>> high_groups;  // (first bit, count)
  std::size_t strip;             // contiguous elements per row in a high-group buffer
};

template <class T> PassPlan make_plan(int n, const LatticeBlocking& blocking) {
  PassPlan plan;
  int lb = 0;
  while ((std::size_t{2} << lb) * sizeof(T) <= blocking.block_bytes) ++lb;
  plan.low_bits = std::min(n, lb);
  plan.strip = std::max<std::size_t>(1, blocking.strip_bytes / sizeof(T));
  int kmax = 1;  // at least one bit per high group, whatever the buffer
  while ((std::size_t{2} << kmax) * plan.strip * sizeof(T) <= blocking.buffer_bytes) ++kmax;
  const int rest = n - plan.low_bits;
  if (rest > 0) {
    const int groups = (rest + kmax - 1) / kmax;
    int first = plan.low_bits;
    for (int g = 0; g < groups; ++g) {
      const int count = rest / groups + (g < rest % groups ? 1 : 0);
      plan.high_groups.emplace_back(first, count);
      first += count;
    }
  }
  return plan;
}

// Threads only when the work is worth a parallel region.
inline bool worth_threads(std::size_t elements) { return elements >= (std::size_t{1} << 15); }

template <class Op, class T>
void butterfly(T* data, int n, std::size_t samples, const LatticeBlocking& blocking = {}) {
  if (n < 0 || n > kMaxPlayers) throw std::invalid_argument("lattice transform: n out of range");
  if (n == 0 || samples == 0) return;
  const std::size_t len = std::size_t{1} << n;
  const PassPlan plan = make_plan<T>(n, blocking);
  const bool par = worth_threads(len * samples) && !omp_in_parallel();

  // Pass 1: low bits inside contiguous blocks.
  {
    const std::size_t blocks_per_row = len >> plan.low_bits;
    const std::size_t tasks = samples * blocks_per_row;
    const std::size_t block = std::size_t{1} << plan.low_bits;
#pragma omp parallel for schedule(static) if (par)
    for (std::size_t t = 0; t < tasks; ++t) block_all_bits<Op>(data + t * block, plan.low_bits);
  }

  // Further passes: each group of high bits through a gathered buffer of 2^k rows × strip.
  for (const auto& [first, count] : plan.high_groups) {
    const std::size_t lo_span = std::size_t{1} << first;          // elements below the group
    const std::size_t strip = std::min(plan.strip, lo_span);
    const std::size_t strips = lo_span / strip;
    const std::size_t rows = std::size_t{1} << count;
    const std::size_t hi_count = len >> (first + count);
    const std::size_t tasks = samples * hi_count * strips;
#pragma omp parallel if (par)
    {
      std::vector<T> buffer(rows * strip);
      T* __restrict buf = buffer.data();
#pragma omp for schedule(static)
      for (std::size_t t = 0; t < tasks; ++t) {
        const std::size_t s = t / (hi_count * strips);
        const std::size_t r = t % (hi_count * strips);
        const std::size_t hi = r / strips, st = r % strips;
        T* base = data + s * len + (hi << (first + count)) + st * strip;
        constexpr std::size_t kAhead = 16;  // rows prefetched ahead: the strided gather is latency-bound
        for (std::size_t j = 0; j < rows; ++j) {
          if (j + kAhead < rows)
            for (std::size_t c = 0; c < strip; c += 64 / sizeof(T))
              __builtin_prefetch(base + ((j + kAhead) << first) + c);
          std::memcpy(buf + j * strip, base + (j << first), strip * sizeof(T));
        }
        // in the buffer, bit b of the row index is bit log2(strip) + b of a contiguous array
        stages_contiguous<Op>(buf, rows * strip, __builtin_ctzll(strip), count);
        for (std::size_t j = 0; j < rows; ++j)
          std::memcpy(base + (j << first), buf + j * strip, strip * sizeof(T));
      }
    }
  }
}

// In-place x(S) <- ±x(N \ S) for every row (a reversal of the array, optionally negated).
template <class T> void reverse_rows(T* data, int n, std::size_t samples, bool negate) {
  const std::size_t len = std::size_t{1} << n;
  if (len == 1) {
    if (negate)
      for (std::size_t s = 0; s < samples; ++s) data[s] = -data[s];
    return;
  }
  const std::size_t half = len / 2;
  const std::size_t chunk = std::min<std::size_t>(half, 4096);
  const std::size_t chunks = half / chunk;
  const std::size_t tasks = samples * chunks;
  const bool par = worth_threads(len * samples) && !omp_in_parallel();
#pragma omp parallel for schedule(static) if (par)
  for (std::size_t t = 0; t < tasks; ++t) {
    T* __restrict row = data + (t / chunks) * len;
    const std::size_t begin = (t % chunks) * chunk;
    for (std::size_t i = begin; i < begin + chunk; ++i) {
      const T a = row[i], b = row[len - 1 - i];
      row[i] = negate ? -b : b;
      row[len - 1 - i] = negate ? -a : a;
    }
  }
}

// Saves the ∅ entry of every row (and sets it to zero when `clear`): the OR transforms treat ∅
// apart from the other subsets.
template <class T>
std::vector<T> take_empty_entries(T* data, int n, std::size_t samples, bool clear) {
  const std::size_t len = std::size_t{1} << n;
  std::vector<T> empty(samples);
  for (std::size_t s = 0; s < samples; ++s) {
    empty[s] = data[s * len];
    if (clear) data[s * len] = T(0);
  }
  return empty;
}

}  // namespace

template <class T>
void lattice_transform(LatticeOp op, T* data, int n, std::size_t samples,
                       const LatticeBlocking& blocking) {
  switch (op) {
    case LatticeOp::Moebius: return butterfly<MoebiusOp>(data, n, samples, blocking);
    case LatticeOp::MoebiusTranspose: return butterfly<MoebiusTOp>(data, n, samples, blocking);
    case LatticeOp::Zeta: return butterfly<ZetaOp>(data, n, samples, blocking);
    case LatticeOp::ZetaTranspose: return butterfly<ZetaTOp>(data, n, samples, blocking);
  }
}

template <class T> void moebius_transform(T* data, int n, std::size_t samples) {
  butterfly<MoebiusOp>(data, n, samples);
}
template <class T> void moebius_transpose(T* data, int n, std::size_t samples) {
  butterfly<MoebiusTOp>(data, n, samples);
}
template <class T> void zeta_transform(T* data, int n, std::size_t samples) {
  butterfly<ZetaOp>(data, n, samples);
}
template <class T> void zeta_transpose(T* data, int n, std::size_t samples) {
  butterfly<ZetaTOp>(data, n, samples);
}

// I_or = -Möbius(u) with u(T) = w(N\T), except I_or(∅) = w(∅).
template <class T> void or_transform(T* data, int n, std::size_t samples) {
  const std::size_t len = std::size_t{1} << n;
  const std::vector<T> empty = take_empty_entries(data, n, samples, /*clear=*/false);
  reverse_rows(data, n, samples, /*negate=*/true);  // Möbius is linear: -M(Rw) = M(-Rw)
  butterfly<MoebiusOp>(data, n, samples);
  for (std::size_t s = 0; s < samples; ++s) data[s * len] = empty[s];
}

// O = D·(-M·R) + e∅e∅ᵀ with D zeroing the ∅ entry, so Oᵀg = -R·Mᵀ·(D g) + e∅·g(∅).
template <class T> void or_transform_transpose(T* data, int n, std::size_t samples) {
  const std::size_t len = std::size_t{1} << n;
  const std::vector<T> empty = take_empty_entries(data, n, samples, /*clear=*/true);
  butterfly<MoebiusTOp>(data, n, samples);
  reverse_rows(data, n, samples, /*negate=*/true);
  for (std::size_t s = 0; s < samples; ++s) data[s * len] += empty[s];
}

// With J = I except J(∅) = 0 and z = zeta(J): w(S) = I(∅) + z(N) - z(N \ S).
template <class T> void or_synthesis(T* data, int n, std::size_t samples) {
  const std::size_t len = std::size_t{1} << n;
  const std::vector<T> empty = take_empty_entries(data, n, samples, /*clear=*/true);
  butterfly<ZetaOp>(data, n, samples);
  reverse_rows(data, n, samples, /*negate=*/false);  // now data(S) = z(N \ S), data(∅) = z(N)
  for (std::size_t s = 0; s < samples; ++s) {
    T* row = data + s * len;
    const T total = row[0];
    for (std::size_t i = 0; i < len; ++i) row[i] = (empty[s] + total) - row[i];
  }
}

template <class T> void moebius_transform_per_bit(T* data, int n, std::size_t samples) {
  const std::size_t len = std::size_t{1} << n;
  for (std::size_t s = 0; s < samples; ++s) {
    T* f = data + s * len;
    for (int b = 0; b < n; ++b) {
      const std::size_t bit = std::size_t{1} << b;
      for (std::size_t base = 0; base < len; base += 2 * bit)
        for (std::size_t j = 0; j < bit; ++j) f[base + bit + j] -= f[base + j];
    }
  }
}

#define HARSANYI_INSTANTIATE(T)                                                   \
  template void lattice_transform<T>(LatticeOp, T*, int, std::size_t,             \
                                     const LatticeBlocking&);                     \
  template void moebius_transform<T>(T*, int, std::size_t);                       \
  template void moebius_transpose<T>(T*, int, std::size_t);                       \
  template void zeta_transform<T>(T*, int, std::size_t);                          \
  template void zeta_transpose<T>(T*, int, std::size_t);                          \
  template void or_transform<T>(T*, int, std::size_t);                            \
  template void or_transform_transpose<T>(T*, int, std::size_t);                  \
  template void or_synthesis<T>(T*, int, std::size_t);                            \
  template void moebius_transform_per_bit<T>(T*, int, std::size_t);
HARSANYI_INSTANTIATE(float)
HARSANYI_INSTANTIATE(double)
#undef HARSANYI_INSTANTIATE

}  // namespace harsanyi
