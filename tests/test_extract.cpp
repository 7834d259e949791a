// harsanyi extract end to end through the library: HDF5 in, HDF5 out, read back and checked.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "extraction.h"
#include "h5_wrappers.h"
#include "lattice_transforms.h"
#include "planted_game.h"

using namespace harsanyi;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("harsanyi_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& f) const { return (path / f).string(); }
};

template <class T>
void write_values(const std::string& path, const std::vector<T>& v, std::size_t samples, int n) {
  h5::File f = h5::File::create(path);
  f.create_dataset("/values", h5::dtype_of<T>(), {samples, hsize_t{1} << n});
  f.write_rows("/values", 0, samples, v.data());
}

std::vector<double> planted_batch(int n, std::size_t samples, bool and_only) {
  std::vector<double> all;
  for (std::size_t s = 0; s < samples; ++s) {
    PlantedGame g = random_planted_game(n, 5, 3, 77 + s);
    if (and_only) g.or_terms.clear();
    auto v = g.values();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

}  // namespace

TEST(Extract, AndModeRecoversPlantedCoefficientsAndMetrics) {
  TempDir dir;
  const int n = 7;
  const std::size_t S = 3, len = 128;
  const auto v = planted_batch(n, S, /*and_only=*/true);
  write_values(dir / "in.h5", v, S, n);
  ExtractOptions opt;
  opt.values_path = dir / "in.h5";
  opt.out_path = dir / "out.h5";
  opt.mode = "and";
  opt.progress = false;
  run_extract(opt);
  h5::File out = h5::File::open_read(opt.out_path);
  EXPECT_EQ(out.string_attribute("schema"), "harsanyi/1");
  EXPECT_EQ(out.string_attribute("subset_index"), "bit i = player i");
  EXPECT_EQ(out.double_attribute("n_players"), n);
  EXPECT_FALSE(out.exists("/interactions/or"));
  EXPECT_FALSE(out.exists("/extraction/p"));
  const auto I = out.read_all<double>("/interactions/and");
  ASSERT_EQ(I.size(), S * len);
  for (std::size_t s = 0; s < S; ++s) {
    PlantedGame g = random_planted_game(n, 5, 3, 77 + s);
    std::vector<double> expect(len, 0.0);
    expect[0] = g.base;
    for (const auto& t : g.and_terms) expect[t.set] += t.coefficient;
    for (std::size_t i = 0; i < len; ++i) ASSERT_EQ(I[s * len + i], expect[i]) << s << "," << i;
    // per-order sums of the salient coefficients, recomputed here
    const auto pos = out.read_all<double>("/orders/and_pos");
    const auto cnt = out.read_all<std::int32_t>("/orders/and_count");
    const auto thr = out.read_all<double>("/extraction/threshold");
    double max_abs = 0;
    for (double x : expect) max_abs = std::max(max_abs, std::fabs(x));
    EXPECT_DOUBLE_EQ(thr[s], 0.05 * max_abs);
    std::vector<double> p(n + 1, 0.0);
    std::vector<int> c(n + 1, 0);
    for (std::size_t i = 0; i < len; ++i)
      if (std::fabs(expect[i]) > thr[s]) {
        if (expect[i] > 0) p[__builtin_popcountll(i)] += expect[i];
        ++c[__builtin_popcountll(i)];
      }
    for (int k = 0; k <= n; ++k) {
      EXPECT_DOUBLE_EQ(pos[s * (n + 1) + k], p[k]);
      EXPECT_EQ(cnt[s * (n + 1) + k], c[k]);
    }
  }
}

TEST(Extract, AndOrModeWritesContractAndUniversalMatchingHolds) {
  TempDir dir;
  const int n = 6;
  const std::size_t S = 4, len = 64;
  auto v = planted_batch(n, S, false);
  std::vector<float> vf(v.begin(), v.end());  // float32 input is accepted too
  write_values(dir / "in.h5", vf, S, n);
  ExtractOptions opt;
  opt.values_path = dir / "in.h5";
  opt.out_path = dir / "out.h5";
  opt.sgd.iters = 500;
  opt.sgd.lr = 1e-3;
  opt.sgd.trace_every = 100;
  opt.progress = false;
  opt.fold = true;
  run_extract(opt);
  EXPECT_FALSE(fs::exists(opt.out_path + ".part"));
  h5::File out = h5::File::open_read(opt.out_path);
  for (const char* name : {"/interactions/and", "/interactions/or", "/extraction/p", "/extraction/q"})
    EXPECT_EQ(out.info(name).dims, (std::vector<hsize_t>{S, len})) << name;
  EXPECT_EQ(out.info("/extraction/loss").dims, (std::vector<hsize_t>{S}));
  EXPECT_EQ(out.info("/extraction/loss_trace").dims, (std::vector<hsize_t>{S, 5}));
  for (const char* name : {"/orders/and_pos", "/orders/and_neg", "/orders/or_pos", "/orders/or_neg",
                           "/orders/and_count", "/orders/or_count"})
    EXPECT_EQ(out.info(name).dims, (std::vector<hsize_t>{S, hsize_t(n + 1)})) << name;
  EXPECT_EQ(out.info("/interactions/and").type_size, 8u);
  for (const char* attr : {"schema", "tool_version", "git_sha", "created_utc", "config", "output_fn",
                           "baseline", "solver", "or_folding"})
    EXPECT_TRUE(out.has_attribute(attr)) << attr;
  EXPECT_EQ(out.double_attribute("mpi_ranks"), 1.0);
  EXPECT_EQ(out.double_attribute("solver_qthres"), 0.04);
  const auto a = out.read_all<double>("/interactions/and");
  const auto o = out.read_all<double>("/interactions/or");
  const auto q = out.read_all<double>("/extraction/q");
  const auto loss_trace = out.read_all<double>("/extraction/loss_trace");
  for (std::size_t s = 0; s < S; ++s) {
    std::vector<double> za(a.begin() + s * len, a.begin() + (s + 1) * len);
    std::vector<double> zo(o.begin() + s * len, o.begin() + (s + 1) * len);
    for (std::size_t i = 0; i < len; ++i)
      if (__builtin_popcountll(i) <= 1) {
        EXPECT_EQ(zo[i], 0.0);  // folded
      }
    zeta_transform(za.data(), n);
    or_synthesis(zo.data(), n);
    const double bound = 0.04 * std::fabs(double(vf[s * len + len - 1]) - double(vf[s * len]));
    for (std::size_t i = 0; i < len; ++i) {
      EXPECT_NEAR(za[i] + zo[i], double(vf[s * len + i]) + q[s * len + i], 1e-9);
      EXPECT_LE(std::fabs(q[s * len + i]), bound * (1 + 1e-12));
    }
    EXPECT_LT(loss_trace[s * 5 + 4], loss_trace[s * 5]);  // the fit makes progress
  }
}

TEST(Extract, BadInputsFailClearlyAndLeaveNoOutput) {
  TempDir dir;
  ExtractOptions opt;
  opt.out_path = dir / "out.h5";
  opt.progress = false;
  auto expect_error = [&](const std::string& needle) {
    try {
      run_extract(opt);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(opt.out_path)) << needle;
    EXPECT_FALSE(fs::exists(opt.out_path + ".part")) << needle;
  };
  opt.values_path = dir / "missing.h5";
  expect_error("no such file");

  {  // not HDF5
    std::FILE* f = std::fopen((dir / "junk.h5").c_str(), "w");
    std::fputs("not an hdf5 file", f);
    std::fclose(f);
  }
  opt.values_path = dir / "junk.h5";
  expect_error("not an HDF5 file");

  {  // no /values
    h5::File f = h5::File::create(dir / "novalues.h5");
    f.create_dataset("/other", h5::Dtype::F64, {2, 4});
  }
  opt.values_path = dir / "novalues.h5";
  expect_error("no dataset /values");

  {  // length not a power of two
    h5::File f = h5::File::create(dir / "len.h5");
    f.create_dataset("/values", h5::Dtype::F64, {2, 12});
  }
  opt.values_path = dir / "len.h5";
  expect_error("not a power of two");

  {  // NaN in sample 1
    std::vector<double> v(2 * 16, 1.0);
    v[16 + 5] = std::nan("");
    write_values(dir / "nan.h5", v, 2, 4);
  }
  opt.values_path = dir / "nan.h5";
  expect_error("/values[1, 5] is NaN");
  {
    std::vector<double> v(16, 1.0);
    v[3] = INFINITY;
    write_values(dir / "inf.h5", v, 1, 4);
  }
  opt.values_path = dir / "inf.h5";
  expect_error("is Inf");

  {  // n too large for the memory we allow
    h5::File f = h5::File::create(dir / "big.h5");
    f.create_dataset("/values", h5::Dtype::F32, {1, hsize_t{1} << 24}, 1);
  }
  opt.values_path = dir / "big.h5";
  setenv("HARSANYI_MEMORY_LIMIT", "64M", 1);
  expect_error("n = 24 needs 1.00 GiB of memory per sample");
  unsetenv("HARSANYI_MEMORY_LIMIT");

  // an existing output is kept unless --force
  std::vector<double> ok(16, 2.0);
  write_values(dir / "ok.h5", ok, 1, 4);
  opt.values_path = dir / "ok.h5";
  { std::FILE* f = std::fopen(opt.out_path.c_str(), "w"); std::fputs("keep me", f); std::fclose(f); }
  try {
    run_extract(opt);
    ADD_FAILURE() << "overwrote an existing file";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos);
  }
  EXPECT_EQ(fs::file_size(opt.out_path), 7u);
  opt.force = true;
  opt.sgd.iters = 10;
  run_extract(opt);
  EXPECT_NO_THROW(h5::File::open_read(opt.out_path));
}

