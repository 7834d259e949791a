// Network (src/network.h): masking against the reference masked_input, v from logits, built-in
// models, training, checkpoints (bitwise resume), TorchScript fixtures against PyTorch's values
// (tests/data/torchscript/make_fixture.py), errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cuda_backend.h"
#include "dataset.h"
#include "network.h"
#include "players.h"
#include "user_error.h"

namespace {

using harsanyi::Dataset;
using harsanyi::Network;
using harsanyi::OutputSpec;
using harsanyi::PlayerLayout;
using harsanyi::UserError;

const std::string kFixtureDir = std::string(HARSANYI_TEST_DATA) + "/torchscript";

// A layout over an R×C grid of an image {C, H, W} (DESIGN §6.1): cell (r, c) covers rows
// [floor(r*H/R), floor((r+1)*H/R)) and columns likewise; player i = cells[i]; other pixels are
// kept or set to the baseline (`background_baseline`). Baseline: `baseline` everywhere.
PlayerLayout grid_layout(const std::vector<std::int64_t>& shape, int rows, int cols,
                         const std::vector<int>& cells, bool background_baseline,
                         const std::vector<float>& baseline) {
  const std::int64_t channels = shape[0], h = shape[1], w = shape[2];
  PlayerLayout layout;
  layout.n = static_cast<int>(cells.size());
  layout.owner.assign(channels * h * w, background_baseline ? PlayerLayout::kAlwaysBaseline
                                                            : PlayerLayout::kAlwaysKept);
  layout.baseline = baseline;
  for (int player = 0; player < layout.n; ++player) {
    const int r = cells[player] / cols, c = cells[player] % cols;
    layout.names.push_back("cell " + std::to_string(cells[player]));
    for (std::int64_t ch = 0; ch < channels; ++ch)
      for (std::int64_t y = r * h / rows; y < (r + 1) * h / rows; ++y)
        for (std::int64_t x = c * w / cols; x < (c + 1) * w / cols; ++x)
          layout.owner[(ch * h + y) * w + x] = player;
  }
  return layout;
}

std::vector<float> uniform(std::size_t len, std::uint64_t seed, float lo = 0.f, float hi = 1.f) {
  std::mt19937_64 gen(seed);
  std::vector<float> v(len);
  for (auto& x : v) x = lo + (hi - lo) * static_cast<float>(gen() >> 40) / float(1 << 24);
  return v;
}

// Two-class images {1, 8, 8}: class 0 brighter on the left half, class 1 on the right; noise.
Dataset separable_images(int count, std::uint64_t seed) {
  Dataset d;
  d.source = "synthetic";
  d.shape = {1, 8, 8};
  d.num_classes = 2;
  std::mt19937_64 gen(seed);
  const std::vector<float> noise = uniform(static_cast<std::size_t>(count) * 64, seed + 1);
  for (int i = 0; i < count; ++i) {
    const int label = static_cast<int>(gen() & 1);
    d.labels.push_back(label);
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) {
        const bool bright = (x < 4) == (label == 0);
        d.data.push_back(0.5f * noise[i * 64 + y * 8 + x] + (bright ? 0.5f : 0.f));
      }
  }
  return d;
}

std::vector<std::int64_t> all_indices(const Dataset& d) {
  std::vector<std::int64_t> idx(d.count());
  for (std::int64_t i = 0; i < d.count(); ++i) idx[i] = i;
  return idx;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "harsanyi_test_network_" + name;
}

// Expects a UserError whose message names `needle`.
template <class F>
void expect_user_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no UserError (expected one naming " << needle << ")";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message '" << e.what() << "' does not name " << needle;
  }
}

// ---------------------------------------------------------------------------------------------
// Output functions

TEST(OutputSpec, ParsesTheFourNames) {
  auto s = OutputSpec::parse("gt-log-odds-v0");
  EXPECT_TRUE(s.log_odds);
  EXPECT_TRUE(s.subtract_empty);
  s = OutputSpec::parse("gt-log-odds");
  EXPECT_TRUE(s.log_odds);
  EXPECT_FALSE(s.subtract_empty);
  s = OutputSpec::parse("gt-logit");
  EXPECT_FALSE(s.log_odds);
  EXPECT_FALSE(s.subtract_empty);
  s = OutputSpec::parse("gt-logit-v0");
  EXPECT_FALSE(s.log_odds);
  EXPECT_TRUE(s.subtract_empty);
  expect_user_error([] { OutputSpec::parse("gt-log-odd"); }, "gt-log-odd");
  expect_user_error([] { OutputSpec::parse("-v0"); }, "-v0");
  expect_user_error([] { OutputSpec::parse(""); }, "output");
}

