// The optimal solver on the GPU (cuda/optimal_kernels.cu): the index and control logic its
// kernels share with the CPU, replayed on the CPU (always runs), and the GPU fit against the CPU
// fit (skipped without a GPU): float64 bitwise, float32 to the solver's tolerance.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_backend.h"
#include "cuda_test_support.h"
#include "optimal_element_step.h"
#include "optimal_solver.h"
#include "planted_game.h"
#include "progress.h"

#ifndef HARSANYI_TEST_DATA
#error "HARSANYI_TEST_DATA must point at tests/data"
#endif

namespace cu = harsanyi::cuda;
namespace st = harsanyi::optimal_step;

namespace {

// ---------------------------------------------------------------------------------------------
// CPU replay of the kernels' logic

// The chunk-sum kernel (term_sums_kernel) runs one warp per global chunk c of chunk_len =
// sum_chunk_length(n) elements; lane l reads slot c·chunk_len + lane_element(l, m) at its steps
// m < lane_steps(chunk_len, l), and the dual kernel stores element k at slot k. Together they
// must read every element of every chunk exactly once, element j of the chunk by lane j % 32,
// each lane in increasing j, within the chunk's row.
TEST(CudaOptimalIndex, WarpLanesReadEachChunkElementOnceInOrder) {
  for (int n = 0; n <= 14; ++n)
    for (std::uint64_t samples : {1u, 3u}) {
      SCOPED_TRACE("n=" + std::to_string(n) + " samples=" + std::to_string(samples));
      const std::uint64_t len = std::uint64_t{1} << n, total = samples * len;
      const std::uint64_t cl = st::sum_chunk_length(n);
      ASSERT_EQ(len % cl, 0u);
      ASSERT_LE(cl, st::kSumChunk);
      const std::uint64_t chunks = total / cl;
      std::vector<int> reads(total, 0);
      for (std::uint64_t c = 0; c < chunks; ++c) {
        const std::uint64_t base = c * cl;
        ASSERT_EQ(base >> n, (base + cl - 1) >> n) << "a chunk crosses rows";
        for (unsigned l = 0; l < static_cast<unsigned>(st::kSumLanes); ++l) {
          const std::uint64_t steps = st::lane_steps(cl, l);
          std::uint64_t prev = 0;
          for (std::uint64_t m = 0; m < steps; ++m) {
            const std::uint64_t j = st::lane_element(l, m);
            ASSERT_LT(j, cl) << "chunk " << c << " lane " << l << " step " << m;
            ASSERT_EQ(j % st::kSumLanes, l);
            if (m > 0) {
              ASSERT_GT(j, prev) << "lane " << l << " out of order";
            }
            prev = j;
            ++reads[base + j];
          }
          // the lane's next step would leave the chunk
          ASSERT_GE(st::lane_element(l, steps), cl);
        }
      }
      for (std::uint64_t k = 0; k < total; ++k) ASSERT_EQ(reads[k], 1) << "element " << k;
    }
}

// Random terms over many magnitudes and both signs, so that a change of the order shows.
std::vector<double> random_terms(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::uniform_int_distribution<int> e(-30, 30);
  std::vector<double> t(count);
  for (auto& x : t) x = std::ldexp(u(rng), e(rng));
  return t;
}

// term_sums_kernel and control_kernel replayed on the CPU with a literal warp (32 lanes, and
// __shfl_down_sync's semantics: lane l reads lane l + off, a lane whose source is outside the
// warp reads its own value) equal the CPU solver's lane_tree_sums bitwise, rows of every length
// from 1 (31 idle lanes) to four chunks.
TEST(CudaOptimalIndex, WarpTreeReplayEqualsCpuSums) {
  constexpr unsigned kWarp = 32;
  ASSERT_EQ(st::kSumLanes, static_cast<int>(kWarp));
  for (int n = 0; n <= 14; ++n) {
    SCOPED_TRACE("n=" + std::to_string(n));
    const std::uint64_t samples = 3, len = std::uint64_t{1} << n, total = samples * len;
    const std::uint64_t cl = st::sum_chunk_length(n), cpr = len / cl, chunks = total / cl;
    std::vector<double> term[3];
    for (int k = 0; k < 3; ++k) term[k] = random_terms(total, 100 * n + k);
    // term_sums_kernel: part[3c + k]
    std::vector<double> part(3 * chunks);
    for (std::uint64_t c = 0; c < chunks; ++c)
      for (int k = 0; k < 3; ++k) {
        double v[kWarp];
        for (unsigned l = 0; l < kWarp; ++l) {
          v[l] = 0.0;
          for (std::uint64_t m = 0; m < st::lane_steps(cl, l); ++m)
            v[l] += term[k][c * cl + st::lane_element(l, m)];
        }
        for (unsigned off = 16; off > 0; off /= 2) {
          double shfl[kWarp];  // every lane's __shfl_down_sync(~0u, v, off), read at once
          for (unsigned l = 0; l < kWarp; ++l) shfl[l] = l + off < kWarp ? v[l + off] : v[l];
          for (unsigned l = 0; l < kWarp; ++l) v[l] = v[l] + shfl[l];
        }
        part[3 * c + k] = v[0];  // lane 0 writes
      }
    for (std::uint64_t s = 0; s < samples; ++s) {
      // control_kernel: the chunks of the sample in chunk order
      double t[3] = {0.0, 0.0, 0.0};
      for (std::uint64_t c = 0; c < cpr; ++c)
        for (int k = 0; k < 3; ++k) t[k] += part[3 * (s * cpr + c) + k];
      for (bool par : {false, true}) {
        const auto cpu = st::lane_tree_sums<3>(len, par, [&](std::uint64_t i, st::LaneAcc<3> acc) {
          for (int k = 0; k < 3; ++k) acc[k] += term[k][s * len + i];
        });
        for (int k = 0; k < 3; ++k)
          EXPECT_EQ(cpu[k], t[k]) << "sample " << s << " sum " << k << " par " << par;
      }
    }
  }
}

// The restart rule the control kernel and the CPU solver share, on a scripted residual series.
TEST(CudaOptimalIndex, RestartRuleOnAScriptedRun) {
  st::RestartControl c;
  c.omega = 0.5;
  // iteration 1: r = 1 becomes r0; no restart (k = 0 >= 0.36 is false)
  EXPECT_FALSE(st::restart_control(c, 1, 1.0, 1.0, 1.0));
  EXPECT_EQ(c.r0, 1.0);
  EXPECT_EQ(c.k, 1);
  // r = 0.9 > 0.8 r0: no restart
  EXPECT_FALSE(st::restart_control(c, 10, 0.81, 1.0, 1.0));
  EXPECT_EQ(c.k, 2);
  // r = 0.7 <= 0.8 r0 but smaller than before: no restart
  EXPECT_FALSE(st::restart_control(c, 11, 0.49, 1.0, 1.0));
  // r = 0.75 <= 0.8 r0 and larger than the previous 0.7: restart; ω = sqrt(dl/dx·ω)
  EXPECT_TRUE(st::restart_control(c, 12, 0.5625, 4.0, 16.0));
  EXPECT_EQ(c.omega, std::sqrt(2.0 / 1.0 * 0.5));
  EXPECT_EQ(c.k, 0);
  EXPECT_LT(c.r0, 0.0);
  EXPECT_FALSE(c.have_prev);
  // next residual becomes r0; a drop to 0.2·r0 restarts; tiny distances keep ω
  EXPECT_FALSE(st::restart_control(c, 13, 4.0, 1.0, 1.0));
  EXPECT_TRUE(st::restart_control(c, 14, 0.16, 1e-30, 1.0));
  EXPECT_EQ(c.omega, 1.0);
  // the run since the restart reaching 36% of all iterations restarts
  EXPECT_FALSE(st::restart_control(c, 100, 1.0, 1.0, 1.0));  // r0, k = 1
  for (int i = 0; i < 35; ++i) st::restart_control(c, 100, 1.0, 1.0, 1.0);
  EXPECT_EQ(c.k, 36);
  EXPECT_TRUE(st::restart_control(c, 100, 1.0, 1.0, 1.0));
  EXPECT_EQ(st::halpern_weight<double>(3), 0.75);
}

TEST(CudaOptimalHost, DeviceBytesPerSample) {
  for (int n : {0, 4, 12, 20}) {
    const std::size_t len = std::size_t{1} << n;
    EXPECT_GE(cu::optimal_device_bytes_per_sample(n, 8), 22 * len * 8);
    EXPECT_GE(cu::optimal_device_bytes_per_sample(n, 4), 19 * len * 4 + 3 * len * 8);
    EXPECT_LT(cu::optimal_device_bytes_per_sample(n, 8), 23 * len * 8 + 512);
  }
}

// ---------------------------------------------------------------------------------------------
// GPU tests

// Random games scaled by `scale`, with a planted game in the first sample (its optimum is sparse,
// so the crossover has work to do).
template <class T> std::vector<T> games(int n, std::size_t samples, std::uint64_t seed) {
  const std::size_t len = std::size_t{1} << n;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-3.0, 3.0);
  std::vector<T> v(samples * len);
  for (auto& x : v) x = static_cast<T>(u(rng));
  if (n >= 2) {
    const std::vector<double> planted =
        harsanyi::random_planted_game(n, 3, std::min(n, 3), seed).values();
    for (std::size_t i = 0; i < len; ++i) v[i] = static_cast<T>(planted[i]);
  }
  return v;
}

