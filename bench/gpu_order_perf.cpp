// gpu_order_perf: the GPU per-order metrics (cuda::order_metrics_batch, DESIGN §2.2: salient
// threshold, per-order sums and counts of I_and and I_or) of a batch of rows in device memory,
// against the bytes floor and the CPU functions (salient_threshold + order_strength per sample),
// which they must equal bitwise. GPU times are CUDA-event times. Formulas of every column:
// bench/README.md.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda_backend.h"
#include "driver.h"
#include "gpu_common.h"
#include "gpu_timer.h"
#include "interaction_metrics.h"
#include "lattice_transforms.h"
#include "order_index.h"
#include "order_metrics.h"
#include "system_memory.h"

namespace hb = harsanyi::bench;
namespace hg = harsanyi::bench::gpu;
namespace cu = harsanyi::cuda;
namespace oi = harsanyi::cuda::order_index;
using harsanyi::subset_count;
using harsanyi::ThresholdReference;

namespace {

constexpr std::size_t kCallBytes = 16 << 20;  // calls per repetition: >= 16 MiB of input ...
constexpr int kMaxCalls = 256;                // ... but at most 256 calls
constexpr int kMaxShift = 31;                 // magnitudes 2^0 .. 2^-31
// Seeds of the rows of sample s: I_and kAndSeed + s, I_or kOrSeed + s, v kValueSeed + s.
constexpr std::uint64_t kAndSeed = 1000, kOrSeed = 500000, kValueSeed = 900000;
// Bytes of one bin of a device node array (pos and neg doubles, an int32 count).
constexpr std::size_t kBinBytes = 2 * sizeof(double) + sizeof(std::int32_t);

ThresholdReference ref_of(const hb::Case& c) {
  return harsanyi::parse_threshold_reference(c.opt->extra.at("ref"));
}

double tau_of(const hb::Case& c) {
  const std::string& text = c.opt->extra.at("tau-rel");
  std::size_t used = 0;
  double tau = 0.0;
  try {
    tau = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !std::isfinite(tau))
    throw std::invalid_argument("--tau-rel must be a finite number, not '" + text + "'");
  return tau;
}

bool uses_values(const hb::Case& c) {
  return c.opt->extra.at("ref") == "vrange";
}

// Elements of one array of the batch, samples × 2^n.
std::size_t elements(const hb::Case& c) {
  return c.samples * subset_count(c.n);
}

// The `bytes` column: the two arrays I_and and I_or.
std::size_t array_bytes(const hb::Case& c) {
  return 2 * elements(c) * hb::dtype_size(c.dtype);
}

// Passes over both arrays of the minimum algorithm: the max of the threshold, then the sums
// (ref max); the sums alone (ref vrange: τ from two values per sample).
int passes_of(const hb::Case& c) {
  return uses_values(c) ? 1 : 2;
}

int calls_for(const hb::Case& c) {
  return static_cast<int>(
      std::clamp<std::size_t>(kCallBytes / std::max<std::size_t>(1, array_bytes(c)), 1, kMaxCalls));
}

// Device memory of a case: the input arrays (v with ref vrange) and what one call of
// order_metrics_batch allocates (the max and τ per sample, the two partial node buffers of
// n > 12, the AND and OR rows).
std::size_t device_bytes(const hb::Case& c) {
  const std::size_t arrays = elements(c) * hb::dtype_size(c.dtype) * (uses_values(c) ? 3 : 2);
  const std::size_t bins = c.samples * (static_cast<std::size_t>(c.n) + 1);
  const std::size_t partial = static_cast<std::size_t>(oi::partial_values(c.samples, c.n, 0) +
                                                       oi::partial_values(c.samples, c.n, 1));
  return arrays + (partial + 2 * bins) * kBinBytes + 2 * c.samples * sizeof(double) +
         (std::size_t{1} << 20);
}

// Host bytes of the rows of one OrderRows of the case (AND and OR).
std::size_t rows_bytes(const hb::Case& c) {
  const std::size_t bins = c.samples * (static_cast<std::size_t>(c.n) + 1);
  return c.samples * sizeof(double) + 2 * bins * kBinBytes;
}

std::uint64_t mix64(std::uint64_t x) {  // splitmix64's finaliser
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// x[i] = u · 2^-k, u uniform in [-1, 1) (53 bits of the hash), k uniform in 0..31 (5 other bits
// of it): a spread of magnitudes over ~10 decades; at tau_rel = 0.05 of a max near 1 about
// (0.95 + 0.9 + 0.8 + 0.6 + 0.2) / 32 ≈ 11 % of the elements are salient. Each element depends on
// (seed, i) alone, whatever the threads.
template <class T>
void fill_spread(T* x, std::size_t len, std::uint64_t seed) {
  const std::uint64_t base = mix64(seed + 0x9e3779b97f4a7c15ULL);
  const auto count = static_cast<std::int64_t>(len);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < count; ++i) {
    const std::uint64_t h = mix64(base + 0x9e3779b97f4a7c15ULL * (static_cast<std::uint64_t>(i) + 1));
    const double u = static_cast<double>(h >> 11) * 0x1.0p-52 - 1.0;
    x[i] = static_cast<T>(std::ldexp(u, -static_cast<int>(h & kMaxShift)));
  }
}

// Rows sized for the case, every entry poisoned (NaN, -1 counts).
void poison_rows(cu::OrderRows& r, std::size_t samples, int n) {
  const std::size_t bins = samples * (static_cast<std::size_t>(n) + 1);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  r.threshold.assign(samples, nan);
  r.and_pos.assign(bins, nan);
  r.and_neg.assign(bins, nan);
  r.and_count.assign(bins, -1);
  r.or_pos.assign(bins, nan);
  r.or_neg.assign(bins, nan);
  r.or_count.assign(bins, -1);
}

template <class V>
bool same_bits(const V& a, const V& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0);
}

