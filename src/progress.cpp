#include "progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace harsanyi {

std::string format_duration(double s) {
  if (s < 0 || s != s) return "?";
  if (s < 60) return fmt::format("{:.1f}s", s);
  const auto total = static_cast<long long>(s + 0.5);
  if (total < 3600) return fmt::format("{}m{:02d}s", total / 60, static_cast<int>(total % 60));
  return fmt::format("{}h{:02d}m", total / 3600, static_cast<int>((total % 3600) / 60));
}

Progress::Progress(std::string label, std::uint64_t total, std::string unit, bool enabled,
                   double plain_interval_s)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(enabled),
      tty_(isatty(STDERR_FILENO) != 0),
      plain_interval_s_(plain_interval_s),
      start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() {
  if (!finished_ && printed_ && tty_) std::fputc('\n', stderr);
}

void Progress::advance(std::uint64_t k) {
  done_.fetch_add(k);
  if (!enabled_) return;
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now() - start_)
                               .count();
  const double since = 1e-9 * static_cast<double>(now - last_print_ns_.load());
  if (since < (tty_ ? 0.2 : plain_interval_s_)) return;
  std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return;
  last_print_ns_.store(now);
  print(false);
}

void Progress::note(const std::string& line) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s\n", line.c_str());
    if (printed_ && !finished_) print(false);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  print(true);
}

void Progress::print(bool final_line) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const std::uint64_t done = done_.load();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  std::string line;
  if (final_line) {
    line = fmt::format("{}: {} {} in {} ({:.4g} {}/s)", label_, done, unit_,
                       format_duration(elapsed), rate, unit_);
  } else {
    const double frac = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - std::min(done, total_)) / rate : -1;
    line = fmt::format("{}: {:5.1f}% {}/{} {}, {:.4g} {}/s, elapsed {}, ETA {}", label_,
                       100.0 * frac, done, total_, unit_, rate, unit_, format_duration(elapsed),
                       format_duration(eta));
  }
  printed_ = true;
  if (tty_)
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  else
    std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace harsanyi
