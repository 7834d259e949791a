// Shared parts of the gpu_*_perf binaries (see gpu_common.h).
#include "gpu_common.h"

#include <fmt/core.h>
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "cuda_backend.h"
#include "gpu_timer.h"
#include "planted_game.h"

namespace harsanyi::bench::gpu {
namespace {

// Event times per row ("n/dtype/threads/samples") and kernel.
std::map<std::string, nlohmann::json>& event_rows() {
  static std::map<std::string, nlohmann::json> rows;
  return rows;
}

std::string row_key(long long n, const std::string& dtype, long long threads, long long samples) {
  return fmt::format("{}/{}/{}/{}", n, dtype, threads, samples);
}

}  // namespace

GpuArgs::GpuArgs(int argc, char** argv) {
  args_.emplace_back(argc > 0 ? argv[0] : "gpu_perf");
  args_.emplace_back("-t");
  args_.emplace_back(std::to_string(omp_get_max_threads()));
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") help_ = true;
    if ((a == "-j" || a == "--json") && i + 1 < argc) json_ = argv[i + 1];
    if (a.rfind("--json=", 0) == 0) json_ = a.substr(7);
    if (a.size() > 2 && a.rfind("-j", 0) == 0 && a.rfind("--", 0) != 0) json_ = a.substr(2);
    args_.push_back(a);
  }
  for (auto& a : args_) ptrs_.push_back(a.data());
  ptrs_.push_back(nullptr);
}

int require_gpu(const char* name) {
  std::string why;
  if (cuda::device_count(&why) > 0) return 0;
  std::fprintf(stderr,
               "%s: no GPU: %s. This benchmark measures the CUDA kernels and needs a GPU "
               "(exit %d).\n",
               name, why.c_str(), kNoGpuExit);
  return kNoGpuExit;
}

void record_event_times(const Case& c, const std::string& kernel, const std::vector<double>& times,
                        int warmup) {
  const std::size_t skip = static_cast<std::size_t>(std::max(0, warmup));
  const Stats st = stats_after(times, skip);
  std::vector<double> timed(
      times.begin() + static_cast<std::ptrdiff_t>(std::min(skip, times.size())), times.end());
  event_rows()[row_key(c.n, dtype_name(c.dtype), c.threads, static_cast<long long>(c.samples))]
              [kernel] = {{"median_s", st.median},
                          {"min_s", st.min},
                          {"max_s", st.max},
                          {"times_s", timed},
                          {"warmup_runs", static_cast<long long>(times.size() - timed.size())}};
}

bool annotate_json(const std::string& path, const std::string& device, const std::string& timing) {
  if (path.empty()) return true;
  nlohmann::json j;
  {
    std::ifstream in(path);
    if (!in) {
      std::fprintf(stderr, "cannot read %s to add the GPU timings\n", path.c_str());
      return false;
    }
    try {
      in >> j;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cannot parse %s: %s\n", path.c_str(), e.what());
      return false;
    }
  }
  j["context"]["gpu"] = device;
  j["context"]["gpu_timing"] = timing;
  for (auto& r : j["results"]) {
    if (!r["n"].is_number() || !r["threads"].is_number() || !r["samples"].is_number()) continue;
    const auto it =
        event_rows().find(row_key(r["n"].get<long long>(), r["dtype"].get<std::string>(),
                                  r["threads"].get<long long>(), r["samples"].get<long long>()));
    r["event_timings"] = it == event_rows().end() ? nlohmann::json(nullptr) : it->second;
  }
  std::ofstream out(path);
  out << j.dump(2) << '\n';
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

std::size_t cpu_refit_samples(const Case& c) {
  const long long given = c.opt->extra_int("cpu-n");
  const std::size_t m = given > 0 ? static_cast<std::size_t>(given)
                                  : std::max<std::size_t>(2, static_cast<std::size_t>(c.threads));
  return std::min(m, c.samples);
}

std::vector<double> planted_inputs(int n, std::size_t samples) {
  const std::size_t len = std::size_t{1} << n;
  std::vector<double> v(samples * len), noise(len);
  for (std::size_t s = 0; s < samples; ++s) {
    const auto game = harsanyi::random_planted_game(n, n, std::min(n, 4), 500 + s);
    const std::vector<double> g = game.values();
    fill_uniform(noise.data(), len, 9000 + s);
    for (std::size_t i = 0; i < len; ++i) v[s * len + i] = g[i] + 0.5 * noise[i];
  }
  return v;
}

std::vector<std::size_t> evenly_spaced(std::size_t m, std::size_t samples) {
  std::vector<std::size_t> picked;
  for (std::size_t k = 0; k < m; ++k) picked.push_back(m == 1 ? 0 : k * (samples - 1) / (m - 1));
  return picked;
}

}  // namespace harsanyi::bench::gpu
