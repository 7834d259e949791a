/// @file reproducible_sum.h
/// @brief A rank-count-independent element-wise sum of vectors over the ranks of a communicator.
///
/// Floating-point addition is not associative, so a plain MPI_Allreduce(MPI_SUM) gives results
/// that depend on how the vectors are spread over the ranks and on the reduction tree MPI picks.
/// reproducible_sum() instead converts every element to a 128-bit fixed-point integer on a scale
/// shared by all ranks, sums the integers (exactly, hence in any order) and converts the sum back
/// once, so the result is bitwise the same for any distribution and any order of the vectors
/// (DESIGN §4: "reductions in a fixed order").
#pragma once

#include <cstddef>
#include <vector>

#include "communicator.h"

namespace harsanyi::mpi {

/// @brief Element-wise sum over all ranks of comm of every vector each rank passes: out[j] = sum
/// over ranks r, over the rank's vectors i, of x_i[j]. The result is bitwise the same however
/// the vectors are spread over ranks and in whatever order they are passed.
///
/// Method. (1) M = the largest |x_i[j]| over all ranks and N = the number of vectors over all
/// ranks (two small collectives). (2) The scale s = 125 − e − c, where M < 2^e (e from frexp)
/// and N ≤ 2^c (c = ceil(log2 N)), so every scaled element is below 2^(125−c) in magnitude and
/// every partial sum below 2^125 (two bits of margin in a signed 128-bit integer). Each element
/// becomes the signed 128-bit integer trunc(x · 2^s): the scaling by a power of two is exact
/// (equal to std::ldexp) and truncation toward zero is deterministic. (3) The integers are summed
/// locally and (4) over the ranks by MPI_Allreduce with a commutative user-defined operation on
/// an MPI_Type_contiguous(2, MPI_UINT64_T) (created and freed by each call); both sums are exact.
/// (5) out[j] = (double)sum · 2^−s: the conversion to double is correctly rounded (round to nearest
/// even), the scaling back exact unless the result is subnormal or overflows.
///
/// Error bound. Each element loses less than 2^−s to the truncation, so before the final
/// rounding |computed − exact| < N · 2^−s = N · 2^(e+c−125) < 4 · M · N² · 2^−125 = M·N²·2^−123
/// (2^e ≤ 2M, 2^c < 2N); the final conversion adds at most half an ulp of out[j] (relative
/// 2^−53). For N = 10^6 vectors the first term is below M · 2^−83, negligible against the final
/// rounding unless |out[j]| is below about M · 2^−30. A sum whose magnitude exceeds the largest
/// double becomes ±inf; a subnormal result is rounded twice (still deterministically).
///
/// Cost: the input is read twice (the maximum, then the conversion); steps (3)–(5) run chunk by
/// chunk of 2^18 elements (one MPI_Allreduce of 4 MiB each), so the extra memory is a 4 MiB
/// buffer besides the output. The local work is threaded with OpenMP over blocks of elements
/// (exact integer sums: the result does not depend on the threads) and vectorised (each element
/// is split into three int64 parts, summed without carries).
///
/// Every rank of comm must call it (it is a collective), with the same len; a rank may pass no
/// vectors or len 0. With the serial stand-in (Communicator::serial(), not distributed) it does
/// the same arithmetic without MPI, so it gives the same bits as any number of ranks.
///
/// @param vectors this rank's vectors, each of len doubles (none may be null when len > 0)
/// @param len elements per vector, the same on every rank
/// @param comm the ranks that take part
/// @return out, len doubles, the same on every rank (all zeros when every element is zero or
///         there are no vectors at all)
/// @throws std::invalid_argument on every rank when an element is NaN or infinite (the message
///         names the rank, vector and element), a vector is null, or len differs across ranks
std::vector<double> reproducible_sum(const std::vector<const double*>& vectors, std::size_t len,
                                     const Communicator& comm);

}  // namespace harsanyi::mpi