// The arrays of two row sets that differ bitwise, by name ("" when none).
std::string row_differences(const cu::OrderRows& a, const cu::OrderRows& b) {
  std::string d;
  const auto add = [&d](bool same, const char* name) {
    if (!same) d += (d.empty() ? "" : ", ") + std::string(name);
  };
  add(same_bits(a.threshold, b.threshold), "threshold");
  add(same_bits(a.and_pos, b.and_pos), "and_pos");
  add(same_bits(a.and_neg, b.and_neg), "and_neg");
  add(same_bits(a.and_count, b.and_count), "and_count");
  add(same_bits(a.or_pos, b.or_pos), "or_pos");
  add(same_bits(a.or_neg, b.or_neg), "or_neg");
  add(same_bits(a.or_count, b.or_count), "or_count");
  return d;
}

template <class T>
struct GpuOrderState : hb::TypedState {
  using value_type = T;
  int n = 0, calls = 1;
  std::size_t samples = 0, row_len = 0, len = 0;  // len = samples · 2^n, one array
  double tau_rel = 0.05;
  ThresholdReference ref = ThresholdReference::MaxInteraction;
  hg::StreamOwner stream;
  hg::EventTimer timer{stream.get()};
  std::vector<T> and_, or_, v;  // host copies of the inputs (v: ref vrange only)
  std::unique_ptr<hg::DeviceBuffer> d_and, d_or, d_v;
  cu::OrderRows gpu, cpu;

  explicit GpuOrderState(const hb::Case& c)
      : n(c.n),
        calls(calls_for(c)),
        samples(c.samples),
        row_len(subset_count(c.n)),
        len(elements(c)),
        tau_rel(tau_of(c)),
        ref(ref_of(c)) {
    const std::size_t need = device_bytes(c), free_bytes = cu::device_free_bytes();
    if (need > free_bytes)
      throw std::runtime_error(fmt::format(
          "needs {} of device memory, {} free", harsanyi::format_bytes(static_cast<double>(need)),
          harsanyi::format_bytes(static_cast<double>(free_bytes))));
    and_.resize(len);
    or_.resize(len);
    for (std::size_t s = 0; s < samples; ++s) {
      fill_spread(and_.data() + s * row_len, row_len, kAndSeed + s);
      fill_spread(or_.data() + s * row_len, row_len, kOrSeed + s);
    }
    d_and = std::make_unique<hg::DeviceBuffer>(len * sizeof(T));
    d_or = std::make_unique<hg::DeviceBuffer>(len * sizeof(T));
    hg::upload(d_and->as<T>(), and_.data(), len * sizeof(T));
    hg::upload(d_or->as<T>(), or_.data(), len * sizeof(T));
    if (ref == ThresholdReference::ValueRange) {
      v.resize(len);
      for (std::size_t s = 0; s < samples; ++s)
        hb::fill_uniform(v.data() + s * row_len, row_len, kValueSeed + s);
      d_v = std::make_unique<hg::DeviceBuffer>(len * sizeof(T));
      hg::upload(d_v->as<T>(), v.data(), len * sizeof(T));
    }
    poison_rows(gpu, samples, n);
  }
  T* dev_and() const { return d_and->as<T>(); }
  T* dev_or() const { return d_or->as<T>(); }
  const T* dev_v() const { return d_v ? d_v->as<T>() : nullptr; }

