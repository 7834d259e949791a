/// @file study_config.h
/// @brief The study config of `harsanyi run` (DESIGN §6.1): TOML file, embedded defaults,
/// `--set section.key=value` overrides, validation, and the resolved text stored in the output.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataset.h"
#include "players.h"

namespace harsanyi {

/// @brief Every key of a study. The member initialisers are the embedded default study.
struct StudyConfig {
  struct Data {
    std::string format = "idx";  ///< idx | cifar10 | csv
    std::string train = "/usr/share/datasets/fashion-mnist/train";
    std::string test = "/usr/share/datasets/fashion-mnist/t10k";
    std::int64_t train_limit = 1000;  ///< first N training samples (0 = all)
    std::int64_t test_limit = 0;      ///< first N test samples (0 = all)
    double label_noise = 0.0;         ///< fraction of training labels replaced (seeded)
    std::vector<double> normalize;    ///< [] or [mean, std]
    std::string label_column;         ///< csv: name of the label column ("" = last)
  } data;
  struct Model {
    std::string arch = "lenet";  ///< mlp | lenet | vgg11s | torchscript
    std::string checkpoints;     ///< torchscript: glob of per-epoch files
  } model;
  struct Train {
    int epochs = 30;
    std::int64_t batch = 128;
    std::string optimizer = "sgd";
    double lr = 0.01;
    double momentum = 0.9;
    double weight_decay = 0.0;
    std::uint64_t seed = 0;
    /// LibTorch threads of training (0: the node's online CPUs). Training is bitwise
    /// reproducible only for a fixed thread count, so it does not follow the analysis' threads
    /// (runtime.threads), the rank count or the CPU binding of a launcher.
    int threads = 0;
  } train;
  struct Players {
    std::string kind = "grid";        ///< grid | features
    std::vector<int> grid{3, 3};      ///< rows, cols
    std::vector<int> cells;           ///< chosen cells (row-major ids); empty = all
    std::string background = "keep";  ///< keep | baseline
    std::vector<std::string> features;  ///< features: chosen feature names (empty = all)
  } players;
  struct Baseline {
    std::string kind = "zero";  ///< zero | mean | value
    double value = 0.0;
  } baseline;
  struct Samples {
    int train = 20;
    int test = 20;
    std::uint64_t seed = 0;
    std::vector<std::int64_t> train_indices;
    std::vector<std::int64_t> test_indices;
  } samples;
  struct Interactions {
    std::string output = "gt-log-odds-v0";
    std::string label = "ground-truth";  ///< ground-truth | predicted
    std::string mode = "and-or";         ///< and | and-or
    std::string solver = "sgd";          ///< sgd | optimal
    int iters = 20000;
    double lr = 1e-5;
    double momentum = 0.9;
    double qthres = 0.04;
    double tol = 1e-3;                   ///< optimal solver: relative gap
    double tau_rel = 0.05;
    std::vector<std::string> store;      ///< any of "values", "interactions"
  } interactions;
  struct Output {
    std::string path = "study.h5";
  } output;
  /// Smallest n at which runtime.solver_device = "auto" runs the optimal solver on the GPU. On
  /// an H100 the default study (n = 9, 40 samples an epoch) ran it at 1.0 sample/s, against
  /// 3.0 samples/s on 2 CPU cores: each GPU iteration is a chain of small launches over the
  /// batch, and its crossovers run on the host anyway. The sgd solver is fast on the GPU at
  /// every n.
  static constexpr int kGpuOptimalMinPlayers = 14;
  struct Runtime {
    std::string device = "auto";      ///< auto | cpu | cuda
    /// Where the AND-OR solver runs: auto (with the forward passes' device, but the optimal
    /// solver on the CPU below n = kGpuOptimalMinPlayers), cpu, or cuda (also with
    /// runtime.device = "cpu"). The study file does not depend on it.
    std::string solver_device = "auto";
    int threads = 0;                  ///< 0: all cores
    std::int64_t forward_batch = 512; ///< masked inputs per forward pass
  } runtime;

  /// The resolved config as TOML text (every key, stored as the `config` root attribute).
  std::string to_toml() const;
};

/// Loads a study config: the embedded defaults, then the file (if `path` is not empty), then
/// each `section.key=value` of `sets` (TOML value syntax; bare words taken as strings).
/// Unknown sections or keys, wrong types and out-of-range values throw UserError naming the key.
/// A `--set` value is read as the TOML text `key = <value>`; when that is not valid TOML, or the
/// key holds a string and the value is not a TOML string, the raw text (trimmed) is the string
/// (so `--set data.train=/a/b` and `--set output.path=2024` work unquoted). Later sets win.
/// Validation runs once, after the file and all sets. Errors in the file carry file:line:column.
StudyConfig load_study_config(const std::string& path, const std::vector<std::string>& sets);

/// Reads the split ("train" or "test") named by the config (format, paths, limits, normalize),
/// applying data.train_limit / data.test_limit. Damaged files throw UserError naming the file
/// and the problem (wrong magic number, truncated, label out of range, ragged CSV row, ...).
/// csv with an empty data.test: the training file is split, data row i (from 0) going to the
/// test split when i % 5 == 4 and to the train split otherwise; the limits apply after the split.
/// A separate csv test file numbers non-integer label texts as the training file does.
/// cifar10 with an empty data.test and a directory as data.train: test_batch.bin of it.
Dataset load_split(const StudyConfig& config, const std::string& split);

/// Training labels with data.label_noise of them replaced by a different random class, seeded
/// by train.seed (the same result on every machine).
/// Exactly round(fraction * count) labels change. With std::mt19937_64(seed) and
/// bounded_random() (dataset_readers.h): a partial Fisher-Yates shuffle picks the samples (step i
/// swaps entries i and i + bounded_random(count - i) of 0..count-1; the first k entries are
/// picked), then each picked label, in that order, becomes
/// (label + 1 + bounded_random(num_classes - 1)) mod num_classes.
/// Throws UserError for a fraction outside [0, 1], or noise with fewer than 2 classes.
std::vector<std::int32_t> noisy_labels(const Dataset& train, double fraction, std::uint64_t seed);

/// The players and baseline of a study (players.*, baseline.*); `train` gives the mean baseline
/// and the sample shape. Throws UserError for cells out of range, a grid larger than the image,
/// unknown feature names, or n > 30.
/// Grid: cell (r, c) of an R×C grid over a [C, H, W] image covers rows [floor(r*H/R),
/// floor((r+1)*H/R)) and columns likewise, all channels; player i = players.cells[i] (all cells
/// in row-major order when empty); other elements are kAlwaysKept (background = keep) or
/// kAlwaysBaseline (background = baseline). Features: player i = players.features[i] (all
/// features when empty). Baselines (in the units of the loaded data, i.e. after
/// data.normalize): zero, value (baseline.value), or mean (per element over `train`, summed in
/// double).
PlayerLayout make_player_layout(const StudyConfig& config, const Dataset& train);

}  // namespace harsanyi
