// The CUDA backend: the kernels' index logic replayed on the CPU (always runs), and the GPU
// transforms and sgd solver against the CPU kernels (skipped without a GPU).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_backend.h"
#include "cuda_test_support.h"
#include "lattice_index.h"
#include "lattice_transforms.h"
#include "progress.h"
#include "sgd_solver.h"

#ifndef HARSANYI_TEST_DATA
#error "HARSANYI_TEST_DATA must point at tests/data"
#endif

namespace cu = harsanyi::cuda;
namespace ix = harsanyi::cuda::index;

namespace {

// ---------------------------------------------------------------------------------------------
// CPU replay of the kernels' index logic

// Records, per element, the bits of the butterflies that update it, in execution order.
struct Replay {
  int n;
  std::uint64_t total;
  std::vector<std::vector<int>> bits;  // per element
  Replay(int n_, std::uint64_t samples) : n(n_), total(samples << n_), bits(total) {}

  void update(std::uint64_t e, std::uint64_t partner, int b) {
    ASSERT_LT(e, total);
    ASSERT_LT(partner, total) << "partner out of range";
    ASSERT_EQ(partner, e ^ (std::uint64_t{1} << b)) << "element " << e << " bit " << b;
    ASSERT_EQ(partner >> n, e >> n) << "pair crosses rows";
    bits[e].push_back(b);
  }
};

// The tile pass of lattice_kernels.cu: per bit, Lane/Block levels update each (thread, register)
// from the partner thread's same register; the Register level updates both sides of a pair.
void replay_tile_pass(Replay& rep, int nbits, ix::TileShape s) {
  const std::uint64_t tiles = ix::tile_count(rep.total, s);
  const unsigned threads = 1u << s.thread_bits, regs = ix::tile_registers(s);
  for (std::uint64_t tile = 0; tile < tiles; ++tile) {
    std::set<unsigned> slots;
    for (unsigned t = 0; t < threads; ++t)
      for (unsigned r = 0; r < regs; ++r) {
        const unsigned slot = ix::tile_slot(t, r, s);
        EXPECT_LT(slot, 1u << s.tile_bits);
        EXPECT_EQ(ix::tile_element(tile, t, r, s), (tile << s.tile_bits) + slot);
        slots.insert(slot);
      }
    EXPECT_EQ(slots.size(), std::size_t{threads} * regs) << "shared-memory slots collide";
    for (int b = 0; b < nbits; ++b) {
      const ix::BitLevel level = ix::tile_bit_level(b, s);
      for (unsigned t = 0; t < threads; ++t)
        for (unsigned r = 0; r < regs; ++r) {
          const std::uint64_t e = ix::tile_element(tile, t, r, s);
          if (level == ix::BitLevel::Register) {
            const unsigned pr = ix::tile_partner_register(r, b, s);
            ASSERT_LT(pr, regs);
            if (r > pr) continue;  // the pair is done once, by its lower register
            const std::uint64_t pe = ix::tile_element(tile, t, pr, s);
            EXPECT_FALSE(ix::is_upper(e, b));
            EXPECT_TRUE(ix::is_upper(pe, b));
            if (e >= rep.total) {
              EXPECT_GE(pe, rep.total) << "a pair half in range";
              continue;
            }
            rep.update(e, pe, b);
            rep.update(pe, e, b);
          } else {
            const unsigned pt = ix::tile_partner_thread(t, b);
            ASSERT_LT(pt, threads);
            if (level == ix::BitLevel::Lane) {
              EXPECT_EQ(pt >> s.lane_bits, t >> s.lane_bits) << "shuffle partner in another warp";
            }
            const std::uint64_t pe = ix::tile_element(tile, pt, r, s);
            EXPECT_EQ(ix::tile_slot(pt, r, s), ix::tile_slot(t, r, s) ^ (1u << b));
            EXPECT_EQ(ix::is_upper(e, b), ((e >> b) & 1) != 0);
            if (e >= rep.total) {
              EXPECT_GE(pe, rep.total) << "a pair half in range";
              continue;
            }
            rep.update(e, pe, b);
          }
        }
    }
  }
}

// A column pass of lattice_kernels.cu over bits [first, first + count).
void replay_column_pass(Replay& rep, int first, int count) {
  const std::uint64_t columns = ix::column_count(rep.total, count);
  std::vector<int> covered(rep.total, 0);
  for (std::uint64_t c = 0; c < columns; ++c) {
    for (unsigned r = 0; r < (1u << count); ++r) {
      const std::uint64_t e = ix::column_element(c, first, count, r);
      ASSERT_LT(e, rep.total);
      ++covered[e];
    }
    for (int b = 0; b < count; ++b)
      for (unsigned r = 0; r < (1u << count); ++r) {
        if (r & (1u << b)) continue;
        const std::uint64_t e = ix::column_element(c, first, count, r);
        const std::uint64_t pe = ix::column_element(c, first, count, r | (1u << b));
        rep.update(e, pe, first + b);
        rep.update(pe, e, first + b);
      }
  }
  for (std::uint64_t e = 0; e < rep.total; ++e)
    ASSERT_EQ(covered[e], 1) << "column pass covers element " << e << " " << covered[e] << "x";
}

// A wide column pass of lattice_kernels.cu over bits [first, first + count): the register bits,
// then the three warp bits of each (register, lane) cube.
void replay_wide_pass(Replay& rep, int first, int count) {
  ASSERT_GE(first, ix::kWideLaneBits);
  const int reg_bits = count - ix::kWideWarpBits;
  const unsigned regs = 1u << reg_bits, warps = 1u << ix::kWideWarpBits, lanes = 32;
  const std::uint64_t tiles = ix::wide_tile_count(rep.total, count);
  ASSERT_EQ(tiles << (count + ix::kWideLaneBits), rep.total);
  std::vector<int> covered(rep.total, 0);
  for (std::uint64_t t = 0; t < tiles; ++t) {
    for (unsigned w = 0; w < warps; ++w)
      for (unsigned l = 0; l < lanes; ++l)
        for (unsigned j = 0; j < regs; ++j) {
          const std::uint64_t e = ix::wide_element(t, w, l, j, first, count);
          ASSERT_LT(e, rep.total);
          ++covered[e];
          if (l > 0) {  // consecutive lanes: consecutive elements (coalesced)
            ASSERT_EQ(e, ix::wide_element(t, w, l - 1, j, first, count) + 1);
          }
        }
    for (int b = 0; b < reg_bits; ++b)
      for (unsigned w = 0; w < warps; ++w)
        for (unsigned l = 0; l < lanes; ++l)
          for (unsigned j = 0; j < regs; ++j) {
            if (j & (1u << b)) continue;
            const std::uint64_t e = ix::wide_element(t, w, l, j, first, count);
            const std::uint64_t pe = ix::wide_element(t, w, l, j | (1u << b), first, count);
            rep.update(e, pe, first + b);
            rep.update(pe, e, first + b);
          }
    for (int b = 0; b < ix::kWideWarpBits; ++b)
      for (unsigned j = 0; j < regs; ++j)
        for (unsigned l = 0; l < lanes; ++l)
          for (unsigned u = 0; u < warps; ++u) {
            if (u & (1u << b)) continue;
            const std::uint64_t e = ix::wide_element(t, u, l, j, first, count);
            const std::uint64_t pe = ix::wide_element(t, u | (1u << b), l, j, first, count);
            rep.update(e, pe, first + reg_bits + b);
            rep.update(pe, e, first + reg_bits + b);
          }
  }
  for (std::uint64_t e = 0; e < rep.total; ++e)
    ASSERT_EQ(covered[e], 1) << "wide pass covers element " << e << " " << covered[e] << "x";
}

void replay_transform(int n, std::uint64_t samples, ix::TileShape s, int max_group) {
  SCOPED_TRACE("n=" + std::to_string(n) + " samples=" + std::to_string(samples) + " tile=(" +
               std::to_string(s.lane_bits) + "," + std::to_string(s.thread_bits) + "," +
               std::to_string(s.tile_bits) + ") group=" + std::to_string(max_group));
  const ix::PassPlan plan = ix::make_pass_plan(n, s.tile_bits, max_group);
  int covered = plan.low_bits;
  for (int g = 0; g < plan.groups; ++g) {
    EXPECT_EQ(plan.first[g], covered);
    EXPECT_GE(plan.count[g], 1);
    EXPECT_LE(plan.count[g], max_group);
    covered += plan.count[g];
  }
  EXPECT_EQ(covered, n);
  Replay rep(n, samples);
  if (n > 0) replay_tile_pass(rep, plan.low_bits, s);  // the kernels skip n = 0 (identity)
  for (int g = 0; g < plan.groups; ++g) {
    if (ix::is_wide_group(plan.count[g]))
      replay_wide_pass(rep, plan.first[g], plan.count[g]);
    else
      replay_column_pass(rep, plan.first[g], plan.count[g]);
  }
  for (std::uint64_t e = 0; e < rep.total; ++e) {
    ASSERT_EQ(rep.bits[e].size(), static_cast<std::size_t>(n)) << "element " << e;
    for (int b = 0; b < n; ++b) ASSERT_EQ(rep.bits[e][b], b) << "element " << e << " out of order";
  }
}

}  // namespace

