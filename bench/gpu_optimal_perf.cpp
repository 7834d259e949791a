// gpu_optimal_perf: the optimal AND-OR solver on the GPU (cuda::fit_and_or_optimal_batch, the
// restarted Halpern PDHG of src/optimal_solver.h with its crossovers on the host) on a batch,
// against the CPU solver (fit_and_or_optimal_batch) on a few of the same samples, which must give
// bitwise the same results in float64. Formulas of every column: bench/README.md.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "cuda_backend.h"
#include "driver.h"
#include "gpu_common.h"
#include "gpu_timer.h"
#include "lattice_transforms.h"
#include "optimal_solver.h"

namespace hb = harsanyi::bench;
namespace hg = harsanyi::bench::gpu;
namespace cu = harsanyi::cuda;
using harsanyi::subset_count;

namespace {

constexpr double kTolF32 = 2.0;  // f32: |loss_gpu − loss_cpu| <= kTolF32 · tol · loss_cpu

template <class T>
struct GpuOptimalState : hb::TypedState, hg::SolverBatch<T> {
  harsanyi::OptimalOptions opt;
  harsanyi::AndOrBatch<T> direct;
  cu::OptimalTimes times;  // of the last timed GPU call
  explicit GpuOptimalState(const hb::Case& c) : hg::SolverBatch<T>(c) {
    opt.tol = std::stod(c.opt->extra.at("tol"));
    opt.max_iters = static_cast<int>(c.opt->extra_int("max-iters"));
  }
};

template <class F>
void visit(hb::CaseState& st, F&& f) {
  hb::visit<GpuOptimalState>(st, f);
}

}  // namespace

