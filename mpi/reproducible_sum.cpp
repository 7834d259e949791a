// reproducible_sum: element-wise sums of vectors over ranks through 128-bit fixed point, so the
// result does not depend on how the vectors are spread over ranks (see reproducible_sum.h).
#include "reproducible_sum.h"

#include <mpi.h>

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include "mpi_check.h"

namespace harsanyi::mpi {

namespace {

using i128 = __int128;
using u128 = unsigned __int128;

// Elements per block of the local sum: the block's three int64 partial sums (24 KiB) stay in L1
// while every vector adds its block, so the input is streamed once and the sums are not.
constexpr std::size_t kBlock = 1024;
// Vectors summed into the int64 partial sums before they are folded into the 128-bit sums (the
// middle and low parts are below 2^42 each: 2^20 of them sum below 2^62).
constexpr std::size_t kFoldEvery = std::size_t{1} << 20;
// Below this many elements in all, the local passes run on one thread.
constexpr std::size_t kParallelMin = std::size_t{1} << 15;
// Elements per chunk of the pipeline local sum -> MPI_Allreduce -> conversion: 4 MiB of 128-bit
// sums, reused for every chunk (a buffer of the whole length would cost a page fault per 4 KiB
// on every call, more than the summation itself; MPI counts are int, too).
constexpr std::size_t kChunk = std::size_t{1} << 18;

// 2^k for -1022 <= k <= 1023, built from its bits (exact).
double pow2(int k) {
  const std::uint64_t bits = static_cast<std::uint64_t>(k + 1023) << 52;
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

bool pow2_normal(int k) {
  return k >= -1022 && k <= 1023;
}

// trunc(y) for |y| < 2^125 in three int64 parts, trunc(y) = a·2^84 + b·2^42 + c: a =
// trunc(y·2^-84), r = y − a·2^84, b = trunc(r·2^-42), c = trunc(r − b·2^42). The int64 conversions
// truncate; a and b convert back to double exactly (integer parts of 53-bit numbers), the
// subtractions are exact (they remove y's own leading bits), every part has y's sign, |b|, |c| <
// 2^42 and |a| < 2^41. Sums of the parts are plain int64 additions without carries: the loop
// vectorises.
struct Parts {
  std::int64_t a, b, c;
};
inline Parts split_trunc(double y) {
  const auto a = static_cast<std::int64_t>(y * 0x1p-84);
  const double r = y - static_cast<double>(a) * 0x1p84;
  const auto b = static_cast<std::int64_t>(r * 0x1p-42);
  return {a, b, static_cast<std::int64_t>(r - static_cast<double>(b) * 0x1p42)};
}

// The double nearest to v (ties to even), as the C cast, without the generic library call and
// without branches (the signs of the sums are random): the top 64 significant bits of |v| with a
// sticky bit for the rest, converted once (a 64-bit value rounds to 53 bits correctly, and the
// sticky bit sits below its rounding position), scaled by an exact power of two, then the sign.
inline double i128_to_double(i128 v) {
  const auto sign = static_cast<u128>(v >> 127);        // all ones when negative
  const u128 u = (static_cast<u128>(v) ^ sign) - sign;  // |v|
  const auto hi = static_cast<std::uint64_t>(u >> 64);
  const int shift = hi ? 64 - __builtin_clzll(hi) : 0;  // bits of u above the top 64
  const u128 dropped = u & ((u128{1} << shift) - 1);
  const std::uint64_t top = static_cast<std::uint64_t>(u >> shift) | (dropped != 0 ? 1u : 0u);
  const double d = static_cast<double>(top) * pow2(shift);
  std::uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  bits |= static_cast<std::uint64_t>(sign) & 0x8000000000000000ULL;
  double out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// The user-defined MPI operation: inout[k] += in[k] over 128-bit two's-complement integers
// (stored as two uint64, low word first). MPI buffers need not be 16-byte aligned: memcpy.
void add_i128(void* in, void* inout, int* count, MPI_Datatype* /*type*/) {
  const auto* a = static_cast<const unsigned char*>(in);
  auto* b = static_cast<unsigned char*>(inout);
  for (int k = 0; k < *count; ++k) {
    u128 x, y;
    std::memcpy(&x, a + 16 * static_cast<std::size_t>(k), 16);
    std::memcpy(&y, b + 16 * static_cast<std::size_t>(k), 16);
    y += x;  // unsigned: wraps like two's complement, no signed overflow
    std::memcpy(b + 16 * static_cast<std::size_t>(k), &y, 16);
  }
}

// The MPI datatype and operation of one call, freed on every exit.
struct Int128Sum {
  MPI_Datatype type = MPI_DATATYPE_NULL;
  MPI_Op op = MPI_OP_NULL;
  Int128Sum() {
    HARSANYI_MPI_CHECK(MPI_Type_contiguous(2, MPI_UINT64_T, &type));
    HARSANYI_MPI_CHECK(MPI_Type_commit(&type));
    HARSANYI_MPI_CHECK(MPI_Op_create(&add_i128, /*commute=*/1, &op));
  }
  ~Int128Sum() {
    if (op != MPI_OP_NULL) MPI_Op_free(&op);
    if (type != MPI_DATATYPE_NULL) MPI_Type_free(&type);
  }
  Int128Sum(const Int128Sum&) = delete;
  Int128Sum& operator=(const Int128Sum&) = delete;
};

std::string describe(double x) {
  return std::isnan(x) ? "NaN" : (x > 0 ? "+inf" : "-inf");
}

// Largest |x| over the vectors; `bad` when an element is NaN or infinite. Works on the bits:
// |x| is x without its sign bit, non-negative doubles order like their bit patterns, and NaN and
// infinities lie above every finite one (an integer max reduction, which vectorises).
double local_max_abs(const std::vector<const double*>& vectors, std::size_t len, bool& bad) {
  constexpr std::uint64_t kAbs = 0x7fffffffffffffffULL, kInf = 0x7ff0000000000000ULL;
  std::uint64_t top = 0;
  const std::size_t total = vectors.size() * len;
#pragma omp parallel if (total >= kParallelMin) reduction(max : top)
  for (const double* x : vectors) {
#pragma omp for schedule(static) nowait
    for (std::size_t j = 0; j < len; ++j) {
      std::uint64_t u;
      std::memcpy(&u, x + j, sizeof u);
      u &= kAbs;
      top = u > top ? u : top;
    }
  }
  bad = top >= kInf;
  double m = 0.0;
  if (!bad) std::memcpy(&m, &top, sizeof m);
  return m;
}

// The first non-finite element, in vector-then-element order (the error path only).
std::string first_non_finite(const std::vector<const double*>& vectors, std::size_t len, int rank) {
  for (std::size_t i = 0; i < vectors.size(); ++i)
    for (std::size_t j = 0; j < len; ++j)
      if (!std::isfinite(vectors[i][j]))
        return "reproducible_sum: element " + std::to_string(j) + " of vector " +
               std::to_string(i) + " on rank " + std::to_string(rank) + " is " +
               describe(vectors[i][j]);
  return "reproducible_sum: a non-finite element on rank " + std::to_string(rank);
}

// acc[j] = Σ_i trunc(x_i[off + j] · 2^s) for j < len, over the vectors (acc need not be
// initialised: the first fold stores; no vectors give zeros), blocked over j, through the int64
// parts of split_trunc. kMul: the scaling is a multiplication by the normal double 2^s (exact,
// the same as ldexp), else std::ldexp.
template <bool kMul>
void accumulate(const std::vector<const double*>& vectors, std::size_t off, std::size_t len, int s,
                i128* acc) {
  const double scale = kMul ? pow2(s) : 1.0;
  const std::size_t blocks = (len + kBlock - 1) / kBlock;
  const std::size_t total = vectors.size() * len;
#pragma omp parallel for schedule(static) if (total >= kParallelMin)
  for (std::size_t blk = 0; blk < blocks; ++blk) {
    const std::size_t j0 = blk * kBlock, m = std::min(len, j0 + kBlock) - j0;
    alignas(64) std::int64_t A[kBlock], B[kBlock], C[kBlock];
    for (std::size_t v0 = 0; v0 == 0 || v0 < vectors.size(); v0 += kFoldEvery) {
      std::fill(A, A + m, 0), std::fill(B, B + m, 0), std::fill(C, C + m, 0);
      const std::size_t v1 = std::min(vectors.size(), v0 + kFoldEvery);
      for (std::size_t v = v0; v < v1; ++v) {
        const double* x = vectors[v] + off + j0;
        for (std::size_t j = 0; j < m; ++j) {
          const Parts p = split_trunc(kMul ? x[j] * scale : std::ldexp(x[j], s));
          A[j] += p.a, B[j] += p.b, C[j] += p.c;
        }
      }
      for (std::size_t j = 0; j < m; ++j) {
        const i128 sum = static_cast<i128>(A[j]) * (i128{1} << 84) +
                         static_cast<i128>(B[j]) * (i128{1} << 42) + C[j];
        acc[j0 + j] = v0 == 0 ? sum : acc[j0 + j] + sum;
      }
    }
  }
}

}  // namespace

std::vector<double> reproducible_sum(const std::vector<const double*>& vectors, std::size_t len,
                                     const Communicator& comm) {
  // Local checks; their verdict is agreed below so that every rank throws, not only this one.
  std::string local_error;
  if (len > 0)
    for (std::size_t i = 0; i < vectors.size(); ++i)
      if (vectors[i] == nullptr) {
        local_error = "reproducible_sum: vector " + std::to_string(i) + " on rank " +
                      std::to_string(comm.rank()) + " is null";
        break;
      }
  bool non_finite = false;
  const double local_max = local_error.empty() ? local_max_abs(vectors, len, non_finite) : 0.0;
  if (non_finite) local_error = first_non_finite(vectors, len, comm.rank());

  // One MPI_MAX over {bits of the largest |x| (non-negative doubles order like their bits), len,
  // −len, P − rank of a failing rank}: the global maximum, whether len agrees, and the first rank
  // that failed.
  std::int64_t agreed[4];
  std::memcpy(&agreed[0], &local_max, sizeof local_max);
  agreed[1] = static_cast<std::int64_t>(len);
  agreed[2] = -static_cast<std::int64_t>(len);
  agreed[3] = local_error.empty() ? 0 : comm.size() - comm.rank();
  if (comm.distributed())
    HARSANYI_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, agreed, 4, MPI_INT64_T, MPI_MAX, comm.comm()));
  if (agreed[1] != -agreed[2])
    throw std::invalid_argument("reproducible_sum: len differs across ranks (" +
                                std::to_string(-agreed[2]) + " to " + std::to_string(agreed[1]) +
                                ")");
  if (agreed[3] > 0) {
    if (!local_error.empty()) throw std::invalid_argument(local_error);
    throw std::invalid_argument("reproducible_sum: invalid input on rank " +
                                std::to_string(comm.size() - agreed[3]) +
                                " (a non-finite element or a null vector)");
  }
  double max_abs;
  std::memcpy(&max_abs, &agreed[0], sizeof max_abs);
  const std::int64_t count = comm.sum(static_cast<std::int64_t>(vectors.size()));

