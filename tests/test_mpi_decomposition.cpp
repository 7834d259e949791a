// The decomposition of (samples x subsets) over rank groups, under mpirun with 1, 2 and 4 ranks:
// the owned sample ranges tile [0, S) in rank order, groups cover their members' samples, and
// gather_own_samples hands every rank exactly the full vectors of its own samples.
#include <gtest/gtest.h>

#include <stdexcept>

#include "decomposition.h"

namespace harsanyi::mpi {
namespace {

double value_of(std::size_t sample, std::uint64_t subset) { return 1000.0 * sample + subset + 0.25; }

TEST(Decomposition, OwnedRangesTileTheSamplesInRankOrder) {
  const Communicator world = Communicator::world();
  for (std::size_t S : {1, 2, 3, 7, 40}) {
    const Decomposition d = Decomposition::make(world, S, 6, 0);
    EXPECT_EQ(d.first_sample(0), 0u);
    EXPECT_EQ(d.first_sample(d.ranks), S);
    const std::vector<double> begins = world.all_gather({double(d.own_begin()), double(d.own_end())});
    for (int r = 0; r + 1 < world.size(); ++r) EXPECT_EQ(begins[2 * r + 1], begins[2 * r + 2]);
    EXPECT_LE(d.group_begin(), d.own_begin());
    EXPECT_GE(d.group_end(), d.own_end());
    // Auto K: every group has a sample.
    EXPECT_GT(d.group_count(), 0u) << "S = " << S << ", " << d.describe();
    EXPECT_EQ(d.groups * d.subset_ranks, d.ranks);
  }
}

TEST(Decomposition, AutomaticSubsetRanks) {
  const Communicator world = Communicator::world();
  const int P = world.size();
  EXPECT_EQ(Decomposition::make(world, 100, 10, 0).subset_ranks, 1);
  EXPECT_EQ(Decomposition::make(world, 1, 10, 0).subset_ranks, P);
  if (P == 4) {
    EXPECT_EQ(Decomposition::make(world, 2, 10, 0).subset_ranks, 2);
  }
  // Never more subset ranks than subsets.
  EXPECT_LE(Decomposition::make(world, 1, 1, 0).subset_ranks, 2);
}

TEST(Decomposition, RejectsBadSubsetRanks) {
  const Communicator world = Communicator::world();
  EXPECT_THROW(Decomposition::make(world, 4, 8, 3), std::invalid_argument);
  EXPECT_THROW(Decomposition::make(world, 4, 8, 2 * world.size()), std::invalid_argument);
  EXPECT_THROW(Decomposition::make(world, 4, 1, 4), std::invalid_argument);
}

TEST(Decomposition, RoundsCoverEachRanksSamplesOnce) {
  const Communicator world = Communicator::world();
  for (std::size_t S : {1, 5, 9, 40})
    for (std::size_t batch : {1, 2, 3, 100}) {
      const Decomposition d = Decomposition::make(world, S, 4, 0);
      const std::size_t R = d.rounds(batch);
      EXPECT_EQ(world.max(std::int64_t(R)), std::int64_t(R)) << "same round count on all ranks";
      std::size_t next = d.own_begin();
      for (std::size_t t = 0; t < R; ++t) {
        const Round r = d.round(t, batch);
        EXPECT_LE(r.my_count(), batch);
        if (r.my_count() > 0) {
          EXPECT_EQ(r.my_begin(), next);
        }
        next += r.my_count();
      }
      EXPECT_EQ(next, d.own_end()) << "S = " << S << ", batch = " << batch;
    }
}

TEST(Decomposition, GatherOwnSamplesGivesWholeVectors) {
  const Communicator world = Communicator::world();
  const int n = 5;
  const std::uint64_t L = 1u << n;
  for (int K = 1; K <= world.size(); K *= 2) {
    for (std::size_t S : {1, 3, 6, 9}) {
      for (std::size_t batch : {1, 2, 1000}) {
        const Decomposition d = Decomposition::make(world, S, n, K);
        const Communicator group = world.split(d.group, d.member);
        ASSERT_EQ(group.size(), K);
        for (std::size_t t = 0; t < d.rounds(batch); ++t) {
          const Round r = d.round(t, batch);
          std::vector<double> blocks(r.total() * d.block_len());
          std::size_t i = 0;
          for (int m = 0; m < K; ++m)
            for (std::size_t s = 0; s < r.count[m]; ++s, ++i)
              for (std::uint64_t j = 0; j < d.block_len(); ++j)
                blocks[i * d.block_len() + j] = value_of(r.begin[m] + s, d.block_begin() + j);
          std::vector<double> rows(r.my_count() * L, -1.0);
          gather_own_samples(d, r, group, blocks.data(), rows.data());
          for (std::size_t s = 0; s < r.my_count(); ++s)
            for (std::uint64_t j = 0; j < L; ++j)
              ASSERT_EQ(rows[s * L + j], value_of(r.my_begin() + s, j))
                  << "K = " << K << ", S = " << S << ", batch " << batch << ", round " << t
                  << ", sample " << s << ", subset " << j;
        }
      }
    }
  }
}

}  // namespace
}  // namespace harsanyi::mpi
