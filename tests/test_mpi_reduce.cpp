// reproducible_sum under mpirun (1, 2 and 4 ranks): the same bits for every spread of the vectors
// over the ranks and every order, on every rank, equal to the serial stand-in with all vectors on
// one rank; within the documented bound of an exact reference; exact on inputs with exactly
// representable sums; errors raised on every rank.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "communicator.h"
#include "reproducible_sum.h"

namespace harsanyi::mpi {
namespace {

using Vectors = std::vector<std::vector<double>>;

std::uint64_t splitmix64(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double uniform01(std::uint64_t& s) {
  return static_cast<double>(splitmix64(s) >> 11) * 0x1p-53;
}

// count vectors of len elements, magnitudes 10^u for u uniform in [-12, 6], both signs.
Vectors wide_vectors(int count, std::size_t len, std::uint64_t seed) {
  Vectors v(static_cast<std::size_t>(count), std::vector<double>(len));
  std::uint64_t s = seed;
  for (auto& x : v)
    for (double& e : x) {
      const double mag = std::pow(10.0, -12.0 + 18.0 * uniform01(s));
      const double m = 1.0 + uniform01(s);  // [1, 2): full 53-bit mantissas
      e = (splitmix64(s) & 1 ? -1.0 : 1.0) * std::min(mag * m, 1e6);
    }
  return v;
}

// How the vectors are spread over the ranks, and in which order each rank passes its own.
enum class Spread { round_robin, blocks, last_rank, reversed, shuffled };
const Spread kSpreads[] = {Spread::round_robin, Spread::blocks, Spread::last_rank, Spread::reversed,
                           Spread::shuffled};

const char* spread_name(Spread s) {
  switch (s) {
    case Spread::round_robin:
      return "round-robin";
    case Spread::blocks:
      return "contiguous blocks";
    case Spread::last_rank:
      return "all on the last rank";
    case Spread::reversed:
      return "round-robin, reversed order";
    case Spread::shuffled:
      return "shuffled";
  }
  return "?";
}

// This rank's vectors under a spread, in the order it passes them.
std::vector<const double*> my_vectors(const Vectors& all, Spread spread, const Communicator& comm) {
  const std::size_t n = all.size(), P = static_cast<std::size_t>(comm.size()),
                    r = static_cast<std::size_t>(comm.rank());
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (spread == Spread::shuffled) {  // a fixed permutation, then round-robin
    std::uint64_t s = 99;
    for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[splitmix64(s) % i]);
  }
  std::vector<const double*> mine;
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = order[k];
    std::size_t owner = 0;
    switch (spread) {
      case Spread::round_robin:
      case Spread::reversed:
      case Spread::shuffled:
        owner = k % P;
        break;
      case Spread::blocks:
        owner = k * P / n;
        break;
      case Spread::last_rank:
        owner = P - 1;
        break;
    }
    if (owner == r) mine.push_back(all[i].data());
  }
  if (spread == Spread::reversed) std::reverse(mine.begin(), mine.end());
  return mine;
}

std::vector<const double*> pointers(const Vectors& all) {
  std::vector<const double*> p;
  for (const auto& x : all) p.push_back(x.data());
  return p;
}

bool bitwise_equal(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

// Every rank holds the same vector (gathered and compared with rank 0's copy).
void expect_same_on_every_rank(const std::vector<double>& x, const Communicator& comm) {
  const std::vector<double> all = comm.all_gather(x);
  ASSERT_EQ(all.size(), x.size() * static_cast<std::size_t>(comm.size()));
  for (int q = 0; q < comm.size(); ++q)
    EXPECT_EQ(std::memcmp(all.data() + q * x.size(), x.data(), x.size() * sizeof(double)), 0)
        << "rank " << q << "'s result differs from rank " << comm.rank() << "'s";
}

TEST(ReproducibleSum, SameBitsForEverySpreadAndRankCount) {
  const Communicator world = Communicator::world();
  const std::size_t len = 1000;
  const Vectors all = wide_vectors(37, len, 12345);
  // All 37 vectors on this one rank, the serial stand-in: what any number of ranks must give.
  const std::vector<double> serial = reproducible_sum(pointers(all), len, Communicator::serial());
  ASSERT_EQ(serial.size(), len);
  for (Spread spread : kSpreads) {
    SCOPED_TRACE(spread_name(spread));
    const std::vector<double> got = reproducible_sum(my_vectors(all, spread, world), len, world);
    EXPECT_TRUE(bitwise_equal(got, serial)) << "differs from the serial result";
    expect_same_on_every_rank(got, world);
  }
  // The plain sum in double does depend on the order: the inputs are hard enough to show it.
  std::vector<double> forward(len, 0.0), backward(len, 0.0);
  for (std::size_t i = 0; i < all.size(); ++i)
    for (std::size_t j = 0; j < len; ++j) {
      forward[j] += all[i][j];
      backward[j] += all[all.size() - 1 - i][j];
    }
  EXPECT_FALSE(bitwise_equal(forward, backward)) << "inputs too easy: plain sums agree";
}

TEST(ReproducibleSum, WithinTheBoundOfAnExactReference) {
  const std::size_t len = 1000;
  const int N = 37;
  const Vectors all = wide_vectors(N, len, 777);
  const Communicator world = Communicator::world();
  const std::vector<double> got =
      reproducible_sum(my_vectors(all, Spread::blocks, world), len, world);
  // Exact reference: every input lies in [1e-12, 1e6] in magnitude, so its last bit is at least
  // 2^-92 (1e-12 > 2^-40, 52 bits below) and x·2^92 is an integer below 2^112: 37 of them sum
  // exactly in 128 bits.
  double M = 0.0;
  for (const auto& x : all)
    for (double e : x) M = std::max(M, std::fabs(e));
  const double T = M * N * N * 0x1p-123;  // the header's bound on the truncation error
  int exact_matches = 0;
  long double worst_ld = 0.0L, largest_ld = 0.0L;
  for (std::size_t j = 0; j < len; ++j) {
    __int128 acc = 0;
    long double ld = 0.0L;
    for (const auto& x : all) {
      const double scaled = std::ldexp(x[j], 92);
      ASSERT_EQ(scaled, std::trunc(scaled));
      acc += static_cast<__int128>(scaled);
      ld += x[j];
    }
    const double ref = std::ldexp(static_cast<double>(acc), -92);  // correctly rounded
    const double ulp = std::nextafter(std::fabs(ref), HUGE_VAL) - std::fabs(ref);
    EXPECT_LE(std::fabs(got[j] - ref), ulp + 2 * T) << "element " << j;
    exact_matches += got[j] == ref;
    worst_ld = std::max(worst_ld, std::fabs(static_cast<long double>(got[j]) - ld));
    largest_ld = std::max(largest_ld, std::fabs(ld));
  }
  // The truncation error is far below half an ulp here: nearly every element is the correctly
  // rounded exact sum.
  EXPECT_GE(exact_matches, 990);
  // And normwise as close to a long double sum as double rounding allows.
  EXPECT_LE(worst_ld, 0x1p-52L * largest_ld);
}

TEST(ReproducibleSum, ExactWhenTheSumIsRepresentable) {
  const Communicator world = Communicator::world();
  const std::size_t len = 257;
  const int N = 37;
  // Dyadic values k·2^-10 (|k| < 2^40): every partial sum is exact, so the answer is known.
  Vectors all(N, std::vector<double>(len));
  std::vector<double> exact(len, 0.0);
  std::uint64_t s = 5;
  for (auto& x : all)
    for (std::size_t j = 0; j < len; ++j) {
      const auto k = static_cast<std::int64_t>(splitmix64(s) >> 24) - (std::int64_t{1} << 39);
      x[j] = std::ldexp(static_cast<double>(k), -10);
      exact[j] += x[j];
    }
  // Cancellation: 2^60 + 1 − 2^60 is 1 exactly, although 2^60 + 1 rounds to 2^60 in double.
  all[3][0] = 0x1p60, all[17][0] = 1.0, all[30][0] = -0x1p60;
  exact[0] = 0.0;
  for (const auto& x : all) exact[0] += x[0] == 0x1p60 || x[0] == -0x1p60 ? 0.0 : x[0];
  for (Spread spread : kSpreads) {
    SCOPED_TRACE(spread_name(spread));
    EXPECT_TRUE(bitwise_equal(reproducible_sum(my_vectors(all, spread, world), len, world), exact));
  }
  // Extreme scales (2^s out of the normal range on input, or 2^-s on output): still exact.
  for (int shift : {-1000, -1060, 900, 960}) {
    SCOPED_TRACE("scaled by 2^" + std::to_string(shift));
    Vectors scaled = all;
    std::vector<double> exact_scaled(len);
    for (auto& x : scaled)
      for (double& e : x) e = std::ldexp(e, shift);
    for (std::size_t j = 0; j < len; ++j) exact_scaled[j] = std::ldexp(exact[j], shift);
    EXPECT_TRUE(
        bitwise_equal(reproducible_sum(my_vectors(scaled, Spread::round_robin, world), len, world),
                      exact_scaled));
  }
}

TEST(ReproducibleSum, CorrectlyRoundedAtTies) {
  const Communicator world = Communicator::world();
  // Element j: 2^53, t_j, d_j (and the same negated); the exact sums lie on or just off the
  // midpoints between doubles: 2^53 + 1 (tie, to even: 2^53), 2^53 + 1 + 2^-40 (just above:
  // 2^53 + 2), 2^53 + 3 (tie, to even: 2^53 + 4), 2^53 + 3 - 2^-40 (just below: 2^53 + 2).
  const double t[] = {1.0, 1.0, 3.0, 3.0};
  const double d[] = {0.0, 0x1p-40, 0.0, -0x1p-40};
  const double want[] = {0x1p53, 0x1p53 + 2, 0x1p53 + 4, 0x1p53 + 2};
  Vectors all(3, std::vector<double>(8));
  std::vector<double> expect(8);
  for (std::size_t j = 0; j < 8; ++j) {
    const double sign = j < 4 ? 1.0 : -1.0;
    all[0][j] = sign * 0x1p53;
    all[1][j] = sign * t[j % 4];
    all[2][j] = sign * d[j % 4];
    expect[j] = sign * want[j % 4];
  }
  for (Spread spread : kSpreads) {
    SCOPED_TRACE(spread_name(spread));
    EXPECT_TRUE(bitwise_equal(reproducible_sum(my_vectors(all, spread, world), 8, world), expect));
  }
}

TEST(ReproducibleSum, ZerosEmptyRanksAndLenZero) {
  const Communicator world = Communicator::world();
  const std::size_t len = 64;
  Vectors zeros(5, std::vector<double>(len, 0.0));
  zeros[2][7] = -0.0;
  const std::vector<double> z =
      reproducible_sum(my_vectors(zeros, Spread::round_robin, world), len, world);
  ASSERT_EQ(z.size(), len);
  for (double x : z) EXPECT_TRUE(x == 0.0 && !std::signbit(x));
  // No vectors anywhere.
  EXPECT_TRUE(bitwise_equal(reproducible_sum({}, len, world), std::vector<double>(len, 0.0)));
  // Vectors only on rank 0 (the others join the collectives with none).
  const Vectors one = wide_vectors(1, len, 3);
  const std::vector<double> got =
      reproducible_sum(world.root() ? pointers(one) : std::vector<const double*>{}, len, world);
  EXPECT_TRUE(bitwise_equal(got, reproducible_sum(pointers(one), len, Communicator::serial())));
  // A single vector comes back unchanged: with one vector (c = 0) the grid is 2^(e-125), so an
  // element loses no bit unless it is 2^72 times smaller than the largest; these span < 2^60.
  EXPECT_TRUE(bitwise_equal(got, one[0]));
  // len 0.
  const Vectors empty(3);
  EXPECT_TRUE(reproducible_sum(my_vectors(empty, Spread::blocks, world), 0, world).empty());
}

TEST(ReproducibleSum, NonFiniteThrowsOnEveryRank) {
  const Communicator world = Communicator::world();
  const std::size_t len = 50;
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), HUGE_VAL, -HUGE_VAL}) {
    Vectors all = wide_vectors(7, len, 11);
    all[6][42] = bad;  // vector 6: the last rank's under "all on the last rank"
    const bool holder = world.rank() == world.size() - 1;
    try {
      reproducible_sum(my_vectors(all, Spread::last_rank, world), len, world);
      ADD_FAILURE() << "no exception for " << bad;
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      const std::string last = std::to_string(world.size() - 1);
      if (holder) {
        EXPECT_NE(what.find("element 42 of vector 6 on rank " + last), std::string::npos) << what;
        EXPECT_NE(what.find(std::isnan(bad) ? "NaN" : "inf"), std::string::npos) << what;
      } else {
        EXPECT_NE(what.find("on rank " + last), std::string::npos) << what;
      }
    }
    // The serial stand-in throws too.
    EXPECT_THROW(reproducible_sum(pointers(all), len, Communicator::serial()),
                 std::invalid_argument);
  }
  // After the errors, the communicator still works (nobody was left inside a collective).
  EXPECT_EQ(world.sum(std::int64_t{1}), world.size());
}

