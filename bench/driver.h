/// @file driver.h
/// @brief The driver shared by every `bench/<op>_perf` binary.
///
/// A perf binary describes its operation in an OpDef (defaults, extra flags, columns, and the
/// callbacks setup / kernels / check / metrics) and hands it to run_benchmark(). The driver owns
/// everything else: flag parsing, the `#` preamble (versions, git hash, device, threads), the
/// sweep over n × dtype × threads, warm-up and timing (steady_clock; median, min, max over
/// repetitions), the table (header row + units row), the JSON twin and the exit code
/// (0 all checks passed, 1 a check failed, 2 bad usage or a case could not run).
///
/// MPI ops (OpDef::mpi) run on every rank of MPI_COMM_WORLD: the driver initialises MPI when
/// needed, times each repetition between barriers and keeps the slowest rank's time, prints and
/// writes the results on rank 0 only and gives every rank the same exit code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace harsanyi::mpi {
class Communicator;
}

namespace harsanyi::bench {

/// Element type of a case.
enum class Dtype { f32, f64 };
const char* dtype_name(Dtype d);
std::size_t dtype_size(Dtype d);

/// Sweep settings, common to every binary (see bench/README.md for the flags).
struct Options {
  int min_n = 0, max_n = 0, step_n = 1;  ///< -b, -e, -i
  int reps = 5;                          ///< -n timed repetitions
  int warmup = 1;                        ///< -w untimed warm-up runs
  std::vector<int> threads;              ///< -t
  std::size_t samples = 0;               ///< -s (0: the op's default)
  std::vector<Dtype> dtypes;             ///< -d
  std::string json_path;                 ///< -j
  bool check = true;                     ///< -c
  std::map<std::string, std::string> extra;  ///< the op's own long flags, by name
  /// Value of an op flag (its default when not given), as an integer.
  long long extra_int(const std::string& name) const;
  /// True when the op flag was given on the command line.
  bool extra_given(const std::string& name) const;
  std::vector<std::string> given;  ///< names of the op flags given explicitly
};

/// One point of the sweep.
struct Case {
  int n;
  Dtype dtype;
  int threads;
  std::size_t samples;  ///< in all (an MPI op spreads them over the ranks, see block_of)
  const Options* opt;
  /// MPI ops: the job's communicator (MPI_COMM_WORLD; include "communicator.h" to use it), this
  /// rank and the number of ranks. Other ops: nullptr, 0 and 1.
  const mpi::Communicator* comm = nullptr;
  int rank = 0, ranks = 1;
};

/// The contiguous block [begin, end) of `count` items that a rank owns when they are spread over
/// the ranks as evenly as possible: [count·rank/ranks, count·(rank+1)/ranks).
struct Block {
  std::size_t begin = 0, end = 0;
  std::size_t size() const { return end - begin; }
};
inline Block block_of(std::size_t count, int rank, int ranks) {
  const auto r = static_cast<std::size_t>(rank), p = static_cast<std::size_t>(ranks);
  return {count * r / p, count * (r + 1) / p};
}
/// This rank's block of the case's samples.
inline Block my_samples(const Case& c) { return block_of(c.samples, c.rank, c.ranks); }

/// Per-case state built by OpDef::setup and passed back to the other callbacks.
class CaseState {
 public:
  virtual ~CaseState() = default;
};

/// Base of a state templated on the element type: S<float> or S<double>, both deriving from it.
struct TypedState : CaseState {
  Dtype dtype = Dtype::f64;
};

/// Builds S<float> or S<double> (constructed from the case) by the case's dtype.
template <template <class> class S> std::unique_ptr<CaseState> make_state(const Case& c) {
  std::unique_ptr<TypedState> s;
  if (c.dtype == Dtype::f32)
    s = std::make_unique<S<float>>(c);
  else
    s = std::make_unique<S<double>>(c);
  s->dtype = c.dtype;
  return s;
}

/// Calls f(S<float>&) or f(S<double>&) on a state built by make_state<S>.
template <template <class> class S, class F> void visit(CaseState& st, F&& f) {
  if (static_cast<TypedState&>(st).dtype == Dtype::f32)
    f(static_cast<S<float>&>(st));
  else
    f(static_cast<S<double>&>(st));
}

/// A timed kernel. One timed repetition = prepare() (untimed; e.g. restores an in-place input)
/// then run(state, i) for i = 0..calls-1 back to back (timed), where calls = OpDef::calls(case);
/// run i must work on its own copy of the data. The time of a call is the repetition's / calls.
/// MPI ops: every rank runs the repetition between two barriers (the second one untimed) and the
/// repetition's time is the maximum over the ranks.
struct Kernel {
  std::string name;
  std::function<void(CaseState&)> prepare;  ///< may be empty
  std::function<void(CaseState&, int call)> run;
};

/// Timing of one call of a kernel over the repetitions, seconds.
struct Timing {
  double median = 0, min = 0, max = 0;
  /// (max - min) / median, in percent.
  double spread_pct() const { return median > 0 ? 100.0 * (max - min) / median : 0.0; }
};

/// A table cell: integer, real or text. Missing cells print as "-" (null in JSON).
using Cell = std::variant<long long, double, std::string>;
using Row = std::map<std::string, Cell>;

/// How a column prints.
enum class Fmt { integer, text, fixed, sci };

/// A table column: its name (header row and JSON key), unit (units row) and format.
struct Column {
  std::string name, unit;
  Fmt fmt = Fmt::fixed;
  int precision = 3;  ///< digits after the point (fixed) or of the mantissa (sci)
  int width = 10;
};

/// An op-specific long flag (`--name VALUE`).
struct ExtraFlag {
  std::string name, default_value, help;
};

/// Result of the correctness check of a case.
struct CheckResult {
  bool ok = true;
  std::string why;  ///< on failure, printed under the table
};

/// Everything a perf binary supplies.
struct OpDef {
  std::string name;     ///< "moebius_perf"
  std::string summary;  ///< one line, printed in the preamble and --help
  /// An MPI op: every callback runs on every rank of MPI_COMM_WORLD (Case::comm) and may call
  /// collectives, at the same points on every rank. The driver initialises MPI if it is not yet
  /// (MPI_Init_thread, FUNNELED; finalised by run_benchmark), adds a `ranks` column, the ranks to
  /// the preamble and the JSON context, times fairly (barrier, MPI_MAX of every repetition),
  /// prints on rank 0 only, agrees on every skip and check (a failure on any rank fails the case
  /// everywhere), and ends the job (MPI_Abort) when a kernel, metrics or check throws on a job of
  /// several ranks, since the other ranks may be waiting in a collective. `memory_bytes` is per
  /// rank (the driver adds up the ranks of a node). Without `-t`, the threads default to one
  /// count: the logical CPUs / the ranks on the node (at most OpenMP's max threads).
  bool mpi = false;
  // Defaults of the common flags.
  int default_min_n = 10, default_max_n = 20, max_allowed_n = 26;
  int default_reps = 5, default_warmup = 1;
  std::size_t default_samples = 1;  ///< 0: one sample per thread
  std::vector<Dtype> default_dtypes = {Dtype::f32, Dtype::f64};  ///< -d when not given
  std::vector<ExtraFlag> flags;
  std::vector<std::string> preamble;  ///< extra `#` lines (e.g. the op's own rules)
  /// Columns after the common ones (n, dtype, threads, samples); the driver appends `check`.
  std::vector<Column> columns;
  /// Allocates and fills the inputs of a case (untimed). Threads are already set.
  std::function<std::unique_ptr<CaseState>(const Case&)> setup;
  /// Bytes the case needs (to refuse cases that do not fit in memory); may be empty. MPI ops:
  /// the bytes this rank needs.
  std::function<std::size_t(const Case&)> memory_bytes;
  /// Calls per timed repetition (several for tiny problems, whose single call would be too short
  /// to time); may be empty (1).
  std::function<int(const Case&)> calls;
  /// Timed kernels, in order; each gets warm-up and repetitions.
  std::vector<Kernel> kernels;
  /// Checks the result (after the timing, so the state holds the last run's outputs); fills its
  /// error columns in the row. Called only with `-c 1`. MPI ops: called on every rank; the row
  /// printed is rank 0's, the case fails when the check fails on any rank.
  std::function<CheckResult(const Case&, CaseState&, Row&)> check;
  /// Fills the time and derived columns from the kernels' timings (same order as `kernels`).
  std::function<void(const Case&, CaseState&, const std::vector<Timing>&, Row&)> metrics;
};

/// Parses argv, runs the sweep, prints the table, writes the JSON; returns the exit code (MPI
/// ops: the same on every rank).
int run_benchmark(const OpDef& op, int argc, char** argv);

/// Deterministic uniform values in [-1, 1) (splitmix64), for inputs without known answers.
void fill_uniform(double* x, std::size_t len, std::uint64_t seed);
void fill_uniform(float* x, std::size_t len, std::uint64_t seed);

}  // namespace harsanyi::bench
