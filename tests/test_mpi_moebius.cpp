// Distributed lattice transforms under mpirun (1, 2 and 4 ranks): every rank builds the same full
// input from a seed, transforms its block over a group (the whole world, pairs, the world in
// reversed rank order, the serial stand-in) and compares it bitwise with the CPU kernel's
// transform of the full vector. Planted integer games recover their coefficients exactly.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "communicator.h"
#include "distributed_moebius.h"
#include "lattice_transforms.h"
#include "planted_game.h"

namespace harsanyi::mpi {
namespace {

constexpr int kMaxN = 16;

// The groups every test runs over: the world; the world in reversed rank order (group rank !=
// world rank); pairs when the world has 4 ranks; the serial stand-in.
struct NamedGroup {
  std::string name;
  Communicator group;
};
std::vector<NamedGroup> test_groups() {
  const Communicator world = Communicator::world();
  std::vector<NamedGroup> groups;
  groups.push_back({"world", world});
  groups.push_back({"reversed world", world.split(0, world.size() - 1 - world.rank())});
  if (world.size() == 4) groups.push_back({"pairs", world.split(world.rank() / 2, world.rank())});
  groups.push_back({"serial", Communicator::serial()});
  return groups;
}

int log2_size(const Communicator& group) {
  return __builtin_ctz(static_cast<unsigned>(group.size()));
}

// `count` samples of 2^n non-integer values in [-1, 1), the same on every rank for a seed.
template <class T>
std::vector<T> full_input(int n, std::size_t count, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<T> v(count << n);
  for (auto& x : v) x = static_cast<T>(u(rng));
  return v;
}

// This rank's blocks of a full batch.
template <class T>
std::vector<T> block_of(const std::vector<T>& full, int n, std::size_t count,
                        const Communicator& group) {
  const std::size_t len = std::size_t{1} << n, L = distributed_block_length(n, group.size());
  std::vector<T> block(count * L);
  for (std::size_t s = 0; s < count; ++s)
    std::memcpy(block.data() + s * L, full.data() + s * len + group.rank() * L, L * sizeof(T));
  return block;
}

// Empty when `block` is bitwise (or, with `bitwise` false, by value: -0 == +0) this rank's part
// of `full`; else the mismatches described.
template <class T>
std::string bitwise_mismatch(const std::vector<T>& block, const std::vector<T>& full, int n,
                             std::size_t count, const Communicator& group, bool bitwise = true) {
  const std::vector<T> expect = block_of(full, n, count, group);
  const std::size_t L = distributed_block_length(n, group.size());
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < block.size(); ++i)
    if ((bitwise ? std::memcmp(&block[i], &expect[i], sizeof(T)) != 0 : block[i] != expect[i]) &&
        bad++ == 0)
      first = i;
  if (bad == 0) return "";
  std::ostringstream out;
  out.precision(17);
  out << bad << " of " << block.size() << " elements differ; first: sample " << first / L
      << ", subset " << group.rank() * L + first % L << ": " << block[first] << " vs "
      << expect[first];
  return out.str();
}

// True on every rank when a check failed on any rank: all ranks then leave the test together
// (a rank that returned alone would leave the others waiting in the next collective).
bool stop_everywhere(const std::string& mismatch) {
  return Communicator::world().any(!mismatch.empty());
}

const char* dtype_name(float) {
  return "f32";
}
const char* dtype_name(double) {
  return "f64";
}

// One distributed transform against its CPU kernel over every group, n = max(min_n, log2 K)..max_n,
// batches of 1 and 3, both exchanges.
template <class T, class Dist, class Cpu>
void expect_bitwise(const char* what, Dist dist, Cpu cpu, int max_n,
                    const ExchangeOptions& options = {}, int min_n = 1) {
  for (const auto& [gname, group] : test_groups())
    for (Exchange how : {Exchange::partner, Exchange::alltoall})
      for (std::size_t count : {std::size_t{1}, std::size_t{3}})
        for (int n = std::max(min_n, log2_size(group)); n <= max_n; ++n) {
          const unsigned seed = 1000u * static_cast<unsigned>(n) + static_cast<unsigned>(count);
          std::vector<T> full = full_input<T>(n, count, seed);
          std::vector<T> block = block_of(full, n, count, group);
          dist(block.data(), n, count, group, how, options);
          cpu(full.data(), n, count);
          const std::string bad = bitwise_mismatch(block, full, n, count, group);
          EXPECT_EQ(bad, "") << what << " " << dtype_name(T{}) << ", group " << gname << " ("
                             << group.size() << " ranks), " << exchange_name(how) << ", n = " << n
                             << ", count = " << count << ", buffer " << options.buffer_bytes
                             << " B";
          if (stop_everywhere(bad)) return;
        }
}

template <class T>
void moebius_bitwise(const ExchangeOptions& options, int max_n) {
  expect_bitwise<T>("moebius", distributed_moebius<T>, moebius_transform<T>, max_n, options);
}

TEST(DistributedMoebius, BitwiseEqualsSerialKernelDouble) {
  moebius_bitwise<double>({}, kMaxN);
}
TEST(DistributedMoebius, BitwiseEqualsSerialKernelFloat) {
  moebius_bitwise<float>({}, kMaxN);
}

// Beyond n = 16 (f64) and 17 (f32) the CPU kernel does its high bits in separate passes
// through a gathered buffer; the per-element bit order must still be the same.
TEST(DistributedMoebius, BitwiseAtLargerN) {
  expect_bitwise<double>("moebius", distributed_moebius<double>, moebius_transform<double>, 20, {},
                         17);
  expect_bitwise<float>("moebius", distributed_moebius<float>, moebius_transform<float>, 20, {},
                        18);
}

// Buffers far below a block: many partner pieces, all-to-all in sample groups and slice pieces.
TEST(DistributedMoebius, BitwiseWithSmallBuffers) {
  for (std::size_t bytes :
       {std::size_t{1}, std::size_t{48}, std::size_t{1024}, std::size_t{24576}}) {
    ExchangeOptions options;
    options.buffer_bytes = bytes;
    moebius_bitwise<double>(options, 12);
    moebius_bitwise<float>(options, 12);
  }
}

TEST(DistributedMoebius, OtherButterfliesBitwise) {
  expect_bitwise<double>("zeta", distributed_zeta<double>, zeta_transform<double>, 12);
  expect_bitwise<float>("zeta", distributed_zeta<float>, zeta_transform<float>, 12);
  expect_bitwise<double>("moebius_transpose", distributed_moebius_transpose<double>,
                         moebius_transpose<double>, 12);
  expect_bitwise<float>("moebius_transpose", distributed_moebius_transpose<float>,
                        moebius_transpose<float>, 12);
  expect_bitwise<double>("zeta_transpose", distributed_zeta_transpose<double>,
                         zeta_transpose<double>, 12);
  expect_bitwise<float>("zeta_transpose", distributed_zeta_transpose<float>, zeta_transpose<float>,
                        12);
}

TEST(DistributedMoebius, OrTransformsBitwise) {
  ExchangeOptions small;
  small.buffer_bytes = 96;
  for (const ExchangeOptions& options : {ExchangeOptions{}, small}) {
    expect_bitwise<double>("or_transform", distributed_or_transform<double>, or_transform<double>,
                           12, options);
    expect_bitwise<float>("or_transform", distributed_or_transform<float>, or_transform<float>, 12,
                          options);
    expect_bitwise<double>("or_transform_transpose", distributed_or_transform_transpose<double>,
                           or_transform_transpose<double>, 12, options);
    expect_bitwise<float>("or_transform_transpose", distributed_or_transform_transpose<float>,
                          or_transform_transpose<float>, 12, options);
    expect_bitwise<double>("or_synthesis", distributed_or_synthesis<double>, or_synthesis<double>,
                           12, options);
    expect_bitwise<float>("or_synthesis", distributed_or_synthesis<float>, or_synthesis<float>, 12,
                          options);
  }
}

// Planted integer games: AND terms come back exactly from the Möbius transform, OR terms from
// the OR transform, and the inverse transforms give the game back exactly.
template <class T>
void planted_exact() {
  for (const auto& [gname, group] : test_groups())
    for (Exchange how : {Exchange::partner, Exchange::alltoall})
      for (int n = std::max(1, log2_size(group)); n <= kMaxN; ++n) {
        const PlantedGame g = random_planted_game(n, 2 * n, std::min(n, 5), 77 + n);
        PlantedGame and_game = g, or_game = g;
        and_game.or_terms.clear();
        or_game.and_terms.clear();
        const std::size_t len = std::size_t{1} << n;
        std::map<std::uint64_t, double> and_coef{{0, g.base}}, or_coef{{0, g.base}};
        for (const auto& t : g.and_terms) and_coef[t.set] += t.coefficient;
        for (const auto& t : g.or_terms) or_coef[t.set] += t.coefficient;
        std::vector<T> and_expect(len, T(0)), or_expect(len, T(0));
        for (const auto& [set, c] : and_coef) and_expect[set] = static_cast<T>(c);
        for (const auto& [set, c] : or_coef) or_expect[set] = static_cast<T>(c);
        const std::string where = std::string(dtype_name(T{})) + ", group " + gname + ", " +
                                  exchange_name(how) + ", n = " + std::to_string(n);

        const std::vector<double> av = and_game.values(), ov = or_game.values();
        const std::vector<T> and_values(av.begin(), av.end()), or_values(ov.begin(), ov.end());
        std::vector<T> block;
        // value equality (the OR transform's negations may leave -0 where +0 is planted)
        auto failed = [&](const std::vector<T>& expect, const char* label) {
          const std::string bad = bitwise_mismatch(block, expect, n, 1, group, false);
          EXPECT_EQ(bad, "") << label << ", " << where;
          return stop_everywhere(bad);
        };
        block = block_of(and_values, n, 1, group);
        distributed_moebius(block.data(), n, 1, group, how);
        if (failed(and_expect, "AND")) return;
        distributed_zeta(block.data(), n, 1, group, how);
        if (failed(and_values, "AND inverse")) return;
        block = block_of(or_values, n, 1, group);
        distributed_or_transform(block.data(), n, 1, group, how);
        if (failed(or_expect, "OR")) return;
        distributed_or_synthesis(block.data(), n, 1, group, how);
        if (failed(or_values, "OR inverse")) return;
      }
}

TEST(DistributedMoebius, PlantedGameCoefficientsExactDouble) {
  planted_exact<double>();
}
TEST(DistributedMoebius, PlantedGameCoefficientsExactFloat) {
  planted_exact<float>();
}

// A bad argument throws std::invalid_argument on every rank of the group (no rank left waiting).
template <class F>
std::string invalid_argument_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(DistributedMoebius, RejectsBadArguments) {
  const Communicator world = Communicator::world();
  const int K = world.size();
  std::vector<double> block(64, 1.0);
  const std::string too_small = invalid_argument_message([&] {
    distributed_moebius(block.data(), log2_size(world) - 1, 1, world, Exchange::partner);
  });
  if (K > 1)
    EXPECT_NE(too_small.find("too small for a group of " + std::to_string(K)), std::string::npos)
        << too_small;
  else
    EXPECT_NE(too_small.find("out of range"), std::string::npos) << too_small;

  if (K > 1) {
    // n differs on rank 0: every rank learns it from the same allreduce
    const int n = 4 + (world.root() ? 1 : 0);
    const std::string differs = invalid_argument_message(
        [&] { distributed_moebius(block.data(), n, 1, world, Exchange::alltoall); });
    EXPECT_NE(differs.find("n differs across the " + std::to_string(K) +
                           " ranks of the group (from 4 to 5)"),
              std::string::npos)
        << differs;
    const std::string count = invalid_argument_message([&] {
      distributed_moebius(block.data(), 5, world.root() ? 2 : 1, world, Exchange::partner);
    });
    EXPECT_NE(count.find("sample count differs"), std::string::npos) << count;
    const std::string how = invalid_argument_message([&] {
      distributed_moebius(block.data(), 5, 1, world,
                          world.root() ? Exchange::partner : Exchange::alltoall);
    });
    EXPECT_NE(how.find("exchange (partner or alltoall) differs"), std::string::npos) << how;
  }
  if (K == 4) {
    // a group of 3 ranks (and rank 3 alone, which is fine)
    const Communicator three = world.split(world.rank() < 3 ? 0 : 1, world.rank());
    const std::string msg = invalid_argument_message(
        [&] { distributed_moebius(block.data(), 6, 1, three, Exchange::partner); });
    if (three.size() == 3)
      EXPECT_NE(msg.find("3 ranks; a distributed transform needs a power of two"),
                std::string::npos)
          << msg;
    else
      EXPECT_EQ(msg, "");
  }
  const std::string bad_n = invalid_argument_message([&] {
    distributed_moebius(block.data(), kMaxPlayers + 1, 1, Communicator::serial(),
                        Exchange::partner);
  });
  EXPECT_NE(bad_n.find("out of range"), std::string::npos) << bad_n;
  world.barrier();
}

}  // namespace
}  // namespace harsanyi::mpi
