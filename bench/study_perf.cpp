// study_perf: a whole `harsanyi run` study, timed, with its time split into training, model
// evaluation, masked forward passes, the AND-OR solver, and writing the study file.
// Formulas of every column: bench/README.md.
#include <cmath>
#include <filesystem>
#include <fmt/core.h>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "communicator.h"
#include "driver.h"
#include "h5_wrappers.h"
#include "study.h"

namespace hb = harsanyi::bench;
namespace fs = std::filesystem;

namespace {

struct StudyState : hb::CaseState {
  harsanyi::RunOptions run;
  harsanyi::RunSummary summary;
  std::string out, dir;
  const harsanyi::mpi::Communicator* comm = nullptr;
  ~StudyState() override {
    comm->barrier();  // every rank is done with the file
    if (comm->root()) fs::remove_all(dir);
  }
};

// The grid and cells giving n players: the first n cells of a 3x3 grid (n <= 9), else of 4x4.
std::vector<std::string> player_sets(int n) {
  const int side = n <= 9 ? 3 : 4;
  std::string cells;
  for (int i = 0; i < n; ++i) cells += (i ? ", " : "") + std::to_string(i);
  return {fmt::format("players.grid=[{}, {}]", side, side), fmt::format("players.cells=[{}]", cells)};
}

std::unique_ptr<hb::CaseState> setup(const hb::Case& c) {
  auto s = std::make_unique<StudyState>();
  s->comm = c.comm;
  // One directory for all ranks (rank 0's pid names it).
  std::int64_t pid = ::getpid();
  c.comm->broadcast(&pid, sizeof pid);
  s->dir = (fs::temp_directory_path() / fmt::format("harsanyi_study_perf_{}", pid)).string();
  if (c.comm->root()) fs::create_directories(s->dir);
  c.comm->barrier();
  s->out = s->dir + "/study.h5";
  s->run.config_path = c.opt->extra.at("config");
  s->run.progress = false;
  s->run.force = true;
  auto& sets = s->run.sets;
  sets = player_sets(c.n);
  sets.push_back("output.path=" + s->out);
  sets.push_back(fmt::format("runtime.threads={}", c.threads));
  if (c.opt->extra_given("epochs")) sets.push_back("train.epochs=" + c.opt->extra.at("epochs"));
  if (c.opt->extra_given("iters"))
    sets.push_back("interactions.iters=" + c.opt->extra.at("iters"));
  if (c.opt->extra_given("solver"))
    sets.push_back("interactions.solver=\"" + c.opt->extra.at("solver") + "\"");
  if (c.opt->extra_given("train-limit"))
    sets.push_back("data.train_limit=" + c.opt->extra.at("train-limit"));
  if (c.samples > 0) {
    sets.push_back(fmt::format("samples.train={}", c.samples / 2));
    sets.push_back(fmt::format("samples.test={}", c.samples - c.samples / 2));
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  harsanyi::h5::prepare_library();
  hb::OpDef op;
  op.name = "study_perf";
  op.mpi = true;  // under mpirun: the study on every rank (strong / weak scaling, bench/README.md)
  op.summary =
      "a whole study (harsanyi run): time split into training, evaluation, masked forward "
      "passes, solver and writing";
  op.default_min_n = 9;
  op.default_max_n = 9;
  op.max_allowed_n = 16;
  op.default_reps = 1;
  op.default_warmup = 0;
  op.default_samples = 40;
  op.default_dtypes = {hb::Dtype::f64};  // the study computes in float64; -d has no effect
  op.flags = {{"config", "", "study config (TOML); empty: the embedded default study"},
              {"epochs", "30", "train.epochs"},
              {"iters", "20000", "interactions.iters"},
              {"solver", "sgd", "interactions.solver"},
              {"train-limit", "1000", "data.train_limit"}};
  op.preamble = {"# each repetition runs the whole study (training from scratch) into a temporary "
                 "file; -s S analyses S/2 train + S/2 test samples (default 40: the default study's 20 + 20)",
                 "# under mpirun the ranks share the study (harsanyi run's decomposition); times are the slowest rank's",
                 "# n players are the first n cells of a 3x3 grid (n <= 9) or of a 4x4 grid"};
  op.columns = {{"epochs", "", hb::Fmt::integer, 0, 7},  {"total", "s", hb::Fmt::fixed, 1, 9},
                {"train", "s", hb::Fmt::fixed, 1, 8},    {"eval", "s", hb::Fmt::fixed, 1, 8},
                {"forward", "s", hb::Fmt::fixed, 1, 8},  {"solver", "s", hb::Fmt::fixed, 1, 8},
                {"write", "s", hb::Fmt::fixed, 2, 8},    {"other", "s", hb::Fmt::fixed, 1, 8},
                {"forward", "%", hb::Fmt::fixed, 1, 8},  {"solver", "%", hb::Fmt::fixed, 1, 8},
                {"samples/s", "1/s", hb::Fmt::fixed, 2, 10}};
  // Distinct JSON keys for the shares.
  op.columns[8].name = "forward_share";
  op.columns[9].name = "solver_share";
  op.setup = setup;
  op.kernels = {{"study", nullptr, [](hb::CaseState& st, int) {
                   auto& s = static_cast<StudyState&>(st);
                   s.summary = harsanyi::run_study(s.run, *s.comm);
                 }}};
  op.check = [](const hb::Case&, hb::CaseState& st, hb::Row& row) {
    auto& s = static_cast<StudyState&>(st);
    hb::CheckResult r;
    try {
      harsanyi::h5::File f = harsanyi::h5::File::open_read(s.out);
      const auto epochs = f.read_all<double>("/epochs/test_loss");
      const auto loss = f.read_all<double>("/extraction/loss");
      row["epochs"] = static_cast<long long>(epochs.size());
      bool finite = true;
      for (double x : loss) finite = finite && std::isfinite(x) && x >= 0;
      if (!f.has_attribute("complete") || static_cast<int>(epochs.size()) != s.summary.epochs_total ||
          !finite) {
        r.ok = false;
        r.why = "study file incomplete or with non-finite losses";
      }
    } catch (const std::exception& e) {
      r.ok = false;
      r.why = e.what();
    }
    return r;
  };
  op.metrics = [](const hb::Case&, hb::CaseState& st, const std::vector<hb::Timing>&,
                  hb::Row& row) {
    auto& s = static_cast<StudyState&>(st);
    const auto& m = s.summary;
    row["total"] = m.seconds;
    row["train"] = m.t_train;
    row["eval"] = m.t_eval;
    row["forward"] = m.t_forward;
    row["solver"] = m.t_solver;
    row["write"] = m.t_write;
    row["other"] = m.seconds - m.t_train - m.t_eval - m.t_forward - m.t_solver - m.t_write;
    row["forward_share"] = 100.0 * m.t_forward / m.seconds;
    row["solver_share"] = 100.0 * m.t_solver / m.seconds;
    harsanyi::h5::File f = harsanyi::h5::File::open_read(s.out);
    const double samples = static_cast<double>(f.info("/samples/index").dims[0]);
    row["samples/s"] = samples * m.epochs_total / (m.t_eval + m.t_forward + m.t_solver + m.t_write);
  };
  return hb::run_benchmark(op, argc, argv);
}
