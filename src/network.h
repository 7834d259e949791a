/// @file network.h
/// @brief A classifier network (built-in LibTorch model or per-epoch TorchScript files) behind a
/// LibTorch-free interface: training, evaluation, checkpoints, and the values v(x_S) of masked
/// inputs (DESIGN §1, §3). Only network.cpp (and its helpers) include LibTorch.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "dataset.h"
#include "players.h"

namespace harsanyi {

/// Training hyper-parameters ([train] of the study config).
struct TrainOptions {
  std::string optimizer = "sgd";  ///< sgd | adam
  double lr = 0.01;
  double momentum = 0.9;          ///< sgd only
  double weight_decay = 0.0;
  std::int64_t batch = 128;
  std::uint64_t seed = 0;         ///< the shuffle of epoch e uses a generator seeded by (seed, e)
};

/// Mean cross-entropy loss and accuracy over a set of samples.
struct EvalStats {
  double loss = 0.0;
  double accuracy = 0.0;
};

/// The scalar output v of a masked input (DESIGN §1).
struct OutputSpec {
  bool log_odds = true;         ///< gt-log-odds (true) or gt-logit (false)
  bool subtract_empty = true;   ///< the "-v0" suffix: v(S) -= v(∅)
  static OutputSpec parse(const std::string& name);  ///< "gt-log-odds-v0" etc.; throws UserError
};

/// One sample's share of a packed masked forward (Network::masked_values_packed): the subsets
/// [first, first + count) of sample `index` of `*data`, with `label` as the class y.
struct MaskedRequest {
  const Dataset* data = nullptr;  ///< the sample's split (all requests of a call: one shape)
  std::int64_t index = 0;         ///< the sample in *data
  int label = 0;                  ///< the class y of v
  std::uint64_t first = 0;        ///< first subset (bit i = player i)
  std::uint64_t count = 0;        ///< number of subsets
  double* v = nullptr;            ///< receives `count` values
  bool on_device = false;         ///< v is device memory (only when Network::values_on_device())
};

/// @brief A classifier: a built-in architecture trained here, or TorchScript checkpoints.
class Network {
 public:
  /// Built-in architecture: "mlp" | "lenet" | "vgg11s"; weights initialised from `seed`
  /// (deterministic on the CPU). `input_shape` is the per-sample shape of the dataset.
  static std::unique_ptr<Network> build(const std::string& arch,
                                        const std::vector<std::int64_t>& input_shape,
                                        int num_classes, std::uint64_t seed);
  /// A TorchScript module saved from PyTorch (torch.jit.save); evaluation only.
  static std::unique_ptr<Network> load_torchscript(const std::string& path);

  virtual ~Network() = default;
  virtual std::string description() const = 0;  ///< e.g. "lenet (61706 parameters)"
  virtual bool trainable() const = 0;            ///< false for TorchScript checkpoints

  /// "cpu" or "cuda" (throws UserError when CUDA is not available to LibTorch).
  virtual void to_device(const std::string& device) = 0;

  /// One epoch of training over `indices` of `data` (shuffled with (opt.seed, epoch)), with
  /// `labels` (possibly noisy) in place of data.labels. Returns the mean training loss/accuracy
  /// seen during the epoch. The optimizer is created on the first call and kept.
  virtual EvalStats train_epoch(const Dataset& data, const std::vector<std::int64_t>& indices,
                                const std::vector<std::int32_t>& labels, const TrainOptions& opt,
                                int epoch) = 0;
  /// Loss and accuracy (eval mode, no gradients) of `indices` with `labels`: the per-batch sums
  /// of evaluate_sums added in batch order, divided by the count.
  EvalStats evaluate(const Dataset& data, const std::vector<std::int64_t>& indices,
                     const std::vector<std::int32_t>& labels, std::int64_t batch);
  /// Per batch of `batch` consecutive `indices`: the summed cross-entropy loss and the number of
  /// correct predictions (eval mode, no gradients). A distributed evaluation gives each rank
  /// whole batches and adds the gathered sums in batch order: the same result on any rank count.
  virtual void evaluate_sums(const Dataset& data, const std::vector<std::int64_t>& indices,
                             const std::vector<std::int32_t>& labels, std::int64_t batch,
                             std::vector<double>& loss_sums,
                             std::vector<std::int64_t>& correct) = 0;
  /// Predicted classes of `indices`.
  virtual std::vector<std::int32_t> predict(const Dataset& data,
                                            const std::vector<std::int64_t>& indices,
                                            std::int64_t batch) = 0;

  /// Model and optimizer state, so that training resumed from a checkpoint is bitwise equal to
  /// an uninterrupted run. Writes `path` atomically (path.part, then rename).
  virtual void save_checkpoint(const std::string& path) const = 0;
  virtual void load_checkpoint(const std::string& path) = 0;

