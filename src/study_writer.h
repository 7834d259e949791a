/// @file study_writer.h
/// @brief The study file of `harsanyi run` (DESIGN §5): per-epoch, per-sample, per-order
/// datasets along an unlimited epoch axis, written one whole epoch at a time.
///
/// Lifecycle: the study is written to `OUT.part`. Each epoch extends every per-epoch dataset by
/// one row, writes it, flushes the file and only then raises the root attribute
/// `epochs_written`; a run killed mid-epoch leaves rows beyond `epochs_written` that a resumed
/// run cuts off before writing that epoch again. `finish()` marks the file `complete` = 1 and
/// renames it to OUT. A failed run leaves `OUT.part` for `--resume`.
///
/// Every block write names its sample range, so a distributed run can write each rank's
/// samples as its own hyperslab.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "communicator.h"
#include "h5_wrappers.h"

namespace harsanyi {

/// @brief The fixed shape of a study file.
struct StudyShape {
  int n = 0;                       ///< players
  /// Analysed samples S (train and test): create() takes it from the header; resume() takes it
  /// from the file when 0, else refuses a file with another count.
  std::int64_t samples = 0;
  int classes = 0;                 ///< C of /generalization/jaccard
  bool and_or = true;              ///< /orders/or_* and /interactions/or present
  bool has_bound = false;          ///< /extraction/bound (certifying solvers)
  bool store_values = false;       ///< /values [E, S, 2^n]
  bool store_interactions = false; ///< /interactions/and|or [E, S, 2^n]
  /// /generalization/jaccard [E, C, n+1]: set by the writer, true when the samples hold both
  /// splits (see has_both_splits).
  bool jaccard = false;
};

/// True when `split` holds train (0) and test (1) samples: the Jaccard metric needs both.
bool has_both_splits(const std::vector<std::uint8_t>& split);

/// @brief The identity of the analysed samples and players, written once.
struct StudyHeader {
  std::vector<std::string> player_names;  ///< [n]
  std::vector<std::int64_t> sample_index; ///< [S] index in its split's dataset
  std::vector<std::int32_t> sample_label; ///< [S] ground-truth label
  std::vector<std::uint8_t> sample_split; ///< [S] 0 train, 1 test
  std::string config;                     ///< the resolved config text
  /// Extra string / number root attributes (output_fn, baseline, solver parameters, ...).
  std::vector<std::pair<std::string, std::string>> string_attributes;
  std::vector<std::pair<std::string, double>> number_attributes;
};

/// @brief One epoch's results for samples [sample0, sample0 + count) (all S in a serial run).
/// Per-sample arrays are [count, n+1] (orders), [count] (loss, bound, threshold) or
/// [count, 2^n] (values, interactions; only when stored).
struct EpochBlock {
  std::int64_t sample0 = 0, count = 0;
  std::vector<double> and_pos, and_neg, or_pos, or_neg;
  std::vector<std::int32_t> and_count, or_count;
  std::vector<double> loss, bound, threshold;
  std::vector<double> values, inter_and, inter_or;
};

/// @brief Epoch-level results (model quality, Jaccard, timings).
struct EpochSummary {
  std::int32_t epoch = 0;
  double train_loss = 0, test_loss = 0, train_acc = 0, test_acc = 0;
  std::vector<double> jaccard;  ///< [C, n+1] when the shape has it
  /// Seconds spent per stage in this epoch (evaluation, forward passes, solver, writing).
  double t_eval = 0, t_forward = 0, t_solver = 0, t_write = 0;
};

class StudyWriter {
 public:
  /// Starts `out.part` (refusing an existing `out` or `out.part` unless `force`).
  static std::unique_ptr<StudyWriter> create(const std::string& out, bool force,
                                             const StudyShape& shape, const StudyHeader& header);
  /// Continues `out.part`. Throws UserError if it is missing or damaged, or if it was started
  /// with another shape or config. With a distributed `comm` (a collective call), every rank
  /// opens the file with MPI-IO: every later call is then collective, each rank writing its own
  /// samples in write_block and rank 0 the epoch's summary. A distributed study is started by
  /// rank 0 alone with create() and close(), then resumed by every rank.
  static std::unique_ptr<StudyWriter> resume(
      const std::string& out, const StudyShape& shape, const std::string& config,
      const mpi::Communicator& comm = mpi::Communicator::serial());
  /// True when `out.part` exists (an interrupted study).
  static bool has_partial(const std::string& out);
  /// The header stored in `out.part` (samples and players), for a resumed run.
  StudyHeader stored_header() const;

  /// The file's shape (samples and jaccard as the writer derived them).
  const StudyShape& shape() const { return shape_; }

  /// Epoch numbers already written, in order.
  const std::vector<std::int32_t>& written_epochs() const { return written_; }

  /// Opens epoch row `written_epochs().size()` (growing every per-epoch dataset by one row).
  void begin_epoch();
  /// Writes a block of samples into the open epoch.
  void write_block(const EpochBlock& block);
  /// Writes the epoch's summary, flushes, and marks the epoch written.
  void end_epoch(const EpochSummary& summary);
  /// Marks the file complete and renames it to its final name.
  void finish(double elapsed_seconds);
  /// Records how the ranks shared the work (root attributes `epoch_groups`, `subset_ranks`; the
  /// last invocation's, like `mpi_ranks`). Collective on a parallel file.
  void set_layout(int epoch_groups, int subset_ranks);
  /// Closes the file (checking that everything reached the disk) and leaves OUT.part.
  void close();
  /// A parallel file left unfinished (an error on this rank) is dropped without a collective
  /// close; a serial one is closed.
  ~StudyWriter();

  const std::string& path() const { return out_; }

 private:
  StudyWriter(std::string out, StudyShape shape, h5::File file);
  std::vector<std::string> per_epoch_datasets() const;
  void cut_to_written();

  std::string out_, part_;
  StudyShape shape_;
  std::unique_ptr<h5::File> file_;
  mpi::Communicator comm_ = mpi::Communicator::serial();
  std::vector<std::int32_t> written_;
  bool epoch_open_ = false;
};

}  // namespace harsanyi