TEST(CudaIndex, EveryPairOncePerBitInIncreasingOrder) {
  const ix::TileShape shapes[] = {{1, 2, 3}, {2, 2, 4}, {0, 1, 1}, {1, 3, 3},
                                  {0, 0, 2}, {2, 3, 5}, {1, 1, 1}};
  for (const ix::TileShape& s : shapes)
    for (int n = 0; n <= 10; ++n)
      for (std::uint64_t samples : {1, 2, 3, 5})
        for (int group : {1, 2, 3, 5}) replay_transform(n, samples, s, group);
}

TEST(CudaIndex, KernelShapeReplays) {
  // The shape and group sizes the kernels use, on rows shorter and longer than a tile: register
  // column passes (n = 12..16), wide passes of 6 (n = 17) and 9 bits (n = 20).
  for (int n : {0, 1, 3, 5, 7, 8, 10, 11, 12, 14, 16, 17})
    for (std::uint64_t samples : {1, 3})
      for (unsigned es : {4u, 8u})
        replay_transform(n, samples, ix::kKernelTile, ix::column_max_group(es));
  replay_transform(20, 1, ix::kKernelTile, ix::column_max_group(4));
}

TEST(CudaIndex, KernelPlansCoverAllSizes) {
  for (unsigned es : {4u, 8u})
    for (int n = 0; n <= harsanyi::kMaxPlayers; ++n) {
      const int mg = ix::column_max_group(es);
      EXPECT_LE(mg, ix::kKernelMaxGroup);
      const ix::PassPlan plan = ix::make_pass_plan(n, ix::kKernelTile.tile_bits, mg);
      int covered = plan.low_bits;
      for (int g = 0; g < plan.groups; ++g) {
        if (ix::is_wide_group(plan.count[g])) {
          EXPECT_GE(plan.first[g], ix::kWideLaneBits);
        } else {
          EXPECT_LE(plan.count[g], ix::kKernelRegisterGroup);
        }
        covered += plan.count[g];
      }
      EXPECT_EQ(covered, n);
      EXPECT_LE(plan.groups, 64);
      // every pass reads and writes the array once: n = 28 in three passes (11 + 9 + 8 bits)
      if (n == 28) {
        EXPECT_EQ(plan.groups + 1, 3);
      }
      EXPECT_EQ(plan.low_bits, std::min(n, ix::kKernelTile.tile_bits));
    }
}

