/// @file output_file.h
/// @brief An HDF5 output that never looks complete unless it is: written as OUT.part, closed with
/// every flush checked, marked `complete` = 1 and renamed to OUT only then; removed on any failure.
#pragma once

#include <memory>
#include <string>

#include "communicator.h"
#include "h5_wrappers.h"

namespace harsanyi {

/// The current time as ISO 8601 UTC ("2026-11-23T01:02:03Z"), for `created_utc` attributes.
std::string utc_now();

class OutputFile {
 public:
  /// Refuses an existing OUT unless `force`, a directory, or a missing parent directory
  /// (UserError); creates OUT.part. With a distributed communicator (a collective call), rank 0
  /// creates OUT.part and every rank opens it with MPI-IO (h5::File::open_parallel): the
  /// datasets and attributes are then created and written collectively.
  OutputFile(const std::string& out, bool force,
             const mpi::Communicator& comm = mpi::Communicator::serial());
  /// Removes OUT.part unless commit() succeeded.
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  h5::File& operator*() { return *file_; }
  h5::File* operator->() { return file_.get(); }
  /// Writes `complete` = 1, flushes and closes (throwing on any write failure), renames to OUT
  /// (rank 0, once every rank has closed the file).
  void commit();

  /// The refusals of the constructor, for checks before any work starts.
  static void check_target(const std::string& out, bool force);

 private:
  std::string final_, temp_;
  std::unique_ptr<h5::File> file_;
  mpi::Communicator comm_;
  bool committed_ = false;
};

}  // namespace harsanyi
