// gpu_sgd_perf: the GPU sgd AND-OR fit (cuda::fit_and_or_sgd_batch, DESIGN §2.1) on a large
// batch with the kernel of --kernel (auto: fused for n <= 12), against the staged kernels on the
// same batch (bitwise the same results expected) and the CPU solver (fit_and_or_sgd_batch) on a
// few of the same samples, which must give the same losses. Formulas of every column:
// bench/README.md.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <type_traits>
#include <vector>

#include "cuda_backend.h"
#include "driver.h"
#include "gpu_common.h"
#include "gpu_timer.h"
#include "lattice_transforms.h"
#include "sgd_solver.h"

namespace hb = harsanyi::bench;
namespace hg = harsanyi::bench::gpu;
namespace cu = harsanyi::cuda;
using harsanyi::subset_count;

namespace {

constexpr int kFullItersMaxN = 12;  // as extract_perf: default iterations scaled down above
constexpr double kTolF64 = 1e-9, kTolF32 = 1e-4;  // as tests/test_cuda_backend.cpp

int iters_for(const hb::Case& c) {
  const long long given = c.opt->extra_int("iters");
  if (c.opt->extra_given("iters") || c.n <= kFullItersMaxN) return static_cast<int>(given);
  return static_cast<int>(std::max<long long>(100, given >> (c.n - kFullItersMaxN)));
}

template <class T>
struct GpuSgdState : hb::TypedState, hg::SolverBatch<T> {
  harsanyi::SgdOptions opt;
  cu::SgdKernel kernel = cu::SgdKernel::Auto;
  harsanyi::AndOrBatch<T> staged;
  explicit GpuSgdState(const hb::Case& c) : hg::SolverBatch<T>(c) {
    opt.iters = iters_for(c);
    const std::string& k = c.opt->extra.at("kernel");
    if (k == "fused") {
      kernel = cu::SgdKernel::Fused;
    } else if (k == "staged") {
      kernel = cu::SgdKernel::Staged;
    } else if (k != "auto") {
      throw std::runtime_error("--kernel must be auto, fused or staged, not '" + k + "'");
    }
  }
};

template <class F>
void visit(hb::CaseState& st, F&& f) {
  hb::visit<GpuSgdState>(st, f);
}

double rel(double a, double b) {
  return std::fabs(a - b) / std::max(std::fabs(b), 1e-300);
}

// max_i |g_i - e_i| / max(1, |e_i|) over one sample's row of the GPU and CPU arrays.
template <class V>
double row_error(const V& g, std::size_t gs, const V& e, std::size_t es, std::size_t len) {
  double err = 0.0;
  for (std::size_t i = 0; i < len; ++i) {
    const double gv = static_cast<double>(g[gs * len + i]);
    const double ev = static_cast<double>(e[es * len + i]);
    const double d = std::fabs(gv - ev) / std::max(1.0, std::fabs(ev));
    err = std::isnan(d) ? INFINITY : std::max(err, d);
  }
  return err;
}

}  // namespace