// Output batches filled with NaN, so an element the fit does not write shows.
template <class T> void poison(harsanyi::AndOrBatch<T>& out, std::size_t samples, int n, int tl) {
  out.resize(samples, n, tl);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (auto* a : {&out.and_, &out.or_, &out.p, &out.q}) std::fill(a->begin(), a->end(), nan);
  std::fill(out.loss.begin(), out.loss.end(), std::nan(""));
  std::fill(out.trace.begin(), out.trace.end(), std::nan(""));
}

harsanyi::OptimalOptions test_options() {
  harsanyi::OptimalOptions opt;
  opt.max_iters = 4000;
  opt.check_every = 32;
  opt.trace_every = 16;
  return opt;
}

void expect_gpu_equals_cpu(int n, std::size_t samples, const harsanyi::OptimalOptions& opt,
                           std::uint64_t seed) {
  SCOPED_TRACE("n=" + std::to_string(n) + " samples=" + std::to_string(samples));
  const std::vector<double> v = games<double>(n, samples, seed);
  const int tl = harsanyi::optimal_trace_length(opt);
  harsanyi::AndOrBatch<double> cpu, gpu;
  harsanyi::fit_and_or_optimal_batch(v.data(), samples, n, opt, cpu);
  poison(gpu, samples, n, tl);
  harsanyi::Progress progress("test", samples, "samples", /*enabled=*/false);
  cu::fit_and_or_optimal_batch(v.data(), samples, n, opt, gpu, &progress);
  EXPECT_EQ(progress.done(), samples);
  harsanyi::testing::expect_same_outputs(gpu, cpu);
  for (std::size_t s = 0; s < samples; ++s) {
    EXPECT_TRUE(std::isfinite(gpu.loss[s])) << "sample " << s;
    EXPECT_LE(gpu.bound[s], gpu.loss[s] * (1 + 1e-12) + 1e-12) << "sample " << s;
  }
}