TEST(H5Wrappers, RowsAboveFourGibibytesAreChunkedAlongTheRow) {
  // n = 30 rows of float64 are 8 GiB; HDF5 refuses chunks of 4 GiB or more.
  TempDir dir;
  h5::File f = h5::File::create(dir / "big.h5");
  EXPECT_NO_THROW(f.create_dataset("/interactions/and", h5::Dtype::F64, {2, hsize_t{1} << 30}, 1));
  EXPECT_EQ(f.info("/interactions/and").dims, (std::vector<hsize_t>{2, hsize_t{1} << 30}));
  f.close();
}

TEST(Extract, AndModeNeedsLessMemoryThanAndOr) {
  TempDir dir;
  std::vector<double> v(1 << 16, 1.0);
  write_values(dir / "in.h5", v, 1, 16);
  ExtractOptions opt;
  opt.values_path = dir / "in.h5";
  opt.out_path = dir / "out.h5";
  opt.progress = false;
  opt.sgd.iters = 2;
  setenv("HARSANYI_MEMORY_LIMIT", "2M", 1);  // and: 3 arrays of 512 KiB; and-or: 8
  opt.mode = "and";
  EXPECT_NO_THROW(run_extract(opt));
  opt.mode = "and-or";
  opt.force = true;
  EXPECT_THROW(run_extract(opt), UserError);
  unsetenv("HARSANYI_MEMORY_LIMIT");
}

