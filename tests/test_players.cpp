// Player layouts (grid cells, features), baselines and masked inputs on small synthetic data.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "players.h"
#include "study_config.h"
#include "user_error.h"
#include "user_error_matchers.h"

using namespace harsanyi;

namespace {

/// `count` images of shape {channels, height, width}; element e of sample s = 1 + 100*s + e.
Dataset images(std::int64_t count, std::int64_t channels, std::int64_t height, std::int64_t width) {
  Dataset d;
  d.source = "synthetic images";
  d.shape = {channels, height, width};
  for (std::int64_t s = 0; s < count; ++s) {
    for (std::int64_t e = 0; e < channels * height * width; ++e) {
      d.data.push_back(static_cast<float>(1 + 100 * s + e));
    }
    d.labels.push_back(static_cast<std::int32_t>(s % 2));
  }
  d.num_classes = 2;
  return d;
}

/// Grid cell (r, c) of each pixel of the 5×7 image with a 2×3 grid, written out by hand:
/// rows [0, 2) and [2, 5) (floor(5/2) = 2), columns [0, 2), [2, 4), [4, 7) (floor(7/3) = 2,
/// floor(14/3) = 4).
const int kCellOf5x7[5][7] = {
    {0, 0, 1, 1, 2, 2, 2}, {0, 0, 1, 1, 2, 2, 2}, {3, 3, 4, 4, 5, 5, 5},
    {3, 3, 4, 4, 5, 5, 5}, {3, 3, 4, 4, 5, 5, 5},
};

StudyConfig grid_config(std::vector<int> cells, const std::string& background,
                        const std::string& baseline) {
  StudyConfig c;
  c.players.kind = "grid";
  c.players.grid = {2, 3};
  c.players.cells = std::move(cells);
  c.players.background = background;
  c.baseline.kind = baseline;
  c.baseline.value = 0.75;
  return c;
}

}  // namespace

TEST(Players, GridCellsOwnersAndNames) {
  const Dataset d = images(1, 1, 5, 7);
  const PlayerLayout all = make_player_layout(grid_config({}, "keep", "zero"), d);
  ASSERT_EQ(all.n, 6);
  ASSERT_EQ(all.owner.size(), 35u);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 7; ++x) EXPECT_EQ(all.owner[y * 7 + x], kCellOf5x7[y][x]) << y << x;
  EXPECT_EQ(all.names[0], "cell 0 (r0 c0: rows 0-1, cols 0-1)");
  EXPECT_EQ(all.names[4], "cell 4 (r1 c1: rows 2-4, cols 2-3)");
  EXPECT_EQ(all.names[5], "cell 5 (r1 c2: rows 2-4, cols 4-6)");

  const PlayerLayout chosen = make_player_layout(grid_config({5, 1}, "baseline", "zero"), d);
  ASSERT_EQ(chosen.n, 2);
  EXPECT_EQ(chosen.names[0], "cell 5 (r1 c2: rows 2-4, cols 4-6)");
  EXPECT_EQ(chosen.names[1], "cell 1 (r0 c1: rows 0-1, cols 2-3)");
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 7; ++x) {
      const int cell = kCellOf5x7[y][x];
      const std::int32_t expected = cell == 5 ? 0 : cell == 1 ? 1 : PlayerLayout::kAlwaysBaseline;
      EXPECT_EQ(chosen.owner[y * 7 + x], expected) << y << x;
    }
  const PlayerLayout kept = make_player_layout(grid_config({5, 1}, "keep", "zero"), d);
  EXPECT_EQ(kept.owner[0], PlayerLayout::kAlwaysKept);
}

TEST(Players, FashionMnistGridNames) {
  const Dataset d = images(1, 1, 28, 28);
  StudyConfig c;
  const PlayerLayout layout = make_player_layout(c, d);
  ASSERT_EQ(layout.n, 9);
  EXPECT_EQ(layout.names[4], "cell 4 (r1 c1: rows 9-17, cols 9-17)");
  EXPECT_EQ(layout.names[8], "cell 8 (r2 c2: rows 18-27, cols 18-27)");
  EXPECT_EQ(layout.baseline_description, "zero");
}

