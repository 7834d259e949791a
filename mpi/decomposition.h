/// @file decomposition.h
/// @brief How the work of one epoch (samples × 2^n subsets) is spread over the ranks
/// (DESIGN §4), and the exchange that hands every rank the whole vectors of its own samples.
///
/// The P ranks form G = P / K groups of K consecutive ranks (K = `subset ranks`, a power of two
/// dividing P). Rank r owns the samples [first(r), first(r+1)) with first(r) = floor(r·S / P): a
/// contiguous, balanced share, so the study file's rows of a rank are one hyperslab. A group
/// works on the union of its members' samples; inside the group, member j evaluates the subsets
/// [j·2^n/K, (j+1)·2^n/K) (the top log2 K bits of the subset index are j) of every one of those
/// samples. gather_own_samples() then gives each member the full vectors of its own samples
/// (one all-to-all in the group), where the solver and the metrics run locally.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "communicator.h"

namespace harsanyi::mpi {

/// @brief The samples each member of a group handles in one round of a batched loop: member m
/// takes its own samples [begin[m], begin[m] + count[m]).
struct Round {
  std::vector<std::size_t> begin, count;  ///< per member of the group
  std::size_t mine = 0;                   ///< this rank's index in begin / count
  /// Samples of the round over the group (the blocks a member evaluates in it).
  std::size_t total() const;
  /// Position of member m's first sample among the round's samples (member order).
  std::size_t offset(int m) const;
  std::size_t my_begin() const { return begin[mine]; }
  std::size_t my_count() const { return count[mine]; }
};

/// @brief One rank's view of the decomposition.
struct Decomposition {
  int ranks = 1;         ///< P
  int subset_ranks = 1;  ///< K: ranks sharing the subsets of a sample
  int groups = 1;        ///< G = P / K
  int rank = 0;          ///< this rank in the world
  int group = 0;         ///< this rank's group (rank / K)
  int member = 0;        ///< this rank within its group (rank % K): its block of subsets
  std::size_t samples = 0;  ///< S
  int n = 0;                ///< players

  /// First sample owned by world rank r (r = P gives S).
  std::size_t first_sample(int r) const;
  std::size_t own_begin() const { return first_sample(rank); }
  std::size_t own_end() const { return first_sample(rank + 1); }
  std::size_t own_count() const { return own_end() - own_begin(); }
  std::size_t group_begin() const { return first_sample(group * subset_ranks); }
  std::size_t group_end() const { return first_sample((group + 1) * subset_ranks); }
  std::size_t group_count() const { return group_end() - group_begin(); }
  /// Subsets per block: 2^n / K.
  std::uint64_t block_len() const { return (std::uint64_t{1} << n) >> log2_subset_ranks(); }
  /// First subset of this rank's block.
  std::uint64_t block_begin() const { return block_len() * static_cast<std::uint64_t>(member); }
  int log2_subset_ranks() const;

  /// Rounds of a loop taking at most `batch` own samples per rank and round: the same count on
  /// every rank (ranks with fewer samples take part in the later rounds with none).
  std::size_t rounds(std::size_t batch) const;
  /// Round t of that loop, for this rank's group.
  Round round(std::size_t t, std::size_t batch) const;

  /// One line for the console ("4 ranks = 2 groups x 2 subset ranks; ...").
  std::string describe() const;

  /// @brief The decomposition of S samples of n players over the ranks of `world`.
  /// @param subset_ranks K (a power of two dividing P, at most 2^n), or 0 to choose it: the
  ///        smallest K that leaves no group without samples (1 when S ≥ P).
  /// @throws std::invalid_argument naming the rule a bad K breaks.
  static Decomposition make(const Communicator& world, std::size_t samples, int n,
                            int subset_ranks);
};

/// @brief Hands every member of a group the full vectors of its samples of a round.
/// @param blocks this member's block (block_len values) of each of the round's samples, in
///        member order (member 0's samples first): round.total() × block_len values.
/// @param rows   out: round.my_count() × 2^n values, sample after sample.
/// @param group  the communicator of the group (world.split(group, member)).
template <class T>
void gather_own_samples(const Decomposition& d, const Round& round, const Communicator& group,
                        const T* blocks, T* rows);

}  // namespace harsanyi::mpi
