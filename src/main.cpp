// harsanyi: AND-OR interactions of deep networks at HPC scale. Command-line entry point.
#include <omp.h>

#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "communicator.h"
#include "cuda_backend.h"
#include "extraction.h"
#include "h5_wrappers.h"
#include "harsanyi_config.h"
#include "make_values.h"
#include "report.h"
#include "stop_signal.h"
#include "study.h"

namespace {

void add_extract(CLI::App& app, harsanyi::ExtractOptions& o, std::string& tau_ref,
                 std::string& exchange, bool& no_fold, bool& quiet) {
  auto* cmd = app.add_subcommand(
      "extract",
      "Interactions of values computed elsewhere: reads /values [samples, 2^n] (float32 or "
      "float64, bit i of the subset index = player i) and writes I_and, I_or, p, q, the loss and "
      "the per-order distributions (DESIGN §5).");
  cmd->add_option("--values", o.values_path, "input HDF5 file with /values [samples, 2^n]")
      ->required();
  cmd->add_option("--out", o.out_path, "output HDF5 file (written as OUT.part, renamed when done)")
      ->required();
  cmd->add_option("--mode", o.mode,
                  "and: plain Harsanyi I_and[v]; and-or: the AND-OR decomposition with p, q")
      ->capture_default_str();
  cmd->add_option("--solver", o.solver,
                  "AND-OR solver: sgd (the papers' protocol) | optimal (the exact optimum of the "
                  "same objective to --tol, with a certified lower bound in /extraction/bound)")
      ->capture_default_str();
  cmd->add_option("--iters", o.sgd.iters, "sgd iterations")->capture_default_str();
  cmd->add_option("--tol", o.optimal.tol,
                  "optimal: stop when (loss - certified bound) <= tol * loss")
      ->capture_default_str();
  cmd->add_option("--max-iters", o.optimal.max_iters,
                  "optimal: iteration cap per sample (a warning names the samples not converged)")
      ->capture_default_str();
  cmd->add_option("--lr", o.sgd.lr, "initial learning rate (decays 10x, log-spaced)")
      ->capture_default_str();
  cmd->add_option("--momentum", o.sgd.momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--qthres", o.sgd.qthres, "bound on |q| relative to |v(N) - v(empty)|")
      ->capture_default_str();
  cmd->add_option("--tau-rel", o.tau_rel, "salient threshold, relative to --tau-ref")
      ->capture_default_str();
  cmd->add_option("--tau-ref", tau_ref,
                  "max: tau = tau_rel * max |I|; vrange: tau = tau_rel * |v(N) - v(empty)|")
      ->capture_default_str();
  cmd->add_option("--trace-every", o.sgd.trace_every,
                  "store the loss (optimal: the best so far) every K iterations in "
                  "/extraction/loss_trace (0: none)")
      ->capture_default_str();
  cmd->add_option("--dtype", o.dtype, "precision of the computation: f32 | f64")
      ->capture_default_str();
  cmd->add_option("--device", o.device, "auto (GPU if present) | cpu | cuda")->capture_default_str();
  cmd->add_option("--batch", o.batch, "samples per batch (0: from memory and threads)")
      ->capture_default_str();
  cmd->add_option("--threads", o.threads,
                  "CPU threads per rank (0: OMP_NUM_THREADS, else the cores divided among the "
                  "ranks sharing a node)")
      ->capture_default_str();
  cmd->add_option("--subset-ranks", o.subset_ranks,
                  "under MPI: ranks that share the 2^n subsets of a sample (a power of two "
                  "dividing the rank count; 0: 1 when there are at least as many samples as "
                  "ranks, else the smallest K that gives every group of K ranks a sample)")
      ->capture_default_str();
  cmd->add_option("--exchange", exchange,
                  "under MPI, --mode and with --subset-ranks > 1: how the top bits of the "
                  "transform finish across a group: partner (log2 K pairwise exchanges) | "
                  "alltoall (one all-to-all that makes them local, and one back)")
      ->capture_default_str();
  cmd->add_flag("--no-fold", no_fold,
                "store raw OR terms of order <= 1 (default: folded into AND, as the lab does)");
  cmd->add_flag("--force", o.force, "overwrite an existing output file");
  cmd->add_flag("--quiet", quiet, "no progress on stderr");
}

}  // namespace

int main(int argc, char** argv) {
  // MPI only under a launcher (mpirun, srun): a plain run needs no MPI runtime.
  harsanyi::mpi::Session mpi_session(&argc, &argv);
  const harsanyi::mpi::Communicator world = harsanyi::mpi::Communicator::world();
  // Console output (progress, summaries, reports) comes from rank 0 only.
  const bool root = world.root();
  harsanyi::h5::prepare_library();
  CLI::App app{fmt::format(
      "harsanyi {} ({}): AND-OR interactions of deep networks over all 2^n masked inputs.\n"
      "Subsets are uint64 indices whose bit i is player i. Run 'harsanyi SUBCOMMAND --help'.",
      HARSANYI_VERSION, HARSANYI_GIT_SHA)};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(HARSANYI_VERSION) + " (" + HARSANYI_GIT_SHA + ")");