TEST(OutputValue, HandComputedNumbers) {
  // logits (1, 2, 3), y = 2: p = 1 / (e^-2 + e^-1 + 1) = 0.66524095577482...
  const float a[] = {1.f, 2.f, 3.f};
  const double p = 1.0 / (std::exp(-2.0) + std::exp(-1.0) + 1.0);
  EXPECT_NEAR(p, 0.6652409557748218, 1e-15);
  EXPECT_NEAR(harsanyi::output_value(a, 3, 2, true), 0.6867380640809826, 1e-14);
  EXPECT_EQ(harsanyi::output_value(a, 3, 2, true), std::log(p / (1 - p + 1e-7) + 1e-7));
  EXPECT_EQ(harsanyi::output_value(a, 3, 0, false), 1.0);
  EXPECT_EQ(harsanyi::output_value(a, 3, 2, false), 3.0);
  // equal logits: p = 1/4
  const float b[] = {0.5f, 0.5f, 0.5f, 0.5f};
  EXPECT_NEAR(harsanyi::output_value(b, 4, 3, true), -1.098612122001439, 1e-14);
  // stability: exp(1000) would overflow without subtracting the maximum
  const float c[] = {1000.f, 0.f};
  EXPECT_NEAR(harsanyi::output_value(c, 2, 0, true), 16.11809565095833, 1e-12);   // p = 1
  EXPECT_NEAR(harsanyi::output_value(c, 2, 1, true), -16.11809565095832, 1e-12);  // p = 0
  // float32 logits are taken exactly, then promoted: 0.1f is not 0.1
  const float d[] = {0.1f, 0.f};
  EXPECT_EQ(harsanyi::output_value(d, 2, 0, false), static_cast<double>(0.1f));
}

// ---------------------------------------------------------------------------------------------
// Masking

void expect_masking_matches_reference(const PlayerLayout& layout, const std::vector<float>& x) {
  const std::size_t e = layout.owner.size();
  const std::uint64_t total = std::uint64_t{1} << layout.n;
  // all subsets in one batch, and in uneven chunks starting at non-zero subsets
  std::vector<float> batch(total * e), reference(e);
  harsanyi::build_masked_batch(layout, x.data(), 0, static_cast<std::int64_t>(total), batch.data());
  for (std::uint64_t s = 0; s < total; ++s) {
    harsanyi::masked_input(layout, x.data(), s, reference.data());
    ASSERT_TRUE(std::equal(reference.begin(), reference.end(), batch.begin() + s * e))
        << "subset " << s;
  }
  for (std::uint64_t first = 0; first < total; first += 7) {
    const auto count = static_cast<std::int64_t>(std::min<std::uint64_t>(7, total - first));
    std::vector<float> chunk(count * e);
    harsanyi::build_masked_batch(layout, x.data(), first, count, chunk.data());
    ASSERT_TRUE(std::equal(chunk.begin(), chunk.end(), batch.begin() + first * e))
        << "chunk at " << first;
  }
}

TEST(Masking, BatchEqualsReferenceForEverySubset) {
  const std::vector<std::int64_t> shape = {2, 7, 5};  // cells of unequal sizes
  const std::vector<float> x = uniform(70, 1);
  const std::vector<float> baseline = uniform(70, 2, -1.f, 0.f);
  // background kept, cells chosen out of order
  expect_masking_matches_reference(grid_layout(shape, 3, 2, {4, 0, 5, 2, 1}, false, baseline), x);
  // background set to the baseline
  expect_masking_matches_reference(grid_layout(shape, 3, 2, {1, 3, 5}, true, baseline), x);
  // all six cells (no background)
  expect_masking_matches_reference(grid_layout(shape, 3, 2, {0, 1, 2, 3, 4, 5}, true, baseline), x);
  // no players at all: one subset, x_∅
  expect_masking_matches_reference(grid_layout(shape, 3, 2, {}, false, baseline), x);
}

TEST(Masking, EmptySetIsBaselineAndFullSetIsOriginal) {
  const std::vector<std::int64_t> shape = {3, 6, 6};
  const std::vector<float> x = uniform(108, 3);
  const std::vector<float> baseline(108, 0.25f);
  const PlayerLayout all = grid_layout(shape, 2, 3, {0, 1, 2, 3, 4, 5}, false, baseline);
  std::vector<float> out(108);
  harsanyi::build_masked_batch(all, x.data(), 0, 1, out.data());
  EXPECT_EQ(out, baseline);
  harsanyi::build_masked_batch(all, x.data(), 63, 1, out.data());
  EXPECT_EQ(out, x);
  // a tabular layout: features are players, one always kept, one always baseline
  PlayerLayout table;
  table.n = 2;
  table.owner = {1, PlayerLayout::kAlwaysKept, 0, PlayerLayout::kAlwaysBaseline};
  table.baseline = {-1.f, -2.f, -3.f, -4.f};
  const std::vector<float> row = {10.f, 20.f, 30.f, 40.f};
  std::vector<float> rows(16);
  harsanyi::build_masked_batch(table, row.data(), 0, 4, rows.data());
  const std::vector<float> expected = {-1.f, 20.f, -3.f, -4.f,   // ∅
                                       -1.f, 20.f, 30.f, -4.f,   // {0}
                                       10.f, 20.f, -3.f, -4.f,   // {1}
                                       10.f, 20.f, 30.f, -4.f};  // {0, 1}
  EXPECT_EQ(rows, expected);
}