  std::vector<double> out(len, 0.0);
  if (len == 0 || count == 0 || max_abs == 0.0) return out;  // the same branch on every rank

  // Scale: max_abs < 2^e, count <= 2^c, s = 125 − e − c (see the header for the bound).
  int e = 0;
  std::frexp(max_abs, &e);
  int c = 0;
  while (c < 63 && (std::uint64_t{1} << c) < static_cast<std::uint64_t>(count)) ++c;
  const int s = 125 - e - c;

  // Chunk by chunk: local sums, their sum over the ranks, back to double (correctly rounded,
  // then the exact scaling by 2^-s; std::ldexp when 2^-s is not a normal double). Every rank has
  // the same len, hence the same sequence of collectives.
  const std::size_t chunk = std::min(len, kChunk);
  const std::unique_ptr<i128[]> acc(new i128[chunk]);  // accumulate() stores every element
  std::unique_ptr<Int128Sum> mpi_sum;
  if (comm.distributed()) mpi_sum = std::make_unique<Int128Sum>();
  const bool mul = pow2_normal(-s);
  const double unscale = mul ? pow2(-s) : 1.0;
  for (std::size_t off = 0; off < len; off += chunk) {
    const std::size_t m = std::min(chunk, len - off);
    if (pow2_normal(s))
      accumulate<true>(vectors, off, m, s, acc.get());
    else
      accumulate<false>(vectors, off, m, s, acc.get());
    if (mpi_sum)
      HARSANYI_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, acc.get(), static_cast<int>(m), mpi_sum->type,
                                       mpi_sum->op, comm.comm()));
    double* o = out.data() + off;
#pragma omp parallel for schedule(static) if (m >= kParallelMin)
    for (std::size_t j = 0; j < m; ++j) {
      const double d = i128_to_double(acc[j]);
      o[j] = mul ? d * unscale : std::ldexp(d, -s);
    }
  }
  return out;
}

}  // namespace harsanyi::mpi
