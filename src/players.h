/// @file players.h
/// @brief Players of a sample (grid cells of an image, or table features) and their baseline:
/// which input elements each player owns, and what a masked element is set to (DESIGN §6.1).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace harsanyi {

/// @brief How the 2^n masked inputs x_S of a sample are built.
/// Element e of a sample (flat index into its [C, H, W] or [F] row) is
///   x[e]           if owner[e] == kAlwaysKept, or owner[e] = i >= 0 and player i is in S,
///   baseline[e]    otherwise (owner[e] == kAlwaysBaseline, or player owner[e] is not in S).
struct PlayerLayout {
  static constexpr std::int32_t kAlwaysKept = -1;      ///< background = "keep"
  static constexpr std::int32_t kAlwaysBaseline = -2;  ///< background = "baseline"
  int n = 0;                                 ///< number of players
  /// [n]: grid cells as "cell 4 (r1 c1: rows 9-17, cols 9-17)" (cell id, grid row and column,
  /// then the image rows and columns it covers, both ranges inclusive); features by their name.
  std::vector<std::string> names;
  std::vector<std::int32_t> owner;           ///< [sample_size]
  std::vector<float> baseline;               ///< [sample_size]
  std::string baseline_description;          ///< e.g. "zero", "mean of 1000 training samples"
};

/// Reference (one subset at a time) construction of x_S; `out` has owner.size() elements.
void masked_input(const PlayerLayout& layout, const float* x, std::uint64_t subset, float* out);

}  // namespace harsanyi
