// Lattice transforms of set functions distributed over the ranks of a group. See
// distributed_moebius.h.
#include "distributed_moebius.h"

#include <omp.h>

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <string>
#include <vector>

#include "mpi_check.h"

namespace harsanyi::mpi {
namespace {

template <class T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() {
  return MPI_FLOAT;
}
template <>
MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}

const char* op_function_name(LatticeOp op) {
  switch (op) {
    case LatticeOp::Moebius:
      return "distributed_moebius";
    case LatticeOp::MoebiusTranspose:
      return "distributed_moebius_transpose";
    case LatticeOp::Zeta:
      return "distributed_zeta";
    case LatticeOp::ZetaTranspose:
      return "distributed_zeta_transpose";
  }
  return "distributed_lattice_transform";
}

// The butterfly of one bit changes one side of each pair: the element with the bit (hi) for
// Möbius and zeta, the one without it (lo) for their transposes. The changed side becomes
// `changed - other` (Möbius and its transpose) or `changed + other` (zeta and its transpose),
// exactly the operation of the CPU kernels.
bool changes_high_side(LatticeOp op) {
  return op == LatticeOp::Moebius || op == LatticeOp::Zeta;
}
bool subtracts(LatticeOp op) {
  return op == LatticeOp::Moebius || op == LatticeOp::MoebiusTranspose;
}

// Element-wise changed[i] = changed[i] ∓ other[i], threaded when it is worth it.
template <class T>
void apply_side(T* __restrict changed, const T* __restrict other, std::size_t len, bool minus) {
  const bool par = len >= (std::size_t{1} << 16) && !omp_in_parallel();
  if (minus) {
#pragma omp parallel for schedule(static) if (par)
    for (std::size_t i = 0; i < len; ++i) changed[i] -= other[i];
  } else {
#pragma omp parallel for schedule(static) if (par)
    for (std::size_t i = 0; i < len; ++i) changed[i] += other[i];
  }
}

// The exchange buffer of this thread, kept between calls: a fresh buffer of tens of MiB would be
// page-faulted in on every call, which costs about as much as the transfer itself.
template <class T>
std::vector<T>& workspace_vector() {
  static thread_local std::vector<T> buffer;
  return buffer;
}
template <class T>
T* workspace(std::size_t elements) {
  std::vector<T>& buffer = workspace_vector<T>();
  if (buffer.size() < elements) {
    buffer = std::vector<T>();  // free the old one before the larger allocation
    buffer.resize(elements);
  }
  return buffer.data();
}

// Largest power of two <= x (x >= 1).
std::size_t floor_pow2(std::size_t x) {
  std::size_t p = 1;
  while (p <= x / 2) p *= 2;
  return p;
}

// Elements in the exchange budget: at least one, at most INT_MAX (MPI counts are int).
template <class T>
std::size_t budget_elements(const ExchangeOptions& options) {
  return std::clamp<std::size_t>(options.buffer_bytes / sizeof(T), 1, INT_MAX);
}

int log2_exact(int k) {
  return __builtin_ctz(static_cast<unsigned>(k));
}

// Checks the arguments on every rank of the group together: the values that must agree are
// compared with one allreduce (min of v and of -v), so that every rank throws the same error.
template <class T>
void validate(const char* name, int op_code, T* block, int n, std::size_t count,
              const Communicator& group, Exchange how, const ExchangeOptions& options) {
  const int K = group.size();
  const std::string where = std::string(name) + ": ";
  if (K < 1 || (K & (K - 1)) != 0)
    throw std::invalid_argument(where + "the group has " + std::to_string(K) +
                                " ranks; a distributed transform needs a power of two");
  if (K == 1) {
    if (n < 0 || n > kMaxPlayers)
      throw std::invalid_argument(where + "n = " + std::to_string(n) + " is out of range [0, " +
                                  std::to_string(kMaxPlayers) + "]");
    if (count > 0 && block == nullptr) throw std::invalid_argument(where + "null block");
    return;
  }
  enum { kN, kCount, kOp, kHow, kBuffer, kNull, kFields };
  const std::int64_t mine[kFields] = {n,
                                      static_cast<std::int64_t>(count),
                                      op_code,
                                      static_cast<std::int64_t>(how),
                                      static_cast<std::int64_t>(options.buffer_bytes),
                                      count > 0 && block == nullptr ? 1 : 0};
  std::int64_t both[2 * kFields];
  for (int i = 0; i < kFields; ++i) both[i] = mine[i], both[kFields + i] = -mine[i];
  HARSANYI_MPI_CHECK(
      MPI_Allreduce(MPI_IN_PLACE, both, 2 * kFields, MPI_INT64_T, MPI_MIN, group.comm()));
  auto lo = [&](int i) { return both[i]; };
  auto hi = [&](int i) { return -both[kFields + i]; };
  auto differs = [&](int i, const char* what) {
    if (lo(i) != hi(i))
      throw std::invalid_argument(where + what + " differs across the " + std::to_string(K) +
                                  " ranks of the group (from " + std::to_string(lo(i)) + " to " +
                                  std::to_string(hi(i)) + ")");
  };
  differs(kN, "n");
  differs(kCount, "the sample count");
  differs(kOp, "the transform");
  differs(kHow, "the exchange (partner or alltoall)");
  differs(kBuffer, "ExchangeOptions::buffer_bytes");
  if (hi(kNull) != 0) throw std::invalid_argument(where + "null block on some rank");
  if (n < 0 || n > kMaxPlayers)
    throw std::invalid_argument(where + "n = " + std::to_string(n) + " is out of range [0, " +
                                std::to_string(kMaxPlayers) + "]");
  if (n < log2_exact(K))
    throw std::invalid_argument(where + "n = " + std::to_string(n) +
                                " is too small for a group of " + std::to_string(K) +
                                " ranks (needs 2^n >= " + std::to_string(K) + ")");
}

// Frees a committed MPI datatype on scope exit.
struct TypeGuard {
  MPI_Datatype type = MPI_DATATYPE_NULL;
  TypeGuard() = default;
  TypeGuard(const TypeGuard&) = delete;
  TypeGuard& operator=(const TypeGuard&) = delete;
  ~TypeGuard() {
    if (type != MPI_DATATYPE_NULL) MPI_Type_free(&type);
  }
};

// Top bits by the partner exchange: in round b the side that does not change sends its whole
// batch of blocks (in pieces) to the partner rank ^ 2^b, which applies the butterfly. The
// receiver fills one piece while it applies the previous one.
template <class T>
void partner_rounds(LatticeOp op, T* block, std::size_t total, const Communicator& group,
                    const ExchangeOptions& options) {
  const int K = group.size(), rank = group.rank(), k = log2_exact(K);
  const std::size_t piece =
      std::min(total, std::max<std::size_t>(1, budget_elements<T>(options) / 2));
  const std::size_t pieces = (total + piece - 1) / piece;
  const bool minus = subtracts(op);
  T* buffer = nullptr;
  for (int b = 0; b < k; ++b) {
    const int partner = rank ^ (1 << b);
    const bool high = (rank >> b) & 1;
    const bool receiver = high == changes_high_side(op);
    const int tag = 7100 + b;
    if (!receiver) {
      for (std::size_t p = 0; p < pieces; ++p) {
        const std::size_t off = p * piece, len = std::min(piece, total - off);
        HARSANYI_MPI_CHECK(MPI_Send(block + off, static_cast<int>(len), mpi_type<T>(), partner, tag,
                                    group.comm()));
      }
      continue;
    }
    if (!buffer) buffer = workspace<T>(pieces > 1 ? 2 * piece : piece);
    MPI_Request req[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    auto post = [&](std::size_t p) {
      const std::size_t off = p * piece, len = std::min(piece, total - off);
      HARSANYI_MPI_CHECK(MPI_Irecv(buffer + (p % 2) * piece, static_cast<int>(len), mpi_type<T>(),
                                   partner, tag, group.comm(), &req[p % 2]));
    };
    post(0);
    for (std::size_t p = 0; p < pieces; ++p) {
      if (p + 1 < pieces) post(p + 1);
      HARSANYI_MPI_CHECK(MPI_Wait(&req[p % 2], MPI_STATUS_IGNORE));
      const std::size_t off = p * piece, len = std::min(piece, total - off);
      apply_side(block + off, buffer + (p % 2) * piece, len, minus);
    }
  }
}

// The k top-bit butterflies on K rows of `len` elements (row r = top bits r, at rows[r]), bits
// in increasing order per element, in column chunks that stay in cache.
template <class T>
void row_butterflies(LatticeOp op, T* const* rows, int K, std::size_t len) {
  constexpr std::size_t kChunk = 512;
  const std::size_t chunks = (len + kChunk - 1) / kChunk;
  const bool high_side = changes_high_side(op), minus = subtracts(op);
  const bool par =
      len * static_cast<std::size_t>(K) >= (std::size_t{1} << 16) && !omp_in_parallel();
#pragma omp parallel for schedule(static) if (par)
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::size_t begin = c * kChunk, m = std::min(kChunk, len - begin);
    for (int bit = 1; bit < K; bit <<= 1)
      for (int r = 0; r < K; ++r) {
        if (!(r & bit)) continue;
        T* __restrict hi = rows[r] + begin;
        T* __restrict lo = rows[r ^ bit] + begin;
        T* __restrict changed = high_side ? hi : lo;
        const T* __restrict other = high_side ? lo : hi;
        if (minus)
          for (std::size_t i = 0; i < m; ++i) changed[i] -= other[i];
        else
          for (std::size_t i = 0; i < m; ++i) changed[i] += other[i];
      }
  }
}

// Top bits by all-to-all. Each block (one sample, L = 2^n/K elements) is cut into K slices of
// M = L/K; slice j of every rank goes to rank j, which then holds for its slice all K top-bit
// combinations (row r = the slice of rank r), applies their butterflies and sends them back.
// The rank's own slice stays in place (MPI_Alltoallv with no self transfer), the K-1 others
// arrive in a buffer. Samples are grouped (cs at a time) and slices cut into pieces of P
// elements so that the buffer, (K-1)·cs·P elements, stays within the budget.
template <class T>
void alltoall_rounds(LatticeOp op, T* block, int n, std::size_t count, const Communicator& group,
                     const ExchangeOptions& options) {
  const int K = group.size(), me = group.rank();
  const std::size_t L = distributed_block_length(n, K), M = L / static_cast<std::size_t>(K);
  const std::size_t budget = budget_elements<T>(options), others = static_cast<std::size_t>(K - 1);
  std::size_t cs, P;
  if (others * M <= budget) {
    P = M;
    cs = std::max<std::size_t>(1, std::min(count, budget / (others * M)));
  } else {
    cs = 1;
    P = floor_pow2(std::max<std::size_t>(1, budget / others));
  }
  T* buffer = workspace<T>(others * cs * P);
  const MPI_Datatype base = mpi_type<T>();
  // Slot of rank r's row in the buffer (the own row has none).
  auto slot = [me](int r) { return static_cast<std::size_t>(r < me ? r : r - 1); };
  std::vector<int> one(K, 1), slice_at(K), row_count(K), row_at(K);
  for (int r = 0; r < K; ++r) slice_at[r] = r;  // in units of the slice type's extent (M)
  one[me] = 0;
  std::vector<T*> rows(K);
  for (std::size_t s0 = 0; s0 < count; s0 += cs) {
    const std::size_t c = std::min(cs, count - s0);
    // Slice j of the c samples, piece at offset o: c runs of P elements, one per sample (stride
    // L bytes apart as an hvector: L may exceed an int), the next rank's slice M further.
    TypeGuard slice;
    MPI_Datatype runs = MPI_DATATYPE_NULL;
    HARSANYI_MPI_CHECK(MPI_Type_create_hvector(static_cast<int>(c), static_cast<int>(P),
                                               static_cast<MPI_Aint>(L * sizeof(T)), base, &runs));
    const int resized =
        MPI_Type_create_resized(runs, 0, static_cast<MPI_Aint>(M * sizeof(T)), &slice.type);
    MPI_Type_free(&runs);
    HARSANYI_MPI_CHECK(resized);
    HARSANYI_MPI_CHECK(MPI_Type_commit(&slice.type));
    for (int r = 0; r < K; ++r) {
      row_count[r] = r == me ? 0 : static_cast<int>(c * P);
      row_at[r] = static_cast<int>(slot(r) * c * P);
    }
    for (std::size_t o = 0; o < M; o += P) {
      T* first = block + s0 * L + o;
      HARSANYI_MPI_CHECK(MPI_Alltoallv(first, one.data(), slice_at.data(), slice.type, buffer,
                                       row_count.data(), row_at.data(), base, group.comm()));
      for (std::size_t e = 0; e < c; ++e) {  // per sample: row r of its piece
        for (int r = 0; r < K; ++r)
          rows[r] = r == me ? first + e * L + static_cast<std::size_t>(me) * M
                            : buffer + slot(r) * c * P + e * P;
        row_butterflies(op, rows.data(), K, P);
      }
      HARSANYI_MPI_CHECK(MPI_Alltoallv(buffer, row_count.data(), row_at.data(), base, first,
                                       one.data(), slice_at.data(), slice.type, group.comm()));
    }
  }
}

// The transform of a validated distributed batch: low bits on the block, top bits across.
template <class T>
void transform_core(LatticeOp op, T* block, int n, std::size_t count, const Communicator& group,
                    Exchange how, const ExchangeOptions& options) {
  const int K = group.size(), k = log2_exact(K);
  if (count == 0) return;
  const std::size_t L = distributed_block_length(n, K);
  lattice_transform(op, block, n - k, count, LatticeBlocking{});
  if (K == 1) return;
  if (how == Exchange::alltoall && L >= static_cast<std::size_t>(K))
    alltoall_rounds(op, block, n, count, group, options);
  else
    partner_rounds(op, block, count * L, group, options);
}

// Rank r's batch of blocks <- rank K-1-r's, each block reversed (optionally negated): the
// distributed x(S) <- ±x(N \ S). The blocks are swapped in pieces (MPI_Sendrecv_replace), then
// reversed locally.
template <class T>
void mirror_rows(T* block, int n, std::size_t count, const Communicator& group, bool negate,
                 const ExchangeOptions& options) {
  const int K = group.size();
  const std::size_t L = distributed_block_length(n, K), total = count * L;
  if (K > 1) {
    const int partner = K - 1 - group.rank();
    const std::size_t piece = std::min(total, budget_elements<T>(options));
    for (std::size_t off = 0; off < total; off += piece) {
      const int len = static_cast<int>(std::min(piece, total - off));
      HARSANYI_MPI_CHECK(MPI_Sendrecv_replace(block + off, len, mpi_type<T>(), partner, 7200,
                                              partner, 7200, group.comm(), MPI_STATUS_IGNORE));
    }
  }
  const bool par = total >= (std::size_t{1} << 15) && !omp_in_parallel();
  const std::size_t half = (L + 1) / 2;  // L = 1: the middle element is its own mirror
#pragma omp parallel for schedule(static) if (par)
  for (std::size_t t = 0; t < count * half; ++t) {
    T* row = block + (t / half) * L;
    const std::size_t i = t % half, j = L - 1 - i;
    const T a = row[i], b = row[j];
    row[i] = negate ? -b : b;
    if (j != i) row[j] = negate ? -a : a;
  }
}

}  // namespace

