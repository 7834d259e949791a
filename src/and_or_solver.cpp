// Dispatch of the AND-OR fit over solvers and devices. See and_or_solver.h.
#include "and_or_solver.h"

#include <limits>
#include <stdexcept>

#include "cuda_backend.h"
#include "user_error.h"

namespace harsanyi {

const char* and_or_solver_names() { return "sgd, optimal"; }

void check_solver_options(const SolverOptions& o) {
  if (o.solver != "sgd" && o.solver != "optimal")
    throw UserError("--solver '" + o.solver + "' is not available (this build has: " +
                    and_or_solver_names() + ")");
  if (o.solver == "sgd") {
    if (o.sgd.iters < 1) throw UserError("--iters must be at least 1");
    if (!(o.sgd.lr > 0)) throw UserError("--lr must be positive");
    if (!(o.sgd.qthres >= 0)) throw UserError("--qthres must be >= 0");
    if (o.sgd.trace_every < 0) throw UserError("--trace-every must be >= 0");
  } else {
    if (!(o.optimal.tol > 0 && o.optimal.tol < 1))
      throw UserError("--tol must be in (0, 1) (a relative gap such as 1e-3)");
    if (o.optimal.max_iters < 1) throw UserError("--max-iters must be at least 1");
    if (!(o.optimal.qthres >= 0)) throw UserError("--qthres must be >= 0");
    if (o.optimal.trace_every < 0) throw UserError("--trace-every must be >= 0");
    if (o.optimal.check_every < 1) throw UserError("the check interval must be at least 1");
  }
}

template <class T>
void fit_and_or_batch(const T* v, std::size_t samples, int n, const SolverOptions& opt, bool gpu,
                      AndOrBatch<T>& out, Progress* progress,
                      const cuda::DeviceEpilogue<T>* epilogue) {
  if (epilogue && !gpu) throw std::logic_error("fit_and_or_batch: a device epilogue on the CPU");
  if (opt.solver == "optimal") {
    if (gpu)
      cuda::fit_and_or_optimal_batch(v, samples, n, opt.optimal, out, progress,
                                     cuda::Launch::Graph, epilogue);
    else
      fit_and_or_optimal_batch(v, samples, n, opt.optimal, out, progress);
    return;
  }
  if (opt.solver != "sgd") check_solver_options(opt);
  if (gpu)
    cuda::fit_and_or_sgd_batch(v, samples, n, opt.sgd, out, progress, cuda::SgdKernel::Auto,
                               epilogue);
  else
    fit_and_or_sgd_batch(v, samples, n, opt.sgd, out, progress);
  out.bound.assign(samples, std::numeric_limits<double>::quiet_NaN());
  out.iterations.assign(samples, opt.sgd.iters);
}

std::size_t and_or_bytes_per_sample(const SolverOptions& opt, int n, std::size_t element_size) {
  return opt.solver == "optimal" ? optimal_bytes_per_sample(n, element_size)
                                 : sgd_bytes_per_sample(n, element_size);
}

std::size_t and_or_device_bytes_per_sample(const SolverOptions& opt, int n,
                                           std::size_t element_size) {
  return opt.solver == "optimal" ? cuda::optimal_device_bytes_per_sample(n, element_size)
                                 : cuda::sgd_device_bytes_per_sample(n, element_size);
}

int and_or_trace_length(const SolverOptions& opt) {
  return opt.solver == "optimal" ? optimal_trace_length(opt.optimal)
                                 : trace_length(opt.sgd.iters, opt.sgd.trace_every);
}

const char* and_or_progress_unit(const SolverOptions& opt) {
  return opt.solver == "optimal" ? "samples" : "it";
}

std::uint64_t and_or_progress_work(const SolverOptions& opt, std::size_t samples) {
  if (opt.solver == "optimal") return samples;
  return static_cast<std::uint64_t>(samples) * static_cast<std::uint64_t>(opt.sgd.iters);
}

#define HARSANYI_INSTANTIATE(T)                                                                  \
  template void fit_and_or_batch<T>(const T*, std::size_t, int, const SolverOptions&, bool,     \
                                    AndOrBatch<T>&, Progress*, const cuda::DeviceEpilogue<T>*);
HARSANYI_INSTANTIATE(float)
HARSANYI_INSTANTIATE(double)
#undef HARSANYI_INSTANTIATE

}  // namespace harsanyi