TEST(Masking, BadLayoutsAreUserErrors) {
  PlayerLayout bad;
  bad.n = 2;
  bad.owner = {0, 1, 2};
  bad.baseline = {0.f, 0.f, 0.f};
  const float x[3] = {1.f, 2.f, 3.f};
  float out[12];
  expect_user_error([&] { harsanyi::build_masked_batch(bad, x, 0, 4, out); }, "owner 2");
  bad.owner = {0, 1, 1};
  bad.baseline = {0.f};
  expect_user_error([&] { harsanyi::build_masked_batch(bad, x, 0, 4, out); }, "baseline");
}

// ---------------------------------------------------------------------------------------------
// TorchScript fixture: v(x_S) against PyTorch's own computation

nlohmann::json load_expected() {
  std::ifstream in(kFixtureDir + "/expected.json");
  if (!in) throw std::runtime_error("cannot open " + kFixtureDir + "/expected.json");
  return nlohmann::json::parse(in);
}

struct FixtureLayout {
  std::string name;
  PlayerLayout layout;
};

// The fixture's two layouts, built here by hand (see make_fixture.py).
std::vector<FixtureLayout> fixture_layouts() {
  return {{"grid2x2", grid_layout({1, 8, 8}, 2, 2, {0, 1, 2, 3}, false, std::vector<float>(64))},
          {"cells013_bg",
           grid_layout({1, 8, 8}, 2, 2, {0, 1, 3}, true, std::vector<float>(64, 0.25f))}};
}

TEST(TorchScriptFixture, MaskedInputsEqualPyTorchs) {
  const nlohmann::json expected = load_expected();
  const std::vector<float> image = expected["image"].get<std::vector<float>>();
  ASSERT_EQ(image.size(), 64u);
  for (const auto& [name, layout] : fixture_layouts()) {
    const nlohmann::json* entry = nullptr;
    for (const auto& l : expected["layouts"])
      if (l["name"] == name) entry = &l;
    ASSERT_NE(entry, nullptr) << name;
    EXPECT_EQ((*entry)["owner"].get<std::vector<std::int32_t>>(), layout.owner) << name;
    const std::uint64_t total = std::uint64_t{1} << layout.n;
    std::vector<float> batch(total * 64);
    harsanyi::build_masked_batch(layout, image.data(), 0, static_cast<std::int64_t>(total),
                                 batch.data());
    for (std::uint64_t s = 0; s < total; ++s) {
      const auto ref = (*entry)["masked_inputs"][s].get<std::vector<float>>();
      EXPECT_TRUE(std::equal(ref.begin(), ref.end(), batch.begin() + s * 64))
          << name << " subset " << s;
    }
  }
}

TEST(TorchScriptFixture, MaskedValuesEqualPyTorchs) {
  const nlohmann::json expected = load_expected();
  Dataset data;
  data.source = "fixture image";
  data.shape = {1, 8, 8};
  data.data = expected["image"].get<std::vector<float>>();
  data.labels = {expected["label"].get<std::int32_t>()};
  data.num_classes = expected["classes"].get<std::int32_t>();
  int compared = 0;
  for (const std::string file : {"epoch_0.pt", "epoch_3.pt"}) {
    const auto net = Network::load_torchscript(kFixtureDir + "/" + file);
    EXPECT_FALSE(net->trainable());
    EXPECT_NE(net->description().find(file), std::string::npos) << net->description();
    for (const auto& [name, layout] : fixture_layouts()) {
      const nlohmann::json* entry = nullptr;
      for (const auto& l : expected["layouts"])
        if (l["name"] == name) entry = &l;
      ASSERT_NE(entry, nullptr);
      const std::uint64_t total = std::uint64_t{1} << layout.n;
      for (const std::string output : {"gt-log-odds", "gt-log-odds-v0"}) {
        const auto ref = (*entry)["values"][file][output].get<std::vector<double>>();
        ASSERT_EQ(ref.size(), total);
        for (const std::int64_t batch : {std::int64_t{5}, std::int64_t{64}}) {
          std::vector<double> v(total, -999.0);
          net->masked_values(data, 0, data.labels[0], layout, OutputSpec::parse(output), batch,
                             v.data());
          for (std::uint64_t s = 0; s < total; ++s) {
            EXPECT_LE(std::fabs(v[s] - ref[s]), 1e-5 * std::max(1.0, std::fabs(ref[s])))
                << file << " " << name << " " << output << " batch " << batch << " subset " << s
                << ": " << v[s] << " vs PyTorch " << ref[s];
            ++compared;
          }
          if (output == "gt-log-odds-v0") {
            EXPECT_EQ(v[0], 0.0);
          }
        }
      }
    }
    EXPECT_EQ(net->num_classes(), 3);
  }
  EXPECT_EQ(compared, 2 * 2 * 2 * (16 + 8));
}

