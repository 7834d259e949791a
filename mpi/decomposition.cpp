// The (sample, subset-block) decomposition over rank groups, and its all-to-all.
#include "decomposition.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "mpi_check.h"

namespace harsanyi::mpi {

std::size_t Decomposition::first_sample(int r) const {
  return static_cast<std::size_t>(static_cast<unsigned __int128>(samples) *
                                  static_cast<unsigned>(r) / static_cast<unsigned>(ranks));
}

int Decomposition::log2_subset_ranks() const { return __builtin_ctz(static_cast<unsigned>(subset_ranks)); }

std::string Decomposition::describe() const {
  return fmt::format("{} rank{} = {} group{} x {} subset rank{} (each rank evaluates 2^{} of the "
                     "2^{} subsets of its group's samples)",
                     ranks, ranks == 1 ? "" : "s", groups, groups == 1 ? "" : "s", subset_ranks,
                     subset_ranks == 1 ? "" : "s", n - log2_subset_ranks(), n);
}

Decomposition Decomposition::make(const Communicator& world, std::size_t samples, int n,
                                  int subset_ranks) {
  Decomposition d;
  d.ranks = world.size();
  d.rank = world.rank();
  d.samples = samples;
  d.n = n;
  const auto is_pow2 = [](int k) { return k > 0 && (k & (k - 1)) == 0; };
  int K = subset_ranks;
  if (K == 0) {
    // The smallest power of two dividing P that gives every group a sample.
    K = 1;
    while (static_cast<std::size_t>(d.ranks / K) > samples && d.ranks % (2 * K) == 0 &&
           2 * K <= (1 << std::min(n, 30)))
      K *= 2;
  }
  if (!is_pow2(K))
    throw std::invalid_argument(fmt::format("--subset-ranks {} is not a power of two", K));
  if (d.ranks % K != 0)
    throw std::invalid_argument(fmt::format(
        "--subset-ranks {} does not divide the {} ranks (groups of K ranks must tile the job)", K,
        d.ranks));
  if (n < 30 && K > (1 << n))
    throw std::invalid_argument(fmt::format(
        "--subset-ranks {} is more than the 2^{} = {} subsets of a sample", K, n, 1 << n));
  d.subset_ranks = K;
  d.groups = d.ranks / K;
  d.group = d.rank / K;
  d.member = d.rank % K;
  return d;
}

namespace {
template <class T> MPI_Datatype mpi_type();
template <> MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }
template <> MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }
}  // namespace

template <class T>
void gather_own_samples(const Decomposition& d, const Communicator& group, const T* blocks,
                        T* rows) {
  const std::uint64_t L = std::uint64_t{1} << d.n, B = d.block_len();
  const int K = d.subset_ranks;
  if (K == 1 || !group.distributed()) {
    std::memcpy(rows, blocks, d.own_count() * L * sizeof(T));
    return;
  }
  if (group.size() != K)
    throw std::invalid_argument(fmt::format("gather_own_samples: the group has {} ranks, the "
                                            "decomposition {}",
                                            group.size(), K));
  if (B > static_cast<std::uint64_t>(INT32_MAX))
    throw std::invalid_argument("gather_own_samples: blocks above 2^31 values are not supported");
  // Counts in units of one block (a contiguous type), so they stay small.
  MPI_Datatype block_type = MPI_DATATYPE_NULL;
  HARSANYI_MPI_CHECK(MPI_Type_contiguous(static_cast<int>(B), mpi_type<T>(), &block_type));
  HARSANYI_MPI_CHECK(MPI_Type_commit(&block_type));
  std::vector<int> send_counts(K), send_displs(K), recv_counts(K), recv_displs(K);
  const std::size_t g0 = d.group_begin();
  const int first_rank = d.group * K;
  for (int m = 0; m < K; ++m) {
    const std::size_t b = d.first_sample(first_rank + m), e = d.first_sample(first_rank + m + 1);
    send_counts[m] = static_cast<int>(e - b);  // my block of each of m's samples
    send_displs[m] = static_cast<int>(b - g0);
    recv_counts[m] = static_cast<int>(d.own_count());  // m's block of each of my samples
    recv_displs[m] = m * static_cast<int>(d.own_count());
  }
  std::vector<T> received(static_cast<std::size_t>(K) * d.own_count() * B);
  HARSANYI_MPI_CHECK(MPI_Alltoallv(blocks, send_counts.data(), send_displs.data(), block_type,
                                   received.data(), recv_counts.data(), recv_displs.data(),
                                   block_type, group.comm()));
  HARSANYI_MPI_CHECK(MPI_Type_free(&block_type));
  // received[m][s] is block m of own sample s: put it at rows[s][m·B].
  for (int m = 0; m < K; ++m)
    for (std::size_t s = 0; s < d.own_count(); ++s)
      std::memcpy(rows + s * L + static_cast<std::uint64_t>(m) * B,
                  received.data() + (static_cast<std::size_t>(m) * d.own_count() + s) * B,
                  B * sizeof(T));
}

template void gather_own_samples<float>(const Decomposition&, const Communicator&, const float*,
                                        float*);
template void gather_own_samples<double>(const Decomposition&, const Communicator&,
                                         const double*, double*);

}  // namespace harsanyi::mpi
