// The communicator wrapper: checked MPI collectives, or their one-rank identities.
#include "communicator.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include "mpi_check.h"

namespace harsanyi::mpi {

bool launched_by_mpi() {
  // mpirun (OpenMPI) sets OMPI_COMM_WORLD_SIZE; srun --mpi=pmix and mpirun set PMIX_RANK;
  // other PMI launchers set PMI_RANK.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(name)) return true;
  return false;
}

std::string host_name() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

Session::Session(int* argc, char*** argv) {
  if (!launched_by_mpi()) return;
  int provided = 0;
  // FUNNELED: OpenMP and LibTorch threads compute, only the main thread calls MPI.
  HARSANYI_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  if (provided < MPI_THREAD_FUNNELED)
    std::fprintf(stderr, "harsanyi: warning: the MPI library gives thread level %d, below "
                         "MPI_THREAD_FUNNELED (OpenMP threads run beside MPI calls)\n",
                 provided);
  // Errors come back as codes (checked by HARSANYI_MPI_CHECK) instead of aborting silently.
  HARSANYI_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
}

Session::~Session() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin) MPI_Finalize();
}

bool Session::active() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

struct Communicator::Owner {
  MPI_Comm comm = MPI_COMM_NULL;
  ~Owner() {
    if (comm != MPI_COMM_NULL && Session::active()) MPI_Comm_free(&comm);
  }
};

Communicator::Communicator(MPI_Comm comm, bool owned) : comm_(comm) {
  HARSANYI_MPI_CHECK(MPI_Comm_rank(comm, &rank_));
  HARSANYI_MPI_CHECK(MPI_Comm_size(comm, &size_));
  if (owned) {
    owner_ = std::make_shared<Owner>();
    owner_->comm = comm;
  }
}

Communicator Communicator::world() {
  if (!Session::active()) return Communicator();
  return Communicator(MPI_COMM_WORLD, false);
}

Communicator Communicator::split(int color, int key) const {
  if (!distributed()) return Communicator();
  MPI_Comm out = MPI_COMM_NULL;
  HARSANYI_MPI_CHECK(MPI_Comm_split(comm_, color, key, &out));
  return Communicator(out, true);
}

int Communicator::ranks_on_node() const {
  if (!distributed()) return 1;
  MPI_Comm node = MPI_COMM_NULL;
  HARSANYI_MPI_CHECK(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
  int n = 1;
  HARSANYI_MPI_CHECK(MPI_Comm_size(node, &n));
  HARSANYI_MPI_CHECK(MPI_Comm_free(&node));
  return n;
}

void Communicator::barrier() const {
  if (distributed()) HARSANYI_MPI_CHECK(MPI_Barrier(comm_));
}

void Communicator::idle_barrier() const {
  if (!distributed()) return;
  MPI_Request req = MPI_REQUEST_NULL;
  HARSANYI_MPI_CHECK(MPI_Ibarrier(comm_, &req));
  int done = 0;
  for (;;) {
    HARSANYI_MPI_CHECK(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
    if (done) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

double Communicator::max(double x) const {
  if (distributed()) HARSANYI_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_DOUBLE, MPI_MAX, comm_));
  return x;
}

std::int64_t Communicator::max(std::int64_t x) const {
  if (distributed())
    HARSANYI_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_INT64_T, MPI_MAX, comm_));
  return x;
}

std::int64_t Communicator::sum(std::int64_t x) const {
  if (distributed())
    HARSANYI_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_INT64_T, MPI_SUM, comm_));
  return x;
}

bool Communicator::any(bool flag) const {
  int f = flag ? 1 : 0;
  if (distributed()) HARSANYI_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &f, 1, MPI_INT, MPI_LOR, comm_));
  return f != 0;
}

void Communicator::broadcast(void* data, std::size_t bytes, int root) const {
  if (!distributed()) return;
  auto* p = static_cast<char*>(data);
  // MPI counts are int: large buffers go in pieces of 1 GiB.
  constexpr std::size_t kPiece = std::size_t{1} << 30;
  for (std::size_t off = 0; off < bytes; off += kPiece) {
    const int count = static_cast<int>(std::min(kPiece, bytes - off));
    HARSANYI_MPI_CHECK(MPI_Bcast(p + off, count, MPI_BYTE, root, comm_));
  }
}

void Communicator::broadcast(std::string& text, int root) const {
  if (!distributed()) return;
  std::uint64_t size = text.size();
  broadcast(&size, sizeof size, root);
  text.resize(size);
  broadcast(text.data(), size, root);
}

std::vector<double> Communicator::all_gather(const std::vector<double>& mine) const {
  if (!distributed()) return mine;
  std::vector<int> counts(static_cast<std::size_t>(size_)), displs(counts.size());
  int my = static_cast<int>(mine.size());
  HARSANYI_MPI_CHECK(MPI_Allgather(&my, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_));
  long long total = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    displs[r] = static_cast<int>(total);
    total += counts[r];
    if (total > INT32_MAX)
      throw std::invalid_argument("all_gather: more than 2^31 values in all (MPI counts are int)");
  }
  std::vector<double> all(static_cast<std::size_t>(total));  // total fits an int (checked)
  HARSANYI_MPI_CHECK(MPI_Allgatherv(mine.data(), my, MPI_DOUBLE, all.data(), counts.data(),
                                    displs.data(), MPI_DOUBLE, comm_));
  return all;
}

namespace {
std::vector<std::string>& abort_removals() {
  static std::vector<std::string> paths;
  return paths;
}
}  // namespace

void remove_on_abort(const std::string& path) { abort_removals().push_back(path); }

void forget_on_abort(const std::string& path) {
  auto& paths = abort_removals();
  paths.erase(std::remove(paths.begin(), paths.end(), path), paths.end());
}

std::vector<std::string> Communicator::gather(const std::string& mine, int root) const {
  if (!distributed()) return {mine};
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(rank_ == root ? static_cast<std::size_t>(size_) : 0), displs(lens.size());
  HARSANYI_MPI_CHECK(MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, root, comm_));
  long long total = 0;
  for (std::size_t r = 0; r < lens.size(); ++r) {
    displs[r] = static_cast<int>(total);
    total += lens[r];
    if (total > INT32_MAX) throw std::invalid_argument("gather: more than 2^31 bytes in all");
  }
  std::vector<char> all(static_cast<std::size_t>(total));
  HARSANYI_MPI_CHECK(MPI_Gatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(),
                                 displs.data(), MPI_CHAR, root, comm_));
  std::vector<std::string> out;
  for (std::size_t r = 0; r < lens.size(); ++r)
    out.emplace_back(all.data() + displs[r], static_cast<std::size_t>(lens[r]));
  return out;
}

void abort_job(const std::string& message, int code) {
  for (const std::string& path : abort_removals()) std::remove(path.c_str());
  if (Session::active()) {
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    // When every rank fails alike (a bad config), rank 0's message and abort come first and
    // the others are ended before they repeat it; a failure of one rank alone is still printed.
    if (rank != 0 && size > 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::fprintf(stderr, "harsanyi (rank %d of %d, %s): %s\n", rank, size,
                 host_name().c_str(), message.c_str());
    std::fflush(stderr);
    if (size > 1) MPI_Abort(MPI_COMM_WORLD, code);
    MPI_Finalize();
  } else {
    std::fprintf(stderr, "harsanyi: error: %s\n", message.c_str());
  }
  std::exit(code);
}

}  // namespace harsanyi::mpi
