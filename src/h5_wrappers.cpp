#include "h5_wrappers.h"

#include <sys/stat.h>

#include <mutex>

#include <fmt/format.h>

namespace harsanyi::h5 {
namespace {

// Collects the current HDF5 error stack, innermost description last.
std::string error_stack_text() {
  std::string text;
  auto walker = [](unsigned, const H5E_error2_t* err, void* data) -> herr_t {
    auto* out = static_cast<std::string*>(data);
    if (err->desc && *err->desc) {
      if (!out->empty()) *out += "; ";
      *out += fmt::format("{}() {}", err->func_name ? err->func_name : "?", err->desc);
    }
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walker, &text);
  H5Eclear2(H5E_DEFAULT);
  return text;
}

// What a failed HDF5 file lock means, from the error stack ("" when the failure is another).
std::string lock_problem(const std::string& stack) {
  if (stack.find("unable to lock") == std::string::npos) return "";
  if (stack.find("errno = 11") != std::string::npos)
    return "another process has the file open for writing (HDF5 file lock); wait for it to "
           "finish or stop it";
  return "the file system refused HDF5's file lock; on file systems without locks (some NFS "
         "and parallel file systems) set HDF5_USE_FILE_LOCKING=FALSE";
}

[[noreturn]] void fail(const std::string& what) {
  const std::string stack = error_stack_text();
  const std::string lock = lock_problem(stack);
  if (!lock.empty()) throw H5Error(what + ": " + lock + " [HDF5: " + stack + "]");
  throw H5Error(stack.empty() ? what : what + " [HDF5: " + stack + "]");
}

hid_t check_id(hid_t id, const std::string& what) {
  if (id < 0) fail(what);
  return id;
}

void check(herr_t status, const std::string& what) {
  if (status < 0) fail(what);
}

// Creates the groups above `name` ("/a/b/c" creates /a and /a/b).
void make_parents(hid_t file, const std::string& name) {
  std::size_t pos = 1;
  while ((pos = name.find('/', pos)) != std::string::npos) {
    const std::string group = name.substr(0, pos);
    if (H5Lexists(file, group.c_str(), H5P_DEFAULT) <= 0) {
      Handle g(check_id(H5Gcreate2(file, group.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                        "create group " + group),
               H5Gclose);
    }
    ++pos;
  }
}

Handle open_dataset(hid_t file, const std::string& path, const std::string& name) {
  return Handle(check_id(H5Dopen2(file, name.c_str(), H5P_DEFAULT),
                         fmt::format("{}: cannot open dataset {}", path, name)),
                H5Dclose);
}

// Throws unless the block (start, count) has the rank of `space` and lies inside it.
void check_block(hid_t space, const std::vector<hsize_t>& start, const std::vector<hsize_t>& count,
                 const std::string& what) {
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  if (start.size() != dims.size() || count.size() != dims.size())
    throw H5Error(fmt::format("{}: block of rank {} for a dataset of rank {}", what, start.size(),
                              dims.size()));
  for (std::size_t i = 0; i < dims.size(); ++i)
    if (count[i] > 0 && start[i] + count[i] > dims[i])
      throw H5Error(fmt::format("{}: block out of range on axis {}", what, i));
}

// Selects the block (start, count) of `space` and returns the matching memory space; an empty
// block selects nothing (a rank taking part in a collective write without data).
Handle select_block(hid_t space, const std::vector<hsize_t>& start,
                    const std::vector<hsize_t>& count, const std::string& what) {
  const int rank = static_cast<int>(count.size());
  hsize_t elements = 1;
  for (hsize_t c : count) elements *= c;
  if (elements == 0) {
    check(H5Sselect_none(space), what + ": select nothing");
    const hsize_t zero[1] = {0};
    Handle mem(check_id(H5Screate_simple(1, zero, nullptr), what + ": memory space"), H5Sclose);
    check(H5Sselect_none(mem.id()), what + ": select nothing");
    return mem;
  }
  check(H5Sselect_hyperslab(space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
        what + ": select block");
  return Handle(check_id(H5Screate_simple(rank, count.data(), nullptr), what + ": memory space"),
                H5Sclose);
}

// Selects rows [row0, row0+rows) of `space` and returns the matching memory space.
Handle select_rows(hid_t space, hsize_t row0, hsize_t rows, const std::string& what) {
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  if (rank < 1 || row0 + rows > dims[0]) throw H5Error(what + ": rows out of range");
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  start[0] = row0;
  count[0] = rows;
  return select_block(space, start, count, what);
}

// Storage allocated when a dataset is created or extended, not at its first write: a file
// started by one process and written later by many (MPI-IO) needs every chunk allocated before
// the collective writes, which cannot allocate chunks of serially created datasets.
Handle dataset_creation_properties(const std::string& name) {
  Handle dcpl(check_id(H5Pcreate(H5P_DATASET_CREATE), "dcpl"), H5Pclose);
  check(H5Pset_alloc_time(dcpl.id(), H5D_ALLOC_TIME_EARLY), "allocation time of " + name);
  check(H5Pset_fill_time(dcpl.id(), H5D_FILL_TIME_NEVER), "fill time of " + name);
  return dcpl;
}

Handle open_object(hid_t file, const std::string& object) {
  return Handle(check_id(H5Oopen(file, object.c_str(), H5P_DEFAULT), "open object " + object),
                H5Oclose);
}

}  // namespace

void prepare_library() {
  H5dont_atexit();
  silence_library_errors();
}

void silence_library_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Handle::reset() {
  if (id_ >= 0 && closer_) closer_(id_);
  id_ = H5I_INVALID_HID;
}

void Handle::close(const std::string& what) {
  if (id_ < 0) return;
  const herr_t status = closer_ ? closer_(id_) : 0;
  id_ = H5I_INVALID_HID;
  check(status, what);
}

void File::close() {
  if (!handle_.valid()) return;
  const herr_t flushed = H5Fflush(handle_.id(), H5F_SCOPE_GLOBAL);
  if (flushed < 0) {
    // A parallel close is collective: a rank whose flush failed must not wait in it alone.
    if (parallel())
      abandon();
    else
      handle_.reset();
    fail(path_ + ": cannot write the file to disk (full disk or file size limit?)");
  }
  handle_.close(path_ + ": cannot close the file (full disk or file size limit?)");
}

hid_t native_type(Dtype t) {
  switch (t) {
    case Dtype::F32: return H5T_NATIVE_FLOAT;
    case Dtype::F64: return H5T_NATIVE_DOUBLE;
    case Dtype::I32: return H5T_NATIVE_INT32;
    case Dtype::I64: return H5T_NATIVE_INT64;
    case Dtype::U8: return H5T_NATIVE_UINT8;
  }
  return H5T_NATIVE_DOUBLE;
}

namespace {
// Opens an existing HDF5 file with `flags`; missing, non-HDF5 and damaged files get messages.
hid_t open_existing(const std::string& path, unsigned flags, const std::string& damaged) {
  silence_library_errors();
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw H5Error(path + ": no such file");
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw H5Error(path + ": not an HDF5 file (or damaged)");
  }
  const hid_t id = H5Fopen(path.c_str(), flags, H5P_DEFAULT);
  if (id < 0) {
    const std::string stack = error_stack_text();
    const std::string lock = lock_problem(stack);
    throw H5Error((lock.empty() ? path + damaged : path + ": cannot open: " + lock) +
                  (stack.empty() ? "" : " [HDF5: " + stack + "]"));
  }
  return id;
}
}  // namespace

File File::open_read(const std::string& path) {
  return File(Handle(open_existing(path, H5F_ACC_RDONLY,
                                   ": cannot open for reading: truncated or damaged HDF5 file "
                                   "(was it left by a run that did not finish?)"),
                     H5Fclose),
              path);
}

File File::create(const std::string& path) {
  silence_library_errors();
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (id < 0) fail(path + ": cannot create");
  return File(Handle(id, H5Fclose), path);
}

File File::open_parallel(const std::string& path, MPI_Comm comm) {
  silence_library_errors();
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw H5Error(path + ": no such file");
  Handle fapl(check_id(H5Pcreate(H5P_FILE_ACCESS), "file access properties"), H5Pclose);
  check(H5Pset_fapl_mpio(fapl.id(), comm, MPI_INFO_NULL), path + ": MPI-IO driver");
  // Metadata reads by one rank, broadcast to the others, instead of every rank reading.
  check(H5Pset_all_coll_metadata_ops(fapl.id(), true), path + ": collective metadata reads");
  check(H5Pset_coll_metadata_write(fapl.id(), true), path + ": collective metadata writes");
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl.id());
  if (id < 0) fail(path + ": cannot open for parallel writing: damaged HDF5 file");
  File f(Handle(id, H5Fclose), path);
  f.comm_ = comm;
  f.transfer_ = Handle(check_id(H5Pcreate(H5P_DATASET_XFER), "transfer properties"), H5Pclose);
  check(H5Pset_dxpl_mpio(f.transfer_.id(), H5FD_MPIO_COLLECTIVE), "collective transfer");
  return f;
}

File File::open_write(const std::string& path) {
  return File(Handle(open_existing(path, H5F_ACC_RDWR,
                                   ": cannot open for writing: damaged HDF5 file"),
                     H5Fclose),
              path);
}

void File::flush() {
  check(H5Fflush(id(), H5F_SCOPE_GLOBAL),
        path_ + ": cannot write the file to disk (full disk or file size limit?)");
}

bool File::exists(const std::string& object) const {
  // check each level so that a missing parent group is not an error
  std::size_t pos = 1;
  while (true) {
    pos = object.find('/', pos);
    const std::string part = object.substr(0, pos);
    const htri_t e = H5Lexists(id(), part.c_str(), H5P_DEFAULT);
    if (e <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    if (pos == std::string::npos) return true;
    ++pos;
  }
}

DatasetInfo File::info(const std::string& name) const {
  if (!exists(name)) throw H5Error(fmt::format("{}: no dataset {}", path_, name));
  Handle ds = open_dataset(id(), path_, name);
  Handle space(check_id(H5Dget_space(ds.id()), "dataspace of " + name), H5Sclose);
  Handle type(check_id(H5Dget_type(ds.id()), "type of " + name), H5Tclose);
  DatasetInfo info;
  const int rank = H5Sget_simple_extent_ndims(space.id());
  info.dims.resize(static_cast<std::size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space.id(), info.dims.data(), nullptr);
  info.type_class = H5Tget_class(type.id());
  info.type_size = H5Tget_size(type.id());
  return info;
}

void File::create_dataset(const std::string& name, Dtype type, const std::vector<hsize_t>& dims,
                          hsize_t chunk_rows) {
  make_parents(id(), name);
  Handle space(check_id(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                        "dataspace for " + name),
               H5Sclose);
  Handle dcpl = dataset_creation_properties(name);
  bool nonempty = true;
  for (hsize_t d : dims) nonempty = nonempty && d > 0;
  if (chunk_rows > 0 && nonempty) {
    // HDF5 chunks must stay below 4 GiB: at most 2^20 elements along each further axis
    std::vector<hsize_t> chunk = dims;
    chunk[0] = std::min(chunk_rows, dims[0]);
    for (std::size_t i = 1; i < chunk.size(); ++i) chunk[i] = std::min<hsize_t>(dims[i], hsize_t{1} << 20);
    check(H5Pset_chunk(dcpl.id(), static_cast<int>(chunk.size()), chunk.data()),
          "chunking of " + name);
  }
  create_with(name, type, space.id(), dcpl.id());
}

void File::create_with(const std::string& name, Dtype type, hid_t space, hid_t dcpl) {
  Handle ds(check_id(H5Dcreate2(id(), name.c_str(), native_type(type), space, H5P_DEFAULT, dcpl,
                                H5P_DEFAULT),
                     fmt::format("{}: cannot create dataset {}", path_, name)),
            H5Dclose);
}

void File::create_extendible(const std::string& name, Dtype type,
                             const std::vector<hsize_t>& dims, hsize_t chunk_rows) {
  if (dims.empty() || chunk_rows == 0) throw H5Error(name + ": extendible datasets need chunks");
  make_parents(id(), name);
  std::vector<hsize_t> maxdims = dims;
  maxdims[0] = H5S_UNLIMITED;
  Handle space(check_id(H5Screate_simple(static_cast<int>(dims.size()), dims.data(),
                                         maxdims.data()),
                        "dataspace for " + name),
               H5Sclose);
  Handle dcpl = dataset_creation_properties(name);
  std::vector<hsize_t> chunk = dims;
  chunk[0] = chunk_rows;
  // at most 2^20 elements per chunk across the further axes (8 MiB of f64), innermost first
  hsize_t budget = hsize_t{1} << 20;
  for (std::size_t i = chunk.size() - 1; i >= 1; --i) {
    chunk[i] = std::max<hsize_t>(1, std::min(dims[i], budget));
    budget = std::max<hsize_t>(1, budget / chunk[i]);
  }
  check(H5Pset_chunk(dcpl.id(), static_cast<int>(chunk.size()), chunk.data()),
        "chunking of " + name);
  create_with(name, type, space.id(), dcpl.id());
}

void File::set_rows(const std::string& name, hsize_t rows) {
  Handle ds = open_dataset(id(), path_, name);
  Handle space(check_id(H5Dget_space(ds.id()), "dataspace of " + name), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.id());
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
  dims[0] = rows;
  check(H5Dset_extent(ds.id(), dims.data()), fmt::format("{}: resize {}", path_, name));
}

namespace {

// One piece of a block: its start and count in the file, and its first element in the block.
struct Piece {
  std::vector<hsize_t> start, count;
  std::size_t offset = 0;
};

// Splits the block (start, count) into pieces of at most `limit` elements (C order): along the
// outermost axis whose trailing extent fits, one index of the axes before it at a time.
std::vector<Piece> split_block(const std::vector<hsize_t>& start,
                               const std::vector<hsize_t>& count, std::size_t limit) {
  const std::size_t r = count.size();
  std::vector<Piece> pieces;
  std::size_t elements = 1;
  for (hsize_t c : count) elements *= c;
  if (elements == 0) return pieces;
  std::vector<std::size_t> inner(r, 1);  // elements of one index step along each axis
  for (std::size_t a = r - 1; a > 0; --a) inner[a - 1] = inner[a] * count[a];
  std::size_t axis = 0;
  while (inner[axis] > limit) ++axis;  // inner[r - 1] = 1
  const std::size_t step = std::max<std::size_t>(1, limit / inner[axis]);
  std::size_t outer = 1;
  for (std::size_t a = 0; a < axis; ++a) outer *= count[a];
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t k = 0; k < count[axis]; k += step) {
      Piece p;
      p.start = start;
      p.count = count;
      std::size_t rest = o;
      for (std::size_t a = axis; a-- > 0;) {  // o as a row-major index over the axes before
        p.start[a] = start[a] + rest % count[a];
        p.count[a] = 1;
        rest /= count[a];
      }
      p.start[axis] = start[axis] + k;
      p.count[axis] = std::min<std::size_t>(step, count[axis] - k);
      p.offset = (o * count[axis] + k) * inner[axis];
      pieces.push_back(std::move(p));
    }
  return pieces;
}

}  // namespace

template <class T>
void File::write_block(const std::string& name, const std::vector<hsize_t>& start,
                       const std::vector<hsize_t>& count, const T* data) {
  Handle ds = open_dataset(id(), path_, name);
  Handle space(check_id(H5Dget_space(ds.id()), "dataspace of " + name), H5Sclose);
  check_block(space.id(), start, count, path_ + ":" + name);
  const auto write = [&](const std::vector<hsize_t>& st, const std::vector<hsize_t>& cnt,
                         const T* ptr) {
    Handle mem = select_block(space.id(), st, cnt, path_ + ":" + name);
    check(H5Dwrite(ds.id(), native_type(dtype_of<T>()), mem.id(), space.id(), transfer(), ptr),
          fmt::format("{}: write to {}", path_, name));
  };
  if (!parallel()) {
    write(start, count, data);
  } else {
    // The MPI-IO driver of HDF5 1.10 refuses one transfer of 2 GiB or more: pieces of at most
    // 1 GiB, the same number of collective writes on every rank (empty ones when a rank is done).
    // Sized by the larger of the memory and the file element (a converting write moves both).
    Handle ftype(check_id(H5Dget_type(ds.id()), "type of " + name), H5Tclose);
    const std::size_t element = std::max(sizeof(T), H5Tget_size(ftype.id()));
    const std::vector<Piece> pieces =
        split_block(start, count, std::max<std::size_t>(1, max_transfer_bytes_ / element));
    long long calls = static_cast<long long>(pieces.size());
    if (MPI_Allreduce(MPI_IN_PLACE, &calls, 1, MPI_LONG_LONG, MPI_MAX, comm_) != MPI_SUCCESS)
      throw H5Error(fmt::format("{}: write to {}: MPI_Allreduce failed", path_, name));
    const std::vector<hsize_t> none(count.size(), 0);
    for (long long i = 0; i < calls; ++i) {
      if (i < static_cast<long long>(pieces.size())) {
        const Piece& p = pieces[static_cast<std::size_t>(i)];
        write(p.start, p.count, data + p.offset);
      } else {
        write(none, none, data);
      }
    }
  }
  space.reset();
  ds.close(fmt::format("{}: write to {} (full disk or file size limit?)", path_, name));
}

void File::write_strings(const std::string& name, const std::vector<std::string>& values) {
  make_parents(id(), name);
  Handle type(check_id(H5Tcopy(H5T_C_S1), "string type"), H5Tclose);
  check(H5Tset_size(type.id(), H5T_VARIABLE), "string size");
  check(H5Tset_cset(type.id(), H5T_CSET_UTF8), "string charset");
  const hsize_t dims[1] = {values.size()};
  Handle space(check_id(H5Screate_simple(1, dims, nullptr), "dataspace for " + name), H5Sclose);
  Handle ds(check_id(H5Dcreate2(id(), name.c_str(), type.id(), space.id(), H5P_DEFAULT,
                                H5P_DEFAULT, H5P_DEFAULT),
                     fmt::format("{}: cannot create dataset {}", path_, name)),
            H5Dclose);
  std::vector<const char*> ptrs;
  for (const std::string& v : values) ptrs.push_back(v.c_str());
  if (!values.empty())
    check(H5Dwrite(ds.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()),
          fmt::format("{}: write to {}", path_, name));
  ds.close(fmt::format("{}: write to {}", path_, name));
}

std::vector<std::string> File::read_strings(const std::string& name) const {
  const DatasetInfo inf = info(name);
  if (inf.type_class != H5T_STRING || inf.dims.size() != 1)
    throw H5Error(fmt::format("{}: {} is not a 1-D string dataset", path_, name));
  Handle ds = open_dataset(id(), path_, name);
  Handle ftype(check_id(H5Dget_type(ds.id()), "type of " + name), H5Tclose);
  const std::size_t count = inf.dims[0];
  std::vector<std::string> out(count);
  if (count == 0) return out;
  Handle mtype(check_id(H5Tcopy(H5T_C_S1), "string type"), H5Tclose);
  check(H5Tset_cset(mtype.id(), H5Tget_cset(ftype.id())), "string charset");
  if (H5Tis_variable_str(ftype.id()) > 0) {
    check(H5Tset_size(mtype.id(), H5T_VARIABLE), "string size");
    std::vector<char*> raw(count, nullptr);
    check(H5Dread(ds.id(), mtype.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()),
          fmt::format("{}: read of {} failed", path_, name));
    for (std::size_t i = 0; i < count; ++i) {
      out[i] = raw[i] ? raw[i] : "";
      H5free_memory(raw[i]);
    }
    return out;
  }
  const std::size_t size = H5Tget_size(ftype.id());
  check(H5Tset_size(mtype.id(), size), "string size");
  std::vector<char> buf(count * size);
  check(H5Dread(ds.id(), mtype.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()),
        fmt::format("{}: read of {} failed", path_, name));
  for (std::size_t i = 0; i < count; ++i) {
    out[i].assign(buf.data() + i * size, size);
    while (!out[i].empty() && out[i].back() == '\0') out[i].pop_back();
  }
  return out;
}

template <class T>
void File::write_rows(const std::string& name, hsize_t row0, hsize_t rows, const T* data) {
  std::vector<hsize_t> start, count;
  {
    Handle ds = open_dataset(id(), path_, name);
    Handle space(check_id(H5Dget_space(ds.id()), "dataspace of " + name), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.id());
    count.resize(static_cast<std::size_t>(std::max(rank, 0)));
    H5Sget_simple_extent_dims(space.id(), count.data(), nullptr);
    if (rank < 1 || row0 + rows > count[0])
      throw H5Error(path_ + ":" + name + ": rows out of range");
  }
  start.assign(count.size(), 0);
  start[0] = row0;
  count[0] = rows;
  write_block(name, start, count, data);
}

template <class T>
void File::read_rows(const std::string& name, hsize_t row0, hsize_t rows, T* data) const {
  Handle ds = open_dataset(id(), path_, name);
  Handle space(check_id(H5Dget_space(ds.id()), "dataspace of " + name), H5Sclose);
  Handle mem = select_rows(space.id(), row0, rows, path_ + ":" + name);
  check(H5Dread(ds.id(), native_type(dtype_of<T>()), mem.id(), space.id(), H5P_DEFAULT, data),
        fmt::format("{}: read of {} failed (damaged file?)", path_, name));
}

template <class T>
void File::read_block(const std::string& name, const std::vector<hsize_t>& start,
                      const std::vector<hsize_t>& count, T* data) const {
  Handle ds = open_dataset(id(), path_, name);
  Handle space(check_id(H5Dget_space(ds.id()), "dataspace of " + name), H5Sclose);
  check_block(space.id(), start, count, path_ + ":" + name);
  Handle mem = select_block(space.id(), start, count, path_ + ":" + name);
  check(H5Dread(ds.id(), native_type(dtype_of<T>()), mem.id(), space.id(), H5P_DEFAULT, data),
        fmt::format("{}: read of {} failed (damaged file?)", path_, name));
}

template <class T> std::vector<T> File::read_all(const std::string& name) const {
  const DatasetInfo inf = info(name);
  std::size_t total = 1;
  for (hsize_t d : inf.dims) total *= d;
  std::vector<T> out(total);
  Handle ds = open_dataset(id(), path_, name);
  if (total > 0)
    check(H5Dread(ds.id(), native_type(dtype_of<T>()), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()),
          fmt::format("{}: read of {} failed (damaged file?)", path_, name));
  return out;
}

namespace {
void write_attribute(hid_t file, const std::string& object, const std::string& name, hid_t type,
                     const void* value) {
  Handle obj = open_object(file, object);
  if (H5Aexists(obj.id(), name.c_str()) > 0) check(H5Adelete(obj.id(), name.c_str()), name);
  Handle space(check_id(H5Screate(H5S_SCALAR), "scalar space"), H5Sclose);
  Handle attr(check_id(H5Acreate2(obj.id(), name.c_str(), type, space.id(), H5P_DEFAULT,
                                  H5P_DEFAULT),
                       "create attribute " + name),
              H5Aclose);
  check(H5Awrite(attr.id(), type, value), "write attribute " + name);
}
}  // namespace

void File::set_attribute(const std::string& name, const std::string& value,
                         const std::string& object) {
  // Variable-length UTF-8: h5py and pandas read it back as str (fixed-length gives bytes).
  Handle type(check_id(H5Tcopy(H5T_C_S1), "string type"), H5Tclose);
  check(H5Tset_size(type.id(), H5T_VARIABLE), "string size");
  check(H5Tset_cset(type.id(), H5T_CSET_UTF8), "string charset");
  const char* text = value.c_str();
  write_attribute(id(), object, name, type.id(), &text);
}

void File::set_attribute(const std::string& name, std::int64_t value, const std::string& object) {
  write_attribute(id(), object, name, H5T_NATIVE_INT64, &value);
}

void File::set_attribute(const std::string& name, double value, const std::string& object) {
  write_attribute(id(), object, name, H5T_NATIVE_DOUBLE, &value);
}

bool File::has_attribute(const std::string& name, const std::string& object) const {
  Handle obj = open_object(id(), object);
  return H5Aexists(obj.id(), name.c_str()) > 0;
}

std::string File::string_attribute(const std::string& name, const std::string& object) const {
  Handle obj = open_object(id(), object);
  Handle attr(check_id(H5Aopen(obj.id(), name.c_str(), H5P_DEFAULT),
                       fmt::format("{}: no attribute {}", path_, name)),
              H5Aclose);
  Handle ftype(check_id(H5Aget_type(attr.id()), "attribute type"), H5Tclose);
  if (H5Tget_class(ftype.id()) != H5T_STRING)
    throw H5Error(fmt::format("{}: attribute {} is not a string", path_, name));
  if (H5Tis_variable_str(ftype.id()) > 0) {
    Handle mtype(check_id(H5Tcopy(H5T_C_S1), "string type"), H5Tclose);
    check(H5Tset_size(mtype.id(), H5T_VARIABLE), "string size");
    check(H5Tset_cset(mtype.id(), H5Tget_cset(ftype.id())), "string charset");
    char* raw = nullptr;
    check(H5Aread(attr.id(), mtype.id(), &raw), "read attribute " + name);
    std::string out = raw ? raw : "";
    H5free_memory(raw);
    return out;
  }
  const std::size_t size = H5Tget_size(ftype.id());
  std::string out(size, '\0');
  Handle mtype(check_id(H5Tcopy(H5T_C_S1), "string type"), H5Tclose);
  check(H5Tset_size(mtype.id(), size), "string size");
  check(H5Tset_cset(mtype.id(), H5Tget_cset(ftype.id())), "string charset");
  check(H5Aread(attr.id(), mtype.id(), out.data()), "read attribute " + name);
  while (!out.empty() && out.back() == '\0') out.pop_back();
  return out;
}

double File::double_attribute(const std::string& name, const std::string& object) const {
  Handle obj = open_object(id(), object);
  Handle attr(check_id(H5Aopen(obj.id(), name.c_str(), H5P_DEFAULT),
                       fmt::format("{}: no attribute {}", path_, name)),
              H5Aclose);
  double value = 0;
  check(H5Aread(attr.id(), H5T_NATIVE_DOUBLE, &value), "read attribute " + name);
  return value;
}

#define HARSANYI_INSTANTIATE(T)                                                          \
  template void File::write_rows<T>(const std::string&, hsize_t, hsize_t, const T*);     \
  template void File::read_rows<T>(const std::string&, hsize_t, hsize_t, T*) const;      \
  template std::vector<T> File::read_all<T>(const std::string&) const;                 \
  template void File::read_block<T>(const std::string&, const std::vector<hsize_t>&,    \
                                    const std::vector<hsize_t>&, T*) const;             \
  template void File::write_block<T>(const std::string&, const std::vector<hsize_t>&,   \
                                     const std::vector<hsize_t>&, const T*);
HARSANYI_INSTANTIATE(float)
HARSANYI_INSTANTIATE(double)
HARSANYI_INSTANTIATE(std::int32_t)
HARSANYI_INSTANTIATE(std::int64_t)
HARSANYI_INSTANTIATE(std::uint8_t)
#undef HARSANYI_INSTANTIATE

}  // namespace harsanyi::h5