  harsanyi::ExtractOptions ex;
  std::string tau_ref = "max", exchange = "partner";
  bool no_fold = false, quiet = false;
  add_extract(app, ex, tau_ref, exchange, no_fold, quiet);

  harsanyi::MakeValuesOptions mv;
  auto* mk = app.add_subcommand(
      "make-values",
      "Writes an example values file: per sample a planted game (a sum of AND and OR unanimity "
      "terms with integer coefficients, stored under /planted) plus Gaussian noise.");
  mk->add_option("--out", mv.out_path, "output HDF5 file")->capture_default_str();
  mk->add_option("--n", mv.n, "players")->capture_default_str();
  mk->add_option("--samples", mv.samples, "samples")->capture_default_str();
  mk->add_option("--terms", mv.terms, "AND terms and OR terms per sample")->capture_default_str();
  mk->add_option("--max-order", mv.max_order, "largest order of a planted term")
      ->capture_default_str();
  mk->add_option("--noise", mv.noise, "standard deviation of the noise")->capture_default_str();
  mk->add_option("--seed", mv.seed, "random seed")->capture_default_str();
  mk->add_option("--dtype", mv.dtype, "f32 | f64")->capture_default_str();
  mk->add_flag("--force", mv.force, "overwrite an existing file");

  std::string report_path;
  auto* rep = app.add_subcommand("report", "Prints the tables of a harsanyi HDF5 file: per-epoch for a study, per-order for an extraction.");
  rep->add_option("file", report_path, "study or extraction file")->required();

  auto* dev = app.add_subcommand("devices", "Says which compute devices this build can use.");