TEST(CudaOptimal, Float64EqualsCpuBitwise) {
  REQUIRE_GPU();
  const harsanyi::OptimalOptions opt = test_options();
  for (int n : {0, 1, 2, 5, 8, 10}) expect_gpu_equals_cpu(n, 6, opt, 40 + n);
}

// v in device memory (as a GPU study hands it over): the same outputs as from host memory.
TEST(CudaOptimal, ValuesInDeviceMemoryGiveTheSameFit) {
  REQUIRE_GPU();
  const harsanyi::OptimalOptions opt = test_options();
  const int n = 8;
  const std::size_t samples = 5;
  const std::vector<double> v = games<double>(n, samples, 77);
  cu::DeviceBuffer d_v(v.size() * sizeof(double));
  cu::copy_bytes(d_v.as<double>(), v.data(), v.size() * sizeof(double));
  ASSERT_TRUE(cu::is_device_pointer(d_v.as<double>()));
  ASSERT_FALSE(cu::is_device_pointer(v.data()));
  const int tl = harsanyi::optimal_trace_length(opt);
  harsanyi::AndOrBatch<double> host, device;
  poison(host, samples, n, tl);
  poison(device, samples, n, tl);
  cu::fit_and_or_optimal_batch(v.data(), samples, n, opt, host);
  cu::fit_and_or_optimal_batch(d_v.as<double>(), samples, n, opt, device);
  harsanyi::testing::expect_same_outputs(device, host);
}

TEST(CudaOptimal, RowsOfSeveralChunksAndUnconvergedSamples) {
  REQUIRE_GPU();
  harsanyi::OptimalOptions opt = test_options();
  opt.max_iters = 300;  // n = 13 and 14: two and four chunks per row; most stop at the cap
  opt.tol = 1e-9;
  expect_gpu_equals_cpu(13, 3, opt, 7);
  expect_gpu_equals_cpu(14, 2, opt, 8);
  opt.max_basis = 0;  // no crossover: the PDHG alone
  expect_gpu_equals_cpu(9, 4, opt, 9);
}

// The iteration replayed as a CUDA graph and launched kernel by kernel: the same bits.
TEST(CudaOptimal, GraphEqualsDirectLaunches) {
  REQUIRE_GPU();
  harsanyi::OptimalOptions opt = test_options();
  opt.max_iters = 700;
  for (int n : {3, 9, 13}) {
    SCOPED_TRACE("n=" + std::to_string(n));
    const std::size_t samples = 4;
    const std::vector<double> v = games<double>(n, samples, 60 + n);
    harsanyi::AndOrBatch<double> graph, direct;
    cu::fit_and_or_optimal_batch(v.data(), samples, n, opt, graph, nullptr, cu::Launch::Graph);
    cu::fit_and_or_optimal_batch(v.data(), samples, n, opt, direct, nullptr, cu::Launch::Direct);
    harsanyi::testing::expect_same_outputs(graph, direct);
  }
}

