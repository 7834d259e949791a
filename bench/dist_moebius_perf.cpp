// dist_moebius_perf: the Möbius transform of a vector distributed over all ranks
// (mpi/distributed_moebius.h), partner exchange against all-to-all, with the CPU kernel on one
// rank's block as the floor. Run under mpirun. Formulas of every column: bench/README.md.
#include <fmt/core.h>
#include <mpi.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "communicator.h"
#include "distributed_moebius.h"
#include "driver.h"
#include "lattice_transforms.h"
#include "mpi_check.h"

namespace hb = harsanyi::bench;
namespace hm = harsanyi::mpi;
using harsanyi::subset_count;

namespace {

// Bytes of the whole batch (every rank's blocks together).
std::size_t vector_bytes(const hb::Case& c) {
  return c.samples * subset_count(c.n) * hb::dtype_size(c.dtype);
}

int log2_ranks(int ranks) {
  return __builtin_ctz(static_cast<unsigned>(ranks));
}

// Bytes that cross between ranks in one transform: the partner exchange sends half the ranks'
// blocks in each of its log2 K rounds; the all-to-all moves (K-1)/K of every block twice.
double partner_traffic(double bytes, int K) {
  return log2_ranks(K) * bytes / 2;
}
double alltoall_traffic(double bytes, int K) {
  return 2.0 * (K - 1) / K * bytes;
}
// Traffic of the exchange that actually runs (the all-to-all falls back on the partner exchange
// when a block holds fewer than K elements).
double traffic(hm::Exchange how, const hb::Case& c, double bytes) {
  const bool small =
      hm::distributed_block_length(c.n, c.ranks) < static_cast<std::uint64_t>(c.ranks);
  return how == hm::Exchange::alltoall && !small ? alltoall_traffic(bytes, c.ranks)
                                                 : partner_traffic(bytes, c.ranks);
}

template <class T>
struct DistState : hb::TypedState {
  using value_type = T;
  int n = 0;
  std::size_t count = 0, L = 0;  // samples in the batch, elements of one sample's block
  const hm::Communicator* comm = nullptr;
  std::vector<T> input, partner, alltoall, local;  // this rank's blocks, [count, L]
  std::vector<T> full;  // rank 0: the whole input batch, [count, 2^n] (the check's reference)
  explicit DistState(const hb::Case& c)
      : n(c.n),
        count(c.samples),
        L(hm::distributed_block_length(c.n, c.ranks)),
        comm(c.comm),
        input(count * L),
        partner(count * L),
        alltoall(count * L),
        local(count * L) {
    // Every rank draws the same full sample and keeps its block of it.
    const std::size_t len = subset_count(n);
    std::vector<T> sample(len);
    for (std::size_t s = 0; s < count; ++s) {
      hb::fill_uniform(sample.data(), len, 1000 + s);
      std::copy_n(sample.data() + static_cast<std::size_t>(c.rank) * L, L, input.data() + s * L);
      if (c.rank == 0) full.insert(full.end(), sample.begin(), sample.end());
    }
  }
};

template <class F>
void visit(hb::CaseState& st, F&& f) {
  hb::visit<DistState>(st, f);
}

// Elements of `out` (this rank's blocks of the distributed result) that differ bitwise from
// `reference` (the serial transform of the whole batch), gathered on rank 0; 0 elsewhere.
template <class T>
long long mismatches(const DistState<T>& s, const std::vector<T>& out,
                     const std::vector<T>& reference) {
  const int K = s.comm->size();
  const std::size_t mine = out.size() * sizeof(T);
  std::vector<T> all(s.comm->root() ? out.size() * K : 0);
  HARSANYI_MPI_CHECK(MPI_Gather(out.data(), static_cast<int>(mine), MPI_BYTE, all.data(),
                                static_cast<int>(mine), MPI_BYTE, 0, s.comm->comm()));
  if (!s.comm->root()) return 0;
  const std::size_t len = subset_count(s.n);
  long long bad = 0;
  for (int r = 0; r < K; ++r)
    for (std::size_t e = 0; e < s.count; ++e)
      for (std::size_t l = 0; l < s.L; ++l) {
        const T a = all[(static_cast<std::size_t>(r) * s.count + e) * s.L + l];
        const T b = reference[e * len + static_cast<std::size_t>(r) * s.L + l];
        bad += std::memcmp(&a, &b, sizeof(T)) != 0;
      }
  return bad;
}

hb::Kernel exchange_kernel(const char* name, hm::Exchange how) {
  return {name,
          [how](hb::CaseState& st) {
            visit(st, [how](auto& s) {
              auto& out = how == hm::Exchange::partner ? s.partner : s.alltoall;
              std::copy(s.input.begin(), s.input.end(), out.begin());
            });
          },
          [how](hb::CaseState& st, int) {
            visit(st, [how](auto& s) {
              auto& out = how == hm::Exchange::partner ? s.partner : s.alltoall;
              hm::distributed_moebius(out.data(), s.n, s.count, *s.comm, how);
            });
          }};
}

}  // namespace