TEST(TorchScriptFixture, PlainForwardEqualsPyTorchLogits) {
  const nlohmann::json expected = load_expected();
  const auto& entry = expected["layouts"][0];
  std::vector<float> inputs;
  for (const auto& x : entry["masked_inputs"]) {
    const auto row = x.get<std::vector<float>>();
    inputs.insert(inputs.end(), row.begin(), row.end());
  }
  const auto net = Network::load_torchscript(kFixtureDir + "/epoch_3.pt");
  std::vector<float> logits;
  net->forward(inputs.data(), {1, 8, 8}, 16, 16, logits);
  ASSERT_EQ(logits.size(), 16u * 3u);
  const auto ref = entry["values"]["epoch_3.pt"]["logits"];
  for (int s = 0; s < 16; ++s)
    for (int j = 0; j < 3; ++j)
      EXPECT_NEAR(logits[s * 3 + j], ref[s][j].get<float>(), 1e-5f) << s << "," << j;
}

TEST(TorchScriptFixture, EvaluationOnly) {
  const auto net = Network::load_torchscript(kFixtureDir + "/epoch_0.pt");
  Dataset d = separable_images(8, 1);
  expect_user_error(
      [&] { net->train_epoch(d, all_indices(d), d.labels, harsanyi::TrainOptions{}, 1); },
      "epoch_0.pt");
  expect_user_error([&] { net->save_checkpoint(temp_path("ts.ckpt")); }, "evaluation only");
  // evaluate and predict work (three classes; labels 0/1 fit)
  const auto stats = net->evaluate(d, all_indices(d), d.labels, 3);
  EXPECT_TRUE(std::isfinite(stats.loss));
  EXPECT_EQ(net->predict(d, all_indices(d), 5).size(), 8u);
}

TEST(TorchScriptFixture, MissingOrCorruptFilesAreUserErrors) {
  expect_user_error([] { Network::load_torchscript(kFixtureDir + "/no_such_epoch.pt"); },
                    "no_such_epoch.pt");
  const std::string garbage = temp_path("garbage.pt");
  write_file(garbage, "this is not a zip file at all");
  expect_user_error([&] { Network::load_torchscript(garbage); }, garbage);
  const std::string whole = read_file(kFixtureDir + "/epoch_3.pt");
  const std::string truncated = temp_path("truncated.pt");
  write_file(truncated, whole.substr(0, whole.size() / 2));
  expect_user_error([&] { Network::load_torchscript(truncated); }, truncated);
  std::remove(garbage.c_str());
  std::remove(truncated.c_str());
}

// ---------------------------------------------------------------------------------------------
// Built-in models

TEST(Build, DeterministicForASeed) {
  for (const std::string arch : {"mlp", "lenet", "vgg11s"}) {
    const auto a = Network::build(arch, {1, 28, 28}, 10, 42);
    const auto b = Network::build(arch, {1, 28, 28}, 10, 42);
    const auto c = Network::build(arch, {1, 28, 28}, 10, 43);
    const std::vector<float> pa = a->parameter_values();
    EXPECT_GT(pa.size(), 1000u) << arch;
    EXPECT_EQ(pa, b->parameter_values()) << arch;
    EXPECT_NE(pa, c->parameter_values()) << arch;
    EXPECT_TRUE(a->trainable());
    EXPECT_EQ(a->description().rfind(arch, 0), 0u) << a->description();
  }
}

TEST(Build, ShapesOfEveryArchitecture) {
  struct Case {
    std::string arch;
    std::vector<std::int64_t> shape;
    std::size_t parameters;
  };
  // lenet on 1×28×28: 156 + 2416 + (400·120+120) + (120·84+84) + (84·10+10) = 61706
  const std::vector<Case> cases = {
      {"mlp", {1, 28, 28}, 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10},
      {"mlp", {13}, 13 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10},
      {"lenet", {1, 28, 28}, 61706},
      {"lenet", {3, 32, 32}, 456 + 2416 + 576 * 120 + 120 + 10164 + 850},
      // vgg11s: convs 80 + 1168 + 4640 + 9248 + 18496 + 3·36928, pooled down to 64×1×1 (28:
      // 28-14-7-3-1, the fifth pool skipped; 32: five pools), then 64·128+128 and 128·10+10
      {"vgg11s", {1, 28, 28}, 154026},
      {"vgg11s", {3, 32, 32}, 154026 - 80 + 224}};
  for (const auto& c : cases) {
    const auto net = Network::build(c.arch, c.shape, 10, 0);
    EXPECT_EQ(net->parameter_values().size(), c.parameters) << c.arch;
    std::int64_t size = 1;
    for (auto d : c.shape) size *= d;
    const std::vector<float> x = uniform(3 * size, 5);
    std::vector<float> logits;
    net->forward(x.data(), c.shape, 3, 2, logits);
    EXPECT_EQ(logits.size(), 30u) << c.arch;
    for (float l : logits) EXPECT_TRUE(std::isfinite(l));
  }
}

TEST(Build, BadRequestsAreUserErrors) {
  expect_user_error([] { Network::build("lenet", {13}, 3, 0); }, "mlp");
  expect_user_error([] { Network::build("vgg11s", {13}, 3, 0); }, "tabular");
  expect_user_error([] { Network::build("resnet", {1, 28, 28}, 10, 0); }, "resnet");
  expect_user_error([] { Network::build("lenet", {1, 6, 6}, 10, 0); }, "too small");
  expect_user_error([] { Network::build("mlp", {1, 28, 28}, 1, 0); }, "classes");
  const auto net = Network::build("mlp", {4}, 2, 0);
  expect_user_error([&] { net->to_device("tpu"); }, "tpu");
  net->to_device("cpu");
}

