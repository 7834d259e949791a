// harsanyi run: training, sample choice, and per-epoch interaction measurements.
#include "study.h"

#include <glob.h>
#include <unistd.h>
#include <omp.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <chrono>
#include <thread>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <future>
#include <limits>
#include <map>
#include <random>
#include <regex>

#include <fmt/format.h>

#include "and_or_solver.h"
#include "cuda_backend.h"
#include "order_metrics.h"
#include "decomposition.h"
#include "interaction_metrics.h"
#include "lattice_transforms.h"
#include "network.h"
#include "progress.h"
#include "reproducible_sum.h"
#include "stop_signal.h"
#include "study_config.h"
#include "study_writer.h"
#include "system_memory.h"
#include "user_error.h"

namespace harsanyi {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The config text that identifies a study: everything but [runtime] (threads, device and batch
// sizes of the forward passes change neither the file nor the results' meaning).
std::string identity_config(const std::string& toml) {
  const std::size_t begin = toml.find("[runtime]");
  if (begin == std::string::npos) return toml;
  const std::size_t end = toml.find("\n[", begin);
  return toml.substr(0, begin) + (end == std::string::npos ? "" : toml.substr(end + 1));
}

// Uniform integer in [0, bound) from a 64-bit generator, identical on every platform.
std::uint64_t bounded(std::mt19937_64& rng, std::uint64_t bound) {
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  std::uint64_t x;
  do x = rng(); while (x >= limit);
  return x % bound;
}

// The first k of a seeded Fisher-Yates shuffle of `pool`, in ascending order.
std::vector<std::int64_t> draw(std::vector<std::int64_t> pool, std::size_t k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  k = std::min(k, pool.size());
  for (std::size_t i = 0; i < k; ++i) {
    const std::size_t j = i + bounded(rng, pool.size() - i);
    std::swap(pool[i], pool[j]);
  }
  pool.resize(k);
  std::sort(pool.begin(), pool.end());
  return pool;
}

std::vector<std::int64_t> iota(std::int64_t count) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

// One epoch's model: a checkpoint of a built-in network or a TorchScript file.
struct EpochSource {
  std::int32_t epoch = 0;
  std::string path;
};

std::vector<EpochSource> torchscript_epochs(const std::string& pattern) {
  glob_t g{};
  const int rc = glob(pattern.c_str(), 0, nullptr, &g);
  std::vector<EpochSource> out;
  if (rc == 0)
    for (std::size_t i = 0; i < g.gl_pathc; ++i) out.push_back({0, g.gl_pathv[i]});
  globfree(&g);
  if (out.empty())
    throw UserError(fmt::format("model.checkpoints = \"{}\" matches no file; give a glob of "
                                "per-epoch TorchScript files (e.g. \"ckpt/epoch_*.pt\")",
                                pattern));
  static const std::regex number("[0-9]+");
  std::map<std::int32_t, std::string> by_epoch;
  for (EpochSource& s : out) {
    const std::string name = fs::path(s.path).filename().string();
    std::string last;
    for (auto it = std::sregex_iterator(name.begin(), name.end(), number);
         it != std::sregex_iterator(); ++it)
      last = it->str();
    if (last.empty())
      throw UserError(fmt::format("{}: no epoch number in the file name (the epoch is the last "
                                  "integer in the name, e.g. epoch_7.pt)",
                                  s.path));
    s.epoch = static_cast<std::int32_t>(std::stol(last));
    auto [it, fresh] = by_epoch.emplace(s.epoch, s.path);
    if (!fresh)
      throw UserError(fmt::format("{} and {} both hold epoch {}; keep one file per epoch",
                                  it->second, s.path, s.epoch));
  }
  std::sort(out.begin(), out.end(),
            [](const EpochSource& a, const EpochSource& b) { return a.epoch < b.epoch; });
  return out;
}

// Fault injection at the end of a step (stage "checkpoint" or "epoch"):
//  - HARSANYI_FAULT_KILL_AFTER=<stage>:<epoch> kills the process with SIGKILL right after that
//    step, as a node failure or `kill -9` would (the kill-and-resume tests);
//  - HARSANYI_FAULT_EPOCH_DELAY=<seconds> makes every rank wait that long after each written
//    epoch, so that the stop-signal tests can signal a run in flight however fast the machine is.
void fault_point(const char* stage, int epoch) {
  const char* spec = std::getenv("HARSANYI_FAULT_KILL_AFTER");
  if (spec && fmt::format("{}:{}", stage, epoch) == spec) std::raise(SIGKILL);
  const char* delay = std::getenv("HARSANYI_FAULT_EPOCH_DELAY");
  if (delay && std::string(stage) == "epoch") {
    const double seconds = std::atof(delay);
    if (seconds > 0) std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  }
}

std::string checkpoint_path(const std::string& dir, int epoch) {
  return fmt::format("{}/epoch_{:04d}.pt", dir, epoch);
}

struct Context {
  StudyConfig cfg;
  RunOptions opt;
  Dataset train, test;
  std::vector<std::int32_t> train_labels;  // possibly noisy: what the model is trained with
  PlayerLayout layout;
  OutputSpec output;
  std::string net_device = "cpu";
  bool solver_gpu = false;
  std::string ckpt_dir;
  int classes = 0;
};

std::unique_ptr<Network> network_for(const Context& c, const EpochSource& src) {
  std::unique_ptr<Network> net;
  if (c.cfg.model.arch == "torchscript") {
    net = Network::load_torchscript(src.path);
  } else {
    net = Network::build(c.cfg.model.arch, c.train.shape, c.classes, c.cfg.train.seed);
    net->load_checkpoint(src.path);
  }
  net->to_device(c.net_device);
  return net;
}

TrainOptions train_options(const StudyConfig& cfg) {
  TrainOptions t;
  t.optimizer = cfg.train.optimizer;
  t.lr = cfg.train.lr;
  t.momentum = cfg.train.momentum;
  t.weight_decay = cfg.train.weight_decay;
  t.batch = cfg.train.batch;
  t.seed = cfg.train.seed;
  return t;
}

// Stage 1: epochs 0..E of a built-in network, resuming from the last checkpoint on disk. Only
// `train` ranks train (rank 0 of a distributed run); every rank gets the list of checkpoints.
double train_all(Context& c, std::vector<EpochSource>& epochs, bool train) {
  const auto t0 = Clock::now();
  const int E = c.cfg.train.epochs;
  for (int e = 0; e <= E; ++e) epochs.push_back({e, checkpoint_path(c.ckpt_dir, e)});
  if (!train) return 0.0;
  fs::create_directories(c.ckpt_dir);
  int last = -1;
  for (int e = 0; e <= E; ++e)
    if (fs::exists(checkpoint_path(c.ckpt_dir, e))) last = e; else break;
  if (last == E) return 0.0;

  auto net = Network::build(c.cfg.model.arch, c.train.shape, c.classes, c.cfg.train.seed);
  net->to_device(c.net_device);
  if (c.opt.progress)
    std::fprintf(stderr, "run: model %s, training epochs %d..%d on %lld samples (%s)\n",
                 net->description().c_str(), last + 1 > 0 ? last + 1 : 1, E,
                 static_cast<long long>(c.train.count()), c.net_device.c_str());
  if (last >= 0)
    net->load_checkpoint(checkpoint_path(c.ckpt_dir, last));
  else
    net->save_checkpoint(checkpoint_path(c.ckpt_dir, 0)), last = 0;
  const TrainOptions topt = train_options(c.cfg);
  const std::vector<std::int64_t> all = iota(c.train.count());
  Progress progress("train", static_cast<std::uint64_t>(E - last), "epochs", c.opt.progress);
  for (int e = last + 1; e <= E; ++e) {
    const EvalStats s = net->train_epoch(c.train, all, c.train_labels, topt, e);
    if (!std::isfinite(s.loss))
      throw UserError(fmt::format("training diverged at epoch {} (loss {}); lower train.lr or "
                                  "change the optimizer",
                                  e, s.loss));
    net->save_checkpoint(checkpoint_path(c.ckpt_dir, e));
    fault_point("checkpoint", e);
    progress.advance(1);
    if (stop_signal() != 0) break;  // a safe point: the checkpoints on disk are whole
  }
  progress.finish();
  return seconds_since(t0);
}

// Stage 2: the analysed samples, drawn among those the last epoch classifies correctly.
StudyHeader choose_samples(const Context& c, const EpochSource& last) {
  StudyHeader h;
  auto net = network_for(c, last);
  const int batch = 256;
  auto pick = [&](const Dataset& d, const std::vector<std::int32_t>& labels,
                  const std::vector<std::int64_t>& explicit_indices, int count, std::uint64_t seed,
                  std::uint8_t split) {
    std::vector<std::int64_t> chosen;
    if (!explicit_indices.empty()) {
      for (std::int64_t i : explicit_indices)
        if (i < 0 || i >= d.count())
          throw UserError(fmt::format("samples.{}_indices: {} is out of range (the {} split has {} "
                                      "samples)",
                                      split ? "test" : "train", i, split ? "test" : "train",
                                      d.count()));
      chosen = explicit_indices;
    } else if (count > 0) {
      const std::vector<std::int64_t> all = iota(d.count());
      const std::vector<std::int32_t> pred = net->predict(d, all, batch);
      std::vector<std::int64_t> correct;
      for (std::int64_t i = 0; i < d.count(); ++i)
        if (pred[static_cast<std::size_t>(i)] == labels[static_cast<std::size_t>(i)])
          correct.push_back(i);
      if (correct.size() < static_cast<std::size_t>(count))
        std::fprintf(stderr,
                     "run: only %zu %s samples are classified correctly at the last epoch; "
                     "analysing those\n",
                     correct.size(), split ? "test" : "train");
      chosen = draw(correct, static_cast<std::size_t>(count), seed + split);
    }
    for (std::int64_t i : chosen) {
      h.sample_index.push_back(i);
      h.sample_label.push_back(labels[static_cast<std::size_t>(i)]);
      h.sample_split.push_back(split);
    }
  };
  pick(c.train, c.train_labels, c.cfg.samples.train_indices, c.cfg.samples.train,
       c.cfg.samples.seed, 0);
  pick(c.test, c.test.labels, c.cfg.samples.test_indices, c.cfg.samples.test, c.cfg.samples.seed,
       1);
  if (h.sample_index.empty())
    throw UserError("no samples to analyse: set samples.train / samples.test (or the explicit "
                    "indices), or train longer so that some samples are classified correctly");
  h.player_names = c.layout.names;
  return h;
}

SolverOptions solver_options(const StudyConfig& cfg) {
  SolverOptions s;
  s.solver = cfg.interactions.solver;
  s.sgd.iters = cfg.interactions.iters;
  s.sgd.lr = cfg.interactions.lr;
  s.sgd.momentum = cfg.interactions.momentum;
  s.sgd.qthres = cfg.interactions.qthres;
  s.optimal.qthres = cfg.interactions.qthres;
  s.optimal.tol = cfg.interactions.tol;
  return s;
}

// Loss and accuracy of a whole split, its batches spread over the ranks: the per-batch sums are
// gathered and added in batch order, as Network::evaluate does on one rank.
EvalStats evaluate_distributed(Network& net, const Dataset& data,
                               const std::vector<std::int64_t>& indices,
                               const std::vector<std::int32_t>& labels, std::int64_t batch,
                               const mpi::Communicator& world) {
  if (indices.empty()) return {};
  const auto N = indices.size(), B = static_cast<std::size_t>(batch);
  const std::size_t batches = (N + B - 1) / B, P = static_cast<std::size_t>(world.size()),
                    r = static_cast<std::size_t>(world.rank());
  const std::size_t b0 = batches * r / P, b1 = batches * (r + 1) / P;
  const std::vector<std::int64_t> mine(indices.begin() + static_cast<std::ptrdiff_t>(std::min(N, b0 * B)),
                                       indices.begin() + static_cast<std::ptrdiff_t>(std::min(N, b1 * B)));
  std::vector<double> loss_sums;
  std::vector<std::int64_t> correct;
  if (!mine.empty()) net.evaluate_sums(data, mine, labels, batch, loss_sums, correct);
  std::vector<double> local = loss_sums;
  for (std::int64_t k : correct) local.push_back(static_cast<double>(k));  // exact below 2^53
  // Rank r's part: its loss sums, then its correct counts.
  const std::vector<double> all = world.all_gather(local);
  double loss = 0.0, right = 0.0;
  std::size_t at = 0;
  for (std::size_t q = 0; q < P; ++q) {
    const std::size_t nq = batches * (q + 1) / P - batches * q / P;
    for (std::size_t i = 0; i < nq; ++i) loss += all[at + i];
    for (std::size_t i = 0; i < nq; ++i) right += all[at + nq + i];
    at += 2 * nq;
  }
  return {loss / static_cast<double>(N), right / static_cast<double>(N)};
}

// The per-order summary of an epoch over the samples of every rank: each rank's rows of its own
// samples are gathered in rank order, which is sample order, then summed in that order (the
// same result for every rank count). A collective call.
OrderSummary epoch_orders(const EpochBlock& b, bool and_only, int n, const mpi::Communicator& world) {
  const std::size_t K = static_cast<std::size_t>(n) + 1, own = static_cast<std::size_t>(b.count);
  const int kinds = and_only ? 1 : 2;
  // Per sample: pos, neg, count of AND (and of OR), K values each.
  std::vector<double> mine;
  mine.reserve(own * 3 * kinds * K);
  for (std::size_t s = 0; s < own; ++s)
    for (int k = 0; k < kinds; ++k) {
      const auto& pos = k ? b.or_pos : b.and_pos;
      const auto& neg = k ? b.or_neg : b.and_neg;
      const auto& cnt = k ? b.or_count : b.and_count;
      mine.insert(mine.end(), pos.begin() + s * K, pos.begin() + (s + 1) * K);
      mine.insert(mine.end(), neg.begin() + s * K, neg.begin() + (s + 1) * K);
      for (std::size_t o = 0; o < K; ++o) mine.push_back(cnt[s * K + o]);
    }
  const std::vector<double> all = world.all_gather(mine);
  const std::size_t row = 3 * kinds * K, S = all.size() / row;
  std::vector<double> col[6];
  for (int c = 0; c < 3 * kinds; ++c) col[c].resize(S * K);
  for (std::size_t s = 0; s < S; ++s)
    for (int c = 0; c < 3 * kinds; ++c)
      std::copy(all.begin() + s * row + c * K, all.begin() + s * row + (c + 1) * K,
                col[c].begin() + s * K);
  return summarize_orders(col[0].data(), col[1].data(), col[2].data(),
                          and_only ? nullptr : col[3].data(), and_only ? nullptr : col[4].data(),
                          and_only ? nullptr : col[5].data(), S, n);
}

}  // namespace

std::string resolved_study_config(const RunOptions& options) {
  return load_study_config(options.config_path, options.sets).to_toml();
}

RunSummary run_study(const RunOptions& options, const mpi::Communicator& world) {
  const auto t_start = Clock::now();
  Context c;
  c.opt = options;
  c.cfg = load_study_config(options.config_path, options.sets);
  const StudyConfig& cfg = c.cfg;
  const bool root = world.root();
  // Threads: training and the choice of the samples (rank 0 alone, the others asleep) use
  // train.threads, whatever the launcher's binding or the rank count, so that the checkpoints are
  // the same for every launch; the distributed stages give each rank its share of the cores
  // (their results do not depend on the thread count).
  const int on_node = world.ranks_on_node();
  const int node_cpus = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  const int train_threads = cfg.train.threads > 0 ? cfg.train.threads : node_cpus;
  const int rank_threads = cfg.runtime.threads > 0 ? cfg.runtime.threads
                           : std::getenv("OMP_NUM_THREADS")
                               ? omp_get_max_threads()
                               : std::max(1, omp_get_num_procs() / on_node);
  omp_set_num_threads(train_threads);
  set_torch_threads(train_threads);
  if (root && options.progress && world.size() > 1 && cfg.model.arch != "torchscript" &&
      omp_get_num_procs() < train_threads)
    std::fprintf(stderr,
                 "run: note: rank 0 is bound to %d CPU%s but trains with %d threads "
                 "(train.threads; the same on every launch so that the checkpoints are); launch "
                 "with --bind-to none (mpirun) or --cpu-bind=none (srun) for faster training\n",
                 omp_get_num_procs(), omp_get_num_procs() == 1 ? "" : "s", train_threads);
  const std::string out = cfg.output.path;
  c.ckpt_dir = out + ".ckpt";
  const bool and_or = cfg.interactions.mode == "and-or";
  const std::string config_text = cfg.to_toml();
  const std::string identity = identity_config(config_text);

  // Refuse to clobber before any work: an existing study, an interrupted one, or checkpoints
  // (rank 0 checks and cleans; the others wait for it).
  if (root && !options.resume) {
    if (fs::exists(out) && !options.force)
      throw UserError(out + " exists; choose another output.path, or --force to overwrite it");
    if (StudyWriter::has_partial(out) && !options.force)
      throw UserError(fmt::format("{}.part exists: an interrupted study. Continue it with "
                                  "--resume, or start over with --force",
                                  out));
    if (fs::exists(c.ckpt_dir) && cfg.model.arch != "torchscript") {
      if (!options.force)
        throw UserError(fmt::format("{} holds checkpoints of an earlier run; continue it with "
                                    "--resume, or start over with --force",
                                    c.ckpt_dir));
      fs::remove_all(c.ckpt_dir);
    }
    if (options.force) fs::remove(out + ".part");
  } else if (root && fs::exists(out) && !StudyWriter::has_partial(out)) {
    throw UserError(out + " is already complete; nothing to resume (use --force to redo it)");
  }
  world.barrier();

  c.output = OutputSpec::parse(cfg.interactions.output);
  c.train = load_split(cfg, "train");
  c.test = load_split(cfg, "test");
  if (c.train.shape != c.test.shape)
    throw UserError(fmt::format("the train and test splits have different sample shapes ({} vs "
                                "{} values); use matching files",
                                c.train.sample_size(), c.test.sample_size()));
  c.classes = std::max(c.train.num_classes, c.test.num_classes);
  c.train_labels = cfg.data.label_noise > 0
                       ? noisy_labels(c.train, cfg.data.label_noise, cfg.train.seed)
                       : c.train.labels;
  c.layout = make_player_layout(cfg, c.train);
  const int n = c.layout.n;
  const std::uint64_t len = std::uint64_t{1} << n;

  // Devices: LibTorch for the forward passes, harsanyi's kernels for the solver. Every rank
  // uses the same devices, so the results do not depend on which rank owns a sample.
  const std::string& solver_device = cfg.runtime.solver_device;
  if (cfg.runtime.device != "cpu" || solver_device == "cuda") {
    std::string reason;
    const bool gpu = cuda::device_count(&reason) > 0;
    if (cfg.runtime.device == "cuda" && !gpu)
      throw UserError("runtime.device = \"cuda\": no usable GPU (" + reason + ")");
    if (solver_device == "cuda" && !gpu)
      throw UserError("runtime.solver_device = \"cuda\": no usable GPU (" + reason +
                      "); use runtime.solver_device = \"auto\" or \"cpu\"");
    if (cfg.runtime.device != "cpu") {
      // The forward passes need a CUDA LibTorch as well; the solver needs only a GPU.
      const bool torch_gpu = gpu && torch_cuda_available();
      if (cfg.runtime.device == "cuda" && !torch_gpu)
        throw UserError("runtime.device = \"cuda\": this build's LibTorch cannot use the GPU "
                        "(a CPU-only LibTorch); use runtime.device = \"auto\" or \"cpu\"");
      c.net_device = !world.any(!torch_gpu) ? "cuda" : "cpu";
    }
    const bool all_gpu = !world.any(!gpu);
    if (solver_device == "cuda" && !all_gpu)
      throw UserError("runtime.solver_device = \"cuda\": a rank of this run has no usable GPU; "
                      "use runtime.solver_device = \"auto\" or \"cpu\"");
    // auto: the optimal solver stays on the CPU for small n, where it is faster there.
    const bool auto_gpu = cfg.runtime.device != "cpu" &&
                          (cfg.interactions.solver != "optimal" ||
                           n >= StudyConfig::kGpuOptimalMinPlayers);
    c.solver_gpu = and_or && all_gpu && (solver_device == "cuda" ||
                                          (solver_device == "auto" && auto_gpu));
  }

  // Memory: the values and interactions of every sample of an epoch, plus the solver's work.
  const SolverOptions sopt = solver_options(cfg);
  const auto S_max = static_cast<std::size_t>(
      std::max<std::int64_t>(1, (cfg.samples.train_indices.empty() ? cfg.samples.train
                                                                   : static_cast<std::int64_t>(
                                                                         cfg.samples.train_indices.size())) +
                                    (cfg.samples.test_indices.empty()
                                         ? cfg.samples.test
                                         : static_cast<std::int64_t>(cfg.samples.test_indices.size()))));
  // Overlap of one wave's solver with the next wave's forward passes (two epochs in flight).
  if (options.overlap != "auto" && options.overlap != "on" && options.overlap != "off")
    throw UserError("--overlap must be auto, on or off, not '" + options.overlap + "'");
  const bool overlap = options.overlap == "on" || (options.overlap == "auto" && c.solver_gpu);
  // Per rank: its own samples (at least a 1/P share; checked again once the epoch groups are
  // known) and its blocks of its group's samples; with overlap, two epochs' worth.
  const std::size_t ranks = static_cast<std::size_t>(world.size());
  const std::size_t per_sample_bytes =
      (overlap ? 2 : 1) * (and_or_bytes_per_sample(sopt, n, sizeof(double)) + 3 * len * sizeof(double));
  const std::size_t own_max = (S_max + ranks - 1) / ranks;
  const std::size_t need = own_max * per_sample_bytes +
                           (ranks > 1 ? std::min(S_max, own_max * ranks) * len / ranks * sizeof(double) : 0);
  const std::size_t avail = available_memory_bytes() / static_cast<std::size_t>(on_node);
  if (need > avail)
    throw UserError(fmt::format("n = {} with {} samples needs {} of memory per epoch{}, but only "
                                "{} is available{}; analyse fewer samples or players{}",
                                n, S_max, format_bytes(static_cast<double>(need)),
                                ranks > 1 ? " and rank" : "", format_bytes(static_cast<double>(avail)),
                                on_node > 1 ? fmt::format(" (1/{} of the node)", on_node) : "",
                                ranks > 1 ? ", or use more nodes" : ""));

  RunSummary summary;
  summary.path = out;

  // Stage 1: the epochs' models.
  std::vector<EpochSource> epochs;
  if (cfg.model.arch == "torchscript")
    epochs = torchscript_epochs(cfg.model.checkpoints);
  else
    summary.t_train = train_all(c, epochs, root);
  world.idle_barrier();  // the checkpoints are on disk
  summary.t_train = world.max(summary.t_train);
  summary.epochs_total = static_cast<int>(epochs.size());
  // A graceful stop (stop_signal.h) at a safe point, agreed by every rank in the same collective
  // call: here after training, and before each wave of epochs below.
  const auto stop_now = [&]() {
    if (!world.any(stop_signal() != 0)) return false;
    summary.stop_signal = stop_signal() != 0 ? stop_signal() : -1;
    summary.seconds = world.max(seconds_since(t_start));
    return true;
  };
  // Stopped in training: no study file yet; --resume trains on from the last checkpoint.
  if (stop_now()) return summary;

  // Stage 2: samples (stored in the file; a resumed run reads them back).
  StudyShape shape;
  shape.n = n;
  shape.classes = c.classes;
  shape.and_or = and_or;
  shape.has_bound = and_or && cfg.interactions.solver == "optimal";
  for (const std::string& s : cfg.interactions.store) {
    if (s == "values") shape.store_values = true;
    if (s == "interactions") shape.store_interactions = true;
  }
  std::unique_ptr<StudyWriter> writer;
  StudyHeader header;
  // A distributed run: rank 0 chooses the samples and starts the file alone (or finds the
  // interrupted one); then every rank opens it with MPI-IO and reads the samples back.
  const bool resuming = options.resume && StudyWriter::has_partial(out);
  if (resuming && !world.distributed()) {
    // The sample count comes from the stored file (shape.samples = 0).
    writer = StudyWriter::resume(out, shape, identity);
    header = writer->stored_header();
  } else if (!resuming && root) {
    header = choose_samples(c, epochs.back());
    header.config = identity;
    header.string_attributes = {
        {"output_fn", cfg.interactions.output},
        {"label", cfg.interactions.label},
        {"baseline", c.layout.baseline_description},
        {"mode", cfg.interactions.mode},
        {"solver", and_or ? cfg.interactions.solver : std::string("none (plain Harsanyi)")},
        {"model", cfg.model.arch},
        {"dataset", c.train.source},
        {"device", c.net_device}};
    header.number_attributes = {{"solver_iters", double(cfg.interactions.iters)},
                                {"solver_lr", cfg.interactions.lr},
                                {"solver_qthres", cfg.interactions.qthres},
                                {"solver_tol", cfg.interactions.tol},
                                {"tau_rel", cfg.interactions.tau_rel},
                                {"n_classes", double(c.classes)}};
    writer = StudyWriter::create(out, options.force, shape, header);
    if (world.distributed()) writer->close(), writer.reset();
  }
  if (world.distributed()) {
    world.idle_barrier();  // rank 0 has started the file
    writer = StudyWriter::resume(out, shape, identity, world);
    header = writer->stored_header();
  }
  shape = writer->shape();
  const auto S = static_cast<std::size_t>(shape.samples);
  const std::size_t K = static_cast<std::size_t>(n) + 1;

  // Stage 3: the epochs not yet written, in order.
  const std::size_t first = writer->written_epochs().size();
  for (std::size_t i = 0; i < first; ++i)
    if (i >= epochs.size() || writer->written_epochs()[i] != epochs[i].epoch)
      throw UserError(fmt::format("--resume: {}.part holds epochs that this run's checkpoints do "
                                  "not (epoch {}); start over with --force",
                                  out, writer->written_epochs()[i]));
  const std::size_t todo = epochs.size() - first;

  // The work over the ranks (DESIGN §4): E epoch groups of R = P / E consecutive ranks analyse
  // different epochs at once (in waves of E epochs, written in epoch order); inside an epoch
  // group, rank r owns samples [s0, s0 + own) and its subset group evaluates the masked inputs
  // of its members' samples, each member the block of subsets [block0, block0 + B)
  // (mpi/decomposition.h).
  const int P = world.size();
  int E = options.epoch_groups;
  if (E == 0) {
    // Enough epoch groups that every rank owns a sample, as far as the epochs and P allow.
    const std::size_t want = std::max<std::size_t>(
        1, std::min(todo, (static_cast<std::size_t>(P) + std::max<std::size_t>(S, 1) - 1) /
                              std::max<std::size_t>(S, 1)));
    E = 1;
    for (int e = static_cast<int>(std::min<std::size_t>(want, static_cast<std::size_t>(P))); e > 1; --e)
      if (P % e == 0) {
        E = e;
        break;
      }
  }
  if (E < 1 || P % E != 0)
    throw UserError(fmt::format("--epoch-groups {} does not divide the {} ranks (groups of equal "
                                "size must tile the job)",
                                E, P));
  const int R = P / E, egroup = world.rank() / R;
  const mpi::Communicator ecomm = E == 1 ? world : world.split(egroup, world.rank());
  mpi::Decomposition dec;
  try {
    dec = mpi::Decomposition::make(ecomm, S, n, options.subset_ranks);
  } catch (const std::invalid_argument& e) {
    throw UserError(e.what());
  }
  const mpi::Communicator group = ecomm.split(dec.group, dec.member);
  const mpi::Round round = dec.round(0, S == 0 ? 1 : S);  // one round: the whole epoch
  const std::size_t s0 = dec.own_begin(), own = dec.own_count(), g0 = dec.group_begin(),
                    gcount = dec.group_count();
  const std::uint64_t B = dec.block_len(), block0 = dec.block_begin();
  // This rank's memory: its own samples' solver arrays, with K > 1 its blocks of the group's
  // samples and their exchange, and the Jaccard class means (four vectors and a sum).
  const std::size_t rank_need =
      own * per_sample_bytes +
      (dec.subset_ranks > 1 ? (gcount * B + own * len) * sizeof(double) : 0) +
      (shape.jaccard ? 5 * len * sizeof(double) : 0);
  if (rank_need > avail)
    throw UserError(fmt::format("with {} epoch group{} and {} subset rank{}, this rank analyses {} "
                                "samples, which need {} of memory; only {} is available: use "
                                "fewer epoch groups (--epoch-groups), more ranks, or fewer samples",
                                E, E == 1 ? "" : "s", dec.subset_ranks,
                                dec.subset_ranks == 1 ? "" : "s", own,
                                format_bytes(static_cast<double>(rank_need)),
                                format_bytes(static_cast<double>(avail))));
  // Device memory (GPU solver): the solver's arrays for this rank's samples (its loss trace, the
  // optimal solver's step rows shared by the batch, the per-order metrics' work: about 1/8 byte
  // per element), with the forward on the GPU too their values, kept there for each epoch in
  // flight, and 512 MiB for LibTorch's forward passes. The ranks of a node share its GPU.
  if (c.solver_gpu && own > 0) {
    const bool v_there = c.net_device == "cuda" && dec.subset_ranks == 1;
    const std::size_t device_need =
        own * (and_or_device_bytes_per_sample(sopt, n, sizeof(double)) +
               static_cast<std::size_t>(and_or_trace_length(sopt)) * sizeof(double) + len / 8 +
               (v_there ? (overlap ? 2 : 1) * len * sizeof(double) : 0)) +
        (sopt.solver == "optimal" ? 4 * len * sizeof(double) : 0) +
        (c.net_device == "cuda" ? std::size_t{512} << 20 : 0);
    const std::size_t device_avail = cuda::device_free_bytes() / static_cast<std::size_t>(on_node);
    if (device_need > device_avail)
      throw UserError(fmt::format(
          "this rank's {} samples at n = {} need {} of GPU memory, but only {} is free{} on {}; "
          "use more ranks, fewer samples or players, or runtime.solver_device = \"cpu\"",
          own, n, format_bytes(static_cast<double>(device_need)),
          format_bytes(static_cast<double>(device_avail)),
          on_node > 1 ? fmt::format(" (1/{} of it per rank)", on_node) : "",
          cuda::device_description()));
  }
  writer->set_layout(E, dec.subset_ranks);
  omp_set_num_threads(rank_threads);
  set_torch_threads(rank_threads);
  if (P > 1 && options.progress)
    std::fprintf(stderr, "run: %d epoch group%s of %s; %d thread%s per rank\n", E,
                 E == 1 ? "" : "s", dec.describe().c_str(), rank_threads,
                 rank_threads == 1 ? "" : "s");
  if (options.progress)
    std::fprintf(stderr,
                 "run: %zu samples, n = %d players, %zu epochs to analyse (%zu written); forward "
                 "passes on the %s, %s\n",
                 S, n, todo, first, c.net_device == "cuda" ? "GPU" : "CPU",
                 !and_or ? "no solver (plain Harsanyi)"
                         : c.solver_gpu ? "solver on the GPU" : "solver on the CPU");
  Progress progress("run", static_cast<std::uint64_t>(todo * S), "samples", options.progress);

  std::vector<double> blocks(dec.subset_ranks > 1 ? gcount * B : 0);
  std::vector<std::int64_t> train_all_idx = iota(c.train.count()),
                            test_all_idx = iota(c.test.count());
  // One epoch on this rank's epoch group (collective over ecomm): its own samples' rows, the
  // epoch summary and the per-order picture over all samples.
  struct EpochResult {
    EpochBlock block;
    EpochSummary sum;
    OrderSummary orders;
  };
  // An epoch in flight: its values, the solver's output, its result. prepare (model evaluation
  // and forward passes), solve (the AND-OR fit, no MPI) and finish (metrics, collective) run in
  // turn; with runtime.overlap two of them alternate, and the solve of one wave runs on a worker
  // thread while the main thread prepares the next wave.
  struct Stage {
    std::vector<double> values;  // on the host: unless on the device, or when stored
    cuda::DeviceBuffer d_values;  // the values on the device (values_on_device)
    bool values_on_device = false;
    OrderRows rows;               // the per-order rows (from the device after a GPU solve)
    bool rows_on_device = false;
    AndOrBatch<double> fit;
    EpochResult result;
    double t_solve = 0.0;
  };
  const auto prepare = [&](std::size_t ei, Stage& st) {
    st.result = EpochResult();
    std::vector<double>& values = st.values;
    EpochSummary& sum = st.result.sum;
    sum.epoch = epochs[ei].epoch;
    auto t0 = Clock::now();
    auto net = network_for(c, epochs[ei]);
    const EvalStats tr =
        evaluate_distributed(*net, c.train, train_all_idx, c.train_labels, 256, ecomm);
    const EvalStats te = evaluate_distributed(*net, c.test, test_all_idx, c.test.labels, 256, ecomm);
    sum.train_loss = tr.loss;
    sum.train_acc = tr.accuracy;
    sum.test_loss = te.loss;
    sum.test_acc = te.accuracy;
    std::vector<std::int32_t> labels(header.sample_label);
    if (cfg.interactions.label == "predicted") {
      for (std::size_t s = g0; s < g0 + gcount; ++s) {
        const Dataset& d = header.sample_split[s] ? c.test : c.train;
        labels[s] = net->predict(d, {header.sample_index[s]}, 1)[0];
      }
    }
    sum.t_eval = seconds_since(t0);

    t0 = Clock::now();
    // This rank's masked inputs: its block of subsets of each of its group's samples (all the
    // subsets of its own samples when K = 1), then the exchange that gives it its own samples.
    // The samples' blocks go through the model in one packed pass, so that chunks of
    // forward_batch inputs stay full when a block is shorter (small n); a sample's values are
    // bitwise those of its own pass. They land in place: the pass needs no memory but a chunk.
    // With the forward and the solver on the GPU and whole samples per rank, v stays on the
    // device: the solver reads it there, and the host gets a copy only to store it.
    st.values_on_device = c.solver_gpu && dec.subset_ranks == 1 && net->values_on_device();
    double* dst = nullptr;
    if (st.values_on_device) {
      if (gcount != own || B != len) throw std::logic_error("run: a rank's own samples, whole");
      if (st.d_values.bytes() != own * len * sizeof(double))
        st.d_values = cuda::DeviceBuffer(own * len * sizeof(double));
      dst = st.d_values.as<double>();
    } else {
      st.d_values = cuda::DeviceBuffer();
      values.resize(own * len);
      dst = dec.subset_ranks > 1 ? blocks.data() : values.data();
    }
    std::vector<MaskedRequest> requests(gcount);
    for (std::size_t s = g0; s < g0 + gcount; ++s)
      requests[s - g0] = {header.sample_split[s] ? &c.test : &c.train, header.sample_index[s],
                          labels[s], block0, B, dst + (s - g0) * B, st.values_on_device};
    net->masked_values_packed(requests, c.layout, c.output, cfg.runtime.forward_batch);
    const auto not_finite = [&](std::size_t s, std::uint64_t j, double x) {
      return UserError(fmt::format(
          "epoch {}, sample {} ({} index {}): v(subset {}) is {}: the model's output is not "
          "finite (did training diverge? lower train.lr); the epochs before it are kept, "
          "continue with --resume after fixing the cause",
          sum.epoch, s, header.sample_split[s] ? "test" : "train", header.sample_index[s],
          block0 + j, x));
    };
    if (st.values_on_device) {
      const std::uint64_t bad = cuda::first_nonfinite(dst, gcount * B, nullptr);
      if (bad < gcount * B) {
        double x = 0.0;
        cuda::copy_bytes(&x, dst + bad, sizeof(double));
        throw not_finite(g0 + bad / B, bad % B, x);
      }
      if (c.output.subtract_empty) cuda::subtract_first(dst, own, len, nullptr);
      if (shape.store_values) {
        values.resize(own * len);
        cuda::copy_bytes(values.data(), dst, own * len * sizeof(double));
      } else {
        std::vector<double>().swap(values);
      }
      cuda::synchronize(nullptr);
    } else {
      for (std::size_t s = g0; s < g0 + gcount; ++s) {
        const double* v = dst + (s - g0) * B;
        for (std::uint64_t j = 0; j < B; ++j)
          if (!std::isfinite(v[j])) throw not_finite(s, j, v[j]);
      }
      if (dec.subset_ranks > 1)
        mpi::gather_own_samples(dec, round, group, blocks.data(), values.data());
      for (std::size_t s = 0; s < own; ++s) subtract_empty(c.output, values.data() + s * len, len);
    }
    sum.t_forward = seconds_since(t0);
  };
  // This rank's own samples through the solver: compute only (no MPI, no LibTorch), so that it
  // may run on a worker thread.
  const auto solve = [&](Stage& st) {
    const auto t0 = Clock::now();
    const std::vector<double>& values = st.values;
    AndOrBatch<double>& fit = st.fit;
    if (and_or) {
      const double* v = st.values_on_device ? st.d_values.as<double>() : values.data();
      // On the GPU the folding and the per-order rows are done on the device too
      // (cuda/order_metrics.h, bitwise the host's); I_and and I_or come back only for the
      // Jaccard class means or to be stored, p and q not at all.
      cuda::DeviceEpilogue<double> epilogue;
      st.rows_on_device = c.solver_gpu && own > 0;
      if (st.rows_on_device) {
        epilogue.copy_interactions = shape.jaccard || shape.store_interactions;
        epilogue.copy_pq = false;
        epilogue.on_device = [&](double* d_and, double* d_or, const double*, cuda::Stream stream) {
          cuda::order_metrics_batch<double>(d_and, d_or, nullptr, own, n, cfg.interactions.tau_rel,
                                            ThresholdReference::MaxInteraction, true, st.rows,
                                            stream);
        };
      }
      if (own > 0)
        fit_and_or_batch<double>(v, own, n, sopt, c.solver_gpu, fit, nullptr,
                                 st.rows_on_device ? &epilogue : nullptr);
      fit.loss.resize(own);
      if (shape.has_bound) fit.bound.resize(own);
    } else {
      fit.and_.assign(values.begin(), values.end());
      moebius_transform(fit.and_.data(), n, own);
      fit.loss.assign(own, 0.0);
      for (std::size_t s = 0; s < own; ++s) fit.loss[s] = sum_abs(fit.and_.data() + s * len, len);
    }
    st.t_solve = seconds_since(t0);
  };
  // The metrics of the solved samples (collective over the epoch group).
  const auto finish = [&](Stage& st) {
    const auto t0 = Clock::now();
    const std::vector<double>& values = st.values;
    AndOrBatch<double>& fit = st.fit;
    EpochResult& result = st.result;
    EpochSummary& sum = result.sum;
    EpochBlock& block = result.block;
    block.sample0 = static_cast<std::int64_t>(s0);
    block.count = static_cast<std::int64_t>(own);
    block.loss = fit.loss;
    if (shape.has_bound) block.bound = fit.bound;
    for (std::size_t s = 0; s < own; ++s)
      if (!std::isfinite(fit.loss[s]))
        throw UserError(fmt::format("epoch {}, sample {}: the solver diverged (loss {}); lower "
                                    "interactions.lr",
                                    sum.epoch, s0 + s, fit.loss[s]));
    // The folding and the per-order rows: done on the device after a GPU fit (solve), here
    // otherwise; the same function of the same rows either way (bitwise).
    OrderRows& rows = st.rows;
    if (!st.rows_on_device)
      rows = order_rows(fit.and_.data(), and_or ? fit.or_.data() : nullptr,
                        static_cast<const double*>(nullptr), own, n, cfg.interactions.tau_rel,
                        ThresholdReference::MaxInteraction, true);
    block.threshold = std::move(rows.threshold);
    block.and_pos = std::move(rows.and_pos);
    block.and_neg = std::move(rows.and_neg);
    block.and_count = std::move(rows.and_count);
    block.or_pos = std::move(rows.or_pos);
    block.or_neg = std::move(rows.or_neg);
    block.or_count = std::move(rows.or_count);
    if (shape.jaccard) {
      // Class-mean interaction vectors of each split: sums over the samples of every rank,
      // reproducible whatever the rank count (mpi/reproducible_sum.h), then the metric.
      sum.jaccard.assign(static_cast<std::size_t>(c.classes) * K,
                         std::numeric_limits<double>::quiet_NaN());
      const int kinds = and_or ? 2 : 1;
      for (int cls = 0; cls < c.classes; ++cls) {
        std::vector<const double*> members[2][2];
        std::int64_t count[2] = {0, 0};
        for (std::size_t s = 0; s < own; ++s) {
          if (header.sample_label[s0 + s] != cls) continue;
          const int sp = header.sample_split[s0 + s];
          for (int k = 0; k < kinds; ++k)
            members[sp][k].push_back((k == 0 ? fit.and_.data() : fit.or_.data()) + s * len);
        }
        for (int sp = 0; sp < 2; ++sp)
          count[sp] = ecomm.sum(static_cast<std::int64_t>(members[sp][0].size()));
        if (count[0] == 0 || count[1] == 0) continue;  // the same on every rank
        std::vector<double> mean[2][2];
        for (int sp = 0; sp < 2; ++sp)
          for (int k = 0; k < kinds; ++k) {
            mean[sp][k] = mpi::reproducible_sum(members[sp][k], len, ecomm);
            for (double& x : mean[sp][k]) x /= static_cast<double>(count[sp]);
          }
        jaccard_by_order(mean[0][0].data(), and_or ? mean[0][1].data() : nullptr,
                         mean[1][0].data(), and_or ? mean[1][1].data() : nullptr, n,
                         &sum.jaccard[static_cast<std::size_t>(cls) * K]);
      }
    }
    if (shape.store_values) block.values = values;
    if (shape.store_interactions) {
      block.inter_and.assign(fit.and_.begin(), fit.and_.begin() + static_cast<std::ptrdiff_t>(own * len));
      if (and_or)
        block.inter_or.assign(fit.or_.begin(), fit.or_.begin() + static_cast<std::ptrdiff_t>(own * len));
    }
    sum.t_solver = st.t_solve + seconds_since(t0);  // the fit and the metrics, not the wait
    // Stage times: the slowest rank's.
    sum.t_eval = ecomm.max(sum.t_eval);
    sum.t_forward = ecomm.max(sum.t_forward);
    sum.t_solver = ecomm.max(sum.t_solver);
    // The epoch over all samples (every rank's rows, gathered in sample order), for the log.
    result.orders = epoch_orders(block, !and_or, n, ecomm);
  };

  const EpochBlock nothing;  // the rows a rank writes for an epoch of another epoch group
  // Writes the E epochs of a wave (this rank's own result for epoch `mine`).
  const auto write_wave = [&](std::size_t wave, const EpochResult& result) {
    const std::size_t mine = wave + static_cast<std::size_t>(egroup);
    for (std::size_t ei = wave; ei < std::min(epochs.size(), wave + static_cast<std::size_t>(E)); ++ei) {
      const bool own_epoch = ei == mine;
      // The epoch's summary, from the first rank of its epoch group to every rank.
      std::vector<double> packed;
      if (own_epoch && ecomm.root()) {
        const EpochSummary& m = result.sum;
        packed = {double(m.epoch), m.train_loss, m.test_loss, m.train_acc, m.test_acc, m.t_eval,
                  m.t_forward, m.t_solver, result.orders.order, result.orders.and_count,
                  result.orders.or_count};
        packed.insert(packed.end(), m.jaccard.begin(), m.jaccard.end());
      }
      world.broadcast(packed, static_cast<int>((ei - wave) * static_cast<std::size_t>(R)));
      EpochSummary sum;
      sum.epoch = static_cast<std::int32_t>(packed[0]);
      sum.train_loss = packed[1], sum.test_loss = packed[2];
      sum.train_acc = packed[3], sum.test_acc = packed[4];
      sum.t_eval = packed[5], sum.t_forward = packed[6], sum.t_solver = packed[7];
      sum.jaccard.assign(packed.begin() + 11, packed.end());

      auto t0 = Clock::now();
      writer->begin_epoch();
      writer->write_block(own_epoch ? result.block : nothing);
      sum.t_write = world.max(seconds_since(t0));  // the epoch summary's own write is not timed
      writer->end_epoch(sum);
      fault_point("epoch", sum.epoch);
      progress.advance(S);
      progress.note(fmt::format(
          "run: epoch {}: loss {:.4f} train / {:.4f} test (gap {:+.4f}), accuracy {:.3f} / {:.3f}, "
          "mean order {:.2f}, salient {:.1f} AND{} per sample",
          sum.epoch, sum.train_loss, sum.test_loss, sum.test_loss - sum.train_loss, sum.train_acc,
          sum.test_acc, packed[8], packed[9],
          and_or ? fmt::format(" + {:.1f} OR", packed[10]) : std::string()));

      summary.t_eval += sum.t_eval;
      summary.t_forward += sum.t_forward;
      summary.t_solver += sum.t_solver;
      summary.t_write += sum.t_write;
      ++summary.epochs_analysed;
    }
  };

  Stage stages[2];
  std::future<void> solving;  // after the stages: destroyed (waited for) before them
  constexpr std::size_t kNone = ~std::size_t{0};
  std::size_t pending = kNone;  // the wave whose solve has started and that is not written yet
  int pending_stage = 0;
  // Finishes and writes the pending wave (every rank, in the same order: it is collective).
  const auto complete = [&] {
    if (pending == kNone) return;
    Stage& st = stages[pending_stage];
    if (solving.valid()) solving.get();  // rethrows what the solver threw
    if (pending + static_cast<std::size_t>(egroup) < epochs.size()) finish(st);
    write_wave(pending, st.result);
    pending = kNone;
  };
  int cur = 0;
  for (std::size_t wave = first; wave < epochs.size(); wave += static_cast<std::size_t>(E)) {
    // --until-epoch (the same on every rank) or a stop signal: the file stays OUT.part, with
    // every wave whose solve has started.
    summary.stopped_until = options.until_epoch >= 0 && epochs[wave].epoch > options.until_epoch;
    if (summary.stopped_until || stop_now()) {
      complete();
      progress.finish();
      summary.epochs_written = static_cast<int>(writer->written_epochs().size());
      summary.seconds = world.max(seconds_since(t_start));
      writer->close();  // every rank here: a collective close of a parallel file
      return summary;
    }
    const std::size_t mine = wave + static_cast<std::size_t>(egroup);
    Stage& st = stages[cur];
    if (mine < epochs.size()) prepare(mine, st);
    complete();  // the previous wave, whose solve ran during this prepare
    if (mine < epochs.size()) {
      if (overlap)
        solving = std::async(std::launch::async, [&st, &solve, rank_threads] {
          omp_set_num_threads(rank_threads);  // a new thread starts from the default
          solve(st);
        });
      else
        solve(st);
    }
    pending = wave;
    pending_stage = cur;
    cur ^= 1;
    if (!overlap) complete();
  }
  complete();
  progress.finish();
  summary.seconds = world.max(seconds_since(t_start));
  summary.epochs_written = static_cast<int>(writer->written_epochs().size());
  writer->finish(summary.seconds);
  return summary;
}

}  // namespace harsanyi
