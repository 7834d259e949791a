/// @file planted_game.h
/// @brief Set functions with exactly known interactions: sums of AND unanimity games
/// (c·1[T ⊆ S]) and OR games (d·1[T ∩ S ≠ ∅]), for tests, examples and benchmarks.
#pragma once

#include <cstdint>
#include <vector>

namespace harsanyi {

/// One planted term: coefficient on the players of `set` (bit i = player i).
struct PlantedTerm {
  std::uint64_t set;
  double coefficient;
};

/// @brief A planted game v(S) = base + Σ_and c·1[T⊆S] + Σ_or d·1[T∩S≠∅].
struct PlantedGame {
  int n = 0;
  double base = 0.0;
  std::vector<PlantedTerm> and_terms, or_terms;
  /// Evaluates v on all 2^n subsets (exact in double when the coefficients are integers).
  std::vector<double> values() const;
};

/// @brief A random planted game: `terms` AND terms and `terms` OR terms on random non-empty sets
/// of orders 1..max_order, integer coefficients in [-8, 8] \ {0}, deterministic in `seed`.
PlantedGame random_planted_game(int n, int terms, int max_order, std::uint64_t seed);

}  // namespace harsanyi
