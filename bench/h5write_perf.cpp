// h5write_perf: writing a [S, 2^n] float64 dataset with parallel HDF5 (the MPI-IO file driver),
// each rank writing its contiguous rows as one hyperslab, with collective against independent
// transfers. Formulas of every column: bench/README.md.
#include <fmt/core.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "communicator.h"
#include "driver.h"
#include "lattice_transforms.h"

namespace hb = harsanyi::bench;
namespace hm = harsanyi::mpi;
using harsanyi::subset_count;

namespace {

// A failed HDF5 call (negative id or status) throws with the call's name.
template <class T>
T h5(T result, const char* call) {
  if (result < 0) throw std::runtime_error(std::string("HDF5: ") + call + " failed");
  return result;
}

// Closes an HDF5 id with its own close function when it goes out of scope.
struct Id {
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;
  Id(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  ~Id() {
    if (id >= 0 && close) close(id);
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  operator hid_t() const { return id; }
  // Closes now, checked (H5Fclose of a parallel file is collective and flushes).
  void close_now(const char* what) {
    const hid_t i = id;
    id = -1;
    h5(close(i), what);
  }
};

// The temporary directory of a run, made by rank 0 under --dir and removed by it at the end.
struct TempDir {
  std::string path;
  bool owner = false;
  TempDir(const hm::Communicator& comm, const std::string& parent) {
    if (comm.root()) {
      std::string tmpl = parent + "/h5write_perf.XXXXXX";
      if (mkdtemp(tmpl.data())) path = tmpl, owner = true;
    }
    comm.broadcast(path);  // empty: rank 0 failed, every rank throws
    if (path.empty())
      throw std::runtime_error("cannot create a temporary directory under " + parent);
  }
  ~TempDir() {
    std::error_code ec;
    if (owner) std::filesystem::remove_all(path, ec);
  }
};

struct H5State : hb::CaseState {
  const hm::Communicator* comm;
  std::size_t rows_total, len;
  hb::Block mine;
  std::vector<double> data;  // this rank's rows, mine.size() × len
  TempDir dir;
  explicit H5State(const hb::Case& c)
      : comm(c.comm),
        rows_total(c.samples),
        len(subset_count(c.n)),
        mine(hb::my_samples(c)),
        dir(*c.comm, c.opt->extra.at("dir")) {
    if (c.dtype != hb::Dtype::f64)
      throw std::invalid_argument("h5write_perf writes float64 (-d f64)");
    data.resize(std::max<std::size_t>(1, mine.size() * len));
    for (std::size_t k = 0; k < mine.size(); ++k)
      hb::fill_uniform(data.data() + k * len, len, 3000 + mine.begin + k);
  }
  std::string file(bool collective) const {
    return dir.path + (collective ? "/collective.h5" : "/independent.h5");
  }
};

// HDF5 1.10's MPI-IO driver refuses a request of 2 GiB or more (MPI counts are int): a rank's
// rows go in one hyperslab per at most 1 GiB (a single one up to n = 24 with -s 8). Every rank
// makes the same number of H5Dwrite calls (collective transfers need it): enough for the largest
// block, ceil(S / P) rows.
std::size_t rows_per_write(std::size_t len) {
  return std::max<std::size_t>(1, (std::size_t{1} << 30) / (len * sizeof(double)));
}

// One timed call: create the file with the MPI-IO driver, create the contiguous dataset, write
// this rank's rows as one hyperslab (see rows_per_write), close everything (H5Fclose flushes).
void write_file(H5State& s, bool collective) {
  Id fapl(h5(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate(fapl)"), H5Pclose);
  h5(H5Pset_fapl_mpio(fapl, s.comm->comm(), MPI_INFO_NULL), "H5Pset_fapl_mpio");
  Id file(h5(H5Fcreate(s.file(collective).c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), "H5Fcreate"),
          H5Fclose);
  const hsize_t dims[2] = {s.rows_total, s.len};
  Id space(h5(H5Screate_simple(2, dims, nullptr), "H5Screate_simple"), H5Sclose);
  Id dcpl(h5(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate(dcpl)"), H5Pclose);
  h5(H5Pset_layout(dcpl, H5D_CONTIGUOUS), "H5Pset_layout");
  h5(H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY), "H5Pset_alloc_time");
  h5(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), "H5Pset_fill_time");  // no second write
  Id dset(h5(H5Dcreate2(file, "values", H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
             "H5Dcreate2"),
          H5Dclose);
  Id dxpl(h5(H5Pcreate(H5P_DATASET_XFER), "H5Pcreate(dxpl)"), H5Pclose);
  h5(H5Pset_dxpl_mpio(dxpl, collective ? H5FD_MPIO_COLLECTIVE : H5FD_MPIO_INDEPENDENT),
     "H5Pset_dxpl_mpio");
  const std::size_t per = rows_per_write(s.len);
  const std::size_t ranks = static_cast<std::size_t>(s.comm->size());
  const std::size_t largest = (s.rows_total + ranks - 1) / ranks;
  const std::size_t writes = std::max<std::size_t>(1, (largest + per - 1) / per);
  for (std::size_t w = 0; w < writes; ++w) {
    const std::size_t r0 = std::min(s.mine.size(), w * per);
    const std::size_t rows = std::min(s.mine.size(), r0 + per) - r0;
    const hsize_t mem_dims[2] = {std::max<hsize_t>(1, rows), s.len};
    Id mem(h5(H5Screate_simple(2, mem_dims, nullptr), "H5Screate_simple(mem)"), H5Sclose);
    if (rows > 0) {
      const hsize_t start[2] = {s.mine.begin + r0, 0}, count[2] = {rows, s.len};
      h5(H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr),
         "H5Sselect_hyperslab");
    } else {  // no rows (left) here: still part of the (collective) write
      h5(H5Sselect_none(space), "H5Sselect_none");
      h5(H5Sselect_none(mem), "H5Sselect_none(mem)");
    }
    h5(H5Dwrite(dset, H5T_NATIVE_DOUBLE, mem, space, dxpl, s.data.data() + r0 * s.len), "H5Dwrite");
  }
  dset.close_now("H5Dclose");
  file.close_now("H5Fclose");
}

// Rank 0 reads a file back (serial driver, row by row) and counts the elements that differ
// bitwise from the regenerated rows; -1 when the dataset's shape is wrong.
long long wrong_elements(const std::string& path, std::size_t rows, std::size_t len) {
  Id file(h5(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "H5Fopen"), H5Fclose);
  Id dset(h5(H5Dopen2(file, "values", H5P_DEFAULT), "H5Dopen2"), H5Dclose);
  Id space(h5(H5Dget_space(dset), "H5Dget_space"), H5Sclose);
  hsize_t dims[2] = {0, 0};
  if (H5Sget_simple_extent_ndims(space) != 2 ||
      h5(H5Sget_simple_extent_dims(space, dims, nullptr), "H5Sget_simple_extent_dims") != 2 ||
      dims[0] != rows || dims[1] != len)
    return -1;
  std::vector<double> got(len), want(len);
  const hsize_t count[2] = {1, len};
  Id mem(h5(H5Screate_simple(2, count, nullptr), "H5Screate_simple"), H5Sclose);
  long long wrong = 0;
  for (std::size_t k = 0; k < rows; ++k) {
    const hsize_t start[2] = {k, 0};
    h5(H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr),
       "H5Sselect_hyperslab");
    h5(H5Dread(dset, H5T_NATIVE_DOUBLE, mem, space, H5P_DEFAULT, got.data()), "H5Dread");
    hb::fill_uniform(want.data(), len, 3000 + k);
    for (std::size_t j = 0; j < len; ++j)
      wrong += std::memcmp(&got[j], &want[j], sizeof(double)) != 0;
  }
  return wrong;
}

}  // namespace

int main(int argc, char** argv) {
  hb::OpDef op;
  op.name = "h5write_perf";
  op.summary =
      "parallel HDF5 (MPI-IO) write of a [samples, 2^n] f64 dataset, a hyperslab of "
      "rows per rank: collective vs independent transfer";
  op.mpi = true;
  op.default_min_n = 10;
  op.default_max_n = 24;
  op.max_allowed_n = 26;
  op.default_reps = 5;
  op.default_samples = 8;
  op.default_dtypes = {hb::Dtype::f64};
  op.flags = {{"dir", "/tmp", "where the temporary directory goes (shared by all ranks)"}};
  op.columns = {
      {"bytes", "B", hb::Fmt::integer, 0, 11},       {"coll", "ms", hb::Fmt::fixed, 3, 9},
      {"c_spread", "%", hb::Fmt::fixed, 1, 8},       {"coll_GB/s", "GB/s", hb::Fmt::fixed, 2, 9},
      {"indep", "ms", hb::Fmt::fixed, 3, 9},         {"i_spread", "%", hb::Fmt::fixed, 1, 8},
      {"indep_GB/s", "GB/s", hb::Fmt::fixed, 2, 10}, {"ind/coll", "x", hb::Fmt::fixed, 2, 8},
      {"#wrong", "-", hb::Fmt::integer, 0, 7},
  };
  op.memory_bytes = [](const hb::Case& c) {
    return hb::my_samples(c).size() * subset_count(c.n) * 8 + (std::size_t{1} << 20);
  };
  op.setup = [](const hb::Case& c) { return std::make_unique<H5State>(c); };
  op.preamble = {
      "file     : one file per kernel in a temporary directory under --dir (removed at the end); "
      "dataset /values, contiguous, allocated early, never filled; rank r writes rows "
      "[S*r/P, S*(r+1)/P)",
      "timed    : H5Fcreate (MPI-IO driver) + H5Dcreate + H5Dwrite + H5Fclose; no fsync: the "
      "data may stay in the page cache; one H5Dwrite per <= 1 GiB of a rank's rows (HDF5 1.10 "
      "refuses 2 GiB requests)",
      fmt::format("versions : HDF5 {}.{}.{}", H5_VERS_MAJOR, H5_VERS_MINOR, H5_VERS_RELEASE),
      "check    : rank 0 reads both files back (serial driver) and compares every element "
      "bitwise with the regenerated rows"};
  op.kernels = {{"collective", nullptr,
                 [](hb::CaseState& st, int) { write_file(static_cast<H5State&>(st), true); }},
                {"independent", nullptr,
                 [](hb::CaseState& st, int) { write_file(static_cast<H5State&>(st), false); }}};
  op.metrics = [](const hb::Case& c, hb::CaseState&, const std::vector<hb::Timing>& t,
                  hb::Row& row) {
    const double bytes = static_cast<double>(c.samples * subset_count(c.n) * sizeof(double));
    row["bytes"] = static_cast<long long>(bytes);
    row["coll"] = 1e3 * t[0].median;
    row["c_spread"] = t[0].spread_pct();
    row["coll_GB/s"] = bytes / t[0].median / 1e9;
    row["indep"] = 1e3 * t[1].median;
    row["i_spread"] = t[1].spread_pct();
    row["indep_GB/s"] = bytes / t[1].median / 1e9;
    row["ind/coll"] = t[1].median / t[0].median;
  };
  op.check = [](const hb::Case& c, hb::CaseState& st, hb::Row& row) {
    hb::CheckResult r;
    if (c.rank != 0) return r;
    auto& s = static_cast<H5State&>(st);
    long long wrong = 0;
    for (bool collective : {true, false}) {
      const long long w = wrong_elements(s.file(collective), s.rows_total, s.len);
      if (w != 0) {
        r.ok = false;
        r.why += fmt::format(
            "{}{}: {}", r.why.empty() ? "" : "; ", collective ? "collective" : "independent",
            w < 0 ? std::string("wrong dataset shape") : fmt::format("{} elements differ", w));
      }
      wrong += std::max(0LL, w);
    }
    row["#wrong"] = wrong;
    return r;
  };
  return hb::run_benchmark(op, argc, argv);
}
