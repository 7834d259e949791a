// Players and masking: the player layout of a study (grid cells or table features, baseline)
// and the reference construction of one masked input x_S.
#include "players.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "study_config.h"
#include "user_error.h"

namespace harsanyi {

void masked_input(const PlayerLayout& layout, const float* x, std::uint64_t subset, float* out) {
  const std::size_t size = layout.owner.size();
  for (std::size_t e = 0; e < size; ++e) {
    const std::int32_t owner = layout.owner[e];
    const bool keep =
        owner == PlayerLayout::kAlwaysKept || (owner >= 0 && ((subset >> owner) & 1u) != 0);
    out[e] = keep ? x[e] : layout.baseline[e];
  }
}

namespace {

/// "cell 4 (r1 c1: rows 9-17, cols 9-17)": the ranges are inclusive.
std::string grid_cell_name(int cell, int r, int c, std::int64_t row_begin, std::int64_t row_end,
                           std::int64_t col_begin, std::int64_t col_end) {
  return fmt::format("cell {} (r{} c{}: rows {}-{}, cols {}-{})", cell, r, c, row_begin,
                     row_end - 1, col_begin, col_end - 1);
}

}  // namespace

PlayerLayout make_player_layout(const StudyConfig& config, const Dataset& train) {
  const StudyConfig::Players& pc = config.players;
  const std::int64_t size = train.sample_size();
  if (train.shape.empty() || size <= 0) {
    throw UserError(fmt::format("{}: the dataset has no input elements", train.source));
  }
  if (pc.background != "keep" && pc.background != "baseline") {
    throw UserError(fmt::format(
        "players.background = \"{}\" is not valid: expected keep or baseline", pc.background));
  }
  PlayerLayout layout;
  const std::int32_t background =
      pc.background == "keep" ? PlayerLayout::kAlwaysKept : PlayerLayout::kAlwaysBaseline;
  layout.owner.assign(static_cast<std::size_t>(size), background);

  if (pc.kind == "grid") {
    if (!train.is_image()) {
      throw UserError(fmt::format(
          "players.kind = \"grid\" needs images, but {} holds tables of {} features; use "
          "players.kind = \"features\"",
          train.source, size));
    }
    if (pc.grid.size() != 2 || pc.grid[0] < 1 || pc.grid[1] < 1) {
      throw UserError("players.grid must be two integers [rows, cols], each at least 1");
    }
    const std::int64_t channels = train.shape[0], height = train.shape[1], width = train.shape[2];
    const int rows = pc.grid[0], cols = pc.grid[1];
    if (rows > height || cols > width) {
      throw UserError(fmt::format(
          "players.grid = [{}, {}] is larger than the {}×{} image: use at most {} rows and {} "
          "columns",
          rows, cols, height, width, height, width));
    }
    const int cell_count = rows * cols;
    std::vector<int> cells = pc.cells;
    if (cells.empty()) {
      if (cell_count > 30) {
        throw UserError(fmt::format(
            "players.grid = [{}, {}] gives {} players (all cells); at most 30 are supported: "
            "choose cells with players.cells or a smaller grid",
            rows, cols, cell_count));
      }
      cells.resize(static_cast<std::size_t>(cell_count));
      for (int i = 0; i < cell_count; ++i) cells[static_cast<std::size_t>(i)] = i;
    }
    std::vector<bool> used(static_cast<std::size_t>(cell_count), false);
    for (int cell : cells) {
      if (cell < 0 || cell >= cell_count) {
        throw UserError(fmt::format(
            "players.cells: cell {} is out of range: a {}×{} grid has cells 0..{} (row-major, "
            "id = r*{} + c)",
            cell, rows, cols, cell_count - 1, cols));
      }
      if (used[static_cast<std::size_t>(cell)]) {
        throw UserError(fmt::format("players.cells: cell {} is listed twice", cell));
      }
      used[static_cast<std::size_t>(cell)] = true;
    }
    if (cells.size() > 30) {
      throw UserError(
          fmt::format("players.cells chooses {} cells; at most 30 players are "
                      "supported",
                      cells.size()));
    }
    layout.n = static_cast<int>(cells.size());
    for (int i = 0; i < layout.n; ++i) {
      const int cell = cells[static_cast<std::size_t>(i)];
      const int r = cell / cols, c = cell % cols;
      // Cell (r, c) covers rows [floor(r*H/R), floor((r+1)*H/R)) and columns likewise.
      const std::int64_t r0 = r * height / rows, r1 = (r + 1) * height / rows;
      const std::int64_t c0 = c * width / cols, c1 = (c + 1) * width / cols;
      for (std::int64_t ch = 0; ch < channels; ++ch) {
        for (std::int64_t y = r0; y < r1; ++y) {
          for (std::int64_t x = c0; x < c1; ++x) {
            layout.owner[static_cast<std::size_t>((ch * height + y) * width + x)] = i;
          }
        }
      }
      layout.names.push_back(grid_cell_name(cell, r, c, r0, r1, c0, c1));
    }
  } else if (pc.kind == "features") {
    if (train.shape.size() != 1) {
      throw UserError(fmt::format(
          "players.kind = \"features\" needs a table (data.format = \"csv\"), but {} holds "
          "images; use players.kind = \"grid\"",
          train.source));
    }
    std::vector<std::int64_t> chosen;
    if (pc.features.empty()) {
      for (std::int64_t f = 0; f < size; ++f) chosen.push_back(f);
    } else {
      for (const std::string& name : pc.features) {
        const auto it = std::find(train.feature_names.begin(), train.feature_names.end(), name);
        if (it == train.feature_names.end()) {
          std::string known;
          for (std::size_t k = 0; k < train.feature_names.size(); ++k) {
            known += (k > 0 ? ", '" : "'") + train.feature_names[k] + "'";
          }
          throw UserError(fmt::format("players.features: unknown feature '{}'; {} has {}", name,
                                      train.source, known));
        }
        const std::int64_t f = it - train.feature_names.begin();
        if (std::find(chosen.begin(), chosen.end(), f) != chosen.end()) {
          throw UserError(fmt::format("players.features: '{}' is listed twice", name));
        }
        chosen.push_back(f);
      }
    }
    if (chosen.size() > 30) {
      throw UserError(
          fmt::format("{} players (features); at most 30 are supported: choose features with "
                      "players.features",
                      chosen.size()));
    }
    layout.n = static_cast<int>(chosen.size());
    for (int i = 0; i < layout.n; ++i) {
      const std::int64_t f = chosen[static_cast<std::size_t>(i)];
      layout.owner[static_cast<std::size_t>(f)] = i;
      layout.names.push_back(static_cast<std::size_t>(f) < train.feature_names.size()
                                 ? train.feature_names[static_cast<std::size_t>(f)]
                                 : fmt::format("feature {}", f));
    }
  } else {
    throw UserError(
        fmt::format("players.kind = \"{}\" is not valid: expected grid or features", pc.kind));
  }
  if (layout.n == 0) {
    throw UserError(fmt::format("no players: {} gives 0 players", train.source));
  }

  const StudyConfig::Baseline& bc = config.baseline;
  if (bc.kind == "zero") {
    layout.baseline.assign(static_cast<std::size_t>(size), 0.0f);
    layout.baseline_description = "zero";
  } else if (bc.kind == "value") {
    if (!std::isfinite(bc.value)) {
      throw UserError(fmt::format("baseline.value = {} must be finite", bc.value));
    }
    layout.baseline.assign(static_cast<std::size_t>(size), static_cast<float>(bc.value));
    layout.baseline_description = fmt::format("value {}", bc.value);
  } else if (bc.kind == "mean") {
    if (train.count() == 0) {
      throw UserError(
          fmt::format("baseline.kind = \"mean\" needs training samples; {} has "
                      "none",
                      train.source));
    }
    // Per-element mean over the training set, accumulated in double in sample order.
    std::vector<double> sum(static_cast<std::size_t>(size), 0.0);
    for (std::int64_t s = 0; s < train.count(); ++s) {
      const float* x = train.sample(s);
      for (std::int64_t e = 0; e < size; ++e) sum[static_cast<std::size_t>(e)] += x[e];
    }
    layout.baseline.resize(static_cast<std::size_t>(size));
    for (std::int64_t e = 0; e < size; ++e) {
      layout.baseline[static_cast<std::size_t>(e)] =
          static_cast<float>(sum[static_cast<std::size_t>(e)] / static_cast<double>(train.count()));
    }
    layout.baseline_description = fmt::format("mean of {} training samples", train.count());
  } else {
    throw UserError(
        fmt::format("baseline.kind = \"{}\" is not valid: expected zero, mean or value", bc.kind));
  }
  return layout;
}

}  // namespace harsanyi
