// harsanyi extract: read /values, fit, compute metrics, write the DESIGN §5 values-file outputs.
#include "extraction.h"

#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <algorithm>
#include <filesystem>
#include <vector>

#include <fmt/format.h>

#include "cuda_backend.h"
#include "decomposition.h"
#include "distributed_moebius.h"
#include "h5_wrappers.h"
#include "harsanyi_config.h"
#include "lattice_transforms.h"
#include "output_file.h"
#include "progress.h"
#include "system_memory.h"

namespace harsanyi {
namespace fs = std::filesystem;

SolverOptions ExtractOptions::solver_options() const {
  SolverOptions s;
  s.solver = solver;
  s.sgd = sgd;
  s.optimal = optimal;
  s.optimal.qthres = sgd.qthres;
  s.optimal.trace_every = sgd.trace_every;
  return s;
}

std::string extract_config_text(const ExtractOptions& o) {
  std::string s;
  s += "[extract]\n";
  s += fmt::format("values = \"{}\"\nout = \"{}\"\n", o.values_path, o.out_path);
  s += fmt::format("mode = \"{}\"\nsolver = \"{}\"\ndtype = \"{}\"\ndevice = \"{}\"\n", o.mode,
                   o.solver, o.dtype, o.device);
  s += fmt::format("iters = {}\nlr = {:.17g}\nmomentum = {:.17g}\nqthres = {:.17g}\n", o.sgd.iters,
                   o.sgd.lr, o.sgd.momentum, o.sgd.qthres);
  s += fmt::format("trace_every = {}\ntau_rel = {:.17g}\ntau_ref = \"{}\"\nfold = {}\n",
                   o.sgd.trace_every, o.tau_rel, to_string(o.tau_ref), o.fold ? "true" : "false");
  s += fmt::format("tol = {:.17g}\nmax_iters = {}\ncheck_every = {}\nprimal_weight = {:.17g}\n",
                   o.optimal.tol, o.optimal.max_iters, o.optimal.check_every,
                   o.optimal.primal_weight);
  s += fmt::format("batch = {}\nthreads = {}\n", o.batch, o.threads);
  return s;
}

namespace {

// Shape checks on the input values; returns n.
int check_values_shape(const h5::File& in, std::size_t& samples) {
  if (!in.exists("/values"))
    throw UserError(in.path() + ": no dataset /values (expected /values [samples, 2^n] of "
                                "float32 or float64)");
  const h5::DatasetInfo info = in.info("/values");
  if (info.dims.size() != 2)
    throw UserError(fmt::format("{}: /values has {} dimensions; expected 2 ([samples, 2^n])",
                                in.path(), info.dims.size()));
  if (info.type_class != H5T_FLOAT)
    throw UserError(in.path() + ": /values is not floating point; expected float32 or float64");
  samples = info.dims[0];
  const std::uint64_t len = info.dims[1];
  if (samples == 0) throw UserError(in.path() + ": /values holds no samples");
  if (len == 0 || (len & (len - 1)) != 0)
    throw UserError(fmt::format("{}: /values rows have length {}, which is not a power of two "
                                "(one value per subset of n players: 2^n)",
                                in.path(), len));
  const int n = __builtin_ctzll(len);
  constexpr int kMaxExtractPlayers = 33;  // salient counts per order are int32 (C(34,17) > 2^31)
  if (n > kMaxExtractPlayers)
    throw UserError(fmt::format("{}: n = {} players is above the supported maximum {} of extract",
                                in.path(), n, kMaxExtractPlayers));
  return n;
}

// v holds the subsets [first, first + len) of `sample`.
template <class T> void check_finite(const T* v, std::size_t len, std::size_t sample,
                                     std::uint64_t first, const std::string& path) {
  for (std::size_t j = 0; j < len; ++j)
    if (const std::uint64_t i = first + j; !std::isfinite(v[j]))
      throw UserError(fmt::format(
          "{}: /values[{}, {}] is {} (sample {}, subset {}): the model produced a non-finite "
          "output; fix the values (e.g. a smaller learning rate in training, or an output "
          "function that avoids log(0)) and rerun",
          path, sample, i, std::isnan(v[j]) ? "NaN" : "Inf", sample, i));
}

bool use_cuda(const std::string& device, std::string& note) {
  if (device == "cpu") return false;
  std::string reason;
  const int count = cuda::device_count(&reason);
  if (device == "cuda" && count == 0)
    throw UserError("--device cuda: no usable GPU (" + reason + ")");
  if (count == 0) {
    note = "no GPU (" + reason + "): using the CPU kernels";
    return false;
  }
  note = "using GPU " + cuda::device_description();
  return true;
}

template <class T>
ExtractSummary extract_typed(const ExtractOptions& opt, const h5::File& in, int n,
                             std::size_t samples, const mpi::Communicator& world) {
  const std::uint64_t len = subset_count(n);
  const bool and_or = opt.mode == "and-or";
  const SolverOptions solver = opt.solver_options();
  const bool optimal = and_or && solver.solver == "optimal";
  const int tl = and_or ? and_or_trace_length(solver) : 0;
  const int threads = omp_get_max_threads();

  // The work over the ranks: groups split the samples, the K ranks of a group split each
  // sample's subsets (DESIGN §4; mpi/decomposition.h).
  mpi::Decomposition d;
  try {
    d = mpi::Decomposition::make(world, samples, n, opt.subset_ranks);
  } catch (const std::invalid_argument& e) {
    throw UserError(e.what());
  }
  const mpi::Communicator group = world.split(d.group, d.member);
  const int K = d.subset_ranks;
  const std::uint64_t B = d.block_len();
  if (world.size() > 1 && opt.progress) std::fprintf(stderr, "extract: %s\n", d.describe().c_str());

  std::string device_note;
  // Every rank uses the same kernels (a rank without a GPU makes them all use the CPU), so the
  // results do not depend on which rank owns a sample.
  const bool gpu_here =
      and_or && opt.device != "cpu" && use_cuda(opt.device, device_note);
  const bool gpu = !world.any(!gpu_here);
  if (gpu_here && !gpu) device_note = "another rank has no GPU: every rank uses the CPU kernels";
  if (!device_note.empty() && opt.progress) std::fprintf(stderr, "extract: %s\n", device_note.c_str());

  // Memory: refuse before allocating when one sample will not fit in this rank's share of the
  // node. and-or: the solver's arrays (and_or_bytes_per_sample) plus the Shapley scratch; and:
  // the values and I_and, plus scratch; with K > 1, the blocks of the round and their exchange.
  const std::size_t per_sample =
      (and_or ? and_or_bytes_per_sample(solver, n, sizeof(T)) : 2 * len * sizeof(T)) +
      len * sizeof(T) + (K > 1 ? 3 * B * static_cast<std::size_t>(K) * sizeof(T) : 0);
  const int on_node = world.ranks_on_node();
  const std::size_t avail = available_memory_bytes() / static_cast<std::size_t>(on_node);
  const std::string share = on_node > 1 ? fmt::format(" (this rank's 1/{} of the node)", on_node) : "";
  if (per_sample > avail)
    throw UserError(fmt::format(
        "n = {} needs {} of memory per sample ({} arrays of 2^{} {} values), but only {}{} is "
        "available; use --dtype f32, fewer players, fewer ranks per node, or a node with more "
        "memory",
        n, format_bytes(static_cast<double>(per_sample)), per_sample / (len * sizeof(T)), n,
        sizeof(T) == 8 ? "f64" : "f32", format_bytes(static_cast<double>(avail)), share));
  if (gpu) {
    const std::size_t dev = and_or_device_bytes_per_sample(solver, n, sizeof(T));
    const std::size_t free = cuda::device_free_bytes();
    if (dev > free)
      throw UserError(fmt::format("n = {} needs {} of GPU memory per sample, only {} free; use "
                                  "--device cpu or --dtype f32",
                                  n, format_bytes(static_cast<double>(dev)),
                                  format_bytes(static_cast<double>(free))));
  }
  std::size_t batch = opt.batch;
  const std::size_t own_max = std::max<std::size_t>(1, (samples + d.ranks - 1) / d.ranks);
  if (batch == 0) {
    const std::size_t by_memory = std::max<std::size_t>(1, avail / 2 / per_sample);
    const std::size_t want = gpu ? 1024 : static_cast<std::size_t>(4 * threads);
    batch = std::min(own_max, std::min(by_memory, want));
    if (gpu)
      batch = std::min(batch, std::max<std::size_t>(1, cuda::device_free_bytes() / 2 /
                                                           and_or_device_bytes_per_sample(solver, n, sizeof(T))));
    // The same batch on every rank (the rounds of collective writes must match).
    batch = static_cast<std::size_t>(world.min(static_cast<std::int64_t>(batch)));
  }
  batch = std::min(batch, own_max);
  if (batch * per_sample > avail)
    throw UserError(fmt::format("--batch {} needs {} of memory ({} per sample), but only {}{} is "
                                "available; use a smaller --batch (or 0 to choose it)",
                                batch, format_bytes(static_cast<double>(batch * per_sample)),
                                format_bytes(static_cast<double>(per_sample)),
                                format_bytes(static_cast<double>(avail)), share));

  OutputFile out(opt.out_path, opt.force, world);
  const hsize_t S = samples, L = len, Kn = static_cast<hsize_t>(n) + 1;
  const hsize_t chunk_rows = std::max<hsize_t>(1, (hsize_t{1} << 20) / L);
  out->create_dataset("/interactions/and", h5::Dtype::F64, {S, L}, chunk_rows);
  if (and_or) {
    out->create_dataset("/interactions/or", h5::Dtype::F64, {S, L}, chunk_rows);
    out->create_dataset("/extraction/p", h5::Dtype::F64, {S, L}, chunk_rows);
    out->create_dataset("/extraction/q", h5::Dtype::F64, {S, L}, chunk_rows);
    if (tl > 0) out->create_dataset("/extraction/loss_trace", h5::Dtype::F64, {S, hsize_t(tl)});
  }
  out->create_dataset("/extraction/loss", h5::Dtype::F64, {S});
  if (optimal) {
    out->create_dataset("/extraction/bound", h5::Dtype::F64, {S});
    out->create_dataset("/extraction/iterations", h5::Dtype::I64, {S});
  }
  out->create_dataset("/extraction/threshold", h5::Dtype::F64, {S});
  out->create_dataset("/attribution/shapley", h5::Dtype::F64, {S, hsize_t(n)});
  const char* kinds[] = {"and", "or"};
  for (int k = 0; k < (and_or ? 2 : 1); ++k) {
    out->create_dataset(fmt::format("/orders/{}_pos", kinds[k]), h5::Dtype::F64, {S, Kn});
    out->create_dataset(fmt::format("/orders/{}_neg", kinds[k]), h5::Dtype::F64, {S, Kn});
    out->create_dataset(fmt::format("/orders/{}_count", kinds[k]), h5::Dtype::I32, {S, Kn});
  }

  // Root attributes (DESIGN §5); every rank writes the same values (a collective call).
  std::string output_fn = "unknown (computed outside harsanyi)", baseline = output_fn;
  if (in.has_attribute("output_fn")) output_fn = in.string_attribute("output_fn");
  if (in.has_attribute("baseline")) baseline = in.string_attribute("baseline");
  std::string created = utc_now();
  world.broadcast(created);
  out->set_attribute("schema", std::string("harsanyi/1"));
  out->set_attribute("kind", std::string("extraction"));
  out->set_attribute("tool_version", std::string(HARSANYI_VERSION));
  out->set_attribute("git_sha", std::string(HARSANYI_GIT_SHA));
  out->set_attribute("created_utc", created);
  out->set_attribute("config", extract_config_text(opt));
  out->set_attribute("n_players", std::int64_t{n});
  out->set_attribute("subset_index", std::string("bit i = player i"));
  out->set_attribute("output_fn", output_fn);
  out->set_attribute("baseline", baseline);
  out->set_attribute("input_file", opt.values_path);
  out->set_attribute("mode", opt.mode);
  out->set_attribute("solver", and_or ? opt.solver : std::string("none (plain Harsanyi)"));
  if (optimal) {
    out->set_attribute("solver_method",
                       std::string("restarted reflected Halpern PDHG on the (v_and, v_or) LP, "
                                   "Pock-Chambolle diagonal steps, certified dual bound"));
    out->set_attribute("solver_tol", solver.optimal.tol);
    out->set_attribute("solver_max_iters", std::int64_t{solver.optimal.max_iters});
    out->set_attribute("solver_check_every", std::int64_t{solver.optimal.check_every});
    out->set_attribute("solver_primal_weight", solver.optimal.primal_weight);
  } else {
    out->set_attribute("solver_iters", std::int64_t{opt.sgd.iters});
    out->set_attribute("solver_lr", opt.sgd.lr);
    out->set_attribute("solver_lr_schedule",
                       std::string("logspace(log10(lr), log10(lr)-1, iters)"));
    out->set_attribute("solver_momentum", opt.sgd.momentum);
  }
  out->set_attribute("solver_qthres", opt.sgd.qthres);
  out->set_attribute("trace_every", std::int64_t{opt.sgd.trace_every});
  out->set_attribute("dtype", opt.dtype);
  out->set_attribute("tau_rel", opt.tau_rel);
  out->set_attribute("tau_reference", std::string(to_string(opt.tau_ref)));
  out->set_attribute("or_folding",
                     std::string(and_or && opt.fold
                                     ? "folded: OR terms of order <= 1 added to AND, zero in OR"
                                     : "raw"));
  out->set_attribute("device", std::string(gpu ? "cuda" : "cpu"));
  out->set_attribute("mpi_ranks", std::int64_t{world.size()});
  out->set_attribute("subset_ranks", std::int64_t{K});

  // Progress counts this rank's work (rank 0 reports; the ranks' shares are balanced).
  const std::uint64_t work = and_or ? and_or_progress_work(solver, d.own_count()) : d.own_count();
  Progress progress("extract", work, and_or ? and_or_progress_unit(solver) : "samples",
                    opt.progress);
  std::size_t not_converged = 0;
  double worst_gap = 0.0;
  const auto t0 = std::chrono::steady_clock::now();

  LatticeVector<T> values(batch * len), shap_div(len);
  // K > 1: this rank's block of every sample of the round (values, and I_and for mode and).
  LatticeVector<T> blocks(K > 1 ? batch * static_cast<std::size_t>(K) * B : 0);
  std::vector<double> loss(batch), thresholds(batch), shapley(batch * n);
  std::vector<double> pos[2], neg[2];
  std::vector<std::int32_t> count[2];
  for (int k = 0; k < 2; ++k) {
    pos[k].resize(batch * Kn);
    neg[k].resize(batch * Kn);
    count[k].resize(batch * Kn);
  }
  AndOrBatch<T> fit;
  const std::size_t rounds = d.rounds(batch);
  for (std::size_t t = 0; t < rounds; ++t) {
    const mpi::Round round = d.round(t, batch);
    const std::size_t s0 = round.my_begin(), b = round.my_count();
    // This rank's values: its own rows (K = 1), or its block of every sample of the group's
    // round, exchanged so that it holds its own rows.
    bool and_done = false;  // mode and, K > 1: I_and computed across the group and written
    if (K == 1) {
      in.read_rows<T>("/values", s0, b, values.data());
      for (std::size_t s = 0; s < b; ++s)
        check_finite(values.data() + s * len, len, s0 + s, 0, in.path());
    } else {
      for (int m = 0; m < K; ++m) {
        T* dst = blocks.data() + round.offset(m) * B;
        in.read_block<T>("/values", {round.begin[m], d.block_begin()}, {round.count[m], B}, dst);
        for (std::size_t s = 0; s < round.count[m]; ++s)
          check_finite(dst + s * B, B, round.begin[m] + s, d.block_begin(), in.path());
      }
      mpi::gather_own_samples(d, round, group, blocks.data(), values.data());
      if (!and_or) {
        // The plain Harsanyi transform finishes across the group (mpi/distributed_moebius.h),
        // each rank writing its columns of I_and; the metrics need whole rows of I_and.
        mpi::distributed_moebius(blocks.data(), n, round.total(), group, opt.exchange);
        for (int m = 0; m < K; ++m)
          out->write_block("/interactions/and", {round.begin[m], d.block_begin()},
                           {round.count[m], B}, blocks.data() + round.offset(m) * B);
        fit.and_.resize(b * len);
        mpi::gather_own_samples(d, round, group, blocks.data(), fit.and_.data());
        and_done = true;
      }
    }

    if (and_or) {
      if (b > 0) fit_and_or_batch(values.data(), b, n, solver, gpu, fit, &progress);
      if (optimal)
        for (std::size_t s = 0; s < b; ++s) {
          const double gap = (fit.loss[s] - fit.bound[s]) / std::max(std::fabs(fit.loss[s]), 1e-300);
          worst_gap = std::max(worst_gap, gap);
          if (!(gap <= solver.optimal.tol)) ++not_converged;
        }
    } else {
      if (!and_done) {
        fit.and_.assign(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(b * len));
        moebius_transform(fit.and_.data(), n, b);
      }
      fit.loss.assign(b, 0.0);
      for (std::size_t s = 0; s < b; ++s) fit.loss[s] = sum_abs(fit.and_.data() + s * len, len);
    }

    for (std::size_t s = 0; s < b; ++s) {
      if (!std::isfinite(fit.loss[s]))
        throw UserError(fmt::format("the solver diverged on sample {} (loss {}); lower --lr",
                                    s0 + s, fit.loss[s]));
      T* a = fit.and_.data() + s * len;
      T* o = and_or ? fit.or_.data() + s * len : nullptr;
      if (o && opt.fold) fold_low_orders(a, o, n);
      const T* v = values.data() + s * len;
      thresholds[s] = salient_threshold(a, o, v, n, opt.tau_rel, opt.tau_ref);
      order_strength(a, n, thresholds[s], &pos[0][s * Kn], &neg[0][s * Kn], &count[0][s * Kn]);
      if (o) order_strength(o, n, thresholds[s], &pos[1][s * Kn], &neg[1][s * Kn], &count[1][s * Kn]);
      if (and_or) {
        std::copy(v, v + len, shap_div.begin());
        moebius_transform(shap_div.data(), n);
      } else {
        std::copy(a, a + len, shap_div.begin());  // mode and: I_and is the Möbius transform of v
      }
      shapley_from_dividends(shap_div.data(), n, shapley.data() + s * n);
    }

    // Every rank writes its rows (a collective write; a rank without samples writes none).
    if (!and_done) out->write_rows("/interactions/and", s0, b, fit.and_.data());
    if (and_or) {
      out->write_rows("/interactions/or", s0, b, fit.or_.data());
      out->write_rows("/extraction/p", s0, b, fit.p.data());
      out->write_rows("/extraction/q", s0, b, fit.q.data());
      if (tl > 0) out->write_rows("/extraction/loss_trace", s0, b, fit.trace.data());
    }
    out->write_rows("/extraction/loss", s0, b, fit.loss.data());
    if (optimal) {
      out->write_rows("/extraction/bound", s0, b, fit.bound.data());
      out->write_rows("/extraction/iterations", s0, b, fit.iterations.data());
    }
    out->write_rows("/extraction/threshold", s0, b, thresholds.data());
    out->write_rows("/attribution/shapley", s0, b, shapley.data());
    for (int k = 0; k < (and_or ? 2 : 1); ++k) {
      out->write_rows(fmt::format("/orders/{}_pos", kinds[k]), s0, b, pos[k].data());
      out->write_rows(fmt::format("/orders/{}_neg", kinds[k]), s0, b, neg[k].data());
      out->write_rows(fmt::format("/orders/{}_count", kinds[k]), s0, b, count[k].data());
    }
    if (!and_or) progress.advance(b);
  }
  progress.finish();
  not_converged = static_cast<std::size_t>(world.sum(static_cast<std::int64_t>(not_converged)));
  worst_gap = world.max(worst_gap);
  if (optimal && not_converged > 0 && opt.progress)
    std::fprintf(stderr,
                 "extract: warning: %zu of %zu samples did not reach --tol %g within --max-iters "
                 "%d (largest relative gap %.3g; /extraction/bound holds each certified bound)\n",
                 not_converged, samples, solver.optimal.tol, solver.optimal.max_iters, worst_gap);
  if (optimal) {
    out->set_attribute("solver_not_converged", static_cast<std::int64_t>(not_converged));
    out->set_attribute("solver_max_relative_gap", worst_gap);
  }
  ExtractSummary summary;
  summary.n = n;
  summary.samples = samples;
  summary.batch = batch;
  summary.device = gpu ? "cuda" : "cpu";
  summary.seconds =
      world.max(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  out->set_attribute("elapsed_s", summary.seconds);
  out.commit();
  return summary;
}

}  // namespace

ExtractSummary run_extract(const ExtractOptions& opt, const mpi::Communicator& world) {
  if (opt.mode != "and" && opt.mode != "and-or")
    throw UserError("--mode must be 'and' or 'and-or', not '" + opt.mode + "'");
  check_solver_options(opt.solver_options());
  if (opt.dtype != "f32" && opt.dtype != "f64")
    throw UserError("--dtype must be f32 or f64, not '" + opt.dtype + "'");
  if (opt.device != "auto" && opt.device != "cpu" && opt.device != "cuda")
    throw UserError("--device must be auto, cpu or cuda, not '" + opt.device + "'");
  if (opt.sgd.iters < 1) throw UserError("--iters must be at least 1");
  if (!(opt.sgd.lr > 0)) throw UserError("--lr must be positive");
  if (!(opt.tau_rel >= 0)) throw UserError("--tau-rel must be >= 0");
  if (opt.sgd.trace_every < 0) throw UserError("--trace-every must be >= 0");
  if (opt.out_path.empty()) throw UserError("--out is required");
  // Ranks sharing a node share its cores (ranks_on_node is collective: every rank calls it).
  const int on_node = world.ranks_on_node();
  if (opt.threads > 0)
    omp_set_num_threads(opt.threads);
  else if (world.size() > 1 && !std::getenv("OMP_NUM_THREADS"))
    omp_set_num_threads(std::max(1, omp_get_num_procs() / on_node));

  h5::File in = [&] {
    try {
      return h5::File::open_read(opt.values_path);
    } catch (const h5::H5Error& e) {
      throw UserError(e.what());
    }
  }();
  if (world.root()) OutputFile::check_target(opt.out_path, opt.force);
  if (fs::exists(opt.out_path) && fs::equivalent(opt.out_path, opt.values_path))
    throw UserError("--out is the input file; choose another output path");
  std::size_t samples = 0;
  const int n = check_values_shape(in, samples);
  try {
    return opt.dtype == "f32" ? extract_typed<float>(opt, in, n, samples, world)
                              : extract_typed<double>(opt, in, n, samples, world);
  } catch (const h5::H5Error& e) {
    throw UserError(e.what());
  }
}

}  // namespace harsanyi
