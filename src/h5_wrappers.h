/// @file h5_wrappers.h
/// @brief Thin RAII wrappers over the HDF5 C API. Every call is checked; a failure throws
/// H5Error whose text names the operation, the file and object, and the HDF5 error stack.
#pragma once

#include <hdf5.h>
#include <mpi.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace harsanyi::h5 {

/// An HDF5 failure, with the library's error stack folded into the message.
class H5Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Turns off HDF5's automatic error printing (we report errors ourselves). Idempotent.
void silence_library_errors();

/// Call first in main, before any other HDF5 call: keeps HDF5 from installing its exit-time
/// teardown, which crashes on a file whose close failed (full disk); our handles close files.
void prepare_library();

/// Owns one hid_t and closes it with the matching H5*close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& o) noexcept;
  ~Handle() { reset(); }
  /// Closes without checking (destructors, error paths).
  void reset();
  /// Forgets the id without closing it: for parallel files on an error path, where a close is
  /// a collective call the other ranks will never make (the job is about to be aborted).
  void release() { id_ = H5I_INVALID_HID; }
  /// Closes and throws H5Error if the library reports a failure (a close flushes cached data).
  void close(const std::string& what);
  hid_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

/// Element types the project stores.
enum class Dtype { F32, F64, I32, I64, U8 };
hid_t native_type(Dtype t);
template <class T> constexpr Dtype dtype_of();
template <> constexpr Dtype dtype_of<float>() { return Dtype::F32; }
template <> constexpr Dtype dtype_of<double>() { return Dtype::F64; }
template <> constexpr Dtype dtype_of<std::int32_t>() { return Dtype::I32; }
template <> constexpr Dtype dtype_of<std::int64_t>() { return Dtype::I64; }
template <> constexpr Dtype dtype_of<std::uint8_t>() { return Dtype::U8; }

/// Shape and stored element class of a dataset.
struct DatasetInfo {
  std::vector<hsize_t> dims;
  H5T_class_t type_class = H5T_NO_CLASS;
  std::size_t type_size = 0;
};

/// @brief An open HDF5 file.
class File {
 public:
  /// Opens an existing file read-only; throws with a clear message if missing or not HDF5.
  static File open_read(const std::string& path);
  /// Creates (truncates) a file for writing.
  static File create(const std::string& path);
  /// Opens an existing file for reading and writing (to continue an interrupted run).
  static File open_write(const std::string& path);
  /// Opens an existing file for reading and writing on every rank of `comm` with the MPI-IO
  /// driver (a collective call). Every later call that changes the file (create_*, set_rows,
  /// write_*, set_attribute, flush, close) is collective too: all ranks call it with the same
  /// arguments, except the block a rank writes, which may be empty (count 0) on some ranks.
  /// Data writes use collective MPI-IO transfers.
  static File open_parallel(const std::string& path, MPI_Comm comm);
  /// Parallel files: the largest transfer of one collective write (default 1 GiB; HDF5 1.10's
  /// MPI-IO driver refuses 2 GiB); larger blocks are written in pieces. Settable for tests.
  void set_max_transfer_bytes(std::size_t bytes) { max_transfer_bytes_ = bytes; }
  /// True for a file opened with open_parallel.
  bool parallel() const { return transfer_.valid(); }
  /// Drops the file without closing it (see Handle::release): for a parallel file whose job is
  /// failing, so that no rank blocks in a collective close.
  void abandon() {
    handle_.release();
    transfer_.reset();
  }
  const std::string& path() const { return path_; }
  hid_t id() const { return handle_.id(); }
  /// Flushes and closes the file; throws H5Error if any buffered data could not be written
  /// (full disk, file size limit), so a caller never treats a damaged file as complete.
  void close();

  bool exists(const std::string& object) const;
  DatasetInfo info(const std::string& dataset) const;

  /// Creates a dataset of `dims` (chunked along the first axis by `chunk_rows` rows, when > 0)
  /// and any intermediate groups.
  void create_dataset(const std::string& name, Dtype type, const std::vector<hsize_t>& dims,
                      hsize_t chunk_rows = 0);
  /// Creates a dataset whose first axis is unlimited (starting at dims[0], usually 0), chunked
  /// by `chunk_rows` (> 0) along it; the other axes are fixed.
  void create_extendible(const std::string& name, Dtype type, const std::vector<hsize_t>& dims,
                         hsize_t chunk_rows);
  /// Sets the first axis of an extendible dataset to `rows` (grows or shrinks it).
  void set_rows(const std::string& name, hsize_t rows);
  /// Writes the block starting at `start` of extent `count` (C order, converting from T); a
  /// block with a zero extent writes nothing (a rank with no share of a parallel write).
  template <class T>
  void write_block(const std::string& name, const std::vector<hsize_t>& start,
                   const std::vector<hsize_t>& count, const T* data);
  /// Writes a 1-D dataset of variable-length UTF-8 strings.
  void write_strings(const std::string& name, const std::vector<std::string>& values);
  /// Reads a 1-D dataset of strings (variable or fixed length).
  std::vector<std::string> read_strings(const std::string& name) const;
  /// Writes buffered data and metadata to disk (throws H5Error on failure).
  void flush();
  /// Writes rows [row0, row0 + rows) of a dataset from `data` (C order, converting from T).
  template <class T>
  void write_rows(const std::string& name, hsize_t row0, hsize_t rows, const T* data);
  /// Reads rows [row0, row0 + rows) of a dataset into `data` (C order, converting to T).
  template <class T>
  void read_rows(const std::string& name, hsize_t row0, hsize_t rows, T* data) const;
  /// Reads the block starting at `start` of extent `count` (C order, converting to T).
  template <class T>
  void read_block(const std::string& name, const std::vector<hsize_t>& start,
                  const std::vector<hsize_t>& count, T* data) const;
  /// Reads a whole dataset (any rank) converted to T.
  template <class T> std::vector<T> read_all(const std::string& name) const;

  /// Root or object attributes.
  void set_attribute(const std::string& name, const std::string& value,
                     const std::string& object = "/");
  void set_attribute(const std::string& name, std::int64_t value, const std::string& object = "/");
  void set_attribute(const std::string& name, double value, const std::string& object = "/");
  std::string string_attribute(const std::string& name, const std::string& object = "/") const;
  double double_attribute(const std::string& name, const std::string& object = "/") const;
  bool has_attribute(const std::string& name, const std::string& object = "/") const;

 private:
  File(Handle h, std::string path) : handle_(std::move(h)), path_(std::move(path)) {}
  hid_t transfer() const { return transfer_.valid() ? transfer_.id() : H5P_DEFAULT; }
  /// Creates dataset `name` of `type` with dataspace `space` and creation properties `dcpl`.
  void create_with(const std::string& name, Dtype type, hid_t space, hid_t dcpl);
  Handle handle_;
  Handle transfer_;  ///< collective MPI-IO data transfer (parallel files only)
  MPI_Comm comm_ = MPI_COMM_NULL;  ///< the ranks sharing a parallel file
  std::size_t max_transfer_bytes_ = std::size_t{1} << 30;
  std::string path_;
};

}  // namespace harsanyi::h5
