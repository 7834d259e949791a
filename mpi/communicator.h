/// @file communicator.h
/// @brief The MPI layer's communicator: checked collectives on an MPI_Comm, or a serial stand-in
/// (one rank, every collective the identity) when harsanyi was not started by mpirun or srun.
///
/// Every call is checked (HARSANYI_MPI_CHECK: the call, rank, host and file:line). A failure on
/// one rank ends the whole job through abort_job() instead of leaving the others waiting in a
/// collective.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace harsanyi::mpi {

/// True when the process was started by an MPI launcher (mpirun, or srun with PMIx): MPI is
/// initialised only then, so a plain `harsanyi ...` needs no MPI runtime at all.
bool launched_by_mpi();

/// This machine's host name.
std::string host_name();

/// @brief MPI_Init_thread / MPI_Finalize for the process, when launched by an MPI launcher.
class Session {
 public:
  Session(int* argc, char*** argv);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  /// True when MPI is initialised (the job has one or more ranks under a launcher).
  static bool active();
};

/// @brief A group of ranks (a wrapped MPI_Comm), or the serial stand-in.
class Communicator {
 public:
  /// MPI_COMM_WORLD when MPI is active, else the serial stand-in.
  static Communicator world();
  /// One rank and no MPI (every collective is the identity).
  static Communicator serial() { return Communicator(); }

  /// MPI_COMM_NULL for the serial stand-in.
  MPI_Comm comm() const { return comm_; }
  /// True for a real MPI communicator (even of one rank): files are then opened with MPI-IO.
  bool distributed() const { return comm_ != MPI_COMM_NULL; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool root() const { return rank_ == 0; }

  /// MPI_Comm_split (the serial stand-in splits into itself). The result frees its MPI_Comm.
  Communicator split(int color, int key) const;
  /// Ranks of this communicator that share this rank's node (MPI_COMM_TYPE_SHARED).
  int ranks_on_node() const;

  void barrier() const;
  /// A barrier that sleeps while it waits (MPI_Ibarrier polled every few ms), so ranks waiting
  /// for rank 0's training leave the cores to it instead of spinning.
  void idle_barrier() const;

  double max(double x) const;
  std::int64_t max(std::int64_t x) const;
  std::int64_t min(std::int64_t x) const { return -max(-x); }
  std::int64_t sum(std::int64_t x) const;
  /// True when `flag` holds on any rank.
  bool any(bool flag) const;

  /// Root's bytes to every rank (sizes need not be known in advance).
  void broadcast(std::string& text, int root = 0) const;
  template <class T> void broadcast(std::vector<T>& v, int root = 0) const;
  void broadcast(void* data, std::size_t bytes, int root = 0) const;

  /// Every rank's `mine` concatenated in rank order, on every rank.
  std::vector<double> all_gather(const std::vector<double>& mine) const;
  /// Every rank's text, in rank order, on `root` (empty on the other ranks).
  std::vector<std::string> gather(const std::string& mine, int root = 0) const;

 private:
  Communicator() = default;
  Communicator(MPI_Comm comm, bool owned);
  struct Owner;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::shared_ptr<Owner> owner_;  // frees a communicator made by split()
};

template <class T> void Communicator::broadcast(std::vector<T>& v, int root) const {
  if (!distributed()) return;
  std::uint64_t count = v.size();
  broadcast(&count, sizeof count, root);
  v.resize(count);
  broadcast(v.data(), count * sizeof(T), root);
}

/// Registers a temporary output that abort_job deletes (any rank may: the file system is shared),
/// so that a job failing on another rank than 0 leaves no OUT.part behind.
void remove_on_abort(const std::string& path);
/// Unregisters it (the output was committed or removed).
void forget_on_abort(const std::string& path);

/// @brief Ends the job after a failure on this rank: prints `message` with the rank and host on
/// stderr and calls MPI_Abort on MPI_COMM_WORLD (so no rank waits forever in a collective), or
/// exits when MPI is not active.
[[noreturn]] void abort_job(const std::string& message, int code);

}  // namespace harsanyi::mpi