int main(int argc, char** argv) {
  hg::GpuArgs args(argc, argv);
  if (!args.help())
    if (const int rc = hg::require_gpu("gpu_sgd_perf")) return rc;
  const std::string device = args.help() ? std::string() : hg::device_line();

  hb::OpDef op;
  op.name = "gpu_sgd_perf";
  op.summary =
      "GPU sgd AND-OR fit (DESIGN 2.1), cuda::fit_and_or_sgd_batch, vs the staged GPU kernels "
      "and the CPU solver on a few of the samples";
  op.default_min_n = 10;
  op.default_max_n = 10;
  op.max_allowed_n = 20;
  op.default_reps = 3;
  op.default_warmup = 1;
  op.default_samples = 1024;
  op.flags = {{"iters", "20000", "sgd iterations (n > 12: scaled down unless given)"},
              {"cpu-n", "0", "samples refitted on the CPU (0: max(2, threads))"},
              {"kernel", "auto", "GPU kernel timed as `gpu`: auto (fused for n <= 12), fused, staged"}};
  op.preamble = {
      "gpu      : " + device,
      "timing   : steady_clock around the whole host call (H2D copy, allocation, iterations, "
      "D2H copy); `staged` = the same call with the staged kernels (one launch per step); "
      "`cpu` = fit_and_or_sgd_batch on the refitted samples with `threads` threads",
      "inputs   : planted game (n AND + n OR terms, orders 1..4) + U[-0.5,0.5) noise; lr 1e-5, "
      "momentum 0.9, qthres 0.04",
      "check    : the refitted samples' losses and I_and, I_or, p, q vs the GPU's: <= 1e-9 "
      "relative (f64), loss <= 1e-4 (f32); =staged: every output array of the batch bitwise "
      "equal to the staged kernels' (required); target: n = 10, 20000 iterations, 1024 samples "
      "<= 10 s",
  };
  op.columns = {
      {"iters", "-", hb::Fmt::integer, 0, 6},      {"time", "s", hb::Fmt::fixed, 3, 8},
      {"spread", "%", hb::Fmt::fixed, 1, 7},       {"staged", "s", hb::Fmt::fixed, 3, 8},
      {"x_staged", "x", hb::Fmt::fixed, 1, 8},     {"ms/sample", "ms", hb::Fmt::fixed, 3, 10},
      {"samples/s", "1/s", hb::Fmt::fixed, 1, 10}, {"iters/s", "1/s", hb::Fmt::sci, 2, 9},
      {"us/iter", "us", hb::Fmt::fixed, 1, 8},     {"cpu_n", "-", hb::Fmt::integer, 0, 6},
      {"cpu_ms/s", "ms", hb::Fmt::fixed, 2, 9},    {"speedup", "x", hb::Fmt::fixed, 1, 8},
      {"loss", "mean", hb::Fmt::fixed, 3, 10},     {"d_loss", "rel", hb::Fmt::sci, 1, 8},
      {"d_arrays", "rel", hb::Fmt::sci, 1, 9},     {"bitwise", "-", hb::Fmt::text, 0, 8},
      {"=staged", "-", hb::Fmt::text, 0, 8},
  };
  op.memory_bytes = [](const hb::Case& c) {
    // v and the four outputs of the GPU batch, and of the CPU refit (with its work arrays)
    return c.samples * subset_count(c.n) * hb::dtype_size(c.dtype) * 9 +
           hg::cpu_refit_samples(c) * harsanyi::sgd_bytes_per_sample(c.n, hb::dtype_size(c.dtype)) +
           (std::size_t{1} << 20);
  };
  op.setup = hb::make_state<GpuSgdState>;
  op.kernels = {
      {"gpu", nullptr,
       [](hb::CaseState& st, int) {
         visit(st,
               [](auto& s) {
                 cu::fit_and_or_sgd_batch(s.v.data(), s.samples, s.n, s.opt, s.gpu, nullptr,
                                          s.kernel);
               });
       }},
      {"staged", nullptr,
       [](hb::CaseState& st, int) {
         visit(st, [](auto& s) {
           cu::fit_and_or_sgd_batch(s.v.data(), s.samples, s.n, s.opt, s.staged, nullptr,
                                    cu::SgdKernel::Staged);
         });
       }},
      {"cpu", nullptr,
       [](hb::CaseState& st, int) {
         visit(st, [](auto& s) {
           harsanyi::fit_and_or_sgd_batch(s.v_cpu.data(), s.m, s.n, s.opt, s.cpu);
         });
       }},
  };
  op.metrics = [](const hb::Case& c, hb::CaseState& st, const std::vector<hb::Timing>& t,
                  hb::Row& row) {
    visit(st, [&](auto& s) {
      const double samples = static_cast<double>(c.samples), iters = s.opt.iters;
      row["iters"] = static_cast<long long>(s.opt.iters);
      row["time"] = t[0].median;
      row["spread"] = t[0].spread_pct();
      row["staged"] = t[1].median;
      row["x_staged"] = t[1].median / t[0].median;
      row["ms/sample"] = 1e3 * t[0].median / samples;
      row["samples/s"] = samples / t[0].median;
      row["iters/s"] = samples * iters / t[0].median;
      row["us/iter"] = 1e6 * t[0].median / iters;
      row["cpu_n"] = static_cast<long long>(s.m);
      const double cpu_per_sample = t[2].median / static_cast<double>(s.m);
      row["cpu_ms/s"] = 1e3 * cpu_per_sample;
      row["speedup"] = cpu_per_sample / (t[0].median / samples);
      double mean = 0.0;
      for (double l : s.gpu.loss) mean += l;
      row["loss"] = mean / samples;
    });
  };
  op.check = [](const hb::Case&, hb::CaseState& st, hb::Row& row) {
    hb::CheckResult r;
    visit(st, [&](auto& s) {
      using T = typename std::decay_t<decltype(s)>::value_type;
      double d_loss = 0.0, d_arrays = 0.0;
      bool same = true;
      for (std::size_t k = 0; k < s.m; ++k) {
        const std::size_t g = s.picked[k];
        const double dl = rel(s.gpu.loss[g], s.cpu.loss[k]);
        d_loss = std::isnan(dl) ? INFINITY : std::max(d_loss, dl);
        same = same && s.gpu.loss[g] == s.cpu.loss[k];
        for (const auto* pair : {&s.gpu.and_, &s.gpu.or_, &s.gpu.p, &s.gpu.q}) {
          const auto& e = pair == &s.gpu.and_  ? s.cpu.and_
                          : pair == &s.gpu.or_ ? s.cpu.or_
                          : pair == &s.gpu.p   ? s.cpu.p
                                               : s.cpu.q;
          d_arrays = std::max(d_arrays, row_error(*pair, g, e, k, s.len));
          same = same && hg::row_same(*pair, g, e, k, s.len);
        }
      }
      row["d_loss"] = d_loss;
      row["d_arrays"] = d_arrays;
      row["bitwise"] = std::string(same ? "yes" : "no");
      const bool eq_staged = hg::same_outputs(s.gpu, s.staged);
      row["=staged"] = std::string(eq_staged ? "yes" : "no");
      if (!eq_staged) {
        r.ok = false;
        r.why = "the batch's outputs differ from the staged kernels' (not bitwise equal); ";
      }
      if (sizeof(T) == 8 && !(d_loss <= kTolF64 && d_arrays <= kTolF64)) {
        r.ok = false;
        r.why += fmt::format("float64: GPU vs CPU loss {:.3e}, arrays {:.3e} (tolerance {:.0e})",
                            d_loss, d_arrays, kTolF64);
      }
      if (sizeof(T) == 4 && !(d_loss <= kTolF32)) {
        r.ok = false;
        r.why += fmt::format("float32: GPU vs CPU loss {:.3e} (tolerance {:.0e})", d_loss, kTolF32);
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