int main(int argc, char** argv) {
  hg::GpuArgs args(argc, argv);
  if (!args.help())
    if (const int rc = hg::require_gpu("gpu_optimal_perf")) return rc;
  const std::string device = args.help() ? std::string() : hg::device_line();

  hb::OpDef op;
  op.name = "gpu_optimal_perf";
  op.summary =
      "GPU optimal AND-OR solver (restarted Halpern PDHG + host crossovers), "
      "cuda::fit_and_or_optimal_batch, vs the CPU solver on a few of the samples";
  op.default_min_n = 8;
  op.default_max_n = 12;
  op.max_allowed_n = 20;
  op.default_reps = 3;
  op.default_warmup = 1;
  op.default_samples = 1024;
  op.flags = {{"tol", "1e-3", "relative gap (loss - bound) / loss at which a sample stops"},
              {"max-iters", "200000", "iteration cap per sample"},
              {"cpu-n", "0", "samples refitted on the CPU (0: max(2, threads))"}};
  op.preamble = {
      "gpu      : " + device,
      "timing   : steady_clock around the whole host call (H2D copy, allocation, iterations, "
      "checks, crossovers, D2H copy); `cpu` = fit_and_or_optimal_batch on the refitted samples "
      "with `threads` threads",
      "split    : t_iter, t_check, t_cross, t_other = the last graph call's time in the device "
      "iterations, the checks, the host crossovers and the rest (cuda::OptimalTimes: the call "
      "waits for the device at each check to split exactly); n_cross = crossover attempts",
      "inputs   : planted game (n AND + n OR terms, orders 1..4) + U[-0.5,0.5) noise; qthres "
      "0.04",
      "check    : f64: the refitted samples' I_and, I_or, p, q, loss, bound and iterations "
      "bitwise equal to the CPU's (required); f32: losses within 2·tol; every sample's bound "
      "<= its loss",
  };
  op.columns = {
      {"it_mean", "-", hb::Fmt::integer, 0, 8},    {"it_max", "-", hb::Fmt::integer, 0, 7},
      {"conv", "%", hb::Fmt::fixed, 1, 6},         {"time", "s", hb::Fmt::fixed, 3, 8},
      {"spread", "%", hb::Fmt::fixed, 1, 7},       {"direct", "s", hb::Fmt::fixed, 3, 8},
      {"x_graph", "x", hb::Fmt::fixed, 2, 7},      {"ms/sample", "ms", hb::Fmt::fixed, 3, 10},
      {"samples/s", "1/s", hb::Fmt::fixed, 1, 10}, {"us/iter", "us", hb::Fmt::fixed, 1, 8},
      {"cpu_n", "-", hb::Fmt::integer, 0, 6},      {"cpu_ms/s", "ms", hb::Fmt::fixed, 2, 9},
      {"speedup", "x", hb::Fmt::fixed, 1, 8},      {"t_iter", "s", hb::Fmt::fixed, 3, 8},
      {"t_check", "s", hb::Fmt::fixed, 3, 8},      {"t_cross", "s", hb::Fmt::fixed, 3, 8},
      {"t_other", "s", hb::Fmt::fixed, 3, 8},      {"n_cross", "-", hb::Fmt::integer, 0, 7},
      {"loss", "mean", hb::Fmt::fixed, 3, 10},
      {"gap", "max", hb::Fmt::sci, 1, 8},          {"d_loss", "rel", hb::Fmt::sci, 1, 8},
      {"bitwise", "-", hb::Fmt::text, 0, 8},       {"=direct", "-", hb::Fmt::text, 0, 8},
  };
  op.memory_bytes = [](const hb::Case& c) {
    // v and the four outputs of the GPU batch, and the CPU refit with its work arrays
    return c.samples * subset_count(c.n) * hb::dtype_size(c.dtype) * 9 +
           hg::cpu_refit_samples(c) * harsanyi::optimal_bytes_per_sample(c.n, hb::dtype_size(c.dtype)) +
           (std::size_t{1} << 20);
  };
  op.setup = hb::make_state<GpuOptimalState>;
  op.kernels = {
      {"gpu", nullptr,
       [](hb::CaseState& st, int) {
         visit(st, [](auto& s) {
           using T = typename std::decay_t<decltype(s)>::value_type;
           cu::fit_and_or_optimal_batch<T>(s.v.data(), s.samples, s.n, s.opt, s.gpu, nullptr,
                                           cu::Launch::Graph, nullptr, &s.times);
         });
       }},
      {"direct", nullptr,
       [](hb::CaseState& st, int) {
         visit(st, [](auto& s) {
           cu::fit_and_or_optimal_batch(s.v.data(), s.samples, s.n, s.opt, s.direct, nullptr,
                                        cu::Launch::Direct);
         });
       }},
      {"cpu", nullptr,
       [](hb::CaseState& st, int) {
         visit(st, [](auto& s) {
           harsanyi::fit_and_or_optimal_batch(s.v_cpu.data(), s.m, s.n, s.opt, s.cpu);
         });
       }},
  };
  op.metrics = [](const hb::Case& c, hb::CaseState& st, const std::vector<hb::Timing>& t,
                  hb::Row& row) {
    visit(st, [&](auto& s) {
      const double samples = static_cast<double>(c.samples);
      double it_sum = 0.0, loss_sum = 0.0, gap = 0.0;
      long long it_max = 0, converged = 0;
      for (std::size_t k = 0; k < c.samples; ++k) {
        const auto it = s.gpu.iterations[k];
        it_sum += static_cast<double>(it);
        it_max = std::max<long long>(it_max, it);
        loss_sum += s.gpu.loss[k];
        const double g = (s.gpu.loss[k] - s.gpu.bound[k]) / std::max(s.gpu.loss[k], 1e-300);
        gap = std::max(gap, g);
        if (g <= s.opt.tol) ++converged;
      }
      row["it_mean"] = static_cast<long long>(std::llround(it_sum / samples));
      row["it_max"] = it_max;
      row["conv"] = 100.0 * static_cast<double>(converged) / samples;
      row["time"] = t[0].median;
      row["spread"] = t[0].spread_pct();
      row["direct"] = t[1].median;
      row["x_graph"] = t[1].median / t[0].median;
      row["ms/sample"] = 1e3 * t[0].median / samples;
      row["samples/s"] = samples / t[0].median;
      // one iteration of the whole batch, counting the longest-running sample's iterations
      row["us/iter"] = it_max > 0 ? 1e6 * t[0].median / static_cast<double>(it_max) : 0.0;
      row["cpu_n"] = static_cast<long long>(s.m);
      const double cpu_per_sample = t[2].median / static_cast<double>(s.m);
      row["cpu_ms/s"] = 1e3 * cpu_per_sample;
      row["speedup"] = cpu_per_sample / (t[0].median / samples);
      row["t_iter"] = s.times.iterate_s;
      row["t_check"] = s.times.check_s;
      row["t_cross"] = s.times.crossover_s;
      row["t_other"] = s.times.other_s;
      row["n_cross"] = static_cast<long long>(s.times.crossovers);
      row["loss"] = loss_sum / samples;
      row["gap"] = gap;
    });
  };
  op.check = [](const hb::Case&, hb::CaseState& st, hb::Row& row) {
    hb::CheckResult r;
    visit(st, [&](auto& s) {
      using T = typename std::decay_t<decltype(s)>::value_type;
      double d_loss = 0.0;
      bool same = true;
      for (std::size_t k = 0; k < s.m; ++k) {
        const std::size_t g = s.picked[k];
        const double dl = std::fabs(s.gpu.loss[g] - s.cpu.loss[k]) /
                          std::max(std::fabs(s.cpu.loss[k]), 1e-300);
        d_loss = std::isnan(dl) ? INFINITY : std::max(d_loss, dl);
        same = same && s.gpu.loss[g] == s.cpu.loss[k] && s.gpu.bound[g] == s.cpu.bound[k] &&
               s.gpu.iterations[g] == s.cpu.iterations[k];
        same = same && hg::row_same(s.gpu.and_, g, s.cpu.and_, k, s.len) &&
               hg::row_same(s.gpu.or_, g, s.cpu.or_, k, s.len) &&
               hg::row_same(s.gpu.p, g, s.cpu.p, k, s.len) &&
               hg::row_same(s.gpu.q, g, s.cpu.q, k, s.len);
      }
      row["d_loss"] = d_loss;
      row["bitwise"] = std::string(same ? "yes" : "no");
      const bool eq_direct = hg::same_outputs(s.gpu, s.direct);
      row["=direct"] = std::string(eq_direct ? "yes" : "no");
      if (!eq_direct) {
        r.ok = false;
        r.why += "the graph and the direct launches give different outputs; ";
      }
      for (std::size_t k = 0; k < s.samples; ++k)
        if (!(s.gpu.bound[k] <= s.gpu.loss[k] * (1 + 1e-12) + 1e-12)) {
          r.ok = false;
          r.why += fmt::format("sample {}: bound {} above loss {}; ", k, s.gpu.bound[k],
                               s.gpu.loss[k]);
          break;
        }
      if (sizeof(T) == 8 && !same) {
        r.ok = false;
        r.why += "float64: the GPU's outputs differ from the CPU's (bitwise equality expected)";
      }
      if (sizeof(T) == 4 && !(d_loss <= kTolF32 * s.opt.tol)) {
        r.ok = false;
        r.why += fmt::format("float32: GPU vs CPU loss {:.3e} (tolerance {:.0e})", d_loss,
                             kTolF32 * s.opt.tol);
      }
    });
    return r;
  };
  const int code = hb::run_benchmark(op, args.argc(), args.argv());
  if (!args.help() &&
      !hg::annotate_json(args.json_path(), device, "steady_clock around each host call"))
    return 2;
  return code;
}
