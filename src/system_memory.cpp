#include "system_memory.h"

#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

namespace harsanyi {
namespace {

std::size_t parse_size(const std::string& text) {
  std::size_t pos = 0;
  double value = -1;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos == 0 || !(value >= 0) || pos + 1 < text.size())
    throw std::invalid_argument("HARSANYI_MEMORY_LIMIT='" + text +
                                "' is not a size (bytes, or a number with K, M or G)");
  double mult = 1;
  if (pos < text.size()) {
    switch (text[pos]) {
      case 'k': case 'K': mult = 1024.0; break;
      case 'm': case 'M': mult = 1024.0 * 1024; break;
      case 'g': case 'G': mult = 1024.0 * 1024 * 1024; break;
      default:
        throw std::invalid_argument("HARSANYI_MEMORY_LIMIT='" + text +
                                    "' is not a size (bytes, or a number with K, M or G)");
    }
  }
  return static_cast<std::size_t>(value * mult);
}

std::size_t read_number(const char* path) {
  std::ifstream in(path);
  std::string s;
  if (!(in >> s) || s == "max") return std::numeric_limits<std::size_t>::max();
  try {
    return static_cast<std::size_t>(std::stoull(s));
  } catch (...) {
    return std::numeric_limits<std::size_t>::max();
  }
}

}  // namespace

std::size_t available_memory_bytes() {
  if (const char* env = std::getenv("HARSANYI_MEMORY_LIMIT")) return parse_size(env);
  std::size_t avail = std::numeric_limits<std::size_t>::max();
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::size_t kb;
  std::string unit;
  while (meminfo >> key >> kb >> unit) {
    if (key == "MemAvailable:") {
      avail = kb * 1024;
      break;
    }
  }
  const std::size_t limit = read_number("/sys/fs/cgroup/memory.max");
  const std::size_t usage = read_number("/sys/fs/cgroup/memory.current");
  if (limit != std::numeric_limits<std::size_t>::max())
    avail = std::min(avail, usage < limit ? limit - usage : 0);
  return avail;
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 5) {
    bytes /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.2f} {}", bytes, units[u]);
}

}  // namespace harsanyi
