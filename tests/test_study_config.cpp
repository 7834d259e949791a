// Study config: defaults, file and --set precedence, errors, validation, to_toml round trip.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "study_config.h"
#include "user_error.h"
#include "user_error_matchers.h"

using namespace harsanyi;
namespace fs = std::filesystem;

namespace {

/// Writes `text` to a per-test file and removes it at the end.
class TomlFile {
 public:
  explicit TomlFile(const std::string& text) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ =
        (fs::temp_directory_path() / ("harsanyi_test_study_config_" + std::string(info->name()) +
                                      "_" + std::to_string(::getpid()) + ".toml"))
            .string();
    std::ofstream(path_) << text;
  }
  ~TomlFile() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string set_error(const std::string& set) {
  return error_of([&] { load_study_config("", {set}); });
}

}  // namespace

TEST(StudyConfig, DefaultsAreTheEmbeddedStudy) {
  const StudyConfig c = load_study_config("", {});
  EXPECT_EQ(c.data.format, "idx");
  EXPECT_EQ(c.data.train, "/usr/share/datasets/fashion-mnist/train");
  EXPECT_EQ(c.data.test, "/usr/share/datasets/fashion-mnist/t10k");
  EXPECT_EQ(c.data.train_limit, 1000);
  EXPECT_TRUE(c.data.normalize.empty());
  EXPECT_EQ(c.model.arch, "lenet");
  EXPECT_EQ(c.train.epochs, 30);
  EXPECT_EQ(c.train.batch, 128);
  EXPECT_DOUBLE_EQ(c.train.lr, 0.01);
  EXPECT_EQ(c.players.grid, (std::vector<int>{3, 3}));
  EXPECT_TRUE(c.players.cells.empty());
  EXPECT_EQ(c.players.background, "keep");
  EXPECT_EQ(c.baseline.kind, "zero");
  EXPECT_EQ(c.samples.train, 20);
  EXPECT_EQ(c.interactions.output, "gt-log-odds-v0");
  EXPECT_EQ(c.interactions.iters, 20000);
  EXPECT_DOUBLE_EQ(c.interactions.lr, 1e-5);
  EXPECT_DOUBLE_EQ(c.interactions.qthres, 0.04);
  EXPECT_EQ(c.output.path, "study.h5");
  EXPECT_EQ(c.runtime.device, "auto");
  EXPECT_EQ(c.runtime.solver_device, "auto");
  EXPECT_EQ(c.to_toml(), StudyConfig().to_toml());
}

TEST(StudyConfig, FileThenSetOverridesInOrder) {
  TomlFile file(R"(
[data]
format = "csv"
train = "/data/iris.csv"
test = ""
normalize = [0.5, 2]

[train]
epochs = 5
lr = 0.1          # a float
momentum = 1      # an integer where a number is expected

[players]
kind = "features"
grid = [2, 4]
cells = [7, 0, 3]
features = ["sepal length", "petal width"]

[interactions]
store = ["values"]
)");
  const StudyConfig c = load_study_config(
      file.path(), {"train.epochs=7", "data.train=/other/file.csv", "train.lr = 1e-3",
                    "interactions.store=[\"values\", \"interactions\"]", "output.path=2024",
                    "samples.train_indices=[3, 1, 4]", "data.label_column=species",
                    "train.epochs=9", "train.seed=12345678901"});
  EXPECT_EQ(c.data.format, "csv");
  EXPECT_EQ(c.data.train, "/other/file.csv");
  EXPECT_EQ(c.data.test, "");
  EXPECT_EQ(c.data.normalize, (std::vector<double>{0.5, 2.0}));
  EXPECT_EQ(c.data.label_column, "species");
  EXPECT_EQ(c.train.epochs, 9);  // the last --set wins
  EXPECT_DOUBLE_EQ(c.train.lr, 1e-3);
  EXPECT_DOUBLE_EQ(c.train.momentum, 1.0);
  EXPECT_EQ(c.train.seed, 12345678901u);
  EXPECT_EQ(c.players.kind, "features");
  EXPECT_EQ(c.players.grid, (std::vector<int>{2, 4}));
  EXPECT_EQ(c.players.cells, (std::vector<int>{7, 0, 3}));
  EXPECT_EQ(c.players.features, (std::vector<std::string>{"sepal length", "petal width"}));
  EXPECT_EQ(c.interactions.store, (std::vector<std::string>{"values", "interactions"}));
  EXPECT_EQ(c.samples.train_indices, (std::vector<std::int64_t>{3, 1, 4}));
  EXPECT_EQ(c.output.path, "2024");  // a string key takes the raw text of a non-string value
  // Keys not mentioned keep their defaults.
  EXPECT_EQ(c.model.arch, "lenet");
  EXPECT_EQ(c.interactions.iters, 20000);
}

