/// @file extraction.h
/// @brief `harsanyi extract`: interactions of externally computed values v(x_S) (DESIGN §5).
#pragma once

#include <cstddef>
#include <string>

#include "and_or_solver.h"
#include "communicator.h"
#include "distributed_moebius.h"
#include "interaction_metrics.h"
#include "optimal_solver.h"
#include "sgd_solver.h"
#include "user_error.h"

namespace harsanyi {

/// @brief Every option of an extraction (the resolved config stored in the output file).
struct ExtractOptions {
  std::string values_path;
  std::string out_path;
  std::string mode = "and-or";  ///< "and" (plain Harsanyi of v) or "and-or" (decomposition)
  std::string solver = "sgd";  ///< sgd | optimal
  SgdOptions sgd;              ///< sgd parameters; sgd.qthres and sgd.trace_every serve both solvers
  OptimalOptions optimal;      ///< optimal parameters (tol, max_iters; qthres from sgd)
  /// The solver options handed to fit_and_or_batch (qthres and trace_every copied from `sgd`).
  SolverOptions solver_options() const;
  double tau_rel = 0.05;
  ThresholdReference tau_ref = ThresholdReference::MaxInteraction;
  std::string dtype = "f64";  ///< precision of the computation: f32 | f64
  bool fold = true;           ///< fold OR terms of order <= 1 into AND (the lab's convention)
  bool force = false;         ///< overwrite an existing output file
  std::size_t batch = 0;      ///< samples per batch (0: chosen from memory and threads)
  std::string device = "auto";  ///< auto | cpu | cuda
  int threads = 0;            ///< OpenMP threads per rank (0: OMP_NUM_THREADS, or the node's
                              ///< cores divided among its ranks)
  int subset_ranks = 0;       ///< MPI: ranks sharing a sample's subsets (0: chosen)
  /// MPI, mode and with subset_ranks > 1: how the top bits of the transform finish across a group
  mpi::Exchange exchange = mpi::Exchange::partner;
  bool progress = true;
};

/// What an extraction did (for the console summary and the benchmarks).
struct ExtractSummary {
  int n = 0;
  std::size_t samples = 0;
  std::size_t batch = 0;
  std::string device;
  double seconds = 0.0;
};

/// The resolved options as TOML text (stored as the `config` root attribute).
std::string extract_config_text(const ExtractOptions& opt);

/// @brief Runs an extraction. Writes OUT atomically: to OUT.part first, renamed on success,
/// removed on failure. Throws UserError for bad input, other exceptions for system failures.
/// With a distributed `world` (a collective call on every rank), the samples and subsets are
/// spread over the ranks (mpi/decomposition.h) and every rank writes its rows of one file with
/// MPI-IO; the file is bitwise the same for every rank count.
ExtractSummary run_extract(const ExtractOptions& opt,
                           const mpi::Communicator& world = mpi::Communicator::serial());

}  // namespace harsanyi
