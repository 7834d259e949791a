// reduce_perf: the collective element-wise sum of interaction vectors (one of 2^n doubles per
// sample, the samples spread over the ranks): reproducible_sum against a plain
// MPI_Allreduce(MPI_SUM) of locally summed doubles. Formulas of every column: bench/README.md.
#include <fmt/core.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include "communicator.h"
#include "driver.h"
#include "lattice_transforms.h"
#include "mpi_check.h"
#include "reproducible_sum.h"

namespace hb = harsanyi::bench;
namespace hm = harsanyi::mpi;
using harsanyi::subset_count;

namespace {

constexpr std::size_t kPiece = std::size_t{1} << 27;  // doubles per MPI_Allreduce (1 GiB)

inline std::uint64_t splitmix64(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Sample k's vector: u · 2^e with u uniform in [-1, 1) and e uniform in -20..20, so the terms
// span 12 decades and the plain sum's rounding depends on the order of the additions.
void fill_sample(double* x, std::size_t len, std::size_t k) {
  std::uint64_t s = 0x5eed0000 + k;
  for (std::size_t j = 0; j < len; ++j) {
    const std::uint64_t r = splitmix64(s);
    const double u = static_cast<double>(r >> 11) * 0x1p-53 * 2.0 - 1.0;
    x[j] = std::ldexp(u, static_cast<int>(r % 41) - 20);
  }
}

// Calls per timed repetition: >= 4 MiB of input per repetition (a reduction at n = 10 is tens
// of microseconds).
int calls_for(const hb::Case& c) {
  const std::size_t bytes = c.samples * subset_count(c.n) * sizeof(double);
  return static_cast<int>(std::clamp<std::size_t>((std::size_t{4} << 20) / bytes, 1, 256));
}

struct ReduceState : hb::CaseState {
  const hm::Communicator* comm;
  std::size_t len;
  hb::Block mine;                   // this rank's samples
  std::vector<double> inputs;       // mine.size() × len
  std::vector<const double*> ptrs;  // into inputs
  std::vector<double> repro, plain;
  explicit ReduceState(const hb::Case& c)
      : comm(c.comm),
        len(subset_count(c.n)),
        mine(hb::my_samples(c)),
        inputs(mine.size() * len),
        plain(len) {
    if (c.dtype != hb::Dtype::f64) throw std::invalid_argument("reduce_perf sums float64 (-d f64)");
    for (std::size_t k = 0; k < mine.size(); ++k) {
      fill_sample(inputs.data() + k * len, len, mine.begin + k);
      ptrs.push_back(inputs.data() + k * len);
    }
  }
};

void run_reproducible(hb::CaseState& st) {
  auto& s = static_cast<ReduceState&>(st);
  s.repro = hm::reproducible_sum(s.ptrs, s.len, *s.comm);
}

// The plain reduction: this rank's vectors summed in order (threaded over blocks of elements),
// then MPI_Allreduce(MPI_SUM) of the partial sums.
void run_plain(hb::CaseState& st) {
  auto& s = static_cast<ReduceState&>(st);
  double* out = s.plain.data();
  const std::size_t len = s.len;
  constexpr std::size_t kBlock = 4096;
  const std::size_t blocks = (len + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (len * s.ptrs.size() >= (std::size_t{1} << 15))
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::size_t j0 = b * kBlock, j1 = std::min(len, j0 + kBlock);
    std::fill(out + j0, out + j1, 0.0);
    for (const double* x : s.ptrs)
      for (std::size_t j = j0; j < j1; ++j) out[j] += x[j];
  }
  if (s.comm->distributed())
    for (std::size_t off = 0; off < len; off += kPiece)
      HARSANYI_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, out + off,
                                       static_cast<int>(std::min(kPiece, len - off)), MPI_DOUBLE,
                                       MPI_SUM, s.comm->comm()));
}

// A hash of the result's bits, to compare it across ranks without moving it.
std::int64_t bits_hash(const std::vector<double>& x) {
  std::uint64_t h = 0x9e3779b97f4a7c15ULL;
  for (double v : x) {
    std::uint64_t b;
    std::memcpy(&b, &v, sizeof b);
    h = (h ^ b) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  return static_cast<std::int64_t>(h >> 2);  // non-negative: -h does not overflow
}

}  // namespace

