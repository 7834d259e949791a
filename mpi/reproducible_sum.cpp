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
#include <stdexcept>
#include <string>

#include "mpi_check.h"

namespace harsanyi::mpi {

namespace {

using i128 = __int128;
using u128 = unsigned __int128;

// Elements per block of the local sum: 2048 int128 sums (32 KiB) stay in L1/L2 while every vector
// adds its block, so the input is streamed once and the sums are not.
constexpr std::size_t kBlock = 2048;
// Below this many elements in all, the local passes run on one thread.
constexpr std::size_t kParallelMin = std::size_t{1} << 15;
// MPI counts are int: the integer sums go through MPI_Allreduce in pieces of 2^26 (1 GiB).
constexpr std::size_t kPiece = std::size_t{1} << 26;

// 2^k for -1022 <= k <= 1023, built from its bits (exact).
double pow2(int k) {
  const std::uint64_t bits = static_cast<std::uint64_t>(k + 1023) << 52;
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

bool pow2_normal(int k) { return k >= -1022 && k <= 1023; }

// trunc(y) as a signed 128-bit integer, for an integral-or-not y with |y| < 2^125. y = hi·2^62 + lo
// with hi = trunc(y·2^-62) (|hi| < 2^63) and lo = y − hi·2^62 (exact: lo consists of y's own bits
// below 2^62, so |lo| < 2^62 and lo has y's sign); trunc(y) = hi·2^62 + trunc(lo). Two int64
// conversions instead of the library's generic double -> __int128 call.
inline i128 trunc_to_i128(double y) {
  const double hd = std::trunc(y * 0x1p-62);
  const double lo = y - hd * 0x1p62;
  return static_cast<i128>(static_cast<std::int64_t>(hd)) * (i128{1} << 62) +
         static_cast<i128>(static_cast<std::int64_t>(lo));
}

// The double nearest to v (ties to even), as the C cast, without the generic library call: the
// top 64 significant bits of |v| with a sticky bit for the rest, converted once (a 64-bit value
// rounds to 53 bits correctly, and the sticky bit sits below its rounding position), then
// scaled by an exact power of two.
inline double i128_to_double(i128 v) {
  const bool neg = v < 0;
  const u128 u = neg ? -static_cast<u128>(v) : static_cast<u128>(v);
  const auto hi = static_cast<std::uint64_t>(u >> 64);
  const auto lo = static_cast<std::uint64_t>(u);
  double d;
  if (hi == 0) {
    d = static_cast<double>(lo);
  } else {
    const int shift = 64 - __builtin_clzll(hi);  // 1..64: bits of u above the top 64
    const std::uint64_t dropped = shift == 64 ? lo : lo << (64 - shift);
    const std::uint64_t top = static_cast<std::uint64_t>(u >> shift) | (dropped != 0 ? 1u : 0u);
    d = static_cast<double>(top) * pow2(shift);
  }
  return neg ? -d : d;
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

// Largest |x| over the vectors; `bad` when an element is NaN or infinite.
double local_max_abs(const std::vector<const double*>& vectors, std::size_t len, bool& bad) {
  double m = 0.0;
  bool b = false;
  const std::size_t total = vectors.size() * len;
#pragma omp parallel if (total >= kParallelMin) reduction(max : m) reduction(|| : b)
  for (const double* x : vectors) {
#pragma omp for schedule(static) nowait
    for (std::size_t j = 0; j < len; ++j) {
      const double a = std::fabs(x[j]);
      b = b || !(a <= DBL_MAX);  // NaN compares false
      m = a > m ? a : m;
    }
  }
  bad = b;
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

// acc[j] += trunc(x_i[j] · 2^s) over the vectors, blocked over j. kMul: the scaling is a
// multiplication by the normal double 2^s (exact, the same as ldexp), else std::ldexp.
template <bool kMul>
void accumulate(const std::vector<const double*>& vectors, std::size_t len, int s, i128* acc) {
  const double scale = kMul ? pow2(s) : 1.0;
  const std::size_t blocks = (len + kBlock - 1) / kBlock;
  const std::size_t total = vectors.size() * len;
#pragma omp parallel for schedule(static) if (total >= kParallelMin)
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::size_t j0 = b * kBlock, j1 = std::min(len, j0 + kBlock);
    for (const double* x : vectors)
      for (std::size_t j = j0; j < j1; ++j)
        acc[j] += trunc_to_i128(kMul ? x[j] * scale : std::ldexp(x[j], s));
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

  std::vector<i128> acc(len, 0);
  if (pow2_normal(s))
    accumulate<true>(vectors, len, s, acc.data());
  else
    accumulate<false>(vectors, len, s, acc.data());

  if (comm.distributed()) {
    const Int128Sum sum;
    for (std::size_t off = 0; off < len; off += kPiece) {
      const int n = static_cast<int>(std::min(kPiece, len - off));
      HARSANYI_MPI_CHECK(
          MPI_Allreduce(MPI_IN_PLACE, acc.data() + off, n, sum.type, sum.op, comm.comm()));
    }
  }

  // Back to double: correctly rounded, then the exact scaling by 2^-s (std::ldexp when 2^-s is
  // not a normal double).
  const bool mul = pow2_normal(-s);
  const double unscale = mul ? pow2(-s) : 1.0;
#pragma omp parallel for schedule(static) if (len >= kParallelMin)
  for (std::size_t j = 0; j < len; ++j) {
    const double d = i128_to_double(acc[j]);
    out[j] = mul ? d * unscale : std::ldexp(d, -s);
  }
  return out;
}

}  // namespace harsanyi::mpi
