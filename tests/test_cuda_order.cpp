// The GPU per-order metrics (cuda/order_metrics.h) against the CPU functions of
// interaction_metrics.h, bitwise (skipped without a GPU). Their decomposition is replayed on the
// CPU in test_order_index.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_test_support.h"
#include "interaction_metrics.h"
#include "optimal_solver.h"
#include "order_metrics.h"
#include "order_test_support.h"

namespace cu = harsanyi::cuda;
using harsanyi::ThresholdReference;
using harsanyi::testing::same_bits;

namespace {

// A host vector's copy in device memory (empty: null).
template <class T>
class DeviceCopy {
 public:
  explicit DeviceCopy(const std::vector<T>& host) : buffer_(host.size() * sizeof(T)) {
    cu::copy_bytes(get(), host.data(), buffer_.bytes());
  }
  T* get() const { return buffer_.as<T>(); }
  std::vector<T> to_host() const {
    std::vector<T> host(buffer_.bytes() / sizeof(T));
    cu::copy_bytes(host.data(), get(), buffer_.bytes());
    return host;
  }

 private:
  cu::DeviceBuffer buffer_;
};

// Interaction-like rows of 2^n elements with exact zeros of both signs, some values exactly
// ±0.5 and, with `nan`, a NaN now and then (never salient, skipped by the max). No NaN where
// arithmetic would carry it into a result (the folded subsets, |S| <= 1): the GPU returns
// canonical NaNs, whose bits may differ from the host's.
template <class T>
std::vector<T> random_rows(std::size_t count, int n, std::uint64_t seed, bool nan) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<T> x(count);
  const T special[] = {T(0), -T(0), T(0.5), T(-0.5), std::numeric_limits<T>::quiet_NaN()};
  const std::uint64_t mask = (std::uint64_t{1} << n) - 1;
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t kind = rng() % 32;
    const bool allowed = kind < 4 || (kind == 4 && nan && __builtin_popcountll(i & mask) > 1);
    x[i] = allowed ? special[kind] : static_cast<T>(normal(rng) * std::exp(2 * normal(rng)));
  }
  return x;
}

struct Case {
  int n;
  std::size_t samples;
  bool with_or, fold;
  ThresholdReference ref;
  double tau_rel;
};

template <class T>
void expect_gpu_matches_cpu(const Case& c, std::uint64_t seed) {
  const std::size_t len = std::size_t{1} << c.n, K = static_cast<std::size_t>(c.n) + 1;
  std::vector<T> a = random_rows<T>(c.samples * len, c.n, seed, true);
  std::vector<T> o =
      c.with_or ? random_rows<T>(c.samples * len, c.n, seed + 1, true) : std::vector<T>{};
  const std::vector<T> v = random_rows<T>(c.samples * len, c.n, seed + 2, false);
  DeviceCopy<T> d_a(a), d_o(o), d_v(v);

  cu::OrderRows gpu;  // poisoned: every entry must be overwritten
  const double poison = std::numeric_limits<double>::quiet_NaN();
  gpu.threshold.assign(c.samples, poison);
  gpu.and_pos.assign(c.samples * K, poison);
  gpu.and_neg.assign(c.samples * K, poison);
  gpu.and_count.assign(c.samples * K, -1);
  gpu.or_pos.assign(c.samples * K, poison);
  gpu.or_neg.assign(c.samples * K, poison);
  gpu.or_count.assign(c.samples * K, -1);
  cu::order_metrics_batch(d_a.get(), d_o.get(), d_v.get(), c.samples, c.n, c.tau_rel, c.ref, c.fold,
                          gpu, nullptr);

  const cu::OrderRows cpu =
      harsanyi::order_rows(a.data(), harsanyi::testing::data_or_null(o), v.data(), c.samples, c.n,
                           c.tau_rel, c.ref, c.fold);

  const std::string what =
      std::string(sizeof(T) == 4 ? "float" : "double") + " n = " + std::to_string(c.n) +
      " samples = " + std::to_string(c.samples) + (c.with_or ? " and-or" : " and") +
      (c.fold ? " fold" : "") + (c.ref == ThresholdReference::ValueRange ? " vrange" : " max");
  EXPECT_TRUE(same_bits(d_a.to_host(), a)) << "folded I_and, " << what;
  EXPECT_TRUE(same_bits(d_o.to_host(), o)) << "folded I_or, " << what;
  harsanyi::testing::expect_same_rows(gpu, cpu, what);
}

}  // namespace

