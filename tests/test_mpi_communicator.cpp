// The communicator layer under mpirun: collectives give the same answer on every rank, splits
// form the expected groups, broadcasts carry root's data.
#include <gtest/gtest.h>

#include "communicator.h"

namespace harsanyi::mpi {
namespace {

TEST(Communicator, WorldMatchesMpi) {
  const Communicator world = Communicator::world();
  ASSERT_TRUE(world.distributed());
  int rank = -1, size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_EQ(world.rank(), rank);
  EXPECT_EQ(world.size(), size);
  EXPECT_GE(world.ranks_on_node(), 1);
  EXPECT_LE(world.ranks_on_node(), size);
}

TEST(Communicator, ReductionsAgreeOnEveryRank) {
  const Communicator world = Communicator::world();
  const int P = world.size(), r = world.rank();
  EXPECT_EQ(world.sum(std::int64_t{r + 1}), std::int64_t{P} * (P + 1) / 2);
  EXPECT_EQ(world.max(std::int64_t{r}), P - 1);
  EXPECT_DOUBLE_EQ(world.max(0.5 * r), 0.5 * (P - 1));
  EXPECT_EQ(world.any(r == P - 1), true);
  EXPECT_EQ(world.any(false), false);
}

TEST(Communicator, BroadcastAndGather) {
  const Communicator world = Communicator::world();
  std::string text = world.root() ? "resolved config\n[data]\n" : "";
  world.broadcast(text);
  EXPECT_EQ(text, "resolved config\n[data]\n");
  std::vector<std::int64_t> v;
  if (world.root()) v = {3, 1, 4, 1, 5};
  world.broadcast(v);
  EXPECT_EQ(v, (std::vector<std::int64_t>{3, 1, 4, 1, 5}));
  // Rank r contributes r+1 copies of r: the gather is in rank order.
  const std::vector<double> mine(static_cast<std::size_t>(world.rank() + 1), world.rank());
  const std::vector<double> all = world.all_gather(mine);
  std::vector<double> expect;
  for (int q = 0; q < world.size(); ++q) expect.insert(expect.end(), q + 1, double(q));
  EXPECT_EQ(all, expect);
}

TEST(Communicator, GatherOfTextOnRoot) {
  const Communicator world = Communicator::world();
  const std::string mine(static_cast<std::size_t>(world.rank()), 'x');  // rank 0 sends nothing
  const std::vector<std::string> all = world.gather("r" + std::to_string(world.rank()) + mine);
  if (world.root()) {
    ASSERT_EQ(all.size(), static_cast<std::size_t>(world.size()));
    for (int r = 0; r < world.size(); ++r)
      EXPECT_EQ(all[r], "r" + std::to_string(r) + std::string(static_cast<std::size_t>(r), 'x'));
  } else {
    EXPECT_TRUE(all.empty());
  }
}

TEST(Communicator, SplitFormsGroups) {
  const Communicator world = Communicator::world();
  const Communicator pairs = world.split(world.rank() / 2, world.rank());
  EXPECT_EQ(pairs.rank(), world.rank() % 2);
  EXPECT_EQ(pairs.size(), std::min(2, world.size() - 2 * (world.rank() / 2)));
  EXPECT_EQ(pairs.sum(std::int64_t{1}), pairs.size());
  world.idle_barrier();
}

TEST(Communicator, SerialStandInIsIdentity) {
  const Communicator one = Communicator::serial();
  EXPECT_FALSE(one.distributed());
  EXPECT_EQ(one.size(), 1);
  EXPECT_EQ(one.sum(std::int64_t{7}), 7);
  EXPECT_EQ(one.all_gather({1.0, 2.0}), (std::vector<double>{1.0, 2.0}));
  one.barrier();
  one.idle_barrier();
}

}  // namespace
}  // namespace harsanyi::mpi