TEST(StudyConfig, SetValuesAreTomlOrRawText) {
  const StudyConfig c = load_study_config(
      "", {"model.arch=mlp", "data.train=\"/a b/c\"", "interactions.output=gt-logit",
           "data.normalize=[]", "model.checkpoints=ck/epoch_*.pt", "players.grid=[1,2]"});
  EXPECT_EQ(c.model.arch, "mlp");
  EXPECT_EQ(c.data.train, "/a b/c");
  EXPECT_EQ(c.interactions.output, "gt-logit");
  EXPECT_TRUE(c.data.normalize.empty());
  EXPECT_EQ(c.model.checkpoints, "ck/epoch_*.pt");
  EXPECT_EQ(c.players.grid, (std::vector<int>{1, 2}));
}

TEST(StudyConfig, UnknownSectionsAndKeysListTheKnownOnes) {
  std::string m = set_error("train.epoch=3");
  EXPECT_HAS(m, "unknown key 'epoch'");
  EXPECT_HAS(m, "[train]");
  EXPECT_HAS(m, "epochs, batch, optimizer, lr, momentum, weight_decay, seed");
  m = set_error("trian.epochs=3");
  EXPECT_HAS(m, "unknown section [trian]");
  EXPECT_HAS(m, "[data], [model], [train]");
  m = set_error("epochs=3");
  EXPECT_HAS(m, "section.key=value");
  m = set_error("train.epochs");
  EXPECT_HAS(m, "section.key=value");

  TomlFile file("[model]\narch = \"mlp\"\n\n[data]\nlimit = 10\n");
  m = error_of([&] { load_study_config(file.path(), {}); });
  EXPECT_HAS(m, file.path() + ":5:");
  EXPECT_HAS(m, "unknown key 'limit' in [data]");
  EXPECT_HAS(m, "train_limit");
  TomlFile file2("[plyers]\nkind = \"grid\"\n");
  m = error_of([&] { load_study_config(file2.path(), {}); });
  EXPECT_HAS(m, "unknown section [plyers]");
  EXPECT_HAS(m, "[players]");
  TomlFile file3("epochs = 3\n");
  m = error_of([&] { load_study_config(file3.path(), {}); });
  EXPECT_HAS(m, "outside any section");
}

TEST(StudyConfig, WrongTypesNameKeyAndExpectedType) {
  std::string m = set_error("train.epochs=\"ten\"");
  EXPECT_HAS(m, "train.epochs must be an integer");
  EXPECT_HAS(m, "got a string");
  m = set_error("train.epochs=2.5");
  EXPECT_HAS(m, "train.epochs must be an integer");
  m = set_error("train.lr=fast");
  EXPECT_HAS(m, "train.lr must be a number");
  m = set_error("players.grid=3");
  EXPECT_HAS(m, "players.grid must be an array of integers");
  m = set_error("players.grid=[3, \"x\"]");
  EXPECT_HAS(m, "players.grid must be an array of integers");
  m = set_error("interactions.store=values");
  EXPECT_HAS(m, "interactions.store must be an array of strings");
  m = set_error("train.seed=-1");
  EXPECT_HAS(m, "train.seed must be a non-negative integer");
  m = set_error("interactions.iters=9999999999");
  EXPECT_HAS(m, "interactions.iters must be an integer");
  TomlFile file("[train]\nlr = \"0.1\"\n");
  m = error_of([&] { load_study_config(file.path(), {}); });
  EXPECT_HAS(m, file.path() + ":2:");
  EXPECT_HAS(m, "train.lr must be a number, got a string");
}