TEST(CudaOrder, MetricsEqualTheCpuBitwise) {
  REQUIRE_GPU();
  for (int n : {0, 1, 2, 3, 4, 5, 7, 9, 10, 11, 12, 13, 16, 17, 18, 20, 22}) {
    const std::size_t many = n <= 12 ? 37 : n <= 18 ? 5 : 2;  // partial last tiles for n < 12
    const std::uint64_t seed = 1000 + 10 * static_cast<std::uint64_t>(n);
    expect_gpu_matches_cpu<double>({n, many, true, true, ThresholdReference::MaxInteraction, 0.05},
                                   seed);
    expect_gpu_matches_cpu<float>({n, many, true, true, ThresholdReference::MaxInteraction, 0.05},
                                  seed + 3);
    expect_gpu_matches_cpu<double>({n, 1, true, false, ThresholdReference::ValueRange, 0.2},
                                   seed + 6);
    expect_gpu_matches_cpu<float>({n, 3, false, false, ThresholdReference::ValueRange, 0.1},
                                  seed + 9);
    expect_gpu_matches_cpu<double>({n, 2, false, true, ThresholdReference::MaxInteraction, 0.0},
                                   seed + 12);
  }
}

TEST(CudaOrder, EmptyBatchAndBadArguments) {
  REQUIRE_GPU();
  cu::OrderRows out;
  out.threshold.assign(3, 1.0);
  cu::order_metrics_batch<double>(nullptr, nullptr, nullptr, 0, 5, 0.05,
                                  ThresholdReference::MaxInteraction, true, out, nullptr);
  EXPECT_TRUE(out.threshold.empty() && out.and_pos.empty() && out.or_pos.empty());
  EXPECT_THROW(
      cu::order_metrics_batch<double>(nullptr, nullptr, nullptr, 1, 5, 0.05,
                                      ThresholdReference::MaxInteraction, true, out, nullptr),
      std::invalid_argument);
  EXPECT_THROW(
      cu::order_metrics_batch<float>(nullptr, nullptr, nullptr, 0, 33, 0.05,
                                     ThresholdReference::MaxInteraction, true, out, nullptr),
      std::invalid_argument);
}

// The study's use (src/study.cpp, solve): a GPU fit whose epilogue computes the metrics on the
// device rows. The rows equal the host metrics of the same fit without an epilogue, the
// interactions come back folded (or not at all), p and q not at all; loss and trace unchanged.
TEST(CudaOrder, FitEpilogueEqualsTheHostMetricsOfThePlainFit) {
  REQUIRE_GPU();
  const int n = 9;
  const std::size_t samples = 3, len = std::size_t{1} << n;
  std::vector<double> v = random_rows<double>(samples * len, n, 123, false);
  harsanyi::SgdOptions sgd;
  sgd.iters = 200;
  sgd.trace_every = 50;
  harsanyi::OptimalOptions optimal;
  optimal.max_iters = 2000;
  for (const bool use_optimal : {false, true}) {
    for (const bool copy_interactions : {true, false}) {
      SCOPED_TRACE(std::string(use_optimal ? "optimal" : "sgd") +
                   (copy_interactions ? ", I copied" : ", I not copied"));
      harsanyi::AndOrBatch<double> plain, with;
      cu::OrderRows rows;
      cu::DeviceEpilogue<double> epilogue;
      epilogue.copy_interactions = copy_interactions;
      epilogue.copy_pq = false;
      epilogue.on_device = [&](double* a, double* o, const double*, cu::Stream stream) {
        cu::order_metrics_batch<double>(a, o, nullptr, samples, n, 0.05,
                                        ThresholdReference::MaxInteraction, true, rows, stream);
      };
      if (use_optimal) {
        cu::fit_and_or_optimal_batch(v.data(), samples, n, optimal, plain);
        cu::fit_and_or_optimal_batch(v.data(), samples, n, optimal, with, nullptr,
                                     cu::Launch::Graph, &epilogue);
      } else {
        cu::fit_and_or_sgd_batch(v.data(), samples, n, sgd, plain);
        cu::fit_and_or_sgd_batch(v.data(), samples, n, sgd, with, nullptr, cu::SgdKernel::Auto,
                                 &epilogue);
      }
      std::vector<double> a(plain.and_.begin(), plain.and_.end()),
          o(plain.or_.begin(), plain.or_.end());
      const cu::OrderRows cpu = harsanyi::order_rows(a.data(), o.data(), v.data(), samples, n,
                                                      0.05, ThresholdReference::MaxInteraction, true);
      harsanyi::testing::expect_same_rows(rows, cpu);
      EXPECT_TRUE(same_bits(with.loss, plain.loss));
      EXPECT_TRUE(same_bits(with.trace, plain.trace));
      EXPECT_TRUE(with.p.empty() && with.q.empty());
      if (copy_interactions) {
        EXPECT_TRUE(same_bits(std::vector<double>(with.and_.begin(), with.and_.end()), a));
        EXPECT_TRUE(same_bits(std::vector<double>(with.or_.begin(), with.or_.end()), o));
      } else {
        EXPECT_TRUE(with.and_.empty() && with.or_.empty());
      }
    }
  }
}