TEST(CudaIndex, ReversalIsComplementInRow) {
  for (int n = 0; n <= 6; ++n)
    for (std::uint64_t k = 0; k < (std::uint64_t{3} << n); ++k) {
      const std::uint64_t j = ix::reversed_element(k, n);
      const std::uint64_t len = std::uint64_t{1} << n;
      EXPECT_EQ(j >> n, k >> n);
      EXPECT_EQ(j & (len - 1), len - 1 - (k & (len - 1)));
      EXPECT_EQ(ix::reversed_element(j, n), k);
    }
}

TEST(CudaHost, SgdBytesPerSample) {
  for (int n : {0, 4, 12, 20}) {
    const std::size_t len = std::size_t{1} << n;
    EXPECT_GE(cu::sgd_device_bytes_per_sample(n, 8), 7 * len * 8);
    EXPECT_GE(cu::sgd_device_bytes_per_sample(n, 4), 7 * len * 4);
    EXPECT_LT(cu::sgd_device_bytes_per_sample(n, 8), 8 * len * 8 + 256);
  }
}

TEST(CudaHost, DeviceCountGivesAReason) {
  std::string reason;
  const int count = cu::device_count(&reason);
  EXPECT_GE(count, 0);
  if (count == 0) {
    EXPECT_FALSE(reason.empty());
    EXPECT_EQ(cu::device_description(), "");
  } else {
    EXPECT_FALSE(cu::device_description().empty());
    EXPECT_GT(cu::device_free_bytes(), 0u);
  }
}