TEST(StudyConfig, ParseErrorsGiveFileLineAndColumn) {
  TomlFile file("[data]\nformat = \"idx\"\ntrain = \"unterminated\n");
  const std::string m = error_of([&] { load_study_config(file.path(), {}); });
  EXPECT_HAS(m, file.path() + ":3:");
  EXPECT_HAS(m, "TOML parse error");
  const std::string missing = error_of([&] { load_study_config("/no/such/study.toml", {}); });
  EXPECT_HAS(missing, "/no/such/study.toml");
}

TEST(StudyConfig, InvalidValuesAreRefused) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"data.format=hdf5", "data.format"},
      {"data.train=\"\"", "data.train"},
      {"data.train_limit=-1", "data.train_limit"},
      {"data.test_limit=-5", "data.test_limit"},
      {"data.label_noise=1.5", "data.label_noise"},
      {"data.label_noise=-0.1", "data.label_noise"},
      {"data.normalize=[1]", "data.normalize"},
      {"data.normalize=[0.5, 0]", "data.normalize"},
      {"data.normalize=[0.5, -1]", "data.normalize"},
      {"data.normalize=[nan, 1]", "data.normalize"},
      {"model.arch=resnet", "model.arch"},
      {"model.arch=torchscript", "model.checkpoints"},
      {"train.epochs=-1", "train.epochs"},
      {"train.batch=0", "train.batch"},
      {"train.optimizer=rmsprop", "train.optimizer"},
      {"train.lr=0", "train.lr"},
      {"train.lr=-0.1", "train.lr"},
      {"train.lr=inf", "train.lr"},
      {"train.momentum=-0.5", "train.momentum"},
      {"train.weight_decay=-1", "train.weight_decay"},
      {"players.kind=tokens", "players.kind"},
      {"players.grid=[3]", "players.grid"},
      {"players.grid=[0, 3]", "players.grid"},
      {"players.grid=[3, 3, 3]", "players.grid"},
      {"players.cells=[9]", "players.cells"},
      {"players.cells=[-1]", "players.cells"},
      {"players.background=blur", "players.background"},
      {"baseline.kind=median", "baseline.kind"},
      {"baseline.value=nan", "baseline.value"},
      {"samples.train=-1", "samples.train"},
      {"samples.test_indices=[1, -2]", "samples.test_indices"},
      {"interactions.output=gt-prob", "interactions.output"},
      {"interactions.output=gt-log-odds-v1", "interactions.output"},
      {"interactions.label=true-label", "interactions.label"},
      {"interactions.mode=or", "interactions.mode"},
      {"interactions.solver=adam", "interactions.solver"},
      {"interactions.iters=0", "interactions.iters"},
      {"interactions.lr=0", "interactions.lr"},
      {"interactions.qthres=-0.01", "interactions.qthres"},
      {"interactions.tol=0", "interactions.tol"},
      {"interactions.tau_rel=-1", "interactions.tau_rel"},
      {"interactions.store=[\"values\", \"p\"]", "interactions.store"},
      {"output.path=\"\"", "output.path"},
      {"runtime.device=tpu", "runtime.device"},
      {"runtime.solver_device=gpu", "runtime.solver_device"},
      {"runtime.threads=-1", "runtime.threads"},
      {"train.threads=-2", "train.threads"},
      {"runtime.forward_batch=0", "runtime.forward_batch"},
  };
  for (const auto& [set, key] : cases) {
    const std::string m = set_error(set);
    EXPECT_HAS(m, key) << "for --set " << set;
  }
  // Valid edge values pass.
  EXPECT_NO_THROW(load_study_config(
      "", {"data.label_noise=1", "data.label_noise=0", "train.epochs=0", "interactions.qthres=0",
           "interactions.tau_rel=0", "players.grid=[1, 1]", "players.cells=[0]",
           "interactions.output=gt-logit-v0", "interactions.output=gt-log-odds",
           "interactions.label=predicted", "interactions.mode=and", "interactions.solver=optimal",
           "runtime.device=cuda", "model.arch=torchscript", "model.checkpoints=a/*.pt",
           "data.format=cifar10", "data.normalize=[0.1307, 0.3081]"}));
  // A file's invalid value can be fixed by a --set.
  TomlFile file("[train]\nbatch = 0\n");
  EXPECT_THROW(load_study_config(file.path(), {}), UserError);
  EXPECT_EQ(load_study_config(file.path(), {"train.batch=32"}).train.batch, 32);
}

