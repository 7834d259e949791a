/// @file gpu_common.h
/// @brief What the gpu_*_perf binaries share on top of the driver (driver.h): the "no GPU" exit,
/// the default thread count, the GPU preamble line, and the CUDA-event timings added to the JSON
/// twin. Pure C++ (no CUDA headers).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "driver.h"
#include "lattice_transforms.h"
#include "sgd_solver.h"

namespace harsanyi::bench::gpu {

/// Exit code of a GPU benchmark on a machine without a usable GPU (the driver's "could not run").
constexpr int kNoGpuExit = 2;

/// @brief Arguments for run_benchmark(): argv with `-t <OpenMP max threads>` put first (a later
/// `-t` on the command line wins), because the threads only drive the CPU reference of the check.
class GpuArgs {
 public:
  GpuArgs(int argc, char** argv);
  int argc() const { return static_cast<int>(ptrs_.size()) - 1; }
  char** argv() { return ptrs_.data(); }
  /// True when -h / --help was given (the binary then runs without a GPU).
  bool help() const { return help_; }
  /// The value of -j / --json, or "".
  const std::string& json_path() const { return json_; }

 private:
  std::vector<std::string> args_;
  std::vector<char*> ptrs_;
  bool help_ = false;
  std::string json_;
};

/// @brief Returns 0 when a GPU is usable; otherwise prints "<name>: no GPU: <reason>" to stderr
/// and returns kNoGpuExit.
int require_gpu(const char* name);

/// @brief Records the CUDA-event times of one kernel of a case (warm-up runs included; the first
/// `warmup` entries are marked as such), to be added to the JSON twin by annotate_json().
void record_event_times(const Case& c, const std::string& kernel, const std::vector<double>& times,
                        int warmup);

/// @brief Adds `context.gpu` (device line), `context.gpu_timing` (how GPU times are taken) and,
/// per result row, `event_timings` (per kernel: median_s, min_s, max_s, times_s after warm-up) to
/// the JSON twin written by run_benchmark(). Returns false (and says why on stderr) on failure.
bool annotate_json(const std::string& path, const std::string& device, const std::string& timing);

// --- What the GPU solver benchmarks (gpu_sgd_perf, gpu_optimal_perf) share ---------------------

/// Samples refitted on the CPU for the check: --cpu-n, or max(2, threads); at most the batch.
std::size_t cpu_refit_samples(const Case& c);

/// @brief The solver benchmarks' inputs, [samples, 2^n] in double: sample s is a planted game
/// (n AND + n OR terms with integer coefficients, orders 1..min(n, 4), seed 500 + s) plus
/// 0.5·U[-1, 1) noise (seed 9000 + s).
std::vector<double> planted_inputs(int n, std::size_t samples);

/// m sample indices evenly spaced over [0, samples), the first and the last included.
std::vector<std::size_t> evenly_spaced(std::size_t m, std::size_t samples);

/// @brief What the GPU solver benchmarks' case states share: the batch v ([samples, 2^n],
/// planted_inputs rounded to T), the m samples refitted on the CPU (picked, evenly spaced,
/// gathered into v_cpu [m, 2^n]) and the GPU and CPU outputs.
template <class T>
struct SolverBatch {
  using value_type = T;
  int n = 0;
  std::size_t samples = 0, len = 0, m = 0;
  std::vector<T> v, v_cpu;
  std::vector<std::size_t> picked;
  AndOrBatch<T> gpu, cpu;
  explicit SolverBatch(const Case& c)
      : n(c.n),
        samples(c.samples),
        len(subset_count(c.n)),
        m(cpu_refit_samples(c)),
        v(c.samples * subset_count(c.n)),
        v_cpu(m * len),
        picked(evenly_spaced(m, samples)) {
    const std::vector<double> g = planted_inputs(n, samples);
    std::copy(g.begin(), g.end(), v.begin());
    for (std::size_t k = 0; k < m; ++k)
      std::copy_n(v.begin() + picked[k] * len, len, v_cpu.begin() + k * len);
  }
};

/// @brief Every output of two fits bitwise equal: I_and, I_or, p, q, loss, trace, bound and
/// iterations (for a check column that requires two kernels or launch modes to agree).
template <class T>
bool same_outputs(const AndOrBatch<T>& a, const AndOrBatch<T>& b) {
  const auto same = [](const auto& x, const auto& y) {
    return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(x[0])) == 0;
  };
  return same(a.and_, b.and_) && same(a.or_, b.or_) && same(a.p, b.p) && same(a.q, b.q) &&
         same(a.loss, b.loss) && same(a.trace, b.trace) && same(a.bound, b.bound) &&
         a.iterations == b.iterations;
}

/// Row gs of g (rows of `len` elements) bitwise equal to row es of e.
template <class V>
bool row_same(const V& g, std::size_t gs, const V& e, std::size_t es, std::size_t len) {
  return std::memcmp(g.data() + gs * len, e.data() + es * len, len * sizeof(g[0])) == 0;
}

}  // namespace harsanyi::bench::gpu
