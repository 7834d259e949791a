/// @file progress.h
/// @brief Thread-safe progress reporting on stderr with rate and ETA.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace harsanyi {

/// @brief Counts units of work and prints a progress line with rate and ETA to stderr.
///
/// On a terminal the line is redrawn in place (at most ~5 times a second); otherwise a plain
/// line is printed every `plain_interval_s` seconds. advance() may be called from any thread.
class Progress {
 public:
  /// @param label what is being done ("extract"); @param total units of work;
  /// @param unit name of a unit ("it"); @param enabled false silences it (non-root MPI ranks).
  Progress(std::string label, std::uint64_t total, std::string unit, bool enabled = true,
           double plain_interval_s = 10.0);
  ~Progress();
  /// Adds `k` units of work done.
  void advance(std::uint64_t k);
  /// Prints `line` on stderr above the progress line (which a terminal redraws under it).
  void note(const std::string& line);
  /// Prints the final line (total time and mean rate). Without it (an error unwinding the
  /// stack), the destructor only ends a line left open on a terminal: no success-looking line.
  void finish();
  std::uint64_t done() const { return done_.load(); }

 private:
  void print(bool final_line);
  std::string label_, unit_;
  std::uint64_t total_;
  bool enabled_, tty_, finished_ = false, printed_ = false;
  double plain_interval_s_;
  std::atomic<std::uint64_t> done_{0};
  std::mutex mutex_;
  std::chrono::steady_clock::time_point start_;
  std::atomic<std::int64_t> last_print_ns_{0};  ///< since start_, read without the lock
};

/// Human-readable duration ("1h02m", "3m05s", "12.3s").
std::string format_duration(double seconds);

}  // namespace harsanyi