// ---------------------------------------------------------------------------------------------
// GPU tests

namespace {

void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

// Device copy of a host array between two guard zones poisoned with 0xFF bytes.
template <class T>
class GuardedDeviceArray {
 public:
  static constexpr std::size_t kGuard = 4096;  // elements on each side
  explicit GuardedDeviceArray(const std::vector<T>& host) : count_(host.size()) {
    check_cuda(cudaMalloc(reinterpret_cast<void**>(&base_), bytes()), "cudaMalloc");
    check_cuda(cudaMemset(base_, 0xFF, bytes()), "cudaMemset");
    check_cuda(cudaMemcpy(data(), host.data(), count_ * sizeof(T), cudaMemcpyHostToDevice),
               "cudaMemcpy");
  }
  ~GuardedDeviceArray() { cudaFree(base_); }
  GuardedDeviceArray(const GuardedDeviceArray&) = delete;
  GuardedDeviceArray& operator=(const GuardedDeviceArray&) = delete;
  T* data() { return base_ + kGuard; }
  std::size_t bytes() const { return (count_ + 2 * kGuard) * sizeof(T); }

  // Copies the data back and checks the guard zones are untouched.
  std::vector<T> fetch() const {
    std::vector<unsigned char> all(bytes());
    check_cuda(cudaMemcpy(all.data(), base_, bytes(), cudaMemcpyDeviceToHost), "cudaMemcpy");
    const std::size_t g = kGuard * sizeof(T);
    for (std::size_t i = 0; i < g; ++i) {
      EXPECT_EQ(all[i], 0xFF) << "write before the array at byte " << i;
      EXPECT_EQ(all[all.size() - g + i], 0xFF) << "write after the array at byte " << i;
      if (all[i] != 0xFF || all[all.size() - g + i] != 0xFF) break;
    }
    std::vector<T> out(count_);
    if (count_) std::memcpy(out.data(), all.data() + g, count_ * sizeof(T));
    return out;
  }

 private:
  std::size_t count_;
  T* base_ = nullptr;
};

enum class Which { Moebius, MoebiusT, Zeta, ZetaT, Or, OrT };
const Which kAll[] = {Which::Moebius, Which::MoebiusT, Which::Zeta,
                      Which::ZetaT,   Which::Or,       Which::OrT};
const char* name_of(Which w) {
  switch (w) {
    case Which::Moebius:
      return "moebius";
    case Which::MoebiusT:
      return "moebius_transpose";
    case Which::Zeta:
      return "zeta";
    case Which::ZetaT:
      return "zeta_transpose";
    case Which::Or:
      return "or";
    case Which::OrT:
      return "or_transpose";
  }
  return "?";
}

template <class T>
void cpu_transform(Which w, T* x, int n, std::size_t samples) {
  switch (w) {
    case Which::Moebius:
      harsanyi::moebius_transform(x, n, samples);
      break;
    case Which::MoebiusT:
      harsanyi::moebius_transpose(x, n, samples);
      break;
    case Which::Zeta:
      harsanyi::zeta_transform(x, n, samples);
      break;
    case Which::ZetaT:
      harsanyi::zeta_transpose(x, n, samples);
      break;
    case Which::Or:
      harsanyi::or_transform(x, n, samples);
      break;
    case Which::OrT:
      harsanyi::or_transform_transpose(x, n, samples);
      break;
  }
}

template <class T>
void gpu_transform(Which w, T* d, int n, std::size_t samples, cu::Stream s) {
  switch (w) {
    case Which::Moebius:
      cu::lattice_transform(cu::LatticeOp::Moebius, d, n, samples, s);
      break;
    case Which::MoebiusT:
      cu::lattice_transform(cu::LatticeOp::MoebiusTranspose, d, n, samples, s);
      break;
    case Which::Zeta:
      cu::lattice_transform(cu::LatticeOp::Zeta, d, n, samples, s);
      break;
    case Which::ZetaT:
      cu::lattice_transform(cu::LatticeOp::ZetaTranspose, d, n, samples, s);
      break;
    case Which::Or:
      cu::or_transform(d, n, samples, s);
      break;
    case Which::OrT:
      cu::or_transform_transpose(d, n, samples, s);
      break;
  }
}

template <class T>
std::vector<T> random_values(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<T> x(count);
  for (auto& v : x) v = static_cast<T>(u(rng));
  return x;
}

// One transform of `samples` random rows on the GPU against the CPU kernel; float64 must be
// bitwise equal, float32 within 1e-5 relative.
template <class T>
void compare_transform(Which w, int n, std::size_t samples, cu::Stream stream) {
  SCOPED_TRACE(std::string(name_of(w)) + " n=" + std::to_string(n) +
               " samples=" + std::to_string(samples) + (sizeof(T) == 8 ? " f64" : " f32"));
  const std::size_t len = std::size_t{1} << n;
  const std::vector<T> input = random_values<T>(samples * len, 1000u * n + samples + int(w));
  std::vector<T> expect = input;
  cpu_transform(w, expect.data(), n, samples);
  GuardedDeviceArray<T> dev(input);
  gpu_transform(w, dev.data(), n, samples, stream);
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  check_cuda(cudaGetLastError(), "kernel");
  const std::vector<T> got = dev.fetch();
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size() && bad < 10; ++i) {
    if constexpr (sizeof(T) == 8) {
      if (got[i] != expect[i]) ++bad;
      EXPECT_EQ(got[i], expect[i]) << "row " << i / len << " S = " << i % len;
    } else {
      const double tol = 1e-5 * std::max(1.0, std::fabs(static_cast<double>(expect[i])));
      if (std::fabs(static_cast<double>(got[i]) - expect[i]) > tol) ++bad;
      EXPECT_NEAR(got[i], expect[i], tol) << "row " << i / len << " S = " << i % len;
    }
  }
}

