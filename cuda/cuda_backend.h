/// @file cuda_backend.h
/// @brief Host API of the CUDA kernels: lattice transforms on device arrays, the sgd and optimal
/// solvers, and the masked forward's device side (v from the logits, device buffers and copies).
///
/// Pure C++ header: no CUDA and no LibTorch headers are needed to include it. Device pointers are
/// raw pointers to device memory; streams are passed as `Stream` (the same type as cudaStream_t).
/// Every call checks its CUDA calls and kernel launches and throws std::runtime_error naming the
/// call, file:line and host on failure. In builds without CUDA, only device_count() exists and
/// returns 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

struct CUstream_st;

namespace harsanyi {
struct SgdOptions;
struct OptimalOptions;
template <class T> struct AndOrBatch;
class Progress;
}  // namespace harsanyi

namespace harsanyi::cuda {

using Stream = CUstream_st*;  ///< identical to cudaStream_t

/// @brief Number of usable CUDA devices; 0 when the build has no CUDA, no driver is installed
/// (cudaErrorInsufficientDriver) or no device is present. `reason` (if given) receives a one-line
/// explanation when the count is 0.
int device_count(std::string* reason = nullptr);

/// @brief Name and memory of device 0 ("NVIDIA H100 80GB HBM3, 79.1 GiB"), or "" without one.
std::string device_description();

/// @brief Free bytes of device memory on the current device.
std::size_t device_free_bytes();

/// @brief Device memory owned by host code that does not include CUDA headers: `bytes` bytes of
/// cudaMalloc on the current device (none for 0), freed on destruction; movable, not copyable.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  std::size_t bytes() const { return bytes_; }
  template <class T> T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

/// @brief True when `p` points into device (or managed) memory of the CUDA runtime, false for
/// host memory and null.
bool is_device_pointer(const void* p);

/// @brief Synchronous checked copy of `bytes` bytes between any two of host and device memory
/// (the direction is found from the pointers); nothing for 0 bytes.
void copy_bytes(void* dst, const void* src, std::size_t bytes);

/// @brief The values v of masked rows from their logits, computed on the device: for each of
/// `rows` rows of `classes` float32 logits at d_logits (row-major, device memory),
/// d_v[i] = harsanyi::output_value(row i, classes, label, log_odds) (src/network.h), the same
/// float64 operations in the same order with CUDA's exp and log (which may differ from the
/// host's libm in the last bit, so v on the GPU is consistent whatever the chunking or the rank
/// count, not bitwise the CPU's). Queued on `stream`; no synchronisation.
void output_values(const float* d_logits, std::size_t rows, int classes, int label,
                   bool log_odds, double* d_v, Stream stream);

/// @brief Subtracts each row's first element from the whole row in place (v(S) −= v(∅), as
/// harsanyi::subtract_empty does on the host, bitwise): `rows` rows of `len` doubles in device
/// memory. Queued on `stream`.
void subtract_first(double* d_rows, std::size_t rows, std::uint64_t len, Stream stream);

/// @brief Waits for the work queued on `stream` (nullptr: the legacy default stream, the one
/// LibTorch uses unless told otherwise).
void synchronize(Stream stream);

/// @brief Index of the first element of d[0, count) in device memory that is NaN or infinite,
/// or `count` when all are finite. Synchronises `stream` (the result comes to the host).
std::uint64_t first_nonfinite(const double* d, std::uint64_t count, Stream stream);

/// Which butterfly: the same four operations as the CPU kernels in src/lattice_transforms.h.
enum class LatticeOp { Moebius, MoebiusTranspose, Zeta, ZetaTranspose };

/// How lattice_transform splits the bits of a row into passes over the array; every choice does
/// the bits in increasing order for every element with the CPU's operations (float64 bitwise
/// equal to the CPU). Each pass reads and writes the whole array once.
enum class LatticePasses {
  Auto,     ///< Cluster from n = kAutoClusterMinPlayers (measured faster there on an H100),
            ///< Columns below
  Columns,  ///< a tile pass over the low 11 bits, then passes over groups of at most 9 bits:
            ///< 2 passes up to n = 20, 3 up to n = 29
  Cluster,  ///< n = 21..28 (29 in float) on compute capability >= 9.0: 2 passes through 128 KiB of shared
            ///< memory per block, the second across a cluster of 2 or 4 blocks (distributed
            ///< shared memory); Columns for other n and on older devices
};

/// Smallest n for which LatticePasses::Auto takes the cluster passes.
inline constexpr int kAutoClusterMinPlayers = 25;

/// @brief Passes over the array lattice_transform makes for rows of 2^n elements of
/// `element_size` bytes with `passes` on the current device (Cluster falls back to Columns where
/// it does not apply); 0 for n = 0.
int lattice_pass_count(LatticePasses passes, int n, std::size_t element_size);

/// @brief In-place transform of `samples` rows of 2^n elements in device memory.
template <class T>
void lattice_transform(LatticeOp op, T* d_data, int n, std::size_t samples, Stream stream,
                       LatticePasses passes = LatticePasses::Auto);
/// @brief In-place OR transform (DESIGN §2) on device rows.
template <class T> void or_transform(T* d_data, int n, std::size_t samples, Stream stream);
/// @brief In-place transpose of the OR transform on device rows.
template <class T> void or_transform_transpose(T* d_data, int n, std::size_t samples, Stream stream);

/// @brief What a GPU fit does with its outputs on the device before they come back to the host
/// (an optional argument of the fits): a hook on the device rows, and which arrays to copy.
template <class T> struct DeviceEpilogue {
  /// Called once after the fit, on the fit's stream, with the batch's I_and, I_or and v rows in
  /// device memory ([samples, 2^n] each; after the loss). It may change I_and and I_or in place
  /// (e.g. the lab's folding): the host copies then hold the changed rows. Empty: no call.
  std::function<void(T* d_and, T* d_or, const T* d_v, Stream stream)> on_device;
  bool copy_interactions = true;  ///< false: out.and_ and out.or_ come back empty
  bool copy_pq = true;            ///< false: out.p and out.q come back empty
};

/// How the GPU sgd runs its iterations; all give bitwise the same results.
enum class SgdKernel {
  Auto,    ///< Fused for n <= 12, else Staged
  Fused,   ///< one block per sample, the sample in shared memory, 256 iterations per launch
  Staged,  ///< one launch per step (combine, transform, sign, transpose, update) over the batch
};

/// @brief The sgd protocol of DESIGN §2.1 on the GPU for a batch of samples: copies v in (from
/// host or device memory: `values` may be a device pointer, e.g. the masked forward's output;
/// the work that writes it must be finished, as the fit reads it on a stream of its own),
/// iterates on the device, copies I_and, I_or, p, q, loss and trace back into `out` (with an
/// epilogue: after its hook, and only the arrays it asks for; the others come back empty).
/// Same semantics as harsanyi::fit_and_or_sgd_batch.
template <class T>
void fit_and_or_sgd_batch(const T* values, std::size_t samples, int n, const SgdOptions& opt,
                          AndOrBatch<T>& out, Progress* progress = nullptr,
                          SgdKernel kernel = SgdKernel::Auto,
                          const DeviceEpilogue<T>* epilogue = nullptr);

/// How a GPU solver issues the launches of an iteration; both give bitwise the same results.
enum class Launch {
  Graph,   ///< captured once as a CUDA graph, replayed every iteration (fewer launch overheads)
  Direct,  ///< one launch after the other
};

/// @brief The optimal solver (src/optimal_solver.h) on the GPU for a batch of samples (`values`
/// in host or device memory, finished as for the sgd fit; from the device, one host copy is kept
/// for the crossovers; `epilogue` as for the sgd fit): every
/// sample's PDHG iterations, restarts and certificate on the device, the
/// crossovers (restricted LPs) on the host at the checks. Same semantics as
/// harsanyi::fit_and_or_optimal_batch (float64 results equal the CPU's bitwise); fills and_,
/// or_, p, q, loss, trace, bound and iterations. `progress` advances by one per finished sample.
/// Where the GPU optimal fit's time went (for benchmarks; an optional last argument). With it,
/// every check first waits for the iterations before it, so the split is exact; without it, the
/// fit does not wait there.
struct OptimalTimes {
  double iterate_s = 0.0;    ///< the batch's iterations on the device (launch to completion)
  double check_s = 0.0;      ///< the checks: loss and certificate on the device, their copies
                             ///< and the host's bookkeeping
  double crossover_s = 0.0;  ///< the crossovers on the host, with their copies
  double other_s = 0.0;      ///< allocation, uploads, the final outputs and their copies
  std::int64_t iterations = 0;  ///< iterations of the batch (its longest-running sample)
  std::int64_t checks = 0;
  std::int64_t crossovers = 0;  ///< crossover attempts (all samples)
};

template <class T>
void fit_and_or_optimal_batch(const T* values, std::size_t samples, int n,
                              const OptimalOptions& opt, AndOrBatch<T>& out,
                              Progress* progress = nullptr, Launch launch = Launch::Graph,
                              const DeviceEpilogue<T>* epilogue = nullptr,
                              OptimalTimes* times = nullptr);

/// @brief Device bytes the GPU optimal fit needs per sample (19 arrays of 2^n elements, 3 of
/// 2^n doubles, chunk sums and scalars); the step sizes (4 arrays of 2^n) come once on top.
std::size_t optimal_device_bytes_per_sample(int n, std::size_t element_size);

/// @brief Device bytes the GPU sgd fit needs per sample (7 arrays of 2^n elements and a few
/// scalars); the loss trace, 8 bytes per recorded entry, comes on top.
std::size_t sgd_device_bytes_per_sample(int n, std::size_t element_size);

}  // namespace harsanyi::cuda