TEST(ReproducibleSum, LenMustAgree) {
  const Communicator world = Communicator::world();
  if (world.size() == 1) GTEST_SKIP() << "needs two ranks";
  const std::vector<double> x(11, 1.0);
  const std::size_t len = world.root() ? 10 : 11;
  EXPECT_THROW(reproducible_sum({x.data()}, len, world), std::invalid_argument);
  EXPECT_EQ(world.sum(std::int64_t{1}), world.size());
}

TEST(ReproducibleSum, ThreadsAndOneRankCommunicatorsGiveTheSameBits) {
  const Communicator world = Communicator::world();
  const std::size_t len = 50000;  // 5 × 50000 elements: the threaded path
  const Vectors all = wide_vectors(5, len, 21);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<double> one = reproducible_sum(pointers(all), len, Communicator::serial());
  omp_set_num_threads(2);
  const std::vector<double> two = reproducible_sum(pointers(all), len, Communicator::serial());
  omp_set_num_threads(threads);
  EXPECT_TRUE(bitwise_equal(one, two));
  // A real communicator of one rank (distributed, through MPI) and the whole world.
  const Communicator alone = world.split(world.rank(), 0);
  ASSERT_TRUE(alone.distributed());
  EXPECT_TRUE(bitwise_equal(reproducible_sum(pointers(all), len, alone), one));
  EXPECT_TRUE(
      bitwise_equal(reproducible_sum(my_vectors(all, Spread::reversed, world), len, world), one));
}

}  // namespace
}  // namespace harsanyi::mpi