TEST(Players, GridCoversAllChannels) {
  const Dataset d = images(2, 3, 4, 4);
  StudyConfig c;
  c.players.grid = {2, 2};
  c.players.cells = {3};
  c.players.background = "baseline";
  const PlayerLayout layout = make_player_layout(c, d);
  ASSERT_EQ(layout.n, 1);
  for (int ch = 0; ch < 3; ++ch)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) {
        EXPECT_EQ(layout.owner[(ch * 4 + y) * 4 + x],
                  y >= 2 && x >= 2 ? 0 : PlayerLayout::kAlwaysBaseline);
      }
}

TEST(Players, MaskedInputForEverySubsetBackgroundAndBaseline) {
  const Dataset d = images(3, 1, 5, 7);
  const std::vector<int> cells = {4, 0, 5};  // player 0 = cell 4, 1 = cell 0, 2 = cell 5
  for (const std::string background : {"keep", "baseline"}) {
    for (const std::string baseline : {"zero", "mean", "value"}) {
      const PlayerLayout layout = make_player_layout(grid_config(cells, background, baseline), d);
      ASSERT_EQ(layout.n, 3);
      // The baseline of each pixel, computed here directly.
      std::vector<float> base(35);
      for (int e = 0; e < 35; ++e) {
        // mean of 1 + e, 101 + e, 201 + e
        base[e] = baseline == "zero"    ? 0.0f
                  : baseline == "value" ? 0.75f
                                        : static_cast<float>(101 + e);
      }
      EXPECT_EQ(layout.baseline, base) << background << " " << baseline;
      const float* x = d.sample(1);
      std::vector<float> out(35);
      for (std::uint64_t subset = 0; subset < 8; ++subset) {
        masked_input(layout, x, subset, out.data());
        for (int y = 0; y < 5; ++y)
          for (int col = 0; col < 7; ++col) {
            const int e = y * 7 + col;
            const int cell = kCellOf5x7[y][col];
            int player = -1;
            for (int i = 0; i < 3; ++i)
              if (cells[i] == cell) player = i;
            bool keep;
            if (player >= 0) {
              keep = ((subset >> player) & 1u) != 0;
            } else {
              keep = background == "keep";
            }
            ASSERT_EQ(out[e], keep ? x[e] : base[e])
                << background << " " << baseline << " S=" << subset << " pixel " << y << "," << col;
          }
      }
      // ∅: every player pixel at the baseline; N with background = keep: the original.
      masked_input(layout, x, 0, out.data());
      for (int e = 0; e < 35; ++e) {
        if (layout.owner[e] >= 0) {
          EXPECT_EQ(out[e], base[e]);
        }
      }
      masked_input(layout, x, 7, out.data());
      if (background == "keep") {
        EXPECT_TRUE(std::equal(out.begin(), out.end(), x));
      }
    }
  }
}

TEST(Players, MeanBaselineAccumulatesInDouble) {
  // 8 samples of one element: 1e8 and seven 4s. A float sum stays at 1e8 (each +4 is a tie
  // that rounds back to 1e8), mean 12500000; in double the mean is 12500003.5.
  Dataset d;
  d.source = "t";
  d.shape = {1, 1, 1};
  d.data = {1e8f, 4, 4, 4, 4, 4, 4, 4};
  d.labels = {0, 1, 0, 1, 0, 1, 0, 1};
  d.num_classes = 2;
  StudyConfig c;
  c.players.grid = {1, 1};
  c.baseline.kind = "mean";
  const PlayerLayout layout = make_player_layout(c, d);
  EXPECT_EQ(layout.baseline[0], static_cast<float>((1e8 + 28.0) / 8.0));
  EXPECT_NE(layout.baseline[0], 12500000.0f);
  EXPECT_EQ(layout.baseline_description, "mean of 8 training samples");
  c.baseline.kind = "value";
  c.baseline.value = -0.5;
  EXPECT_EQ(make_player_layout(c, d).baseline_description, "value -0.5");
}

