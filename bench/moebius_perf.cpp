// moebius_perf: the cache-blocked, threaded Möbius transform against the per-bit loop.
// Formulas of every column: bench/README.md.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fmt/core.h>
#include <memory>
#include <type_traits>
#include <vector>

#include "driver.h"
#include "huge_page_allocator.h"
#include "lattice_transforms.h"
#include "planted_game.h"

namespace hb = harsanyi::bench;
using harsanyi::subset_count;

namespace {

constexpr int kExactMaxN = 14;  // the planted-game check runs for n <= 14

// Calls per timed repetition: enough fresh copies of a tiny problem for >= 256 KiB per repetition.
int calls_for(const hb::Case& c) {
  const std::size_t bytes = c.samples * subset_count(c.n) * hb::dtype_size(c.dtype);
  return static_cast<int>(std::max<std::size_t>(1, (std::size_t{256} << 10) / bytes));
}

template <class T> struct MoebiusState : hb::TypedState {
  using value_type = T;
  int n = 0, copies = 1;
  std::size_t samples = 0, len = 0;  // len = samples * 2^n, one copy
  // huge-page backed (see src/huge_page_allocator.h), the same for both kernels
  harsanyi::LatticeVector<T> input, blocked, per_bit;  // blocked, per_bit: `copies` copies of len
  explicit MoebiusState(const hb::Case& c)
      : n(c.n), copies(calls_for(c)), samples(c.samples), len(c.samples * subset_count(c.n)),
        input(len), blocked(len * copies), per_bit(len * copies) {
    // Real-valued (non-integer) inputs: a bitwise match with the per-bit loop then really tests
    // that both perform the same additions in the same order.
    for (std::size_t k = 0; k < samples; ++k)
      hb::fill_uniform(input.data() + k * subset_count(n), subset_count(n), 1000 + k);
  }
  void restore(harsanyi::LatticeVector<T>& out) const {
    for (int i = 0; i < copies; ++i) std::copy(input.begin(), input.end(), out.begin() + i * len);
  }
};

template <class F> void visit(hb::CaseState& st, F&& f) { hb::visit<MoebiusState>(st, f); }

template <class T> double max_abs_diff(const T* a, const T* b, std::size_t len) {
  double m = 0.0;
  for (std::size_t i = 0; i < len; ++i)
    m = std::max(m, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  return m;
}

// Blocked transform of a planted game (integer values) against its exact Möbius coefficients:
// base at ∅, c at T for an AND term, (-1)^{|U|+1}·d at every non-empty U ⊆ T for an OR term
// (inclusion-exclusion of 1[S∩T≠∅]).
template <class T> double exact_error(int n, std::size_t samples) {
  double worst = 0.0;
  const std::size_t len = subset_count(n);
  for (std::size_t k = 0; k < samples; ++k) {
    const auto game = harsanyi::random_planted_game(n, 8, std::min(n, 4), 77 + k);
    const std::vector<double> v = game.values();
    std::vector<T> x(v.begin(), v.end());
    std::vector<long long> exact(len, 0);
    exact[0] += static_cast<long long>(game.base);
    for (const auto& t : game.and_terms) exact[t.set] += static_cast<long long>(t.coefficient);
    for (const auto& t : game.or_terms) {
      const std::uint64_t set = t.set;
      for (std::uint64_t u = set; u != 0; u = (u - 1) & set) {  // non-empty subsets of T
        const long long sign = (__builtin_popcountll(u) % 2) ? 1 : -1;
        exact[u] += sign * static_cast<long long>(t.coefficient);
      }
    }
    harsanyi::moebius_transform(x.data(), n);
    for (std::size_t i = 0; i < len; ++i)
      worst = std::max(worst, std::fabs(static_cast<double>(x[i]) - static_cast<double>(exact[i])));
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  hb::OpDef op;
  op.name = "moebius_perf";
  op.summary = "in-place Moebius transform of [samples, 2^n]: cache-blocked vs per-bit loop";
  op.default_min_n = 10;
  op.default_max_n = 24;
  op.max_allowed_n = 26;
  op.default_reps = 5;
  op.default_samples = 1;
  op.columns = {
      {"bytes", "B", hb::Fmt::integer, 0, 11},
      {"time", "ms", hb::Fmt::fixed, 3, 10},
      {"spread", "%", hb::Fmt::fixed, 1, 7},
      {"GB/s", "GB/s", hb::Fmt::fixed, 2, 8},
      {"per_bit", "ms", hb::Fmt::fixed, 3, 10},
      {"pb_spread", "%", hb::Fmt::fixed, 1, 9},
      {"speedup", "x", hb::Fmt::fixed, 2, 8},
      {"err_per_bit", "abs", hb::Fmt::sci, 1, 12},
      {"err_exact", "abs", hb::Fmt::sci, 1, 10},
  };
  op.memory_bytes = [](const hb::Case& c) {
    // input + the two outputs (copies only below 256 KiB)
    return 3 * c.samples * subset_count(c.n) * hb::dtype_size(c.dtype) + (std::size_t{1} << 20);
  };
  op.setup = hb::make_state<MoebiusState>;
  op.calls = calls_for;
  op.preamble = {"calls    : a timed repetition transforms max(1, 256 KiB / bytes) fresh copies "
                 "back to back; time = per call"};
  op.kernels = {
      {"blocked",
       [](hb::CaseState& st) {
         visit(st, [](auto& s) { s.restore(s.blocked); });
       },
       [](hb::CaseState& st, int i) {
         visit(st, [i](auto& s) {
           harsanyi::moebius_transform(s.blocked.data() + i * s.len, s.n, s.samples);
         });
       }},
      {"per_bit",
       [](hb::CaseState& st) {
         visit(st, [](auto& s) { s.restore(s.per_bit); });
       },
       [](hb::CaseState& st, int i) {
         visit(st, [i](auto& s) {
           harsanyi::moebius_transform_per_bit(s.per_bit.data() + i * s.len, s.n, s.samples);
         });
       }},
  };
  op.metrics = [](const hb::Case& c, hb::CaseState&, const std::vector<hb::Timing>& t,
                  hb::Row& row) {
    const double bytes =
        static_cast<double>(c.samples * subset_count(c.n) * hb::dtype_size(c.dtype));
    row["bytes"] = static_cast<long long>(bytes);
    row["time"] = 1e3 * t[0].median;
    row["spread"] = t[0].spread_pct();
    row["GB/s"] = 2.0 * bytes / t[0].median / 1e9;  // read + write the array once
    row["per_bit"] = 1e3 * t[1].median;
    row["pb_spread"] = t[1].spread_pct();
    row["speedup"] = t[1].median / t[0].median;
  };
  op.check = [](const hb::Case& c, hb::CaseState& st, hb::Row& row) {
    hb::CheckResult r;
    visit(st, [&](auto& s) {
      using T = typename std::decay_t<decltype(s)>::value_type;
      const double e = max_abs_diff(s.blocked.data(), s.per_bit.data(), s.blocked.size());
      row["err_per_bit"] = e;
      if (e != 0.0) {
        r.ok = false;
        r.why = fmt::format("blocked transform differs from the per-bit loop by {:.3e}", e);
      }
      if (c.n <= kExactMaxN) {
        const double x = exact_error<T>(c.n, c.samples);
        row["err_exact"] = x;
        if (x != 0.0) {
          r.ok = false;
          r.why += fmt::format("{}planted game: error {:.3e} vs exact coefficients",
                               r.why.empty() ? "" : "; ", x);
        }
      }
    });
    return r;
  };
  return hb::run_benchmark(op, argc, argv);
}
