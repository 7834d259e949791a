// extract_perf: the papers' sgd AND-OR fit (DESIGN §2.1) on a batch of samples.
// Formulas of every column: bench/README.md.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fmt/core.h>
#include <memory>
#include <omp.h>
#include <type_traits>
#include <vector>

#include "driver.h"
#include "lattice_transforms.h"
#include "optimal_solver.h"
#include "planted_game.h"
#include "sgd_solver.h"

namespace hb = harsanyi::bench;
using harsanyi::subset_count;

namespace {

constexpr int kFullItersMaxN = 12;  // default iterations are scaled down above this n

// Iterations of a case: --iters when given, else the default (20000) for n <= 12 and
// default / 2^(n-12) above (constant work per run, as one iteration costs ~ n·2^n), at least 100.
int iters_for(const hb::Case& c) {
  const long long given = c.opt->extra_int("iters");
  if (c.opt->extra_given("iters") || c.n <= kFullItersMaxN) return static_cast<int>(given);
  return static_cast<int>(std::max<long long>(100, given >> (c.n - kFullItersMaxN)));
}

template <class T> struct ExtractState : hb::TypedState {
  using value_type = T;
  int n = 0;
  std::size_t samples = 0, len = 0;  // len = 2^n
  harsanyi::SgdOptions opt;
  std::vector<T> v;  // [samples, 2^n]
  harsanyi::AndOrBatch<T> out;
  explicit ExtractState(const hb::Case& c)
      : n(c.n), samples(c.samples), len(subset_count(c.n)), v(c.samples * subset_count(c.n)) {
    opt.iters = iters_for(c);
    // A planted game (integer AND and OR terms of orders 1..4) plus uniform noise in
    // [-0.5, 0.5): sparse structure, but no exact ties.
    std::vector<double> noise(len);
    for (std::size_t s = 0; s < samples; ++s) {
      const auto game = harsanyi::random_planted_game(n, n, std::min(n, 4), 500 + s);
      const std::vector<double> g = game.values();
      hb::fill_uniform(noise.data(), len, 9000 + s);
      for (std::size_t i = 0; i < len; ++i) v[s * len + i] = static_cast<T>(g[i] + 0.5 * noise[i]);
    }
  }
};

template <class F> void visit(hb::CaseState& st, F&& f) { hb::visit<ExtractState>(st, f); }

// Universal matching of one sample, in double: max_S |v(S) + q(S) - zeta(I_and)(S) -
// or_synthesis(I_or)(S)| / max_S |v(S)|.
template <class T>
double matching_error(const T* v, const T* q, const T* a, const T* o, int n) {
  const std::size_t len = subset_count(n);
  std::vector<double> za(a, a + len), so(o, o + len);
  harsanyi::zeta_transform(za.data(), n);
  harsanyi::or_synthesis(so.data(), n);
  double err = 0.0, vmax = 0.0;
  for (std::size_t i = 0; i < len; ++i) {
    const double lhs = static_cast<double>(v[i]) + static_cast<double>(q[i]);
    err = std::max(err, std::fabs(lhs - (za[i] + so[i])));
    vmax = std::max(vmax, std::fabs(static_cast<double>(v[i])));
  }
  return vmax > 0 ? err / vmax : err;
}

// Bitwise equality of two arrays.
template <class T> bool same_bits(const T* x, const T* y, std::size_t len) {
  return std::memcmp(x, y, len * sizeof(T)) == 0;
}

// --optimal 1: the optimal solver to 1% and to 0.1% of the certified bound.
template <class T> struct OptimalState : hb::TypedState {
  using value_type = T;
  int n = 0;
  std::size_t samples = 0, len = 0;
  harsanyi::OptimalOptions coarse, fine;  // tol 1e-2 and 1e-3
  std::vector<T> v;
  harsanyi::AndOrBatch<T> out1, out2;
  explicit OptimalState(const hb::Case& c) : n(c.n), samples(c.samples), len(subset_count(c.n)) {
    ExtractState<T> base(c);  // the same inputs as the sgd table
    v = base.v;
    coarse.tol = 1e-2;
    fine.tol = 1e-3;
    coarse.max_iters = fine.max_iters = static_cast<int>(c.opt->extra_int("max-iters"));
  }
};

double max_gap(const std::vector<double>& loss, const std::vector<double>& bound) {
  double g = 0.0;
  for (std::size_t i = 0; i < loss.size(); ++i)
    g = std::max(g, (loss[i] - bound[i]) / std::max(std::fabs(loss[i]), 1e-300));
  return g;
}

int run_optimal(int argc, char** argv) {
  hb::OpDef op;
  op.name = "extract_perf";
  op.summary = "optimal AND-OR fit (exact LP optimum with a certified bound), "
               "fit_and_or_optimal_batch, to 1% and to 0.1%";
  op.default_min_n = 8;
  op.default_max_n = 12;
  op.max_allowed_n = 22;
  op.default_reps = 1;
  op.default_warmup = 0;
  op.default_samples = 0;
  op.flags = {{"iters", "20000", "(sgd only)"},
              {"optimal", "1", "1: the optimal solver's table (0: the sgd table)"},
              {"max-iters", "200000", "optimal: iteration cap per sample and tolerance"}};
  op.preamble = {"inputs   : planted game (n AND + n OR terms, orders 1..4) + U[-0.5,0.5) noise; "
                 "qthres 0.04",
                 "gap = (loss - certified bound) / loss, max over samples; conv: every sample "
                 "reached its tolerance within --max-iters",
                 "check: bound <= loss, |q| <= b, match_err <= 1e-9 (f64) / 1e-4 (f32)"};
  op.columns = {
      {"t_1%", "s", hb::Fmt::fixed, 3, 9},       {"it_1%", "mean", hb::Fmt::integer, 0, 8},
      {"gap_1%", "max", hb::Fmt::sci, 1, 8},     {"t_0.1%", "s", hb::Fmt::fixed, 3, 9},
      {"it_0.1%", "mean", hb::Fmt::integer, 0, 8}, {"gap_0.1%", "max", hb::Fmt::sci, 1, 9},
      {"samples/s", "1/s", hb::Fmt::fixed, 3, 10}, {"us/iter", "us", hb::Fmt::fixed, 1, 9},
      {"loss", "mean", hb::Fmt::fixed, 3, 11},   {"conv", "-", hb::Fmt::text, 0, 5},
      {"match_err", "rel", hb::Fmt::sci, 1, 10},
  };
  op.memory_bytes = [](const hb::Case& c) {
    return (2 * c.samples + 1) * harsanyi::optimal_bytes_per_sample(c.n, hb::dtype_size(c.dtype));
  };
  op.setup = hb::make_state<OptimalState>;
  op.kernels = {{"fit_1%", nullptr,
                 [](hb::CaseState& st, int) {
                   hb::visit<OptimalState>(st, [](auto& s) {
                     harsanyi::fit_and_or_optimal_batch(s.v.data(), s.samples, s.n, s.coarse,
                                                        s.out1);
                   });
                 }},
                {"fit_0.1%", nullptr, [](hb::CaseState& st, int) {
                   hb::visit<OptimalState>(st, [](auto& s) {
                     harsanyi::fit_and_or_optimal_batch(s.v.data(), s.samples, s.n, s.fine,
                                                        s.out2);
                   });
                 }}};
  op.metrics = [](const hb::Case& c, hb::CaseState& st, const std::vector<hb::Timing>& t,
                  hb::Row& row) {
    hb::visit<OptimalState>(st, [&](auto& s) {
      const double samples = static_cast<double>(c.samples);
      double it1 = 0, it2 = 0, loss = 0;
      for (std::size_t k = 0; k < s.samples; ++k) {
        it1 += static_cast<double>(s.out1.iterations[k]) / samples;
        it2 += static_cast<double>(s.out2.iterations[k]) / samples;
        loss += s.out2.loss[k] / samples;
      }
      row["t_1%"] = t[0].median;
      row["it_1%"] = static_cast<long long>(it1);
      row["gap_1%"] = max_gap(s.out1.loss, s.out1.bound);
      row["t_0.1%"] = t[1].median;
      row["it_0.1%"] = static_cast<long long>(it2);
      row["gap_0.1%"] = max_gap(s.out2.loss, s.out2.bound);
      row["samples/s"] = samples / t[1].median;
      row["us/iter"] = 1e6 * t[1].median / std::max(1.0, it2 * samples) *
                       std::min<double>(samples, c.threads);
      row["loss"] = loss;
      const bool conv = max_gap(s.out1.loss, s.out1.bound) <= s.coarse.tol &&
                        max_gap(s.out2.loss, s.out2.bound) <= s.fine.tol;
      row["conv"] = std::string(conv ? "yes" : "no");
    });
  };
  op.check = [](const hb::Case& c, hb::CaseState& st, hb::Row& row) {
    hb::CheckResult r;
    hb::visit<OptimalState>(st, [&](auto& s) {
      double match = 0.0;
      for (std::size_t k = 0; k < s.samples; ++k) {
        const std::size_t off = k * s.len;
        match = std::max(match, matching_error(s.v.data() + off, s.out2.q.data() + off,
                                               s.out2.and_.data() + off, s.out2.or_.data() + off,
                                               s.n));
        const double b = 0.04 * std::fabs(static_cast<double>(s.v[off + s.len - 1]) -
                                          static_cast<double>(s.v[off]));
        for (std::size_t i = 0; i < s.len; ++i)
          if (!(std::fabs(static_cast<double>(s.out2.q[off + i])) <= b * (1 + 1e-6))) {
            r.ok = false;
            r.why = fmt::format("|q| > b in sample {}", k);
            break;
          }
        for (const auto* o : {&s.out1, &s.out2})
          if (!(o->bound[k] <= o->loss[k])) {
            r.ok = false;
            r.why = fmt::format("bound {} > loss {} in sample {}", o->bound[k], o->loss[k], k);
          }
      }
      row["match_err"] = match;
      const double tol = c.dtype == hb::Dtype::f64 ? 1e-9 : 1e-4;
      if (!(match <= tol)) {
        r.ok = false;
        r.why += fmt::format(" universal matching error {:.3e}", match);
      }
    });
    return r;
  };
  return hb::run_benchmark(op, argc, argv);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--optimal") == 0 && std::strcmp(argv[i + 1], "0") != 0)
      return run_optimal(argc, argv);
  hb::OpDef op;
  op.name = "extract_perf";
  op.summary = "sgd AND-OR fit (DESIGN 2.1) of a batch of samples, fit_and_or_sgd_batch";
  op.default_min_n = 8;
  op.default_max_n = 16;
  op.max_allowed_n = 22;
  op.default_reps = 3;
  op.default_samples = 0;  // one sample per thread
  op.flags = {{"iters", "20000",
               "sgd iterations; when not given, n > 12 runs 20000 / 2^(n-12) (>= 100)"},
              {"optimal", "0", "1: the optimal solver, time to 1% and 0.1% of the optimum"},
              {"max-iters", "200000", "(optimal only)"}};
  op.preamble = {"inputs   : planted game (n AND + n OR terms, orders 1..4) + U[-0.5,0.5) noise; "
                 "lr 1e-5, momentum 0.9, qthres 0.04",
                 "tolerance: match_err <= 1e-9 (f64), 1e-4 (f32); d_loss must be exactly 0"};
  op.columns = {
      {"iters", "-", hb::Fmt::integer, 0, 7},
      {"time", "s", hb::Fmt::fixed, 4, 9},
      {"spread", "%", hb::Fmt::fixed, 1, 7},
      {"s/sample", "s", hb::Fmt::fixed, 4, 9},
      {"samples/s", "1/s", hb::Fmt::fixed, 2, 10},
      {"iters/s", "1/s", hb::Fmt::fixed, 0, 10},
      {"loss", "mean", hb::Fmt::fixed, 3, 11},
      {"d_loss", "abs", hb::Fmt::sci, 1, 9},
      {"match_err", "rel", hb::Fmt::sci, 1, 10},
  };
  op.memory_bytes = [](const hb::Case& c) {
    return (c.samples + 1) * harsanyi::sgd_bytes_per_sample(c.n, hb::dtype_size(c.dtype)) +
           4 * subset_count(c.n) * sizeof(double);
  };
  op.setup = hb::make_state<ExtractState>;
  op.kernels = {{"fit", nullptr, [](hb::CaseState& st, int) {
                   visit(st, [](auto& s) {
                     harsanyi::fit_and_or_sgd_batch(s.v.data(), s.samples, s.n, s.opt, s.out);
                   });
                 }}};
  op.metrics = [](const hb::Case& c, hb::CaseState& st, const std::vector<hb::Timing>& t,
                  hb::Row& row) {
    visit(st, [&](auto& s) {
      const double time = t[0].median, samples = static_cast<double>(c.samples);
      row["iters"] = static_cast<long long>(s.opt.iters);
      row["time"] = time;
      row["spread"] = t[0].spread_pct();
      row["s/sample"] = time / samples;
      row["samples/s"] = samples / time;
      row["iters/s"] = samples * s.opt.iters / time;
      double mean = 0.0;
      for (double l : s.out.loss) mean += l / samples;
      row["loss"] = mean;
    });
  };
  op.check = [](const hb::Case& c, hb::CaseState& st, hb::Row& row) {
    hb::CheckResult r;
    visit(st, [&](auto& s) {
      using T = typename std::decay_t<decltype(s)>::value_type;
      const std::size_t len = s.len;
      // 1. Thread independence: the first and the last sample refitted alone on 1 thread must
      //    give bitwise the same loss and interactions as in the threaded batch.
      double d_loss = 0.0;
      bool arrays_same = true, loss_same = true;
      std::vector<T> a(len), o(len), p(len), q(len);
      const int threads = omp_get_max_threads();
      omp_set_num_threads(1);
      for (std::size_t k : {std::size_t{0}, s.samples - 1}) {
        const double loss = harsanyi::fit_and_or_sgd(s.v.data() + k * len, s.n, s.opt, a.data(),
                                                     o.data(), p.data(), q.data(), nullptr);
        loss_same = loss_same && std::memcmp(&loss, &s.out.loss[k], sizeof loss) == 0;
        d_loss = std::max(d_loss, std::fabs(loss - s.out.loss[k]));
        arrays_same = arrays_same && same_bits(s.out.and_.data() + k * len, a.data(), len) &&
                      same_bits(s.out.or_.data() + k * len, o.data(), len) &&
                      same_bits(s.out.q.data() + k * len, q.data(), len);
        if (s.samples == 1) break;
      }
      omp_set_num_threads(threads);
      row["d_loss"] = d_loss;
      if (!loss_same || !arrays_same) {
        r.ok = false;
        r.why = fmt::format("1-thread refit differs: loss {} (|d| = {:.3e}), arrays {}",
                            loss_same ? "bitwise equal" : "differs", d_loss,
                            arrays_same ? "identical" : "differ");
      }
      // 2. Universal matching on every sample.
      double match = 0.0;
      for (std::size_t k = 0; k < s.samples; ++k)
        match = std::max(match, matching_error(s.v.data() + k * len, s.out.q.data() + k * len,
                                               s.out.and_.data() + k * len,
                                               s.out.or_.data() + k * len, s.n));
      row["match_err"] = match;
      const double tol = c.dtype == hb::Dtype::f64 ? 1e-9 : 1e-4;
      if (!(match <= tol)) {
        r.ok = false;
        r.why += fmt::format("{}universal matching error {:.3e} > {:.0e} x max|v|",
                             r.why.empty() ? "" : "; ", match, tol);
      }
    });
    return r;
  };
  return hb::run_benchmark(op, argc, argv);
}