int main(int argc, char** argv) {
  hb::OpDef op;
  op.name = "reduce_perf";
  op.summary =
      "element-wise sum over ranks of [samples, 2^n] f64: reproducible_sum vs "
      "MPI_Allreduce(MPI_SUM)";
  op.mpi = true;
  op.default_min_n = 10;
  op.default_max_n = 24;
  op.max_allowed_n = 26;
  op.default_reps = 5;
  op.default_samples = 8;
  op.default_dtypes = {hb::Dtype::f64};
  op.columns = {
      {"bytes", "B", hb::Fmt::integer, 0, 11},       {"time", "ms", hb::Fmt::fixed, 3, 9},
      {"spread", "%", hb::Fmt::fixed, 1, 7},         {"GB/s", "GB/s", hb::Fmt::fixed, 2, 7},
      {"plain", "ms", hb::Fmt::fixed, 3, 9},         {"pl_spread", "%", hb::Fmt::fixed, 1, 9},
      {"plain_GB/s", "GB/s", hb::Fmt::fixed, 2, 10}, {"ratio", "x", hb::Fmt::fixed, 2, 7},
      {"bitwise", "-", hb::Fmt::text, 0, 8},         {"err_plain", "rel", hb::Fmt::sci, 1, 10},
      {"plain_diff", "%", hb::Fmt::fixed, 1, 10},    {"err_ref", "rel", hb::Fmt::sci, 1, 9},
  };
  op.memory_bytes = [](const hb::Case& c) {
    const std::size_t len = subset_count(c.n);
    std::size_t bytes = hb::my_samples(c).size() * len * 8  // inputs
                        + len * (8 + 8 + 16);               // outputs, integer sums
    if (c.rank == 0 && c.opt->check)                        // the serial result on rank 0
      bytes += c.samples * len * 8 + len * (8 + 16 + 16);
    return bytes + (std::size_t{1} << 20);
  };
  op.setup = [](const hb::Case& c) { return std::make_unique<ReduceState>(c); };
  op.calls = calls_for;
  op.preamble = {
      "inputs   : sample k = u * 2^e, u uniform in [-1, 1), e uniform in -20..20 (splitmix64, "
      "seeded by k); rank r holds samples [S*r/P, S*(r+1)/P)",
      "calls    : a timed repetition runs clamp(4 MiB / bytes, 1, 256) reductions back to back",
      "check    : reproducible result bitwise equal on every rank and to reproducible_sum of all "
      "samples on rank 0 with the serial stand-in; err_plain <= 1e-12, err_ref <= 2^-52"};
  op.kernels = {{"reproducible", nullptr, [](hb::CaseState& st, int) { run_reproducible(st); }},
                {"plain", nullptr, [](hb::CaseState& st, int) { run_plain(st); }}};
  op.metrics = [](const hb::Case& c, hb::CaseState&, const std::vector<hb::Timing>& t,
                  hb::Row& row) {
    const double bytes = static_cast<double>(c.samples * subset_count(c.n) * sizeof(double));
    row["bytes"] = static_cast<long long>(bytes);
    row["time"] = 1e3 * t[0].median;
    row["spread"] = t[0].spread_pct();
    row["GB/s"] = bytes / t[0].median / 1e9;
    row["plain"] = 1e3 * t[1].median;
    row["pl_spread"] = t[1].spread_pct();
    row["plain_GB/s"] = bytes / t[1].median / 1e9;
    row["ratio"] = t[0].median / t[1].median;
  };
  op.check = [](const hb::Case& c, hb::CaseState& st, hb::Row& row) {
    auto& s = static_cast<ReduceState&>(st);
    hb::CheckResult r;
    // The same bits on every rank.
    const std::int64_t h = bits_hash(s.repro);
    if (c.comm->max(h) != h || c.comm->max(-h) != -h) {
      r.ok = false;
      r.why = "the reproducible result differs between ranks";
    }
    if (c.rank != 0) return r;
    // All samples on rank 0, summed by the serial stand-in.
    std::vector<double> all(c.samples * s.len);
    std::vector<const double*> ptrs;
    for (std::size_t k = 0; k < c.samples; ++k) {
      fill_sample(all.data() + k * s.len, s.len, k);
      ptrs.push_back(all.data() + k * s.len);
    }
    const std::vector<double> serial =
        hm::reproducible_sum(ptrs, s.len, hm::Communicator::serial());
    const bool bitwise = serial.size() == s.repro.size() &&
                         std::memcmp(serial.data(), s.repro.data(), s.len * sizeof(double)) == 0;
    row["bitwise"] = std::string(bitwise ? "yes" : "no");
    // Normwise errors of the plain sum and of the reproducible one (against a long double sum).
    double scale = 0.0, err_plain = 0.0;
    std::size_t differ = 0;
    for (std::size_t j = 0; j < s.len; ++j) {
      scale = std::max(scale, std::fabs(s.repro[j]));
      err_plain = std::max(err_plain, std::fabs(s.plain[j] - s.repro[j]));
      differ += s.plain[j] != s.repro[j];
    }
    std::vector<long double> ref(s.len, 0.0L);
    for (const double* x : ptrs)
      for (std::size_t j = 0; j < s.len; ++j) ref[j] += x[j];
    long double ref_scale = 0.0L, err_ref = 0.0L;
    for (std::size_t j = 0; j < s.len; ++j) {
      ref_scale = std::max(ref_scale, std::fabs(ref[j]));
      err_ref = std::max(err_ref, std::fabs(ref[j] - s.repro[j]));
    }
    err_plain = scale > 0 ? err_plain / scale : err_plain;
    const double rel_ref = static_cast<double>(ref_scale > 0 ? err_ref / ref_scale : err_ref);
    row["err_plain"] = err_plain;
    row["plain_diff"] = 100.0 * static_cast<double>(differ) / static_cast<double>(s.len);
    row["err_ref"] = rel_ref;
    auto fail = [&](const std::string& why) {
      r.ok = false;
      r.why += (r.why.empty() ? "" : "; ") + why;
    };
    if (!bitwise) fail("reproducible result differs from the serial one on rank 0");
    if (!(err_plain <= 1e-12)) fail(fmt::format("plain sum off by {:.3e} (normwise)", err_plain));
    if (!(rel_ref <= 0x1p-52))
      fail(
          fmt::format("reproducible sum off by {:.3e} (normwise) "
                      "from a long double sum",
                      rel_ref));
    return r;
  };
  return hb::run_benchmark(op, argc, argv);
}
