/// @file distributed_moebius.h
/// @brief Lattice transforms (Möbius and friends) of set functions distributed over the ranks of
/// a group (DESIGN §4).
///
/// Layout. A set function over n players has 2^n values (index bit i = player i). Over a group
/// of K ranks (K a power of two, K <= 2^n) rank r holds the contiguous block of indices
/// [r·2^n/K, (r+1)·2^n/K): the top k = log2(K) bits of an index are the rank, the low n - k bits
/// the offset in the block. A batch of `count` samples is held as `count` blocks of
/// block_len = 2^n/K elements back to back ([count, block_len], the layout of the CPU kernels'
/// batches restricted to one rank's block).
///
/// Algorithm. The low n - k bits are local: the CPU kernel (lattice_transforms.h) runs on the
/// block. The top k bits are finished across the group by one of two exchanges:
///  - Exchange::partner: for each top bit b, in increasing order, the rank pair that differs in
///    bit b exchanges data and the receiving rank applies the butterfly of bit b. A butterfly
///    changes only one side of each pair (Möbius: x[S ∪ {b}] -= x[S] leaves x[S] as it is), so
///    the data moves one way per round: from the rank whose bit b is 0 to the one whose bit is 1
///    (Möbius, zeta), or the other way (their transposes). k rounds of block_len·count elements.
///  - Exchange::alltoall: an MPI_Alltoallv transposes the index bits so that each rank holds, for
///    a 1/K slice of every block's offsets, all K top-bit combinations (its own slice stays in
///    place, the K-1 others arrive in a buffer); the k top-bit butterflies run locally and a second
///    all-to-all brings the data back to the block layout. Two all-to-alls, each moving (K-1)/K of
///    the block. It needs block_len >= K (n >= 2k); smaller cases (a few elements per rank) run
///    the partner exchange instead.
///
/// Results. Every element goes through the bit butterflies in increasing bit order, exactly as in
/// the CPU kernels (whose blocking keeps that order per element), with the same element-wise
/// arithmetic (one IEEE add or subtract per butterfly; no FMA, no reassociation). Both exchanges
/// therefore give results bitwise equal to the CPU transform of the whole vector on one rank,
/// in float32 and float64, whatever K and whatever the buffer size.
///
/// Memory (per rank, besides the block): the exchanges work through a buffer of at most
/// ExchangeOptions::buffer_bytes (default 16 MiB) and split larger transfers into pieces (MPI
/// counts are int, which also bounds a piece): partner receives into two pieces of half that size
/// (one is filled while the other is applied), alltoall into K-1 slices of a piece. With a whole
/// batch of blocks below the budget, partner needs one block and alltoall (K-1)/K of a block of
/// extra memory. The buffer is kept between calls (per thread, one per element type) so that
/// repeated transforms do not page-fault it in again; release_exchange_buffers() frees it.
///
/// Every function is collective over `group`: all its ranks call it with the same op, n, count,
/// exchange and options. Arguments are checked on every rank together (one small allreduce), so a
/// bad argument throws std::invalid_argument on all ranks instead of leaving some waiting. A group
/// of one rank and the serial stand-in (Communicator::serial()) call the CPU kernel.
#pragma once

#include <cstddef>
#include <cstdint>

#include "communicator.h"
#include "lattice_transforms.h"

namespace harsanyi::mpi {

/// How the top log2(K) bits are finished across the group. Use `partner` by default: measured
/// faster for small blocks and on par for large ones on up to 4 ranks of one node
/// (bench/README.md, dist_moebius_perf); the results are the same bits either way.
enum class Exchange { partner, alltoall };

/// "partner" or "alltoall".
const char* exchange_name(Exchange how);

/// Tuning of the exchanges (results do not depend on it).
struct ExchangeOptions {
  /// Largest extra buffer per rank, in bytes (at least one element per piece is always used).
  std::size_t buffer_bytes = std::size_t{16} << 20;
};

/// Frees this thread's exchange buffers (they are kept between calls, see Memory above).
void release_exchange_buffers();

/// Number of elements of one sample's block on each of `ranks` ranks: 2^n / ranks.
inline std::uint64_t distributed_block_length(int n, int ranks) {
  return (std::uint64_t{1} << n) / static_cast<std::uint64_t>(ranks);
}

/// @brief In-place butterfly transform `op` (as lattice_transform) of the distributed batch whose
/// blocks this rank holds. Collective over `group`.
template <class T>
void distributed_lattice_transform(LatticeOp op, T* block, int n, std::size_t count,
                                   const Communicator& group, Exchange how,
                                   const ExchangeOptions& options = {});

/// @brief In-place Möbius transform (I_and = Möbius of v, DESIGN §2) of the distributed vector
/// whose block this rank holds (block_len = 2^n / K elements), over the ranks of `group`; batch
/// of `count` samples laid out one block after another (same layout as moebius_transform's
/// batch). Bitwise equal to moebius_transform of the whole vector on one rank.
template <class T>
void distributed_moebius(T* block, int n, std::size_t count, const Communicator& group,
                         Exchange how, const ExchangeOptions& options = {});

/// @brief Inverse of distributed_moebius (zeta transform, sum over subsets); bitwise equal to
/// zeta_transform.
template <class T>
void distributed_zeta(T* block, int n, std::size_t count, const Communicator& group, Exchange how,
                      const ExchangeOptions& options = {});

/// @brief Transpose of the Möbius transform (signed sum over supersets); bitwise equal to
/// moebius_transpose.
template <class T>
void distributed_moebius_transpose(T* block, int n, std::size_t count, const Communicator& group,
                                   Exchange how, const ExchangeOptions& options = {});

/// @brief Transpose of the zeta transform (sum over supersets); bitwise equal to zeta_transpose.
template <class T>
void distributed_zeta_transpose(T* block, int n, std::size_t count, const Communicator& group,
                                Exchange how, const ExchangeOptions& options = {});

/// @brief OR transform of DESIGN §2 (I_or of w), bitwise equal to or_transform. The reversal
/// S -> N \ S swaps whole blocks between ranks r and K-1-r (one more exchange of the block).
template <class T>
void distributed_or_transform(T* block, int n, std::size_t count, const Communicator& group,
                              Exchange how, const ExchangeOptions& options = {});

/// @brief Transpose of distributed_or_transform; bitwise equal to or_transform_transpose.
template <class T>
void distributed_or_transform_transpose(T* block, int n, std::size_t count,
                                        const Communicator& group, Exchange how,
                                        const ExchangeOptions& options = {});

/// @brief Inverse of distributed_or_transform; bitwise equal to or_synthesis.
template <class T>
void distributed_or_synthesis(T* block, int n, std::size_t count, const Communicator& group,
                              Exchange how, const ExchangeOptions& options = {});

}  // namespace harsanyi::mpi