class StreamOwner {
 public:
  StreamOwner() { check_cuda(cudaStreamCreate(&s_), "cudaStreamCreate"); }
  ~StreamOwner() { cudaStreamDestroy(s_); }
  cu::Stream get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

nlohmann::json load_reference() {
  std::ifstream in(std::string(HARSANYI_TEST_DATA) + "/sgd_n8_s1.json");
  if (!in) throw std::runtime_error("cannot open the reference data");
  return nlohmann::json::parse(in);
}

double rel(double a, double b) {
  return std::fabs(a - b) / std::max(std::fabs(b), 1e-300);
}

template <class T, class Vec>
void expect_close(const Vec& got, const Vec& expect, double tol, const char* what) {
  ASSERT_EQ(got.size(), expect.size()) << what;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size() && bad < 10; ++i) {
    const double g = static_cast<double>(got[i]), e = static_cast<double>(expect[i]);
    const double t = tol * std::max(1.0, std::fabs(e));
    if (!(std::fabs(g - e) <= t)) ++bad;
    EXPECT_NEAR(g, e, t) << what << "[" << i << "]";
  }
}

}  // namespace

TEST(CudaTransforms, MatchCpuDouble) {
  REQUIRE_GPU();
  StreamOwner stream;
  for (int n = 0; n <= 16; ++n)
    for (std::size_t samples : {1, 2, 5, 37}) {
      if (n >= 15 && samples > 5) continue;  // keeps the test short
      for (Which w : kAll) compare_transform<double>(w, n, samples, stream.get());
    }
}

TEST(CudaTransforms, MatchCpuFloat) {
  REQUIRE_GPU();
  for (int n = 0; n <= 16; ++n)
    for (std::size_t samples : {1, 3, 37}) {
      if (n >= 15 && samples > 3) continue;
      for (Which w : kAll) compare_transform<float>(w, n, samples, nullptr);  // default stream
    }
}

TEST(CudaTransforms, LargeSingleSample) {
  REQUIRE_GPU();
  StreamOwner stream;
  for (Which w : kAll) compare_transform<double>(w, 22, 1, stream.get());
  compare_transform<float>(Which::Moebius, 22, 1, stream.get());
  compare_transform<float>(Which::OrT, 22, 1, stream.get());
  // n = 22: a wide pass of 6 bits and a register pass of 5; n = 20: one wide pass of 9 bits;
  // n = 23: two wide passes of 6; n = 26: wide passes of 8 and 7 bits
  for (Which w : kAll) compare_transform<double>(w, 20, 1, stream.get());
  compare_transform<float>(Which::Zeta, 20, 3, stream.get());
  compare_transform<double>(Which::Moebius, 23, 2, stream.get());
  compare_transform<float>(Which::Moebius, 26, 1, stream.get());
}