  /// v(x_S) for all 2^n subsets S of sample `index` (bit i of S = player i), with `label` as
  /// the class y. The masked inputs are built as tensors in chunks of `batch` subsets and
  /// forwarded in eval mode; v is computed in float64 from the float32 logits.
  /// `v` receives 2^layout.n values.
  void masked_values(const Dataset& data, std::int64_t index, int label,
                     const PlayerLayout& layout, const OutputSpec& output, std::int64_t batch,
                     double* v);
  /// The same for the subsets [first, first + count) only (v receives count values, chunks of
  /// `batch` starting at `first`), without subtracting v(empty) (the caller holding subset 0
  /// does it, see subtract_empty): the block of a rank that shares a sample's subsets.
  /// masked_values_packed with this one request.
  void masked_values_range(const Dataset& data, std::int64_t index, int label,
                           const PlayerLayout& layout, const OutputSpec& output, std::int64_t batch,
                           std::uint64_t first, std::uint64_t count, double* v);
  /// @brief v(x_S) of several samples' subset ranges in one pass, without subtracting v(empty).
  /// The requests' masked inputs, in request order, are packed consecutively into chunks of
  /// `batch` rows, so that a chunk may hold the end of one request and the start of the next:
  /// with 2^n (or a rank's block) below `batch`, every forward but the last is still full.
  /// Each request's v is bitwise what masked_values_range gives for it alone with the same
  /// `batch` when the model computes every row of a batch independently of the others, as the
  /// built-in models do on the CPU (network.cpp, chunk_logits: one-row chunks are padded).
  /// All requests are checked (layout, sample index, subset range, one sample shape) before
  /// the first forward; UserErrors name the offending request's sample, as masked_values_range.
  /// With values_on_device(), v is computed on the device and each request's v may be host or
  /// device memory (on_device); the call returns once every v is written.
  virtual void masked_values_packed(const std::vector<MaskedRequest>& requests,
                                    const PlayerLayout& layout, const OutputSpec& output,
                                    std::int64_t batch) = 0;

  /// @brief True when the network runs on the CUDA device that harsanyi's kernels use: its
  /// masked forwards then compute v on the device (cuda::output_values) and may write it into
  /// device memory (MaskedRequest::on_device), with no host round trip. v then uses CUDA's exp
  /// and log whatever the destination, so it is the same for every chunking and rank count.
  virtual bool values_on_device() const { return false; }

  /// Number of classes of the built-in model; for TorchScript, known after the first forward
  /// (0 before).
  virtual int num_classes() const { return 0; }
  /// @brief Plain batched inference (for benchmarks and tests): the float32 logits of `count`
  /// pre-built inputs, forwarded in chunks of `batch` in eval mode without gradients.
  /// @param inputs [count, sample_shape...] row-major
  /// @param logits resized to [count, classes]; num_classes() is known afterwards
  virtual void forward(const float* /*inputs*/, const std::vector<std::int64_t>& /*sample_shape*/,
                       std::int64_t /*count*/, std::int64_t /*batch*/,
                       std::vector<float>& /*logits*/) {
    throw std::logic_error("Network::forward is not implemented by this network");
  }
  /// All parameters, flattened in the model's order (a snapshot, e.g. to compare two runs
  /// bitwise or to measure how far the weights moved).
  virtual std::vector<float> parameter_values() const {
    throw std::logic_error("Network::parameter_values is not implemented by this network");
  }
};

/// True when the LibTorch this build links can run models on a CUDA GPU.
bool torch_cuda_available();

/// Sets the number of threads LibTorch uses for its CPU kernels (torch::set_num_threads).
void set_torch_threads(int threads);

/// v(S) - v(empty) for every S when `output` asks for it (v holds all 2^n values, subset 0
/// first); nothing otherwise.
void subtract_empty(const OutputSpec& output, double* v, std::uint64_t len);

/// @brief The masked inputs x_S of subsets S = first_subset .. first_subset+count-1, built by the
/// same tensor code as Network::masked_values (on the CPU).
/// @param layout players and baseline; layout.owner.size() elements per sample
/// @param x the unmasked sample (layout.owner.size() floats)
/// @param first_subset index of the first subset (bit i = player i)
/// @param count number of subsets
/// @param out receives [count, owner.size()] floats
void build_masked_batch(const PlayerLayout& layout, const float* x, std::uint64_t first_subset,
                        std::int64_t count, float* out);

/// @brief v of one input from its float32 logits, computed in double (DESIGN §1).
/// log_odds: p = softmax(logits)[y] (max-subtracted), v = log(p / (1 - p + 1e-7) + 1e-7);
/// otherwise v = logits[y].
double output_value(const float* logits, int classes, int y, bool log_odds);

/// @brief The order in which an epoch visits `indices`: a Fisher-Yates shuffle driven by a
/// std::mt19937_64 seeded with splitmix64(splitmix64(seed) + epoch), each draw j in [0, i]
/// taken by Lemire's multiply-and-reject (no std::uniform_int_distribution, whose results
/// differ between standard libraries). The same on every platform.
std::vector<std::int64_t> shuffle_for_epoch(const std::vector<std::int64_t>& indices,
                                            std::uint64_t seed, int epoch);

/// Checks a layout against a per-sample size: owner and baseline sizes, owners in
/// [kAlwaysBaseline, n), 0 <= n <= 40. Throws UserError with what is wrong.
void check_layout(const PlayerLayout& layout, std::int64_t sample_size);

}  // namespace harsanyi
