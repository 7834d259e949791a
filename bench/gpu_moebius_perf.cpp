// gpu_moebius_perf: the CUDA Möbius transform (cuda::lattice_transform) of [samples, 2^n] against
// one device-to-device copy of the same array, the bytes-moved floor, and the dense ±1-matrix
// cuBLAS GEMM of the lab's formulation (DESIGN §2). GPU times are CUDA-event times.
// Formulas of every column: bench/README.md.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "cuda_backend.h"
#include "driver.h"
#include "gpu_common.h"
#include "gpu_timer.h"
#include "lattice_transforms.h"
#include "system_memory.h"

namespace hb = harsanyi::bench;
namespace hg = harsanyi::bench::gpu;
namespace cu = harsanyi::cuda;
using harsanyi::subset_count;

namespace {

constexpr std::size_t kGuard = 4096;          // poisoned elements before and after the copies
constexpr std::size_t kCallBytes = 16 << 20;  // calls per repetition: >= 16 MiB of work ...
constexpr int kMaxCalls = 256;                // ... but at most 256 launches
constexpr double kF32Tolerance = 1e-5;        // f32 vs the float64 reference, relative to max|ref|
constexpr double kGemmTolF64 = 1e-10, kGemmTolF32 = 1e-4;

std::size_t array_bytes(const hb::Case& c) {
  return c.samples * subset_count(c.n) * hb::dtype_size(c.dtype);
}

int calls_for(const hb::Case& c) {
  return static_cast<int>(
      std::clamp<std::size_t>(kCallBytes / std::max<std::size_t>(1, array_bytes(c)), 1, kMaxCalls));
}

bool gemm_for(const hb::Case& c) {
  return c.n <= c.opt->extra_int("gemm-maxn");
}

std::size_t device_bytes(const hb::Case& c) {
  const std::size_t a = array_bytes(c), copies = static_cast<std::size_t>(calls_for(c));
  std::size_t need = a                                                    // pristine input
                     + copies * a + 2 * kGuard * hb::dtype_size(c.dtype)  // work copies + guards
                     + copies * a;                                        // copy destinations
  if (gemm_for(c))
    need += copies * a + (std::size_t{1} << (2 * c.n)) * hb::dtype_size(c.dtype);  // out + M
  return need;
}

template <class T>
struct GpuMoebiusState : hb::TypedState {
  using value_type = T;
  int n = 0, copies = 1;
  bool gemm = false;
  std::size_t samples = 0, len = 0;  // len = samples * 2^n, one copy
  hg::StreamOwner stream;
  hg::EventTimer t_transform{stream.get()}, t_cluster{stream.get()}, t_copy{stream.get()},
      t_gemm{stream.get()};
  std::vector<T> input;  // host copy of the timed input
  std::unique_ptr<hg::DeviceBuffer> pristine, work, copy_dst, gemm_out;
  std::unique_ptr<hg::DenseMoebius<T>> dense;