void release_exchange_buffers() {
  workspace_vector<float>() = std::vector<float>();
  workspace_vector<double>() = std::vector<double>();
}

const char* exchange_name(Exchange how) {
  return how == Exchange::partner ? "partner" : "alltoall";
}

template <class T>
void distributed_lattice_transform(LatticeOp op, T* block, int n, std::size_t count,
                                   const Communicator& group, Exchange how,
                                   const ExchangeOptions& options) {
  validate(op_function_name(op), static_cast<int>(op), block, n, count, group, how, options);
  transform_core(op, block, n, count, group, how, options);
}

template <class T>
void distributed_moebius(T* block, int n, std::size_t count, const Communicator& group,
                         Exchange how, const ExchangeOptions& options) {
  distributed_lattice_transform(LatticeOp::Moebius, block, n, count, group, how, options);
}
template <class T>
void distributed_zeta(T* block, int n, std::size_t count, const Communicator& group, Exchange how,
                      const ExchangeOptions& options) {
  distributed_lattice_transform(LatticeOp::Zeta, block, n, count, group, how, options);
}
template <class T>
void distributed_moebius_transpose(T* block, int n, std::size_t count, const Communicator& group,
                                   Exchange how, const ExchangeOptions& options) {
  distributed_lattice_transform(LatticeOp::MoebiusTranspose, block, n, count, group, how, options);
}
template <class T>
void distributed_zeta_transpose(T* block, int n, std::size_t count, const Communicator& group,
                                Exchange how, const ExchangeOptions& options) {
  distributed_lattice_transform(LatticeOp::ZetaTranspose, block, n, count, group, how, options);
}