TEST(StudyConfig, ToTomlRoundTripsExactly) {
  StudyConfig c;
  c.data.format = "csv";
  c.data.train = "C:\\data\\\"quoted\" name\twith tab\nand newline \x01 é";
  c.data.test = "";
  c.data.train_limit = 123456789012;
  c.data.label_noise = 0.1;
  c.data.normalize = {0.1307, 1.0 / 3.0};
  c.data.label_column = "class";
  c.model.arch = "torchscript";
  c.model.checkpoints = "ckpt/epoch_*.pt";
  c.train.lr = 1e-5 * 3;
  c.train.momentum = 0.0;
  c.train.weight_decay = 5e-324;  // the smallest subnormal
  c.train.seed = 9007199254740993u;
  c.players.grid = {4, 5};
  c.players.cells = {19, 0, 7};
  c.players.features = {"a", "b \"c\""};
  c.baseline.kind = "value";
  c.baseline.value = -1.2345678901234567e-300;
  c.samples.train_indices = {0, 5, 9999999999};
  c.interactions.store = {"values", "interactions"};
  c.interactions.lr = 0.1 + 0.2;
  c.interactions.qthres = 1e300;
  c.runtime.forward_batch = 4096;

  const std::string text = c.to_toml();
  EXPECT_HAS(text, "[data]\nformat = \"csv\"\n");
  EXPECT_HAS(text, "momentum = 0.0\n");
  EXPECT_HAS(text, "lr = 0.30000000000000004\n");
  EXPECT_HAS(text, "cells = [19, 0, 7]\n");
  EXPECT_HAS(text, "normalize = [0.13070000000000001, 0.33333333333333331]\n");
  TomlFile file(text);
  const StudyConfig back = load_study_config(file.path(), {});
  EXPECT_EQ(back.to_toml(), text);
  EXPECT_EQ(back.data.train, c.data.train);
  EXPECT_EQ(back.data.train_limit, c.data.train_limit);
  EXPECT_EQ(back.data.normalize, c.data.normalize);
  EXPECT_EQ(back.train.lr, c.train.lr);
  EXPECT_EQ(back.train.weight_decay, c.train.weight_decay);
  EXPECT_EQ(back.train.seed, c.train.seed);
  EXPECT_EQ(back.players.cells, c.players.cells);
  EXPECT_EQ(back.players.features, c.players.features);
  EXPECT_EQ(back.baseline.value, c.baseline.value);
  EXPECT_EQ(back.samples.train_indices, c.samples.train_indices);
  EXPECT_EQ(back.interactions.lr, c.interactions.lr);
  EXPECT_EQ(back.interactions.qthres, c.interactions.qthres);
  EXPECT_EQ(back.runtime.forward_batch, c.runtime.forward_batch);

  // Every key is written: the default study's text names all of them.
  const std::string defaults = StudyConfig().to_toml();
  for (const char* key : {"[data]",       "format",        "train",        "test",
                          "train_limit",  "test_limit",    "label_noise",  "normalize",
                          "label_column", "[model]",       "arch",         "checkpoints",
                          "[train]",      "epochs",        "batch",        "optimizer",
                          "lr",           "momentum",      "weight_decay", "seed",
                          "[players]",    "kind",          "grid",         "cells",
                          "background",   "features",      "[baseline]",   "value",
                          "[samples]",    "train_indices", "test_indices", "[interactions]",
                          "output",       "label",         "mode",         "solver",
                          "iters",        "qthres",        "tol",          "tau_rel",
                          "store",        "[output]",      "path",         "[runtime]",
                          "device",       "threads",       "forward_batch"}) {
    EXPECT_HAS(defaults,
               std::string(key[0] == '[' ? "" : "\n") + key + (key[0] == '[' ? "" : " = "));
  }
  TomlFile defaults_file(defaults);
  EXPECT_EQ(load_study_config(defaults_file.path(), {}).to_toml(), defaults);
}