TEST(Extract, OptimalSolverWritesTheCertifiedBound) {
  TempDir dir;
  const int n = 6;
  const std::size_t S = 3, len = 64;
  const auto v = planted_batch(n, S, false);
  write_values(dir / "in.h5", v, S, n);
  ExtractOptions opt;
  opt.values_path = dir / "in.h5";
  opt.out_path = dir / "out.h5";
  opt.solver = "optimal";
  opt.optimal.tol = 1e-4;
  opt.sgd.trace_every = 1000;
  opt.progress = false;
  opt.fold = false;
  run_extract(opt);
  h5::File out = h5::File::open_read(opt.out_path);
  EXPECT_EQ(out.string_attribute("solver"), "optimal");
  EXPECT_EQ(out.double_attribute("solver_tol"), 1e-4);
  EXPECT_EQ(out.double_attribute("solver_qthres"), 0.04);
  EXPECT_EQ(out.double_attribute("solver_not_converged"), 0.0);
  EXPECT_NE(out.string_attribute("config").find("tol = "), std::string::npos);
  EXPECT_EQ(out.info("/extraction/bound").dims, (std::vector<hsize_t>{S}));
  EXPECT_EQ(out.info("/extraction/iterations").dims, (std::vector<hsize_t>{S}));
  const auto loss = out.read_all<double>("/extraction/loss");
  const auto bound = out.read_all<double>("/extraction/bound");
  const auto a = out.read_all<double>("/interactions/and");
  const auto o = out.read_all<double>("/interactions/or");
  const auto q = out.read_all<double>("/extraction/q");
  for (std::size_t s = 0; s < S; ++s) {
    EXPECT_LE(bound[s], loss[s]);
    EXPECT_GE(bound[s], loss[s] * (1 - 1e-4));
    double l1 = 0.0;
    std::vector<double> za(a.begin() + s * len, a.begin() + (s + 1) * len);
    std::vector<double> zo(o.begin() + s * len, o.begin() + (s + 1) * len);
    for (std::size_t i = 0; i < len; ++i) l1 += std::fabs(za[i]) + std::fabs(zo[i]);
    EXPECT_NEAR(l1, loss[s], 1e-9 * loss[s]);  // raw outputs: the loss is their L1 norm
    zeta_transform(za.data(), n);
    or_synthesis(zo.data(), n);
    for (std::size_t i = 0; i < len; ++i)
      EXPECT_NEAR(za[i] + zo[i], v[s * len + i] + q[s * len + i], 1e-9);
  }
  // the sgd solver writes no bound
  opt.solver = "sgd";
  opt.sgd.iters = 50;
  opt.force = true;
  run_extract(opt);
  h5::File out2 = h5::File::open_read(opt.out_path);
  EXPECT_FALSE(out2.exists("/extraction/bound"));
}