// The OR transforms follow or_transform, or_transform_transpose and or_synthesis step by step
// (lattice_transforms.cpp); the ∅ entries live on rank 0, at the start of each of its blocks.

template <class T>
void distributed_or_transform(T* block, int n, std::size_t count, const Communicator& group,
                              Exchange how, const ExchangeOptions& options) {
  validate("distributed_or_transform", 10, block, n, count, group, how, options);
  if (group.size() == 1) return or_transform(block, n, count);
  const std::size_t L = distributed_block_length(n, group.size());
  std::vector<T> empty;
  if (group.root())
    for (std::size_t s = 0; s < count; ++s) empty.push_back(block[s * L]);
  mirror_rows(block, n, count, group, /*negate=*/true, options);
  transform_core(LatticeOp::Moebius, block, n, count, group, how, options);
  if (group.root())
    for (std::size_t s = 0; s < count; ++s) block[s * L] = empty[s];
}

template <class T>
void distributed_or_transform_transpose(T* block, int n, std::size_t count,
                                        const Communicator& group, Exchange how,
                                        const ExchangeOptions& options) {
  validate("distributed_or_transform_transpose", 11, block, n, count, group, how, options);
  if (group.size() == 1) return or_transform_transpose(block, n, count);
  const std::size_t L = distributed_block_length(n, group.size());
  std::vector<T> empty;
  if (group.root())
    for (std::size_t s = 0; s < count; ++s) empty.push_back(block[s * L]), block[s * L] = T(0);
  transform_core(LatticeOp::MoebiusTranspose, block, n, count, group, how, options);
  mirror_rows(block, n, count, group, /*negate=*/true, options);
  if (group.root())
    for (std::size_t s = 0; s < count; ++s) block[s * L] += empty[s];
}