TEST(Build, CudaRefusedClearlyWithoutCuda) {
  const auto net = Network::build("mlp", {4}, 2, 0);
  try {
    net->to_device("cuda");
    // CUDA present: the model must still compute
    std::vector<float> logits;
    const float x[4] = {1, 2, 3, 4};
    net->forward(x, {4}, 1, 1, logits);
    EXPECT_EQ(logits.size(), 2u);
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA is not available"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Training and checkpoints

TEST(Shuffle, PermutationDeterministicPerSeedAndEpoch) {
  std::vector<std::int64_t> idx(100);
  for (int i = 0; i < 100; ++i) idx[i] = 1000 + i;
  const auto a = harsanyi::shuffle_for_epoch(idx, 5, 1);
  EXPECT_EQ(a, harsanyi::shuffle_for_epoch(idx, 5, 1));
  EXPECT_NE(a, harsanyi::shuffle_for_epoch(idx, 5, 2));
  EXPECT_NE(a, harsanyi::shuffle_for_epoch(idx, 6, 1));
  EXPECT_NE(a, idx);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, idx);
  EXPECT_TRUE(harsanyi::shuffle_for_epoch({}, 1, 1).empty());
  EXPECT_EQ(harsanyi::shuffle_for_epoch({7}, 1, 1), std::vector<std::int64_t>{7});
  // every position is reached: over many epochs, element 0 lands in each of 4 slots
  std::vector<int> seen(4, 0);
  for (int e = 0; e < 400; ++e) {
    const auto p = harsanyi::shuffle_for_epoch({0, 1, 2, 3}, 9, e);
    ++seen[std::find(p.begin(), p.end(), 0) - p.begin()];
  }
  for (int c : seen) EXPECT_GT(c, 60);
}

TEST(Training, DecreasesTheLossOnASeparableProblem) {
  const Dataset train = separable_images(256, 11);
  const Dataset test = separable_images(128, 12);
  for (const std::string optimizer : {"sgd", "adam"}) {
    const auto net = Network::build("mlp", train.shape, 2, 3);
    harsanyi::TrainOptions opt;
    opt.optimizer = optimizer;
    opt.lr = optimizer == "sgd" ? 0.02 : 0.002;
    opt.batch = 32;
    opt.weight_decay = 1e-4;
    const auto before = net->evaluate(test, all_indices(test), test.labels, 50);
    harsanyi::EvalStats seen;
    for (int epoch = 1; epoch <= 4; ++epoch)
      seen = net->train_epoch(train, all_indices(train), train.labels, opt, epoch);
    const auto after = net->evaluate(test, all_indices(test), test.labels, 50);
    EXPECT_LT(after.loss, 0.5 * before.loss) << optimizer;
    EXPECT_GE(after.accuracy, 0.95) << optimizer;
    EXPECT_GE(seen.accuracy, 0.9) << optimizer;
    const auto pred = net->predict(test, all_indices(test), 50);
    int correct = 0;
    for (std::size_t i = 0; i < pred.size(); ++i) correct += pred[i] == test.labels[i];
    EXPECT_DOUBLE_EQ(correct / 128.0, after.accuracy) << optimizer;
  }
}

struct ResumeCase {
  std::string arch, optimizer;
  std::vector<std::int64_t> shape;
};

// A small dataset of a given shape with labels from a fixed rule.
Dataset synthetic(const std::vector<std::int64_t>& shape, int count, std::uint64_t seed) {
  Dataset d;
  d.source = "synthetic";
  d.shape = shape;
  d.num_classes = 3;
  d.data = uniform(static_cast<std::size_t>(count) * d.sample_size(), seed);
  for (int i = 0; i < count; ++i) d.labels.push_back(static_cast<std::int32_t>(i % 3));
  return d;
}

TEST(Checkpoint, ResumedTrainingIsBitwiseEqual) {
  const std::vector<ResumeCase> cases = {
      {"mlp", "sgd", {1, 8, 8}}, {"lenet", "adam", {1, 12, 12}}, {"lenet", "sgd", {1, 12, 12}}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.arch + " " + c.optimizer);
    const Dataset d = synthetic(c.shape, 40, 21);
    harsanyi::TrainOptions opt;
    opt.optimizer = c.optimizer;
    opt.lr = 0.05;
    opt.momentum = 0.9;
    opt.weight_decay = 1e-3;
    opt.batch = 8;
    opt.seed = 4;
    const std::string path = temp_path("resume_" + c.arch + "_" + c.optimizer + ".ckpt");
    const auto whole = Network::build(c.arch, c.shape, 3, 9);
    whole->train_epoch(d, all_indices(d), d.labels, opt, 1);
    const std::vector<float> after1 = whole->parameter_values();
    whole->save_checkpoint(path);
    whole->train_epoch(d, all_indices(d), d.labels, opt, 2);
    const auto stats2 = whole->train_epoch(d, all_indices(d), d.labels, opt, 3);

    const auto resumed = Network::build(c.arch, c.shape, 3, 1234);  // other initial weights
    resumed->load_checkpoint(path);
    EXPECT_EQ(resumed->parameter_values(), after1);
    resumed->train_epoch(d, all_indices(d), d.labels, opt, 2);
    const auto stats2r = resumed->train_epoch(d, all_indices(d), d.labels, opt, 3);
    const std::vector<float> w = whole->parameter_values(), r = resumed->parameter_values();
    EXPECT_NE(w, after1);  // training moved the weights, so the equality below says something
    ASSERT_EQ(w.size(), r.size());
    EXPECT_TRUE(w == r) << "resumed parameters differ";
    EXPECT_EQ(stats2.loss, stats2r.loss);

    // the comparison is sensitive: another shuffle of epochs 2 and 3 gives other weights
    const auto other = Network::build(c.arch, c.shape, 3, 1234);
    other->load_checkpoint(path);
    auto opt2 = opt;
    opt2.seed = 5;
    other->train_epoch(d, all_indices(d), d.labels, opt2, 2);
    other->train_epoch(d, all_indices(d), d.labels, opt2, 3);
    EXPECT_NE(other->parameter_values(), w);
    EXPECT_FALSE(std::ifstream(path + ".part").good());
    std::remove(path.c_str());
  }
}

