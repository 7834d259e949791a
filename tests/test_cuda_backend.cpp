// The CUDA backend: host helpers, and the GPU transforms and sgd solver against the CPU kernels
// (skipped without a GPU). The kernels' index logic is replayed in test_cuda_index.cpp.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
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

TEST(CudaHost, SgdBytesPerSample) {
  for (int n : {0, 4, 12, 20}) {
    const std::size_t len = std::size_t{1} << n;
    EXPECT_GE(cu::sgd_device_bytes_per_sample(n, 8), 7 * len * 8);
    EXPECT_GE(cu::sgd_device_bytes_per_sample(n, 4), 7 * len * 4);
    EXPECT_LT(cu::sgd_device_bytes_per_sample(n, 8), 8 * len * 8 + 256);
  }
}

TEST(CudaHost, ColumnPassCounts) {
  // The column passes' count needs no device: 1 tile pass (bits 0..10), then groups of <= 9 bits.
  for (std::size_t es : {std::size_t{4}, std::size_t{8}}) {
    EXPECT_EQ(cu::lattice_pass_count(cu::LatticePasses::Columns, 0, es), 0);
    EXPECT_EQ(cu::lattice_pass_count(cu::LatticePasses::Columns, 11, es), 1);
    EXPECT_EQ(cu::lattice_pass_count(cu::LatticePasses::Columns, 12, es), 2);
    EXPECT_EQ(cu::lattice_pass_count(cu::LatticePasses::Columns, 20, es), 2);
    EXPECT_EQ(cu::lattice_pass_count(cu::LatticePasses::Columns, 21, es), 3);
    EXPECT_EQ(cu::lattice_pass_count(cu::LatticePasses::Columns, 29, es), 3);
    EXPECT_EQ(cu::lattice_pass_count(cu::LatticePasses::Columns, 30, es), 4);
    // where the column passes take two or fewer, the cluster request is the column passes
    EXPECT_EQ(cu::lattice_pass_count(cu::LatticePasses::Cluster, 20, es), 2);
    // Auto: the column passes below kAutoClusterMinPlayers, the cluster request from there (on
    // a device without clusters, and without a device, that is the column passes again)
    for (int n = 0; n <= 30; ++n)
      EXPECT_EQ(cu::lattice_pass_count(cu::LatticePasses::Auto, n, es),
                cu::lattice_pass_count(n >= cu::kAutoClusterMinPlayers
                                           ? cu::LatticePasses::Cluster
                                           : cu::LatticePasses::Columns,
                                       n, es))
          << "n = " << n;
  }
  EXPECT_THROW(cu::lattice_pass_count(cu::LatticePasses::Columns, 10, 2), std::invalid_argument);
  EXPECT_THROW(cu::lattice_pass_count(cu::LatticePasses::Columns, -1, 4), std::invalid_argument);
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
void gpu_transform(Which w, T* d, int n, std::size_t samples, cu::Stream s,
                   cu::LatticePasses passes = cu::LatticePasses::Auto) {
  switch (w) {
    case Which::Moebius:
      cu::lattice_transform(cu::LatticeOp::Moebius, d, n, samples, s, passes);
      break;
    case Which::MoebiusT:
      cu::lattice_transform(cu::LatticeOp::MoebiusTranspose, d, n, samples, s, passes);
      break;
    case Which::Zeta:
      cu::lattice_transform(cu::LatticeOp::Zeta, d, n, samples, s, passes);
      break;
    case Which::ZetaT:
      cu::lattice_transform(cu::LatticeOp::ZetaTranspose, d, n, samples, s, passes);
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

// The shared-memory (cluster) passes against the CPU kernels, and equal bitwise to the column
// passes in float too (the same operations in the same order).
template <class T>
void compare_cluster_passes(Which w, int n, std::size_t samples, cu::Stream stream) {
  SCOPED_TRACE(std::string("cluster passes ") + name_of(w) + " n=" + std::to_string(n) +
               " samples=" + std::to_string(samples) + (sizeof(T) == 8 ? " f64" : " f32"));
  const std::size_t len = std::size_t{1} << n;
  const std::vector<T> input = random_values<T>(samples * len, 77u * n + samples + int(w));
  std::vector<std::vector<T>> out;
  for (const cu::LatticePasses passes : {cu::LatticePasses::Cluster, cu::LatticePasses::Columns}) {
    GuardedDeviceArray<T> dev(input);
    gpu_transform(w, dev.data(), n, samples, stream, passes);
    check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    out.push_back(dev.fetch());
  }
  ASSERT_EQ(0, std::memcmp(out[0].data(), out[1].data(), sizeof(T) * out[0].size()))
      << "cluster and column passes differ";
  if (sizeof(T) == 8) {
    std::vector<T> expect = input;
    cpu_transform(w, expect.data(), n, samples);
    ASSERT_EQ(0, std::memcmp(out[0].data(), expect.data(), sizeof(T) * expect.size()))
        << "cluster passes differ from the CPU";
  }
}

TEST(CudaTransforms, ClusterPassesEqualColumnPassesAndCpu) {
  REQUIRE_GPU();
  if (cu::lattice_pass_count(cu::LatticePasses::Cluster, 24, sizeof(float)) != 2)
    GTEST_SKIP() << "this device has no thread-block clusters with 128 KiB of shared memory";
  StreamOwner stream;
  for (Which w : {Which::Moebius, Which::MoebiusT, Which::Zeta, Which::ZetaT}) {
    compare_cluster_passes<double>(w, 21, 3, stream.get());
    compare_cluster_passes<float>(w, 21, 2, stream.get());
  }
  for (int n = 22; n <= 28; ++n) {
    EXPECT_EQ(cu::lattice_pass_count(cu::LatticePasses::Cluster, n, 8), 2);
    compare_cluster_passes<double>(Which::Moebius, n, 1, stream.get());  // 4 ranks at 28
  }
  for (int n : {22, 25, 28, 29}) {
    EXPECT_EQ(cu::lattice_pass_count(cu::LatticePasses::Cluster, n, 4), 2);
    compare_cluster_passes<float>(Which::ZetaT, n, 1, stream.get());
  }
  // where the column passes already take two, Cluster is the column passes
  EXPECT_EQ(cu::lattice_pass_count(cu::LatticePasses::Cluster, 20, 4), 2);
  EXPECT_EQ(cu::lattice_pass_count(cu::LatticePasses::Columns, 28, 4), 3);
  compare_cluster_passes<double>(Which::Moebius, 16, 5, stream.get());
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

// v in device memory (as a GPU study hands it over): the same outputs as from host memory,
// for both kernels.
TEST(CudaSgd, ValuesInDeviceMemoryGiveTheSameFit) {
  REQUIRE_GPU();
  const int n = 9;
  const std::size_t samples = 4, len = std::size_t{1} << n;
  std::mt19937_64 rng(91);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  std::vector<double> v(samples * len);
  for (double& x : v) x = u(rng);
  cu::DeviceBuffer d_v(v.size() * sizeof(double));
  cu::copy_bytes(d_v.as<double>(), v.data(), v.size() * sizeof(double));
  harsanyi::SgdOptions opt;
  opt.iters = 300;
  opt.trace_every = 50;
  for (const cu::SgdKernel kernel : {cu::SgdKernel::Fused, cu::SgdKernel::Staged}) {
    harsanyi::AndOrBatch<double> host, device;
    cu::fit_and_or_sgd_batch(v.data(), samples, n, opt, host, nullptr, kernel);
    cu::fit_and_or_sgd_batch(d_v.as<double>(), samples, n, opt, device, nullptr, kernel);
    harsanyi::testing::expect_same_outputs(device, host);
  }
}

// The masked forward's device helpers against their host counterparts: v(empty) subtracted
// bitwise, the first non-finite element found, host/device copies both ways.
TEST(CudaValues, SubtractFirstAndFirstNonfiniteMatchTheHost) {
  REQUIRE_GPU();
  const std::size_t rows = 3;
  const std::uint64_t len = 1000;
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(-4.0, 4.0);
  std::vector<double> x(rows * len);
  for (double& e : x) e = u(rng);
  cu::DeviceBuffer d(x.size() * sizeof(double));
  cu::copy_bytes(d.as<double>(), x.data(), x.size() * sizeof(double));
  EXPECT_EQ(cu::first_nonfinite(d.as<double>(), x.size(), nullptr), x.size());
  cu::subtract_first(d.as<double>(), rows, len, nullptr);
  std::vector<double> got(x.size(), std::nan(""));
  cu::copy_bytes(got.data(), d.as<double>(), got.size() * sizeof(double));
  for (std::size_t r = 0; r < rows; ++r) {
    const double v0 = x[r * len];
    for (std::uint64_t s = 0; s < len; ++s) x[r * len + s] -= v0;
  }
  EXPECT_EQ(got, x);
  const double bad[2] = {std::numeric_limits<double>::infinity(), std::nan("")};
  cu::copy_bytes(d.as<double>() + 2500, &bad[1], sizeof(double));
  cu::copy_bytes(d.as<double>() + 1700, &bad[0], sizeof(double));
  EXPECT_EQ(cu::first_nonfinite(d.as<double>(), x.size(), nullptr), 1700u);
  EXPECT_EQ(cu::first_nonfinite(d.as<double>(), 1700, nullptr), 1700u);  // none in [0, 1700)
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