TEST(Players, Features) {
  Dataset d;
  d.source = "table.csv";
  d.shape = {4};
  d.feature_names = {"a", "b", "c", "d"};
  d.data = {1, 2, 3, 4, 5, 6, 7, 8};
  d.labels = {0, 1};
  d.num_classes = 2;
  StudyConfig c;
  c.players.kind = "features";
  PlayerLayout all = make_player_layout(c, d);
  EXPECT_EQ(all.n, 4);
  EXPECT_EQ(all.names, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(all.owner, (std::vector<std::int32_t>{0, 1, 2, 3}));
  c.players.features = {"d", "b"};
  c.players.background = "baseline";
  c.baseline.kind = "mean";
  const PlayerLayout two = make_player_layout(c, d);
  EXPECT_EQ(two.n, 2);
  EXPECT_EQ(two.names, (std::vector<std::string>{"d", "b"}));
  EXPECT_EQ(two.owner, (std::vector<std::int32_t>{PlayerLayout::kAlwaysBaseline, 1,
                                                  PlayerLayout::kAlwaysBaseline, 0}));
  EXPECT_EQ(two.baseline, (std::vector<float>{3, 4, 5, 6}));
  std::vector<float> out(4);
  masked_input(two, d.sample(1), 0b01, out.data());  // player 0 = "d" kept
  EXPECT_EQ(out, (std::vector<float>{3, 4, 5, 8}));

  c.players.features = {"b", "zz"};
  std::string m = error_of([&] { make_player_layout(c, d); });
  EXPECT_HAS(m, "unknown feature 'zz'");
  EXPECT_HAS(m, "'a', 'b', 'c', 'd'");
  c.players.features = {"b", "b"};
  EXPECT_HAS(error_of([&] { make_player_layout(c, d); }), "twice");
  c.players.features = {};
  c.players.kind = "grid";
  EXPECT_HAS(error_of([&] { make_player_layout(c, d); }), "players.kind = \"features\"");
}

TEST(Players, Errors) {
  const Dataset d = images(1, 1, 5, 7);
  std::string m = error_of([&] { make_player_layout(grid_config({6}, "keep", "zero"), d); });
  EXPECT_HAS(m, "cell 6 is out of range");
  EXPECT_HAS(m, "0..5");
  m = error_of([&] { make_player_layout(grid_config({-1}, "keep", "zero"), d); });
  EXPECT_HAS(m, "cell -1 is out of range");
  m = error_of([&] { make_player_layout(grid_config({1, 2, 1}, "keep", "zero"), d); });
  EXPECT_HAS(m, "cell 1 is listed twice");
  StudyConfig c;
  c.players.grid = {6, 3};
  m = error_of([&] { make_player_layout(c, d); });
  EXPECT_HAS(m, "larger than the 5×7 image");
  c.players.grid = {5, 7};  // 35 cells: too many players unless chosen
  m = error_of([&] { make_player_layout(c, d); });
  EXPECT_HAS(m, "35 players");
  EXPECT_HAS(m, "at most 30");
  c.players.cells = {34, 0, 17};
  EXPECT_EQ(make_player_layout(c, d).n, 3);
  c.players.cells.clear();
  for (int i = 0; i < 31; ++i) c.players.cells.push_back(i);
  EXPECT_HAS(error_of([&] { make_player_layout(c, d); }), "at most 30");
  c.players.cells.pop_back();
  EXPECT_EQ(make_player_layout(c, d).n, 30);

  Dataset table;
  table.source = "table.csv";
  table.shape = {31};
  for (int f = 0; f < 31; ++f) table.feature_names.push_back("f" + std::to_string(f));
  table.data.assign(31, 0.0f);
  table.labels = {0};
  table.num_classes = 1;
  StudyConfig tc;
  tc.players.kind = "features";
  EXPECT_HAS(error_of([&] { make_player_layout(tc, table); }), "at most 30");
  tc.players.features = {"f30"};
  EXPECT_EQ(make_player_layout(tc, table).owner[30], 0);
  Dataset empty_table = table;
  empty_table.shape = {0};
  empty_table.data.clear();
  empty_table.feature_names.clear();
  tc.players.features.clear();
  EXPECT_THROW(make_player_layout(tc, empty_table), UserError);
  Dataset no_samples = images(0, 1, 5, 7);
  StudyConfig mc;
  mc.baseline.kind = "mean";
  EXPECT_HAS(error_of([&] { make_player_layout(mc, no_samples); }), "needs training samples");
}
