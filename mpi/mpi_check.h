/// @file mpi_check.h
/// @brief Checked MPI calls: a failing call throws with the call, rank, host and file:line.
#pragma once

#include <mpi.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

namespace harsanyi::mpi {

/// Throws std::runtime_error describing a failed MPI call (used by HARSANYI_MPI_CHECK).
[[noreturn]] inline void mpi_failure(int code, const char* call, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(code, text, &len);
  int rank = -1, initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  throw std::runtime_error(std::string(call) + " failed: " + text + " (rank " +
                           std::to_string(rank) + " on " + host + ", " + file + ":" +
                           std::to_string(line) + ")");
}

}  // namespace harsanyi::mpi

/// Checks the return code of an MPI call.
#define HARSANYI_MPI_CHECK(call)                                                      \
  do {                                                                                \
    const int harsanyi_mpi_rc_ = (call);                                              \
    if (harsanyi_mpi_rc_ != MPI_SUCCESS)                                              \
      ::harsanyi::mpi::mpi_failure(harsanyi_mpi_rc_, #call, __FILE__, __LINE__);      \
  } while (0)
