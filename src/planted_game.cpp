#include "planted_game.h"

#include <algorithm>
#include <random>
#include <stdexcept>

#include "lattice_transforms.h"

namespace harsanyi {

std::vector<double> PlantedGame::values() const {
  const std::uint64_t len = subset_count(n);
  std::vector<double> v(len, base);
  for (std::uint64_t s = 0; s < len; ++s) {
    for (const auto& t : and_terms)
      if ((t.set & s) == t.set) v[s] += t.coefficient;
    for (const auto& t : or_terms)
      if ((t.set & s) != 0) v[s] += t.coefficient;
  }
  return v;
}

PlantedGame random_planted_game(int n, int terms, int max_order, std::uint64_t seed) {
  if (n < 1 || max_order < 1 || terms < 0)
    throw std::invalid_argument("random_planted_game: needs n >= 1, max_order >= 1, terms >= 0");
  std::mt19937_64 rng(seed);
  PlantedGame g;
  g.n = n;
  g.base = static_cast<double>(static_cast<int>(rng() % 5) - 2);
  auto random_set = [&] {
    const int order = 1 + static_cast<int>(rng() % static_cast<std::uint64_t>(std::min(max_order, n)));
    std::uint64_t set = 0;
    while (__builtin_popcountll(set) < order) set |= std::uint64_t{1} << (rng() % n);
    return set;
  };
  auto random_coef = [&] {
    int c = 0;
    while (c == 0) c = static_cast<int>(rng() % 17) - 8;
    return static_cast<double>(c);
  };
  for (int i = 0; i < terms; ++i) g.and_terms.push_back({random_set(), random_coef()});
  for (int i = 0; i < terms; ++i) g.or_terms.push_back({random_set(), random_coef()});
  return g;
}

}  // namespace harsanyi
