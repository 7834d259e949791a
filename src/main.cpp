// harsanyi: AND-OR interactions of deep networks at HPC scale. Command-line entry point.
#include <omp.h>

#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cuda_backend.h"
#include "extraction.h"
#include "h5_wrappers.h"
#include "harsanyi_config.h"
#include "make_values.h"
#include "report.h"

namespace {

void add_extract(CLI::App& app, harsanyi::ExtractOptions& o, std::string& tau_ref, bool& no_fold,
                 bool& quiet) {
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
  cmd->add_option("--solver", o.solver, "AND-OR solver: sgd (the papers' protocol)")
      ->capture_default_str();
  cmd->add_option("--iters", o.sgd.iters, "solver iterations")->capture_default_str();
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
                  "store the loss every K iterations in /extraction/loss_trace (0: none)")
      ->capture_default_str();
  cmd->add_option("--dtype", o.dtype, "precision of the computation: f32 | f64")
      ->capture_default_str();
  cmd->add_option("--device", o.device, "auto (GPU if present) | cpu | cuda")->capture_default_str();
  cmd->add_option("--batch", o.batch, "samples per batch (0: from memory and threads)")
      ->capture_default_str();
  cmd->add_option("--threads", o.threads, "CPU threads (0: OMP_NUM_THREADS or all cores)")
      ->capture_default_str();
  cmd->add_flag("--no-fold", no_fold,
                "store raw OR terms of order <= 1 (default: folded into AND, as the lab does)");
  cmd->add_flag("--force", o.force, "overwrite an existing output file");
  cmd->add_flag("--quiet", quiet, "no progress on stderr");
}

}  // namespace

int main(int argc, char** argv) {
  harsanyi::h5::prepare_library();
  CLI::App app{fmt::format(
      "harsanyi {} ({}): AND-OR interactions of deep networks over all 2^n masked inputs.\n"
      "Subsets are uint64 indices whose bit i is player i. Run 'harsanyi SUBCOMMAND --help'.",
      HARSANYI_VERSION, HARSANYI_GIT_SHA)};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(HARSANYI_VERSION) + " (" + HARSANYI_GIT_SHA + ")");

  harsanyi::ExtractOptions ex;
  std::string tau_ref = "max";
  bool no_fold = false, quiet = false;
  add_extract(app, ex, tau_ref, no_fold, quiet);

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
  auto* rep = app.add_subcommand("report", "Prints the per-order table of a harsanyi HDF5 file.");
  rep->add_option("file", report_path, "extraction file")->required();

  auto* dev = app.add_subcommand("devices", "Says which compute devices this build can use.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    if (app.got_subcommand("extract")) {
      ex.tau_ref = harsanyi::parse_threshold_reference(tau_ref);
      ex.fold = !no_fold;
      ex.progress = !quiet;
      const auto s = harsanyi::run_extract(ex);
      if (!quiet)
        std::fprintf(stderr, "extract: %zu samples of n = %d on %s in %.3f s -> %s\n", s.samples,
                   s.n, s.device.c_str(), s.seconds, ex.out_path.c_str());
      harsanyi::print_extraction_report(ex.out_path, stdout);
    } else if (app.got_subcommand("make-values")) {
      harsanyi::make_values_file(mv);
      std::fprintf(stderr, "make-values: %zu samples of n = %d -> %s\n", mv.samples, mv.n,
                   mv.out_path.c_str());
    } else if (rep->parsed()) {
      harsanyi::print_extraction_report(report_path, stdout);
    } else if (dev->parsed()) {
      std::string reason;
      const int count = harsanyi::cuda::device_count(&reason);
      fmt::print("CUDA kernels compiled: {}\n", HARSANYI_ENABLE_CUDA ? "yes" : "no");
      fmt::print("GPUs usable: {}{}\n", count, count ? "" : " (" + reason + ")");
      if (count) fmt::print("GPU 0: {}\n", harsanyi::cuda::device_description());
      fmt::print("CPU threads: {}\n", omp_get_max_threads());
    }
  } catch (const harsanyi::UserError& e) {
    std::fprintf(stderr, "harsanyi: error: %s\n", e.what());
    return 2;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "harsanyi: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "harsanyi: failure: %s\n", e.what());
    return 1;
  }
  return 0;
}
