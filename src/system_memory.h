/// @file system_memory.h
/// @brief How much memory this process may use, and a refusal with a clear message when a job
/// will not fit.
#pragma once

#include <cstddef>
#include <string>

namespace harsanyi {

/// Bytes this process can still allocate: the smaller of MemAvailable (/proc/meminfo) and the
/// cgroup memory limit minus its usage, if any. HARSANYI_MEMORY_LIMIT (bytes, or with a K/M/G
/// suffix) overrides it, for tests and for sharing a node.
std::size_t available_memory_bytes();

/// "1.50 GiB", "512.00 MiB", ...
std::string format_bytes(double bytes);

}  // namespace harsanyi