  explicit GpuMoebiusState(const hb::Case& c)
      : n(c.n),
        copies(calls_for(c)),
        gemm(gemm_for(c)),
        samples(c.samples),
        len(c.samples * subset_count(c.n)),
        input(len) {
    const std::size_t need = device_bytes(c), free_bytes = cu::device_free_bytes();
    if (need > free_bytes)
      throw std::runtime_error(fmt::format(
          "needs {} of device memory, {} free", harsanyi::format_bytes(static_cast<double>(need)),
          harsanyi::format_bytes(static_cast<double>(free_bytes))));
    for (std::size_t k = 0; k < samples; ++k)
      hb::fill_uniform(input.data() + k * subset_count(n), subset_count(n), 1000 + k);
    pristine = std::make_unique<hg::DeviceBuffer>(len * sizeof(T));
    work = std::make_unique<hg::DeviceBuffer>((copies * len + 2 * kGuard) * sizeof(T));
    copy_dst = std::make_unique<hg::DeviceBuffer>(copies * len * sizeof(T));
    hg::upload(pristine->as<T>(), input.data(), len * sizeof(T));
    if (gemm) {
      gemm_out = std::make_unique<hg::DeviceBuffer>(copies * len * sizeof(T));
      dense = std::make_unique<hg::DenseMoebius<T>>(n, stream.get());
    }
  }
  T* pristine_ptr() const { return pristine->as<T>(); }
  T* work_copy(int i) const { return work->as<T>() + kGuard + i * len; }
  T* copy_copy(int i) const { return copy_dst->as<T>() + i * len; }
  T* gemm_copy(int i) const { return gemm_out->as<T>() + i * len; }
};

template <class F>
void visit(hb::CaseState& st, F&& f) {
  hb::visit<GpuMoebiusState>(st, f);
}

// Starts the timer before the first call of a repetition and stops it after the last.
template <class S, class Launch>
void timed_call(S& s, hg::EventTimer& t, int i, Launch&& launch) {
  if (i == 0) t.start();
  launch();
  if (i == s.copies - 1) t.stop(s.copies);
}

template <class T>
void compare(const std::vector<T>& got, const std::vector<double>& ref, double& abs_err,
             double& ref_max, std::size_t& nonfinite) {
  abs_err = 0.0;
  ref_max = 0.0;
  nonfinite = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]);
    if (!std::isfinite(g)) {
      ++nonfinite;
      continue;
    }
    abs_err = std::max(abs_err, std::fabs(g - ref[i]));
    ref_max = std::max(ref_max, std::fabs(ref[i]));
  }
}