TEST(CudaTransforms, RejectsBadArguments) {
  REQUIRE_GPU();
  double* none = nullptr;
  EXPECT_THROW(cu::lattice_transform(cu::LatticeOp::Moebius, none, -1, 1, nullptr),
               std::invalid_argument);
  EXPECT_THROW(cu::lattice_transform(cu::LatticeOp::Moebius, none, 4, 1, nullptr),
               std::invalid_argument);
  EXPECT_NO_THROW(cu::lattice_transform(cu::LatticeOp::Moebius, none, 4, 0, nullptr));
}

TEST(CudaSgd, ReferenceGameMatchesCpu) {
  REQUIRE_GPU();
  const auto ref = load_reference();
  const int n = ref["n"];
  const std::vector<double> v = ref["values"];
  harsanyi::SgdOptions opt;
  opt.iters = 2000;
  opt.lr = ref["solver"]["lr"];
  opt.momentum = ref["solver"]["momentum"];
  opt.qthres = ref["solver"]["qthres"];
  opt.trace_every = 1;
  harsanyi::AndOrBatch<double> cpu, gpu;
  harsanyi::fit_and_or_sgd_batch(v.data(), 1, n, opt, cpu);
  harsanyi::Progress progress("test", opt.iters, "it", /*enabled=*/false);
  cu::fit_and_or_sgd_batch(v.data(), 1, n, opt, gpu, &progress);
  EXPECT_EQ(progress.done(), static_cast<std::uint64_t>(opt.iters));
  ASSERT_EQ(gpu.loss.size(), 1u);
  EXPECT_LT(rel(gpu.loss[0], cpu.loss[0]), 1e-9);
  ASSERT_EQ(gpu.trace.size(), cpu.trace.size());
  for (std::size_t t = 0; t < cpu.trace.size(); ++t)
    EXPECT_LT(rel(gpu.trace[t], cpu.trace[t]), 1e-9) << "iteration " << t;
  EXPECT_EQ(gpu.loss[0], gpu.trace.back());
  expect_close<double>(gpu.and_, cpu.and_, 1e-9, "I_and");
  expect_close<double>(gpu.or_, cpu.or_, 1e-9, "I_or");
  expect_close<double>(gpu.p, cpu.p, 1e-9, "p");
  expect_close<double>(gpu.q, cpu.q, 1e-9, "q");
}

TEST(CudaSgd, ReferenceTrajectoryOfTheLab) {
  REQUIRE_GPU();
  const auto ref = load_reference();
  const int n = ref["n"];
  const std::vector<double> v = ref["values"];
  harsanyi::SgdOptions opt;
  opt.iters = ref["solver"]["niter"];
  opt.lr = ref["solver"]["lr"];
  opt.momentum = ref["solver"]["momentum"];
  opt.qthres = ref["solver"]["qthres"];
  opt.trace_every = 1000;
  harsanyi::AndOrBatch<double> gpu;
  cu::fit_and_or_sgd_batch(v.data(), 1, n, opt, gpu);
  const std::vector<double> every = ref["loss_every_1000"];
  ASSERT_EQ(gpu.trace.size(), every.size());
  for (std::size_t k = 0; k < every.size(); ++k)
    EXPECT_LT(rel(gpu.trace[k], every[k]), 1e-9) << "iteration " << k * 1000;
  EXPECT_LT(rel(gpu.loss[0], ref["loss_final"].get<double>()), 1e-9);
}