  // One call of the GPU metrics on the device rows, fold = false (the input stays as it is).
  void run_gpu(cu::OrderRows& out) {
    cu::order_metrics_batch<T>(dev_and(), dev_or(), dev_v(), samples, n, tau_rel, ref, false, out,
                               stream.get());
  }
  // The CPU reference: harsanyi::order_rows, as src/study.cpp's host path (no fold here).
  void run_cpu(cu::OrderRows& out) {
    out = harsanyi::order_rows(and_.data(), or_.data(), v.empty() ? nullptr : v.data(), samples, n,
                               tau_rel, ref, false);
  }
};

template <class F>
void visit(hb::CaseState& st, F&& f) {
  hb::visit<GpuOrderState>(st, f);
}

}  // namespace

int main(int argc, char** argv) {
  // The default step of n is 4 (the driver's is 1): `-i 4` goes first, a later -i wins.
  std::vector<char*> argv_step = {argv[0], const_cast<char*>("-i"), const_cast<char*>("4")};
  argv_step.insert(argv_step.end(), argv + 1, argv + argc);
  argv_step.push_back(nullptr);
  hg::GpuArgs args(static_cast<int>(argv_step.size()) - 1, argv_step.data());
  if (!args.help())
    if (const int rc = hg::require_gpu("gpu_order_perf")) return rc;
  const std::string device = args.help() ? std::string() : hg::device_line();
  const double peak = args.help() ? 0.0 : hg::peak_bandwidth_gbs();
  const std::string timing_note =
      "CUDA events on the benchmark's own stream around the `calls` calls of a repetition "
      "(after -w warm-up repetitions); time = median per call. order_metrics_batch allocates its "
      "work arrays, copies the rows to the host and synchronises the stream inside every call, "
      "so the event time includes that and is about the host time";

  hb::OpDef op;
  op.name = "gpu_order_perf";
  op.summary =
      "GPU per-order metrics (DESIGN 2.2), cuda::order_metrics_batch on [samples, 2^n] I_and "
      "and I_or rows in device memory, vs the bytes floor and the CPU functions (bitwise); "
      "default sweep -b 10 -e 26 -i 4 (n step 4)";
  op.default_min_n = 10;
  op.default_max_n = 26;
  op.max_allowed_n = 30;
  op.default_reps = 11;
  op.default_warmup = 2;
  op.default_samples = 1;
  op.flags = {{"ref", "max", "threshold reference: max (tau_rel x max|I|) or vrange "
                             "(tau_rel x |v(N) - v(0)|)"},
              {"tau-rel", "0.05", "relative salient threshold tau_rel"}};
  op.preamble = {
      "gpu      : " + device,
      fmt::format("gpu time : {}; the steady_clock line above is the host time, kept in the "
                  "JSON `timings`",
                  timing_note),
      fmt::format("calls    : a repetition runs max(1, min({}, 16 MiB / bytes)) calls on the same "
                  "input back to back (GPU and CPU)",
                  kMaxCalls),
      "inputs   : I_and, I_or [samples, 2^n] = u x 2^-k, u uniform in [-1, 1), k uniform in "
      "0..31 (splitmix64, seeds 1000 + s and 500000 + s; ~11 % salient at tau_rel 0.05 with "
      "--ref max), uploaded once; --ref vrange: v [samples, 2^n] uniform in [-1, 1) (seed "
      "900000 + s) uploaded too (not held with --ref max, which never reads it)",
      "fold     : false in every call (timed and checked), so that repeated calls see the same "
      "input; the fold is one small element-wise kernel over the orders <= 1, not measured",
      fmt::format("floor    : passes x bytes / peak DRAM bandwidth ({:.0f} GB/s from the memory "
                  "clock and bus width); passes = 2 with --ref max (the max pass reads both "
                  "arrays once, the sums pass once more), 1 with --ref vrange (no max pass); "
                  "GB/s = passes x bytes / time",
                  peak),
      "cpu      : order_rows (salient_threshold + order_strength of I_and and of I_or per sample, "
      "serial over the samples, one thread whatever -t), src/study.cpp's host path",
      "check    : a fresh GPU call into NaN-poisoned host rows vs the CPU rows: threshold, "
      "and/or pos, neg and counts of every sample bitwise equal (required), and equal to the "
      "last timed call's",
  };
  op.columns = {
      {"bytes", "B", hb::Fmt::integer, 0, 11},  {"time", "ms", hb::Fmt::fixed, 4, 10},
      {"spread", "%", hb::Fmt::fixed, 1, 7},    {"GB/s", "GB/s", hb::Fmt::fixed, 1, 8},
      {"floor", "ms", hb::Fmt::fixed, 4, 9},    {"x_floor", "x", hb::Fmt::fixed, 2, 8},
      {"cpu", "ms", hb::Fmt::fixed, 3, 10},     {"speedup", "x", hb::Fmt::fixed, 1, 8},
      {"salient", "%", hb::Fmt::fixed, 2, 8},   {"bitwise", "-", hb::Fmt::text, 0, 8},
  };
  op.memory_bytes = [](const hb::Case& c) {
    // host: I_and, I_or (and v), the GPU, CPU and check rows
    return elements(c) * hb::dtype_size(c.dtype) * (uses_values(c) ? 3 : 2) + 4 * rows_bytes(c) +
           (std::size_t{1} << 20);
  };
  op.setup = hb::make_state<GpuOrderState>;
  op.calls = calls_for;
  op.kernels = {
      {"gpu", nullptr,
       [](hb::CaseState& st, int i) {
         visit(st, [i](auto& s) {
           if (i == 0) s.timer.start();
           s.run_gpu(s.gpu);
           if (i == s.calls - 1) s.timer.stop(s.calls);
         });
       }},
      {"cpu", nullptr,
       [](hb::CaseState& st, int) { visit(st, [](auto& s) { s.run_cpu(s.cpu); }); }},
  };
  op.metrics = [peak](const hb::Case& c, hb::CaseState& st, const std::vector<hb::Timing>& t,
                      hb::Row& row) {
    visit(st, [&](auto& s) {
      const int warm = c.opt->warmup;
      hg::record_event_times(c, "gpu", s.timer.times(), warm);
      const hg::Stats g = hg::stats_after(s.timer.times(), warm);
      const double bytes = static_cast<double>(array_bytes(c));
      const double traffic = passes_of(c) * bytes;
      row["bytes"] = static_cast<long long>(array_bytes(c));
      row["time"] = 1e3 * g.median;
      row["spread"] = g.spread_pct();
      row["GB/s"] = traffic / g.median / 1e9;
      if (peak > 0) {
        const double floor_s = traffic / (peak * 1e9);
        row["floor"] = 1e3 * floor_s;
        row["x_floor"] = g.median / floor_s;
      }
      row["cpu"] = 1e3 * t[1].median;
      row["speedup"] = t[1].median / g.median;
      long long salient = 0;
      for (const std::int32_t k : s.gpu.and_count) salient += k;
      for (const std::int32_t k : s.gpu.or_count) salient += k;
      row["salient"] = 100.0 * static_cast<double>(salient) / (2.0 * static_cast<double>(s.len));
    });
  };
  op.check = [](const hb::Case&, hb::CaseState& st, hb::Row& row) {
    hb::CheckResult r;
    visit(st, [&](auto& s) {
      cu::OrderRows fresh;
      poison_rows(fresh, s.samples, s.n);
      s.run_gpu(fresh);
      const std::string vs_cpu = row_differences(fresh, s.cpu);
      const std::string vs_timed = row_differences(fresh, s.gpu);
      row["bitwise"] = std::string(vs_cpu.empty() ? "yes" : "NO");
      if (!vs_cpu.empty()) {
        r.ok = false;
        r.why = "GPU rows differ bitwise from the CPU's in: " + vs_cpu;
      }
      if (!vs_timed.empty()) {
        r.ok = false;
        r.why += (r.why.empty() ? "" : "; ") +
                 std::string("a fresh GPU call differs from the last timed one in: ") + vs_timed;
      }
    });
    return r;
  };
  const int code = hb::run_benchmark(op, args.argc(), args.argv());
  if (!args.help() && !hg::annotate_json(args.json_path(), device, timing_note)) return 2;
  return code;
}
