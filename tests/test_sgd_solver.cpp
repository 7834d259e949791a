// The sgd protocol against the lab's own float64 trajectory (tests/data/sgd_n8_s1.json).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "interaction_metrics.h"
#include "lattice_transforms.h"
#include "sgd_solver.h"

#ifndef HARSANYI_TEST_DATA
#error "HARSANYI_TEST_DATA must point at tests/data"
#endif

using namespace harsanyi;

namespace {

nlohmann::json load_reference() {
  std::ifstream in(std::string(HARSANYI_TEST_DATA) + "/sgd_n8_s1.json");
  if (!in) throw std::runtime_error("cannot open the reference data");
  return nlohmann::json::parse(in);
}

double rel(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(b), 1e-300); }

}  // namespace

TEST(SgdReference, HarsanyiAndMatchesReference) {
  const auto ref = load_reference();
  const int n = ref["n"];
  std::vector<double> v = ref["values"];
  const std::vector<double> expect = ref["harsanyi_and"];
  moebius_transform(v.data(), n);
  for (std::size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], expect[i], 1e-12) << "S = " << i;
}

TEST(SgdReference, LearningRateIsLogspace) {
  EXPECT_DOUBLE_EQ(sgd_learning_rate(1e-5, 20000, 0), 1e-5);
  EXPECT_NEAR(sgd_learning_rate(1e-5, 20000, 19999), 1e-6, 1e-20);
  EXPECT_NEAR(sgd_learning_rate(1e-5, 3, 1), std::pow(10.0, -5.5), 1e-20);
}

TEST(SgdReference, TrajectoryMatchesLabImplementation) {
  const auto ref = load_reference();
  const int n = ref["n"];
  const std::vector<double> v = ref["values"];
  SgdOptions opt;
  opt.iters = ref["solver"]["niter"];
  opt.lr = ref["solver"]["lr"];
  opt.momentum = ref["solver"]["momentum"];
  opt.qthres = ref["solver"]["qthres"];
  opt.trace_every = 1;
  const std::size_t len = v.size();
  std::vector<double> a(len), o(len), p(len), q(len), trace(opt.iters);
  const double final_loss = fit_and_or_sgd(v.data(), n, opt, a.data(), o.data(), p.data(),
                                           q.data(), trace.data());
  const std::vector<double> first = ref["loss_first_200"];
  const std::vector<double> every = ref["loss_every_1000"];
  double worst = 0;
  for (std::size_t t = 0; t < first.size(); ++t) {
    EXPECT_LT(rel(trace[t], first[t]), 1e-9) << "iteration " << t;
    worst = std::max(worst, rel(trace[t], first[t]));
  }
  for (std::size_t k = 0; k < every.size(); ++k) {
    EXPECT_LT(rel(trace[k * 1000], every[k]), 1e-9) << "iteration " << k * 1000;
    worst = std::max(worst, rel(trace[k * 1000], every[k]));
  }
  std::printf("largest relative deviation from the lab's trajectory: %.3g (final loss %.15g)\n",
              worst, final_loss);
  RecordProperty("max_relative_deviation", std::to_string(worst));
  EXPECT_LT(rel(final_loss, ref["loss_final"].get<double>()), 1e-9);
  EXPECT_EQ(final_loss, trace.back());

  // q stays within its bound, and universal matching holds for the fitted p and q
  const double bound = opt.qthres * std::fabs(v[len - 1] - v[0]);
  EXPECT_NEAR(bound, ref["solver"]["qbound"].get<double>(), 1e-15);
  std::vector<double> sa = a, so = o;
  zeta_transform(sa.data(), n);
  or_synthesis(so.data(), n);
  for (std::size_t i = 0; i < len; ++i) {
    EXPECT_LE(std::fabs(q[i]), bound);
    EXPECT_NEAR(sa[i] + so[i], v[i] + q[i], 1e-12) << "S = " << i;
  }
  // the reported loss is the L1 norm of the returned interactions
  EXPECT_DOUBLE_EQ(final_loss, sum_abs(a.data(), len) + sum_abs(o.data(), len));
  // the papers' protocol stops well above the LP optimum (DESIGN §2.1)
  EXPECT_GT(final_loss, ref["l1_optimum"].get<double>());
}

TEST(SgdSolver, BatchEqualsSingleSampleFitsAndIsThreadIndependent) {
  const int n = 9;
  const std::size_t samples = 5, len = std::size_t{1} << n;
  std::vector<double> v(samples * len);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.37 * i) + 0.1 * (i % 7);
  SgdOptions opt;
  opt.iters = 300;
  opt.lr = 1e-3;
  opt.trace_every = 50;
  AndOrBatch<double> two, one;
  omp_set_num_threads(2);
  fit_and_or_sgd_batch(v.data(), samples, n, opt, two);
  omp_set_num_threads(1);
  fit_and_or_sgd_batch(v.data(), samples, n, opt, one);
  omp_set_num_threads(2);
  EXPECT_EQ(two.and_, one.and_);
  EXPECT_EQ(two.or_, one.or_);
  EXPECT_EQ(two.p, one.p);
  EXPECT_EQ(two.q, one.q);
  EXPECT_EQ(two.loss, one.loss);
  ASSERT_EQ(two.trace.size(), samples * 6);
  EXPECT_EQ(two.trace, one.trace);
  std::vector<double> a(len), o(len), p(len), q(len);
  const double l = fit_and_or_sgd(v.data() + 3 * len, n, opt, a.data(), o.data(), p.data(), q.data(), nullptr);
  EXPECT_EQ(l, two.loss[3]);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), two.and_.begin() + 3 * len));
}

TEST(SgdSolver, LargeSampleThreadedInsideEqualsSerial) {
  // n = 17 exceeds the elementwise-threading threshold: threads work inside the fit.
  const int n = 17;
  const std::size_t len = std::size_t{1} << n;
  std::vector<double> v(len);
  for (std::size_t i = 0; i < len; ++i) v[i] = std::cos(0.011 * i) * (1 + (i % 3));
  SgdOptions opt;
  opt.iters = 4;
  AndOrBatch<double> par, ser;
  omp_set_num_threads(2);
  fit_and_or_sgd_batch(v.data(), 1, n, opt, par);
  omp_set_num_threads(1);
  fit_and_or_sgd_batch(v.data(), 1, n, opt, ser);
  omp_set_num_threads(2);
  EXPECT_EQ(par.and_, ser.and_);
  EXPECT_EQ(par.q, ser.q);
  EXPECT_EQ(par.loss, ser.loss);
}

TEST(SgdSolver, Float32FollowsFloat64) {
  const auto ref = load_reference();
  const int n = ref["n"];
  const std::vector<double> v = ref["values"];
  std::vector<float> vf(v.begin(), v.end());
  SgdOptions opt;
  opt.iters = 2000;
  opt.qthres = ref["solver"]["qthres"];
  AndOrBatch<double> d;
  AndOrBatch<float> f;
  fit_and_or_sgd_batch(v.data(), 1, n, opt, d);
  fit_and_or_sgd_batch(vf.data(), 1, n, opt, f);
  EXPECT_LT(rel(f.loss[0], d.loss[0]), 1e-3);
}