TEST(Checkpoint, MissingCorruptOrForeignFilesAreUserErrors) {
  const auto net = Network::build("mlp", {1, 8, 8}, 3, 0);
  const std::string missing = temp_path("missing.ckpt");
  std::remove(missing.c_str());
  expect_user_error([&] { net->load_checkpoint(missing); }, missing);

  const std::string garbage = temp_path("garbage.ckpt");
  write_file(garbage, std::string(1000, 'x'));
  expect_user_error([&] { net->load_checkpoint(garbage); }, garbage);

  const std::string good = temp_path("good.ckpt");
  net->save_checkpoint(good);
  const std::string truncated = temp_path("truncated.ckpt");
  const std::string bytes = read_file(good);
  write_file(truncated, bytes.substr(0, bytes.size() * 2 / 3));
  expect_user_error([&] { net->load_checkpoint(truncated); }, truncated);

  // a TorchScript file is a valid archive but not a checkpoint
  const std::string script = kFixtureDir + "/epoch_0.pt";
  expect_user_error([&] { net->load_checkpoint(script); }, script);

  // another architecture or input shape
  const auto lenet = Network::build("lenet", {1, 28, 28}, 3, 0);
  expect_user_error([&] { lenet->load_checkpoint(good); }, good);
  const auto wide = Network::build("mlp", {1, 9, 9}, 3, 0);
  expect_user_error([&] { wide->load_checkpoint(good); }, "{1,8,8}");

  // the good one loads, with no optimizer state yet
  const auto fresh = Network::build("mlp", {1, 8, 8}, 3, 7);
  fresh->load_checkpoint(good);
  EXPECT_EQ(fresh->parameter_values(), net->parameter_values());
  for (const auto& p : {garbage, good, truncated}) std::remove(p.c_str());
}

// ---------------------------------------------------------------------------------------------
// masked_values of a built-in model

TEST(MaskedValues, AgreesWithPlainForwardOfTheMaskedInputs) {
  const std::vector<std::int64_t> shape = {1, 28, 28};
  Dataset d;
  d.source = "synthetic";
  d.shape = shape;
  d.num_classes = 10;
  d.data = uniform(2 * 784, 31);
  d.labels = {3, 7};
  const auto net = Network::build("lenet", shape, 10, 5);
  const PlayerLayout layout =
      grid_layout(shape, 3, 3, {0, 1, 2, 3, 4, 5, 6, 7}, false, std::vector<float>(784, 0.f));
  const std::uint64_t total = 256;
  std::vector<float> inputs(total * 784);
  harsanyi::build_masked_batch(layout, d.sample(1), 0, total, inputs.data());
  std::vector<float> logits;
  net->forward(inputs.data(), shape, total, 64, logits);
  for (const bool log_odds : {true, false}) {
    std::vector<double> v(total), v0(total);
    net->masked_values(d, 1, 7, layout, OutputSpec{log_odds, false}, 64, v.data());
    net->masked_values(d, 1, 7, layout, OutputSpec{log_odds, true}, 13, v0.data());
    for (std::uint64_t s = 0; s < total; ++s) {
      const double plain = harsanyi::output_value(&logits[s * 10], 10, 7, log_odds);
      EXPECT_EQ(v[s], plain) << s;  // same chunks, same inputs: bitwise
      EXPECT_NEAR(v0[s], v[s] - v[0], 1e-5 * std::max(1.0, std::fabs(v[s]))) << s;
    }
    EXPECT_EQ(v0[0], 0.0);
  }
  // the full set with background kept is the original image
  std::vector<float> full;
  net->forward(d.sample(1), shape, 1, 1, full);
  std::vector<double> v(total);
  net->masked_values(d, 1, 7, layout, OutputSpec{true, false}, 256, v.data());
  EXPECT_NEAR(v[total - 1], harsanyi::output_value(full.data(), 10, 7, true), 1e-5);
}