  harsanyi::RunOptions run;
  bool run_print_config = false, run_no_report = false;
  auto* run_cmd = app.add_subcommand(
      "run",
      "The main job: trains a model (or reads per-epoch TorchScript files) and at every epoch "
      "measures the AND-OR interactions of chosen train and test samples over all 2^n masked "
      "inputs, writing per-epoch, per-order distributions and the train/test losses to one "
      "HDF5 study file (DESIGN §5). With no file it runs the embedded default study "
      "(Fashion-MNIST, LeNet on 1000 training images, 3x3 grid players, 20 train + 20 test "
      "samples, epochs 0..30). Checkpoints go to OUT.ckpt/, the study to OUT.part until it is "
      "complete; a killed run continues with --resume.");
  run_cmd->add_option("config", run.config_path, "study config (TOML, DESIGN §6.1)");
  run_cmd->add_option("--set", run.sets,
                      "override a key: --set section.key=value (repeatable), e.g. "
                      "--set train.epochs=5 --set output.path=s.h5")
      ->allow_extra_args(false);
  run_cmd->add_flag("--resume", run.resume,
                    "continue an interrupted study (OUT.part and the checkpoints in OUT.ckpt/)");
  run_cmd->add_flag("--force", run.force,
                    "start over: overwrite OUT, OUT.part and the checkpoints of an earlier run");
  run_cmd->add_flag("--print-config", run_print_config,
                    "print the resolved config (defaults, file, overrides) and exit");
  run_cmd->add_flag("--no-report", run_no_report, "do not print the per-epoch report at the end");
  run_cmd->add_flag("--quiet", quiet, "no progress on stderr");
  run_cmd->add_option("--subset-ranks", run.subset_ranks,
                      "under MPI: ranks that share the 2^n masked inputs of a sample (a power of "
                      "two dividing the ranks of an epoch group; 0: chosen from the sample count)")
      ->capture_default_str();
  run_cmd->add_option("--epoch-groups", run.epoch_groups,
                      "under MPI: groups of ranks that analyse different epochs at once (a "
                      "divisor of the rank count; 0: enough that every rank owns a sample, as the "
                      "epochs allow; 1: all ranks on each epoch)")
      ->capture_default_str();
  run_cmd->add_option("--overlap", run.overlap,
                      "run the solver of one epoch on a worker thread while the next epoch's "
                      "model is evaluated and its masked inputs forwarded (auto: when the solver "
                      "runs on the GPU; the study file is the same bitwise either way)")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  run_cmd->add_option("--until-epoch", run.until_epoch,
                      "analyse the epochs up to this one, then stop with the study resumable "
                      "(OUT.part; exit 0): a job array continues it with --resume, task after task")
      ->check(CLI::NonNegativeNumber);
  run_cmd->footer(fmt::format(
      "SIGTERM, SIGINT, SIGUSR1 or SIGUSR2 stop the run at the next safe point (after the epoch "
      "being written, or the training checkpoint): the study stays OUT.part and harsanyi exits "
      "with code {}; continue it with --resume. A second signal ends it at once (also resumable).",
      harsanyi::kStopExitCode));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and usage errors: every rank parsed the same line; rank 0 speaks.
    if (!root) return e.get_exit_code();
    return app.exit(e);
  }
  // A failure ends the whole job: with several ranks through MPI_Abort (no rank is left waiting
  // in a collective), else with the message and the exit code.
  const auto fail = [&](const std::string& message, int code) {
    if (world.size() > 1) harsanyi::mpi::abort_job(message, code);
    std::fprintf(stderr, "harsanyi: %s\n", message.c_str());
    return code;
  };

  try {
    if (app.got_subcommand("extract")) {
      ex.tau_ref = harsanyi::parse_threshold_reference(tau_ref);
      ex.fold = !no_fold;
      if (exchange != "partner" && exchange != "alltoall")
        throw harsanyi::UserError("--exchange must be partner or alltoall, not '" + exchange + "'");
      ex.exchange = exchange == "partner" ? harsanyi::mpi::Exchange::partner
                                          : harsanyi::mpi::Exchange::alltoall;
      ex.progress = !quiet && root;
      const auto s = harsanyi::run_extract(ex, world);
      if (!quiet && root)
        std::fprintf(stderr, "extract: %zu samples of n = %d on %s in %.3f s -> %s\n", s.samples,
                   s.n, s.device.c_str(), s.seconds, ex.out_path.c_str());
      if (root) harsanyi::print_extraction_report(ex.out_path, stdout);
    } else if (dev->parsed() && world.size() > 1) {
      // Each rank's view (host, CPUs it may use, GPUs it sees), gathered on rank 0: what a
      // launcher's binding gives each rank.
      std::string reason;
      const int gpus = harsanyi::cuda::device_count(&reason);
      const std::vector<std::string> lines = world.gather(fmt::format(
          "rank {:>4} on {}: {} CPU{} usable, {} OpenMP thread{} by default, {}", world.rank(),
          harsanyi::mpi::host_name(), omp_get_num_procs(), omp_get_num_procs() == 1 ? "" : "s",
          omp_get_max_threads(), omp_get_max_threads() == 1 ? "" : "s",
          gpus ? fmt::format("{} GPU{} ({})", gpus, gpus == 1 ? "" : "s",
                             harsanyi::cuda::device_description())
               : "no GPU (" + reason + ")"));
      if (root) {
        fmt::print("CUDA kernels compiled: {}\nMPI: {} ranks\n", HARSANYI_ENABLE_CUDA ? "yes" : "no",
                   world.size());
        for (const std::string& line : lines) fmt::print("{}\n", line);
      }
    } else if (!root && !run_cmd->parsed()) {
      // make-values and report are not distributed: rank 0 does them alone.
    } else if (app.got_subcommand("make-values")) {
      harsanyi::make_values_file(mv);
      std::fprintf(stderr, "make-values: %zu samples of n = %d -> %s\n", mv.samples, mv.n,
                   mv.out_path.c_str());
    } else if (run_cmd->parsed()) {
      if (run_print_config) {
        if (root) std::fputs(harsanyi::resolved_study_config(run).c_str(), stdout);
        return 0;
      }
      run.progress = !quiet && root;
      // A stop signal only sets a flag that run_study reads at its safe points.
      harsanyi::install_stop_handlers(root);
      const auto s = harsanyi::run_study(run, world);
      if (s.stop_signal != 0 || s.stopped_until) {
        std::string resume = "harsanyi run";
        if (!run.config_path.empty()) resume += " " + run.config_path;
        for (const std::string& set : run.sets) resume += " --set " + set;
        const std::string why =
            s.stopped_until ? fmt::format("stopped after epoch {} as asked (--until-epoch)",
                                          run.until_epoch)
            : s.stop_signal > 0 ? fmt::format("stopped by {}", harsanyi::stop_signal_name(s.stop_signal))
                                : std::string("stopped by a signal to another rank");
        if (root)
          std::fprintf(stderr,
                       "run: %s (%d of %d epochs written, %.1f s); %s kept: continue with `%s "
                       "--resume`%s\n",
                       why.c_str(), s.epochs_written, s.epochs_total, s.seconds,
                       (s.epochs_written > 0 ? s.path + ".part and " + s.path + ".ckpt/ are"
                                             : "the checkpoints in " + s.path + ".ckpt/ are")
                           .c_str(),
                       resume.c_str(),
                       s.stopped_until ? "" : fmt::format(" (exit code {})", harsanyi::kStopExitCode).c_str());
        return s.stopped_until ? 0 : harsanyi::kStopExitCode;
      }
      if (!quiet && root)
        std::fprintf(stderr,
                     "run: %d of %d epochs analysed in %.1f s (training %.1f s, evaluation %.1f "
                     "s, forward passes %.1f s, solver %.1f s, writing %.1f s) -> %s\n",
                     s.epochs_analysed, s.epochs_total, s.seconds, s.t_train, s.t_eval,
                     s.t_forward, s.t_solver, s.t_write, s.path.c_str());
      if (!run_no_report && root) harsanyi::print_study_report(s.path, stdout);
    } else if (rep->parsed()) {
      harsanyi::print_report(report_path, stdout);
    } else if (dev->parsed()) {
      std::string reason;
      const int count = harsanyi::cuda::device_count(&reason);
      fmt::print("CUDA kernels compiled: {}\n", HARSANYI_ENABLE_CUDA ? "yes" : "no");
      fmt::print("GPUs usable: {}{}\n", count, count ? "" : " (" + reason + ")");
      if (count) fmt::print("GPU 0: {}\n", harsanyi::cuda::device_description());
      fmt::print("CPU threads: {}\n", omp_get_max_threads());
    }
  } catch (const harsanyi::UserError& e) {
    return fail(std::string("error: ") + e.what(), 2);
  } catch (const std::invalid_argument& e) {
    return fail(std::string("error: ") + e.what(), 2);
  } catch (const std::exception& e) {
    return fail(std::string("failure: ") + e.what(), 1);
  }
  return 0;
}
