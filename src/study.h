/// @file study.h
/// @brief `harsanyi run`: train (or load) a model, and at every epoch measure the AND-OR
/// interactions of chosen train and test samples, writing one study file (DESIGN §3, §5, §6.1).
///
/// Stages: (1) train epochs 1..E, a checkpoint per epoch in `OUT.ckpt/` (epoch 0 = the
/// initialisation; a resumed run continues from the last checkpoint); (2) choose the samples
/// among those the last epoch classifies correctly; (3) for each epoch: load its checkpoint,
/// evaluate train/test loss and accuracy, compute v(x_S) of every sample on all 2^n masked
/// inputs, fit the interactions, compute the per-order metrics, and write the epoch whole.
#pragma once

#include <string>
#include <vector>

#include "communicator.h"

namespace harsanyi {

/// @brief How `harsanyi run` was invoked.
struct RunOptions {
  std::string config_path;        ///< TOML file ("" = the embedded default study)
  std::vector<std::string> sets;  ///< `section.key=value` overrides
  bool resume = false;            ///< continue OUT.part and the checkpoints (or start afresh)
  bool force = false;             ///< overwrite an existing study and its checkpoints
  bool progress = true;           ///< progress lines on stderr
  int subset_ranks = 0;           ///< MPI: ranks sharing a sample's masked inputs (0: chosen)
  int epoch_groups = 0;           ///< MPI: groups of ranks analysing different epochs (0: chosen)
  int until_epoch = -1;           ///< stop (resumable) once the epochs up to this one are written
  /// Overlap the solver of one wave of epochs (worker thread) with the model evaluation and
  /// forward passes of the next: "auto" (when the solver runs on the GPU), "on", "off". The
  /// study file is the same bitwise either way.
  std::string overlap = "auto";
};

/// @brief What a run did: the time split of the study (seconds, summed over epochs).
struct RunSummary {
  std::string path;
  int epochs_analysed = 0;      ///< epochs analysed by this invocation
  int epochs_total = 0;
  double seconds = 0, t_train = 0, t_eval = 0, t_forward = 0, t_solver = 0, t_write = 0;
  /// The run stopped early, its OUT.part resumable: the stop signal's number (stop_signal.h;
  /// -1 when only another rank received one), or `until_epoch` was reached. 0/false: it ended.
  int stop_signal = 0;
  bool stopped_until = false;
  int epochs_written = 0;       ///< epochs in the file when the run stopped or ended
};

/// Runs a study. Throws UserError for bad input (config, data, a diverging model).
///
/// A stop signal (stop_signal.h) is honoured at safe points: after each training checkpoint
/// (rank 0) and before each wave of epochs, where all ranks agree through one collective call;
/// the study file is then closed as `OUT.part` (resumable) and the summary says so.
///
/// With a distributed `world` (a collective call on every rank): rank 0 trains while the others
/// wait (sleeping), and chooses the samples and starts the file; then, at every epoch, all ranks
/// split the evaluation batches, the samples (and, with K subset ranks per group, each sample's
/// 2^n masked inputs) and the solver work (mpi/decomposition.h), reduce the Jaccard class means
/// and the timings in a fixed order, and write their own rows of the one study file with MPI-IO.
RunSummary run_study(const RunOptions& options,
                     const mpi::Communicator& world = mpi::Communicator::serial());

/// Prints the resolved config of `options` (the embedded default, the file, the overrides).
std::string resolved_study_config(const RunOptions& options);

}  // namespace harsanyi