// Several samples' subset ranges, packed into shared chunks: each request's v is bitwise its
// own masked_values_range's. The requests mix two splits, a full range, blocks, an empty range,
// a single subset and a sample asked twice with two labels (97 rows). With these batches the
// chunks end inside requests, hold several requests, and the last is partial; batches 12 and 32
// leave a last chunk of one row (padded in the forward, network.cpp), the single-subset request
// is a one-row chunk of its own when alone, and batch 200 is one chunk for everything.
TEST(MaskedValues, PackedRequestsEqualEachRequestAlone) {
  const std::vector<std::int64_t> shape = {1, 12, 12};
  Dataset train, test;
  train.source = "synthetic train";
  test.source = "synthetic test";
  for (Dataset* d : {&train, &test}) {
    d->shape = shape;
    d->num_classes = 4;
  }
  train.data = uniform(4 * 144, 41);
  train.labels = {0, 1, 2, 3};
  test.data = uniform(2 * 144, 42);
  test.labels = {1, 2};
  const PlayerLayout layout =
      grid_layout(shape, 3, 3, {0, 2, 4, 5, 7}, false, std::vector<float>(144, 0.25f));
  struct Ask {
    const Dataset* data;
    std::int64_t index;
    int label;
    std::uint64_t first, count;
  };
  const std::vector<Ask> asks = {{&train, 0, 0, 0, 32}, {&test, 1, 2, 8, 16},
                                 {&train, 2, 2, 3, 0},  {&test, 0, 1, 0, 32},
                                 {&train, 3, 3, 5, 1},  {&train, 0, 3, 16, 16}};
  for (const std::string arch : {"mlp", "lenet", "vgg11s"}) {
    const auto net = Network::build(arch, shape, 4, 11);
    for (const std::int64_t batch : {1, 7, 12, 32, 200}) {
      // sentinels after each range: nothing is written beyond `count`
      std::vector<std::vector<double>> packed, alone;
      std::vector<harsanyi::MaskedRequest> requests;
      for (const Ask& a : asks) {
        packed.emplace_back(a.count + 2, -999.0);
        alone.emplace_back(a.count + 2, -999.0);
      }
      for (std::size_t r = 0; r < asks.size(); ++r) {
        const Ask& a = asks[r];
        requests.push_back({a.data, a.index, a.label, a.first, a.count, packed[r].data()});
        net->masked_values_range(*a.data, a.index, a.label, layout, OutputSpec{true, false}, batch,
                                 a.first, a.count, alone[r].data());
      }
      net->masked_values_packed(requests, layout, OutputSpec{true, false}, batch);
      for (std::size_t r = 0; r < asks.size(); ++r) {
        for (std::uint64_t j = 0; j < asks[r].count; ++j)
          EXPECT_EQ(packed[r][j], alone[r][j])
              << arch << " batch " << batch << " request " << r << " subset " << asks[r].first + j;
        EXPECT_EQ(packed[r][asks[r].count], -999.0) << arch << " batch " << batch << " " << r;
        EXPECT_EQ(packed[r][asks[r].count + 1], -999.0) << arch << " batch " << batch << " " << r;
      }
      // the same sample asked twice: its common subsets [16, 32) differ only by the label
      EXPECT_NE(packed[0][16], packed[5][0]) << arch << " batch " << batch;
    }
    // a sample's v does not depend on the batch: a one-row forward gives what a chunk of many
    // gives (the padding of one-row chunks)
    std::vector<double> one(32), many(32);
    net->masked_values_range(train, 1, 1, layout, OutputSpec{true, false}, 1, 0, 32, one.data());
    net->masked_values_range(train, 1, 1, layout, OutputSpec{true, false}, 32, 0, 32, many.data());
    EXPECT_EQ(one, many) << arch;
  }
}

TEST(MaskedValues, PackedRequestsAreCheckedBeforeAnyForward) {
  Dataset d = separable_images(2, 3);
  Dataset other = separable_images(2, 4);
  other.shape = {1, 4, 16};  // as many elements, another shape
  const auto net = Network::build("mlp", d.shape, 2, 0);
  const PlayerLayout layout = grid_layout(d.shape, 2, 2, {0, 1}, false, std::vector<float>(64));
  std::vector<double> a(4, -999.0), b(4, -999.0);
  const harsanyi::MaskedRequest first{&d, 0, 0, 0, 4, a.data()};
  const auto packed = [&](const harsanyi::MaskedRequest& second) {
    net->masked_values_packed({first, second}, layout, OutputSpec{}, 3);
  };
  expect_user_error([&] { packed({&d, 7, 0, 0, 4, b.data()}); }, "sample 7");
  expect_user_error([&] { packed({&other, 0, 0, 0, 4, b.data()}); }, "cannot share a forward");
  EXPECT_THROW(packed({&d, 1, 0, 3, 2, b.data()}), std::invalid_argument);  // 3 + 2 > 2^2
  EXPECT_EQ(a[0], -999.0);  // all refused before any forward
  // v in device memory is only for a network that computes v on the device
  EXPECT_FALSE(net->values_on_device());
  EXPECT_THROW(packed({&d, 1, 0, 0, 4, b.data(), true}), std::invalid_argument);
  EXPECT_EQ(a[0], -999.0);  // all refused before any forward
  expect_user_error([&] { packed({&d, 1, 2, 0, 4, b.data()}); }, "label 2 of sample 1");
  net->masked_values_packed({}, layout, OutputSpec{}, 3);  // nothing to do
}

