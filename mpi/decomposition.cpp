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

std::size_t Round::total() const {
  std::size_t t = 0;
  for (std::size_t c : count) t += c;
  return t;
}

std::size_t Round::offset(int m) const {
  std::size_t t = 0;
  for (int i = 0; i < m; ++i) t += count[static_cast<std::size_t>(i)];
  return t;
}

std::size_t Decomposition::rounds(std::size_t batch) const {
  const std::size_t most = (samples + static_cast<std::size_t>(ranks) - 1) / static_cast<std::size_t>(ranks);
  if (batch == 0) throw std::invalid_argument("rounds: batch must be positive");
  return most == 0 ? 0 : (most + batch - 1) / batch;
}

Round Decomposition::round(std::size_t t, std::size_t batch) const {
  Round r;
  r.mine = static_cast<std::size_t>(member);
  for (int m = 0; m < subset_ranks; ++m) {
    const int w = group * subset_ranks + m;
    const std::size_t b = first_sample(w), e = first_sample(w + 1);
    const std::size_t skip = std::min(e - b, t * batch);
    r.begin.push_back(b + skip);
    r.count.push_back(std::min(batch, e - b - skip));
  }
  return r;
}

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
void gather_own_samples(const Decomposition& d, const Round& round, const Communicator& group,
                        const T* blocks, T* rows) {
  const std::uint64_t L = std::uint64_t{1} << d.n, B = d.block_len();
  const int K = d.subset_ranks;
  const std::size_t mine = round.my_count();
  if (K == 1 || !group.distributed()) {
    std::memcpy(rows, blocks, mine * L * sizeof(T));
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
  for (int m = 0; m < K; ++m) {
    send_counts[m] = static_cast<int>(round.count[static_cast<std::size_t>(m)]);  // my block of m's samples
    send_displs[m] = static_cast<int>(round.offset(m));
    recv_counts[m] = static_cast<int>(mine);  // m's block of each of my samples
    recv_displs[m] = m * static_cast<int>(mine);
  }
  std::vector<T> received(static_cast<std::size_t>(K) * mine * B);
  HARSANYI_MPI_CHECK(MPI_Alltoallv(blocks, send_counts.data(), send_displs.data(), block_type,
                                   received.data(), recv_counts.data(), recv_displs.data(),
                                   block_type, group.comm()));
  HARSANYI_MPI_CHECK(MPI_Type_free(&block_type));
  // received[m][s] is block m of my sample s: put it at rows[s][m·B].
  for (int m = 0; m < K; ++m)
    for (std::size_t s = 0; s < mine; ++s)
      std::memcpy(rows + s * L + static_cast<std::uint64_t>(m) * B,
                  received.data() + (static_cast<std::size_t>(m) * mine + s) * B, B * sizeof(T));
}

template void gather_own_samples<float>(const Decomposition&, const Round&, const Communicator&,
                                        const float*, float*);
template void gather_own_samples<double>(const Decomposition&, const Round&, const Communicator&,
                                         const double*, double*);

}  // namespace harsanyi::mpi