bool all_ff(const unsigned char* p, std::size_t bytes) {
  for (std::size_t i = 0; i < bytes; ++i)
    if (p[i] != 0xFF) return false;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  hg::GpuArgs args(argc, argv);
  if (!args.help())
    if (const int rc = hg::require_gpu("gpu_moebius_perf")) return rc;
  const std::string device = args.help() ? std::string() : hg::device_line();
  const double peak = args.help() ? 0.0 : hg::peak_bandwidth_gbs();
  const std::string timing_note =
      "CUDA events on the benchmark's stream around the `calls` launches of a repetition "
      "(after -w warm-up repetitions); time = median per call";

  hb::OpDef op;
  op.name = "gpu_moebius_perf";
  op.summary =
      "CUDA Moebius transform of [samples, 2^n] vs a device-to-device copy, the bytes "
      "floor and the dense +-1-matrix cuBLAS GEMM";
  op.default_min_n = 10;
  op.default_max_n = 28;
  op.max_allowed_n = 30;
  op.default_reps = 21;
  op.default_warmup = 3;
  op.default_samples = 1;
  op.flags = {{"gemm-maxn", "13", "largest n of the dense GEMM baseline (4^n elements)"}};
  op.preamble = {
      "gpu      : " + device,
      fmt::format("gpu time : {}; the steady_clock line above is the host time, kept in the "
                  "JSON `timings`",
                  timing_note),
      fmt::format("calls    : a repetition runs max(1, min({}, 16 MiB / bytes)) launches on fresh "
                  "copies back to back",
                  kMaxCalls),
      fmt::format("floor    : 2 x bytes / peak DRAM bandwidth ({:.0f} GB/s from the memory clock "
                  "and bus width); target at n = 28 f32: x_copy <= 3",
                  peak),
      "check    : fresh inputs; GPU output vs CPU moebius_transform in float64 (f64: exactly 0; "
      "f32: <= 1e-5 x max|ref|), buffers poisoned with NaN first; GEMM vs the same reference",
      "cluster  : the same transform with LatticePasses::Cluster (2 passes through shared memory, "
      "the second across a cluster of blocks; n = 21..28, 29 in f32, compute capability >= 9.0, "
      "else the column passes: c_passes says which ran); c_same: output bitwise equal to the "
      "column passes' (required)",
  };
  op.columns = {
      {"bytes", "B", hb::Fmt::integer, 0, 11},      {"passes", "-", hb::Fmt::integer, 0, 7},
      {"time", "ms", hb::Fmt::fixed, 4, 10},        {"spread", "%", hb::Fmt::fixed, 1, 7},
      {"GB/s", "GB/s", hb::Fmt::fixed, 1, 8},       {"pass_GB/s", "GB/s", hb::Fmt::fixed, 1, 10},
      {"floor", "ms", hb::Fmt::fixed, 4, 9},        {"copy", "ms", hb::Fmt::fixed, 4, 9},
      {"copy_GB/s", "GB/s", hb::Fmt::fixed, 1, 10}, {"x_copy", "x", hb::Fmt::fixed, 2, 7},
      {"c_passes", "-", hb::Fmt::integer, 0, 9},    {"cluster", "ms", hb::Fmt::fixed, 4, 10},
      {"c_x_copy", "x", hb::Fmt::fixed, 2, 9},      {"c_same", "-", hb::Fmt::text, 0, 7},
      {"gemm", "ms", hb::Fmt::fixed, 4, 10},        {"gemm_x", "x", hb::Fmt::fixed, 1, 8},
      {"gemm_TF/s", "TF/s", hb::Fmt::fixed, 2, 10}, {"err_cpu", "rel", hb::Fmt::sci, 1, 9},
      {"bitwise", "-", hb::Fmt::text, 0, 8},        {"err_gemm", "rel", hb::Fmt::sci, 1, 9},
  };
  op.memory_bytes = [](const hb::Case& c) {
    // host: the input, the float64 input and reference, the CPU same-type result, the download
    return array_bytes(c) * (1 + static_cast<std::size_t>(calls_for(c))) +
           c.samples * subset_count(c.n) * (2 * sizeof(double) + hb::dtype_size(c.dtype)) +
           (std::size_t{1} << 20);
  };
  op.setup = hb::make_state<GpuMoebiusState>;
  op.calls = calls_for;
  const auto fresh_work_copies = [](hb::CaseState& st) {
    visit(st, [](auto& s) {
      using T = typename std::decay_t<decltype(s)>::value_type;
      for (int i = 0; i < s.copies; ++i)
        hg::copy_d2d(s.work_copy(i), s.pristine_ptr(), s.len * sizeof(T), s.stream.get());
      hg::synchronize(s.stream.get());
    });
  };
  op.kernels = {
      {"transform", fresh_work_copies,
       [](hb::CaseState& st, int i) {
         visit(st, [i](auto& s) {
           timed_call(s, s.t_transform, i, [&] {
             cu::lattice_transform(cu::LatticeOp::Moebius, s.work_copy(i), s.n, s.samples,
                                   s.stream.get(), cu::LatticePasses::Columns);
           });
         });
       }},
      {"cluster", fresh_work_copies,
       [](hb::CaseState& st, int i) {
         visit(st, [i](auto& s) {
           timed_call(s, s.t_cluster, i, [&] {
             cu::lattice_transform(cu::LatticeOp::Moebius, s.work_copy(i), s.n, s.samples,
                                   s.stream.get(), cu::LatticePasses::Cluster);
           });
         });
       }},
      {"copy",
       [](hb::CaseState& st) {
         visit(st, [](auto& s) {
           using T = typename std::decay_t<decltype(s)>::value_type;
           hg::fill_bytes(s.copy_dst->template as<T>(), 0xFF, s.copies * s.len * sizeof(T), s.stream.get());
           hg::synchronize(s.stream.get());
         });
       },
       [](hb::CaseState& st, int i) {
         visit(st, [i](auto& s) {
           using T = typename std::decay_t<decltype(s)>::value_type;
           timed_call(s, s.t_copy, i, [&] {
             hg::copy_d2d(s.copy_copy(i), s.pristine_ptr(), s.len * sizeof(T), s.stream.get());
           });
         });
       }},
      {"gemm",
       [](hb::CaseState& st) {
         visit(st, [](auto& s) {
           using T = typename std::decay_t<decltype(s)>::value_type;
           if (!s.gemm) return;
           hg::fill_bytes(s.gemm_out->template as<T>(), 0xFF, s.copies * s.len * sizeof(T), s.stream.get());
           hg::synchronize(s.stream.get());
         });
       },
       [](hb::CaseState& st, int i) {
         visit(st, [i](auto& s) {
           if (!s.gemm) return;
           timed_call(s, s.t_gemm, i,
                      [&] { s.dense->apply(s.pristine_ptr(), s.gemm_copy(i), s.samples); });
         });
       }},
  };
  op.metrics = [peak](const hb::Case& c, hb::CaseState& st, const std::vector<hb::Timing>&,
                      hb::Row& row) {
    visit(st, [&](auto& s) {
      using T = typename std::decay_t<decltype(s)>::value_type;
      const int warm = c.opt->warmup;
      hg::record_event_times(c, "transform", s.t_transform.times(), warm);
      hg::record_event_times(c, "copy", s.t_copy.times(), warm);
      const hg::Stats tr = hg::stats_after(s.t_transform.times(), warm);
      const hg::Stats cp = hg::stats_after(s.t_copy.times(), warm);
      const double bytes = static_cast<double>(s.len * sizeof(T));
      const int passes = cu::lattice_pass_count(cu::LatticePasses::Columns, s.n, sizeof(T));
      row["bytes"] = static_cast<long long>(bytes);
      row["passes"] = static_cast<long long>(passes);
      row["time"] = 1e3 * tr.median;
      row["spread"] = tr.spread_pct();
      row["GB/s"] = 2.0 * bytes / tr.median / 1e9;
      row["pass_GB/s"] = 2.0 * bytes * passes / tr.median / 1e9;
      if (peak > 0) row["floor"] = 1e3 * 2.0 * bytes / (peak * 1e9);
      row["copy"] = 1e3 * cp.median;
      row["copy_GB/s"] = 2.0 * bytes / cp.median / 1e9;
      row["x_copy"] = tr.median / cp.median;
      hg::record_event_times(c, "cluster", s.t_cluster.times(), warm);
      const hg::Stats cl = hg::stats_after(s.t_cluster.times(), warm);
      row["c_passes"] =
          static_cast<long long>(cu::lattice_pass_count(cu::LatticePasses::Cluster, s.n, sizeof(T)));
      row["cluster"] = 1e3 * cl.median;
      row["c_x_copy"] = cl.median / cp.median;
      if (s.gemm) {
        hg::record_event_times(c, "gemm", s.t_gemm.times(), warm);
        const hg::Stats gm = hg::stats_after(s.t_gemm.times(), warm);
        row["gemm"] = 1e3 * gm.median;
        row["gemm_x"] = gm.median / tr.median;
        const double flops = 2.0 * static_cast<double>(subset_count(s.n)) *
                             static_cast<double>(subset_count(s.n)) *
                             static_cast<double>(s.samples);
        row["gemm_TF/s"] = flops / gm.median / 1e12;
      }
    });
  };
  op.check = [](const hb::Case& c, hb::CaseState& st, hb::Row& row) {
    hb::CheckResult r;
    auto fail = [&r](const std::string& why) {
      r.ok = false;
      r.why += (r.why.empty() ? "" : "; ") + why;
    };
    visit(st, [&](auto& s) {
      using T = typename std::decay_t<decltype(s)>::value_type;
      const std::size_t row_len = subset_count(s.n);
      // Fresh inputs (other seeds than the timed ones), rounded to T; float64 references.
      std::vector<T> x(s.len);
      for (std::size_t k = 0; k < s.samples; ++k)
        hb::fill_uniform(x.data() + k * row_len, row_len, 700000 + 1000 * c.n + k);
      std::vector<double> ref(x.begin(), x.end());
      harsanyi::moebius_transform(ref.data(), s.n, s.samples);
      std::vector<T> same = x;
      harsanyi::moebius_transform(same.data(), s.n, s.samples);

      // Transform: the whole work buffer NaN-poisoned, the input into copy 0, transform copy 0;
      // with the cluster passes, then with the column passes: equal bitwise.
      const std::size_t work_bytes = s.work->bytes();
      const std::size_t head = kGuard * sizeof(T), body = s.len * sizeof(T);
      std::vector<unsigned char> all(work_bytes);
      std::vector<T> got(s.len), cluster(s.len);
      for (const cu::LatticePasses passes :
           {cu::LatticePasses::Cluster, cu::LatticePasses::Columns}) {
        hg::fill_bytes(s.work->template as<T>(), 0xFF, work_bytes, s.stream.get());
        hg::synchronize(s.stream.get());
        hg::upload(s.work_copy(0), x.data(), s.len * sizeof(T));
        cu::lattice_transform(cu::LatticeOp::Moebius, s.work_copy(0), s.n, s.samples,
                              s.stream.get(), passes);
        hg::synchronize(s.stream.get());
        hg::download(all.data(), s.work->template as<T>(), work_bytes);
        const char* name = passes == cu::LatticePasses::Cluster ? "cluster" : "column";
        if (!all_ff(all.data(), head) ||
            !all_ff(all.data() + head + body, work_bytes - head - body))
          fail(fmt::format("the {} passes wrote outside their array", name));
        std::memcpy(passes == cu::LatticePasses::Cluster ? cluster.data() : got.data(),
                    all.data() + head, body);
      }
      const bool cluster_same = std::memcmp(cluster.data(), got.data(), body) == 0;
      row["c_same"] = std::string(cluster_same ? "yes" : "no");
      if (!cluster_same) fail("the cluster passes' output differs from the column passes'");
      double abs_err = 0, ref_max = 0;
      std::size_t bad = 0;
      compare(got, ref, abs_err, ref_max, bad);
      const double err = sizeof(T) == 8 ? abs_err : abs_err / std::max(ref_max, 1e-300);
      row["err_cpu"] = bad ? std::nan("") : err;
      const bool bitwise = std::memcmp(got.data(), same.data(), body) == 0;
      row["bitwise"] = std::string(bitwise ? "yes" : "no");
      if (bad) fail(fmt::format("{} elements NaN/inf (unwritten or wrong)", bad));
      if (sizeof(T) == 8 && (err != 0.0 || !bitwise))
        fail(fmt::format("float64 transform differs from the CPU's by {:.3e} (must be 0)", err));
      if (sizeof(T) == 4 && !(err <= kF32Tolerance))
        fail(
            fmt::format("float32 transform: error {:.3e} x max|ref| > {:.0e}", err, kF32Tolerance));

      // The timed copies hold the timed input bitwise.
      std::vector<T> copied(s.len);
      for (int i = 0; i < s.copies; ++i) {
        hg::download(copied.data(), s.copy_copy(i), body);
        if (std::memcmp(copied.data(), s.input.data(), body) != 0) {
          fail(fmt::format("device-to-device copy {} differs from its source", i));
          break;
        }
      }

      // GEMM baseline on the same fresh inputs, into a NaN-poisoned output.
      if (s.gemm) {
        hg::upload(s.pristine_ptr(), x.data(), body);
        hg::fill_bytes(s.gemm_out->template as<T>(), 0xFF, s.gemm_out->bytes(), s.stream.get());
        s.dense->apply(s.pristine_ptr(), s.gemm_copy(0), s.samples);
        hg::synchronize(s.stream.get());
        hg::download(got.data(), s.gemm_copy(0), body);
        compare(got, ref, abs_err, ref_max, bad);
        const double ge = abs_err / std::max(ref_max, 1e-300);
        row["err_gemm"] = bad ? std::nan("") : ge;
        const double tol = sizeof(T) == 8 ? kGemmTolF64 : kGemmTolF32;
        if (bad || !(ge <= tol))
          fail(fmt::format("dense GEMM: error {:.3e} x max|ref| (tolerance {:.0e}), {} NaN/inf", ge,
                           tol, bad));
      }
    });
    return r;
  };
  const int code = hb::run_benchmark(op, args.argc(), args.argv());
  if (!args.help() && !hg::annotate_json(args.json_path(), device, timing_note)) return 2;
  return code;
}