// On the GPU (skipped without a GPU and a CUDA LibTorch): v computed on the device, written to
// device memory or to host memory, is bitwise the same; it is output_value of the same logits
// to within CUDA's exp/log (a few ulps); and it agrees with the CPU's v to float32 forward
// rounding. The requests mix host and device destinations in shared chunks.
TEST(MaskedValuesGpu, DeviceValuesEqualHostDestinationsAndTheFormula) {
  std::string why;
  if (harsanyi::cuda::device_count(&why) == 0) GTEST_SKIP() << "no GPU: " << why;
  const std::vector<std::int64_t> shape = {1, 12, 12};
  const Dataset d = synthetic(shape, 3, 43);  // sample i has label i, below the models' 4 classes
  const PlayerLayout layout =
      grid_layout(shape, 3, 3, {0, 1, 2, 4, 6, 8}, false, std::vector<float>(144, 0.25f));
  const std::uint64_t total = 64;
  for (const std::string arch : {"mlp", "lenet"}) {
    const auto cpu = Network::build(arch, shape, 4, 17);
    const auto gpu = Network::build(arch, shape, 4, 17);
    try {
      gpu->to_device("cuda");
    } catch (const UserError& e) {
      GTEST_SKIP() << e.what();  // a CPU-only LibTorch
    }
    ASSERT_TRUE(gpu->values_on_device());
    for (const bool log_odds : {true, false}) {
      const OutputSpec out{log_odds, false};
      std::vector<double> host(3 * total, -999.0), from_device(3 * total, -999.0),
          on_cpu(3 * total);
      harsanyi::cuda::DeviceBuffer dev(3 * total * sizeof(double));
      std::vector<harsanyi::MaskedRequest> host_req, mixed_req;
      for (std::int64_t i = 0; i < 3; ++i) {
        host_req.push_back({&d, i, static_cast<int>(i), 0, total, host.data() + i * total});
        // sample 1 to host memory, samples 0 and 2 to device memory
        double* mixed = i == 1 ? from_device.data() + i * total : dev.as<double>() + i * total;
        mixed_req.push_back({&d, i, static_cast<int>(i), 0, total, mixed, i != 1});
        cpu->masked_values_range(d, i, static_cast<int>(i), layout, out, 40, 0, total,
                                 on_cpu.data() + i * total);
      }
      gpu->masked_values_packed(host_req, layout, out, 40);
      gpu->masked_values_packed(mixed_req, layout, out, 40);
      for (std::int64_t i : {0, 2})
        harsanyi::cuda::copy_bytes(from_device.data() + i * total, dev.as<double>() + i * total,
                                   total * sizeof(double));
      EXPECT_EQ(host, from_device) << arch << " log_odds " << log_odds;
      for (std::int64_t i = 0; i < 3; ++i) {
        // one chunk of the sample's 64 rows, and the plain forward of the same 64 inputs in
        // one batch: the same logits, so v differs from the host formula by exp/log only
        std::vector<float> inputs(total * 144), logits;
        std::vector<double> single(total);
        harsanyi::build_masked_batch(layout, d.sample(i), 0, total, inputs.data());
        gpu->forward(inputs.data(), shape, total, total, logits);
        gpu->masked_values_range(d, i, static_cast<int>(i), layout, out, total, 0, total,
                                 single.data());
        for (std::uint64_t s = 0; s < total; ++s) {
          const double formula =
              harsanyi::output_value(&logits[s * 4], 4, static_cast<int>(i), log_odds);
          EXPECT_NEAR(single[s], formula, 1e-9 * std::max(1.0, std::fabs(formula)))
              << arch << " sample " << i << " subset " << s;
          const double v = host[i * total + s];
          EXPECT_NEAR(v, on_cpu[i * total + s], 1e-4 * std::max(1.0, std::fabs(v)))
              << arch << " sample " << i << " subset " << s;
        }
      }
    }
  }
}

TEST(MaskedValues, BadArgumentsAreUserErrors) {
  Dataset d = separable_images(2, 3);
  const auto net = Network::build("mlp", d.shape, 2, 0);
  const PlayerLayout layout = grid_layout(d.shape, 2, 2, {0, 1}, false, std::vector<float>(64));
  std::vector<double> v(4);
  expect_user_error([&] { net->masked_values(d, 5, 0, layout, OutputSpec{}, 4, v.data()); },
                    "sample 5");
  expect_user_error([&] { net->masked_values(d, 0, 2, layout, OutputSpec{}, 4, v.data()); },
                    "label 2");
  PlayerLayout wrong = grid_layout({1, 4, 4}, 2, 2, {0, 1}, false, std::vector<float>(16));
  expect_user_error([&] { net->masked_values(d, 0, 0, wrong, OutputSpec{}, 4, v.data()); }, "16");
}

}  // namespace