int main(int argc, char** argv) {
  hb::OpDef op;
  op.name = "dist_moebius_perf";
  op.summary =
      "Moebius transform of a vector distributed over all ranks: partner exchange vs "
      "all-to-all";
  op.mpi = true;
  op.default_min_n = 16;
  op.default_max_n = 24;
  op.max_allowed_n = 30;
  op.default_reps = 5;
  op.default_samples = 1;
  op.default_dtypes = {hb::Dtype::f64};
  op.columns = {
      {"bytes", "B", hb::Fmt::integer, 0, 11},       {"partner", "ms", hb::Fmt::fixed, 3, 9},
      {"p_spread", "%", hb::Fmt::fixed, 1, 8},       {"p_GB/s", "GB/s", hb::Fmt::fixed, 2, 7},
      {"p_net", "GB/s", hb::Fmt::fixed, 2, 7},       {"alltoall", "ms", hb::Fmt::fixed, 3, 9},
      {"a_spread", "%", hb::Fmt::fixed, 1, 8},       {"a_GB/s", "GB/s", hb::Fmt::fixed, 2, 7},
      {"a_net", "GB/s", hb::Fmt::fixed, 2, 7},       {"local", "ms", hb::Fmt::fixed, 3, 9},
      {"faster", "-", hb::Fmt::text, 0, 9},          {"by", "x", hb::Fmt::fixed, 2, 5},
      {"mismatch", "elems", hb::Fmt::integer, 0, 8},
  };
  op.memory_bytes = [](const hb::Case& c) {
    // four block copies, the exchange buffer (at most its default budget), and on rank 0 the
    // full batch, its serial transform and the gathered result
    const std::size_t block = vector_bytes(c) / static_cast<std::size_t>(c.ranks);
    const std::size_t buffer = std::min<std::size_t>(block, hm::ExchangeOptions{}.buffer_bytes);
    return 4 * block + buffer + (c.rank == 0 ? 3 * vector_bytes(c) : 0) + (std::size_t{1} << 20);
  };
  op.setup = hb::make_state<DistState>;
  op.preamble = {
      "layout   : rank r holds indices [r 2^n/K, (r+1) 2^n/K) of each sample (K ranks = the "
      "group); -s = samples in the batch, each spread over all ranks",
      "kernels  : partner = distributed_moebius(Exchange::partner), alltoall = "
      "distributed_moebius(Exchange::alltoall), local = moebius_transform on this rank's blocks "
      "only (the floor: no exchange)",
      "GB/s     : 2 x bytes / time (the whole vector read and written once); net = bytes sent "
      "between ranks / time (partner: log2(K) x bytes / 2; alltoall: 2 (K-1)/K x bytes)",
      "check    : every element bitwise equal to moebius_transform of the whole batch on rank 0"};
  op.kernels = {
      exchange_kernel("partner", hm::Exchange::partner),
      exchange_kernel("alltoall", hm::Exchange::alltoall),
      {"local",
       [](hb::CaseState& st) {
         visit(st, [](auto& s) { std::copy(s.input.begin(), s.input.end(), s.local.begin()); });
       },
       [](hb::CaseState& st, int) {
         visit(st, [](auto& s) {
           harsanyi::moebius_transform(s.local.data(), s.n - log2_ranks(s.comm->size()), s.count);
         });
       }},
  };
  op.metrics = [](const hb::Case& c, hb::CaseState&, const std::vector<hb::Timing>& t,
                  hb::Row& row) {
    const double bytes = static_cast<double>(vector_bytes(c));
    row["bytes"] = static_cast<long long>(bytes);
    row["partner"] = 1e3 * t[0].median;
    row["p_spread"] = t[0].spread_pct();
    row["p_GB/s"] = 2.0 * bytes / t[0].median / 1e9;
    row["alltoall"] = 1e3 * t[1].median;
    row["a_spread"] = t[1].spread_pct();
    row["a_GB/s"] = 2.0 * bytes / t[1].median / 1e9;
    if (c.ranks > 1) {
      row["p_net"] = traffic(hm::Exchange::partner, c, bytes) / t[0].median / 1e9;
      row["a_net"] = traffic(hm::Exchange::alltoall, c, bytes) / t[1].median / 1e9;
    }
    row["local"] = 1e3 * t[2].median;
    if (c.ranks > 1) {  // on one rank both are the CPU kernel
      const bool partner_wins = t[0].median <= t[1].median;
      row["faster"] = std::string(partner_wins ? "partner" : "alltoall");
      row["by"] = partner_wins ? t[1].median / t[0].median : t[0].median / t[1].median;
    }
  };
  op.check = [](const hb::Case&, hb::CaseState& st, hb::Row& row) {
    hb::CheckResult r;
    visit(st, [&](auto& s) {
      using T = typename std::decay_t<decltype(s)>::value_type;
      std::vector<T> reference;
      if (s.comm->root()) {
        reference = s.full;
        harsanyi::moebius_transform(reference.data(), s.n, s.count);
      }
      const long long p = mismatches(s, s.partner, reference);
      const long long a = mismatches(s, s.alltoall, reference);
      row["mismatch"] = p + a;
      if (p + a != 0) {
        r.ok = false;
        r.why = fmt::format(
            "{} elements of partner and {} of alltoall differ bitwise from the "
            "serial transform",
            p, a);
      }
    });
    return r;
  };
  return hb::run_benchmark(op, argc, argv);
}