template <class T>
void distributed_or_synthesis(T* block, int n, std::size_t count, const Communicator& group,
                              Exchange how, const ExchangeOptions& options) {
  validate("distributed_or_synthesis", 12, block, n, count, group, how, options);
  if (group.size() == 1) return or_synthesis(block, n, count);
  const std::size_t L = distributed_block_length(n, group.size());
  std::vector<T> shift(count);  // I(∅) + z(N) per sample, computed on rank 0
  if (group.root())
    for (std::size_t s = 0; s < count; ++s) shift[s] = block[s * L], block[s * L] = T(0);
  transform_core(LatticeOp::Zeta, block, n, count, group, how, options);
  mirror_rows(block, n, count, group, /*negate=*/false, options);  // block(S) = z(N \ S)
  if (group.root())
    for (std::size_t s = 0; s < count; ++s) shift[s] = shift[s] + block[s * L];
  group.broadcast(shift.data(), count * sizeof(T), 0);
  const bool par = count * L >= (std::size_t{1} << 15) && !omp_in_parallel();
#pragma omp parallel for schedule(static) if (par)
  for (std::size_t t = 0; t < count * L; ++t) block[t] = shift[t / L] - block[t];
}

#define HARSANYI_INSTANTIATE(T)                                                                    \
  template void distributed_lattice_transform<T>(                                                  \
      LatticeOp, T*, int, std::size_t, const Communicator&, Exchange, const ExchangeOptions&);     \
  template void distributed_moebius<T>(T*, int, std::size_t, const Communicator&, Exchange,        \
                                       const ExchangeOptions&);                                    \
  template void distributed_zeta<T>(T*, int, std::size_t, const Communicator&, Exchange,           \
                                    const ExchangeOptions&);                                       \
  template void distributed_moebius_transpose<T>(T*, int, std::size_t, const Communicator&,        \
                                                 Exchange, const ExchangeOptions&);                \
  template void distributed_zeta_transpose<T>(T*, int, std::size_t, const Communicator&, Exchange, \
                                              const ExchangeOptions&);                             \
  template void distributed_or_transform<T>(T*, int, std::size_t, const Communicator&, Exchange,   \
                                            const ExchangeOptions&);                               \
  template void distributed_or_transform_transpose<T>(T*, int, std::size_t, const Communicator&,   \
                                                      Exchange, const ExchangeOptions&);           \
  template void distributed_or_synthesis<T>(T*, int, std::size_t, const Communicator&, Exchange,   \
                                            const ExchangeOptions&);
HARSANYI_INSTANTIATE(float)
HARSANYI_INSTANTIATE(double)
#undef HARSANYI_INSTANTIATE

}  // namespace harsanyi::mpi
