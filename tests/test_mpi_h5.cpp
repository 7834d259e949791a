// Parallel HDF5 through h5::File under mpirun: one file started by rank 0, opened by every rank
// with MPI-IO, each rank writing its own rows (some none) collectively, large blocks split into
// pieces with the same number of collective calls on every rank; read back bitwise.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "communicator.h"
#include "h5_wrappers.h"

namespace harsanyi {
namespace {

double value_at(std::size_t i, std::size_t j) { return static_cast<double>(i) * 1000.0 + j + 0.5; }

std::string shared_path(const mpi::Communicator& world, const std::string& stem) {
  std::int64_t pid = ::getpid();
  world.broadcast(&pid, sizeof pid);
  return (std::filesystem::temp_directory_path() / (stem + std::to_string(pid) + ".h5")).string();
}

class ParallelWrite : public ::testing::TestWithParam<std::size_t> {};

// Rows [S, L] split over the ranks (rank r owns floor(r·S/P)..), written with a transfer limit
// of GetParam() bytes: 1 GiB (one piece), a few rows, and less than one row (pieces of a row).
TEST_P(ParallelWrite, RowsOfEveryRankLandBitwise) {
  const mpi::Communicator world = mpi::Communicator::world();
  const std::string path = shared_path(world, "harsanyi_h5_rows_");
  const std::size_t S = 7, L = 40;
  if (world.root()) {
    h5::File f = h5::File::create(path);
    f.create_dataset("/x", h5::Dtype::F64, {S, L}, 2);
    f.create_extendible("/e", h5::Dtype::F64, {0, S, L}, 1);
    f.close();
  }
  world.barrier();
  {
    h5::File f = h5::File::open_parallel(path, world.comm());
    f.set_max_transfer_bytes(GetParam());
    const std::size_t P = world.size(), r = world.rank();
    const std::size_t b = S * r / P, e = S * (r + 1) / P;
    std::vector<double> mine((e - b) * L);
    for (std::size_t i = b; i < e; ++i)
      for (std::size_t j = 0; j < L; ++j) mine[(i - b) * L + j] = value_at(i, j);
    f.write_rows("/x", b, e - b, mine.data());
    for (hsize_t row = 0; row < 2; ++row) {
      f.set_rows("/e", row + 1);
      f.write_block("/e", {row, b, 0}, {1, e - b, L}, mine.data());
    }
    f.close();
  }
  world.barrier();
  if (world.root()) {
    h5::File f = h5::File::open_read(path);
    const std::vector<double> x = f.read_all<double>("/x"), ex = f.read_all<double>("/e");
    ASSERT_EQ(x.size(), S * L);
    ASSERT_EQ(ex.size(), 2 * S * L);
    for (std::size_t i = 0; i < S; ++i)
      for (std::size_t j = 0; j < L; ++j) {
        ASSERT_EQ(x[i * L + j], value_at(i, j)) << "row " << i << ", column " << j;
        ASSERT_EQ(ex[i * L + j], value_at(i, j));
        ASSERT_EQ(ex[S * L + i * L + j], value_at(i, j));
      }
    std::filesystem::remove(path);
  }
  world.barrier();
}

INSTANTIATE_TEST_SUITE_P(Limits, ParallelWrite,
                         ::testing::Values(std::size_t{1} << 30, 3 * 40 * 8, 13 * 8, 8));

}  // namespace
}  // namespace harsanyi