TEST(CudaSgd, BatchOfRandomSamplesMatchesCpu) {
  REQUIRE_GPU();
  const int n = 10;
  const std::size_t samples = 37, len = std::size_t{1} << n;
  std::vector<double> v = random_values<double>(samples * len, 77);
  for (auto& x : v) x *= 3.0;
  harsanyi::SgdOptions opt;
  opt.iters = 300;
  opt.lr = 1e-3;
  opt.qthres = 0.04;
  opt.trace_every = 7;
  harsanyi::AndOrBatch<double> cpu, gpu;
  harsanyi::fit_and_or_sgd_batch(v.data(), samples, n, opt, cpu);
  harsanyi::Progress progress("test", opt.iters * samples, "it", /*enabled=*/false);
  cu::fit_and_or_sgd_batch(v.data(), samples, n, opt, gpu, &progress);
  EXPECT_EQ(progress.done(), static_cast<std::uint64_t>(opt.iters) * samples);
  for (std::size_t s = 0; s < samples; ++s) EXPECT_LT(rel(gpu.loss[s], cpu.loss[s]), 1e-9);
  ASSERT_EQ(gpu.trace.size(), cpu.trace.size());
  for (std::size_t i = 0; i < cpu.trace.size(); ++i)
    EXPECT_LT(rel(gpu.trace[i], cpu.trace[i]), 1e-9) << "trace entry " << i;
  expect_close<double>(gpu.and_, cpu.and_, 1e-9, "I_and");
  expect_close<double>(gpu.or_, cpu.or_, 1e-9, "I_or");
  expect_close<double>(gpu.p, cpu.p, 1e-9, "p");
  expect_close<double>(gpu.q, cpu.q, 1e-9, "q");

  // float32: the same protocol, losses close to the CPU's
  std::vector<float> vf(v.begin(), v.end());
  harsanyi::AndOrBatch<float> cpuf, gpuf;
  harsanyi::fit_and_or_sgd_batch(vf.data(), samples, n, opt, cpuf);
  cu::fit_and_or_sgd_batch(vf.data(), samples, n, opt, gpuf);
  for (std::size_t s = 0; s < samples; ++s) EXPECT_LT(rel(gpuf.loss[s], cpuf.loss[s]), 1e-4);
}

// The fused kernel (one block per sample) and the staged kernels (one launch per step) do the
// same operations in the same order: every output bitwise equal, in both precisions, for every n
// the fused kernel takes (block sizes 32..1024, tails of the loss sum when n < 3).
template <class T>
void fused_equals_staged(int n, std::size_t samples, int iters) {
  SCOPED_TRACE("n=" + std::to_string(n) + " bytes=" + std::to_string(sizeof(T)));
  const std::size_t len = std::size_t{1} << n;
  std::vector<T> v = random_values<T>(samples * len, 500 + n);
  for (auto& x : v) x *= T(3);
  harsanyi::SgdOptions opt;
  opt.iters = iters;
  opt.lr = 1e-3;
  opt.qthres = 0.04;
  opt.trace_every = 7;
  harsanyi::AndOrBatch<T> fused, staged;
  harsanyi::Progress progress("test", static_cast<std::uint64_t>(iters) * samples, "it", false);
  cu::fit_and_or_sgd_batch(v.data(), samples, n, opt, fused, &progress, cu::SgdKernel::Fused);
  EXPECT_EQ(progress.done(), static_cast<std::uint64_t>(iters) * samples);
  cu::fit_and_or_sgd_batch(v.data(), samples, n, opt, staged, nullptr, cu::SgdKernel::Staged);
  harsanyi::testing::expect_same_outputs(fused, staged);
  ASSERT_EQ(fused.loss.size(), samples);
  EXPECT_TRUE(std::isfinite(fused.loss[0]));
}

TEST(CudaSgd, FusedEqualsStagedBitwise) {
  REQUIRE_GPU();
  for (int n : {0, 1, 2, 3, 5, 8, 9, 10, 11, 12}) {
    const int iters = n <= 10 ? 300 : 60;  // 300: more than one launch of 256 iterations
    fused_equals_staged<double>(n, 5, iters);
    fused_equals_staged<float>(n, 3, iters);
  }
  harsanyi::SgdOptions opt;
  opt.iters = 1;
  harsanyi::AndOrBatch<double> out;
  std::vector<double> v(std::size_t{1} << 13, 1.0);
  EXPECT_THROW(cu::fit_and_or_sgd_batch(v.data(), 1, 13, opt, out, nullptr, cu::SgdKernel::Fused),
               std::invalid_argument);
}

TEST(CudaSgd, RefusesABatchThatDoesNotFit) {
  REQUIRE_GPU();
  const double dummy = 0.0;  // never read: the size check comes first
  harsanyi::SgdOptions opt;
  opt.iters = 1;
  harsanyi::AndOrBatch<double> out;
  EXPECT_THROW(cu::fit_and_or_sgd_batch(&dummy, std::size_t{1} << 20, 24, opt, out),
               std::runtime_error);
  EXPECT_TRUE(out.loss.empty());
}