// The time split (cuda::OptimalTimes) makes the fit wait at each check but changes nothing it
// computes; its counts are the batch's.
TEST(CudaOptimal, TimeSplitLeavesTheFitUnchanged) {
  REQUIRE_GPU();
  harsanyi::OptimalOptions opt = test_options();
  opt.max_iters = 700;
  opt.trace_every = 0;  // checks only every check_every iterations and at the last
  const int n = 9;
  const std::size_t samples = 4;
  const std::vector<double> v = games<double>(n, samples, 77);
  harsanyi::AndOrBatch<double> plain, split;
  cu::OptimalTimes times;
  times.checks = -5;  // overwritten
  cu::fit_and_or_optimal_batch(v.data(), samples, n, opt, plain);
  cu::fit_and_or_optimal_batch<double>(v.data(), samples, n, opt, split, nullptr,
                                       cu::Launch::Graph, nullptr, &times);
  harsanyi::testing::expect_same_outputs(plain, split);
  std::int64_t most = 0;
  for (std::size_t s = 0; s < samples; ++s)
    most = std::max<std::int64_t>(most, split.iterations[s]);
  EXPECT_EQ(times.iterations, most);
  EXPECT_EQ(times.checks, (most + opt.check_every - 1) / opt.check_every);
  EXPECT_GT(times.iterate_s, 0.0);
  EXPECT_GT(times.check_s, 0.0);
  EXPECT_GE(times.crossover_s, 0.0);
  EXPECT_GE(times.other_s, 0.0);
  EXPECT_GE(times.crossovers, 0);
}

TEST(CudaOptimal, ReferenceCaseReachesTheLpOptimum) {
  REQUIRE_GPU();
  std::ifstream in(std::string(HARSANYI_TEST_DATA) + "/sgd_n8_s1.json");
  ASSERT_TRUE(in.good());
  const auto ref = nlohmann::json::parse(in);
  const int n = ref["n"];
  const std::vector<double> v = ref["values"];
  const double optimum = ref["l1_optimum"];
  harsanyi::OptimalOptions opt;
  opt.qthres = ref["solver"]["qthres"];
  opt.tol = 1e-6;
  harsanyi::AndOrBatch<double> gpu, cpu;
  cu::fit_and_or_optimal_batch(v.data(), 1, n, opt, gpu);
  harsanyi::fit_and_or_optimal_batch(v.data(), 1, n, opt, cpu);
  EXPECT_NEAR(gpu.loss[0], optimum, 1e-5 * optimum);
  EXPECT_LE(gpu.bound[0], optimum + 1e-9);
  EXPECT_LE(gpu.loss[0] - gpu.bound[0], opt.tol * gpu.loss[0]);
  EXPECT_EQ(gpu.loss[0], cpu.loss[0]);
  EXPECT_EQ(gpu.iterations[0], cpu.iterations[0]);
}

TEST(CudaOptimal, Float32ReachesTheCpuOptimum) {
  REQUIRE_GPU();
  const int n = 8;
  const std::size_t samples = 5;
  const std::vector<float> v = games<float>(n, samples, 3);
  harsanyi::OptimalOptions opt = test_options();
  opt.max_iters = 20000;
  harsanyi::AndOrBatch<float> cpu, gpu;
  harsanyi::fit_and_or_optimal_batch(v.data(), samples, n, opt, cpu);
  poison(gpu, samples, n, harsanyi::optimal_trace_length(opt));
  cu::fit_and_or_optimal_batch(v.data(), samples, n, opt, gpu);
  for (std::size_t s = 0; s < samples; ++s) {
    SCOPED_TRACE("sample " + std::to_string(s));
    EXPECT_LE(gpu.loss[s] - gpu.bound[s], 2 * opt.tol * gpu.loss[s]);
    EXPECT_NEAR(gpu.loss[s], cpu.loss[s], 2 * opt.tol * cpu.loss[s]);
  }
  for (float x : gpu.and_) ASSERT_TRUE(std::isfinite(x));
  for (float x : gpu.q) ASSERT_TRUE(std::isfinite(x));
}

TEST(CudaOptimal, RefusesABatchThatDoesNotFit) {
  REQUIRE_GPU();
  const double dummy = 0.0;  // never read: the size check comes first
  harsanyi::OptimalOptions opt;
  harsanyi::AndOrBatch<double> out;
  EXPECT_THROW(cu::fit_and_or_optimal_batch(&dummy, std::size_t{1} << 20, 24, opt, out),
               std::runtime_error);
  EXPECT_TRUE(out.loss.empty());
  opt.tol = 0;
  EXPECT_THROW(cu::fit_and_or_optimal_batch(&dummy, 1, 4, opt, out), std::invalid_argument);
}

}  // namespace
