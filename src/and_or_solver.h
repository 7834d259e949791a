/// @file and_or_solver.h
/// @brief One entry point for the AND-OR fit of a batch, whatever the solver (sgd | optimal) and
/// device (CPU | CUDA): used by `harsanyi extract` and `harsanyi run`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "optimal_solver.h"
#include "sgd_solver.h"

namespace harsanyi {
namespace cuda {
template <class T> struct DeviceEpilogue;
}

class Progress;

/// @brief Which solver and its parameters. `solver` is "sgd" (the papers' protocol) or
/// "optimal" (the exact LP optimum to a relative tolerance, with a certified bound).
struct SolverOptions {
  std::string solver = "sgd";
  SgdOptions sgd;
  OptimalOptions optimal;
};

/// Names of the available solvers, for messages ("sgd, optimal").
const char* and_or_solver_names();

/// @brief Throws UserError (with the option names of the command line) when the options are
/// invalid: unknown solver, iterations, learning rate, tolerance, qthres, trace interval.
void check_solver_options(const SolverOptions& opt);

/// @brief Fits a batch of samples with the chosen solver, on the GPU when `gpu` is true (the
/// caller has checked one is usable). With `gpu`, `v` may be in device memory (the masked
/// forward's output on the GPU, finished); without, it must be host memory. Fills every member
/// of `out`: and_, or_ (raw), p, q, loss, trace, bound (NaN for sgd) and iterations.
/// `epilogue` (GPU only; cuda_backend.h): work on the device rows before they come back (which
/// may change I_and, I_or in place, e.g. fold them), and which of them come back (those not
/// asked for are left empty); without one, every member is filled as said above.
template <class T>
void fit_and_or_batch(const T* v, std::size_t samples, int n, const SolverOptions& opt, bool gpu,
                      AndOrBatch<T>& out, Progress* progress = nullptr,
                      const cuda::DeviceEpilogue<T>* epilogue = nullptr);

/// Host bytes per sample of the chosen solver (values, outputs and work arrays).
std::size_t and_or_bytes_per_sample(const SolverOptions& opt, int n, std::size_t element_size);

/// Device bytes per sample of the chosen solver on the GPU.
std::size_t and_or_device_bytes_per_sample(const SolverOptions& opt, int n,
                                           std::size_t element_size);

/// Trace entries per sample of the chosen solver (0 when no trace is asked for).
int and_or_trace_length(const SolverOptions& opt);

/// Progress unit of the chosen solver ("it" for sgd, "samples" for optimal).
const char* and_or_progress_unit(const SolverOptions& opt);

/// Progress work of `samples` samples in that unit (sgd: samples·iters; optimal: samples).
std::uint64_t and_or_progress_work(const SolverOptions& opt, std::size_t samples);

}  // namespace harsanyi
