// Network: built-in LibTorch models and TorchScript checkpoints behind network.h; training,
// checkpoints, and the values v(x_S) of masked inputs built with a few tensor ops per chunk.
// The only translation unit of the project that includes LibTorch.
#include "network.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "cuda_backend.h"
#include "user_error.h"

namespace harsanyi {

namespace {

// On the GPU, LibTorch may pick cuDNN's convolution algorithms by timing them or by the free
// memory at the moment (so two identical runs can differ) and computes float32 convolutions in
// TF32 (10-bit mantissas). A study must be bitwise reproducible and its v(S) exact to float32
// rounding, since interactions are differences of many v(S): fixed deterministic algorithms,
// full float32 precision.
void use_reproducible_cuda_kernels() {
  auto& context = at::globalContext();
  context.setBenchmarkCuDNN(false);
  context.setDeterministicCuDNN(true);
  context.setAllowTF32CuDNN(false);
  context.setAllowTF32CuBLAS(false);
}

constexpr std::int64_t kCheckpointFormat = 1;

bool file_exists(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return f.good();
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "{";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "}";
}

// The first line of a LibTorch error (the rest is a C++ stack trace).
std::string first_line(const char* what) {
  std::string s = what;
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// ---------------------------------------------------------------------------------------------
// Built-in architectures

torch::nn::Sequential build_mlp(std::int64_t in_features, int classes) {
  return torch::nn::Sequential(torch::nn::Flatten(), torch::nn::Linear(in_features, 256),
                               torch::nn::ReLU(), torch::nn::Linear(256, 128), torch::nn::ReLU(),
                               torch::nn::Linear(128, classes));
}

// Output size of `features` for one input of `shape` ({C, H, W}); a UserError if it is too
// small for the architecture.
std::int64_t flat_size(torch::nn::Sequential& features, const std::vector<std::int64_t>& shape,
                       const std::string& arch) {
  std::vector<std::int64_t> dims = {1};
  dims.insert(dims.end(), shape.begin(), shape.end());
  try {
    torch::NoGradGuard no_grad;
    const torch::Tensor out = features->forward(torch::zeros(dims));
    if (out.numel() == 0) throw UserError("");
    return out.numel();
  } catch (const std::exception&) {
    throw UserError("model " + arch + ": the input shape " + shape_text(shape) +
                    " is too small for this architecture");
  }
}

torch::nn::Sequential build_lenet(const std::vector<std::int64_t>& shape, int classes) {
  using namespace torch::nn;
  Sequential features(Conv2d(Conv2dOptions(shape[0], 6, 5).padding(2)), ReLU(),
                      MaxPool2d(MaxPool2dOptions(2)), Conv2d(Conv2dOptions(6, 16, 5)), ReLU(),
                      MaxPool2d(MaxPool2dOptions(2)));
  const std::int64_t flat = flat_size(features, shape, "lenet");
  Sequential model;
  for (const auto& m : *features) model->push_back(m);
  model->push_back(Flatten());
  model->push_back(Linear(flat, 120));
  model->push_back(ReLU());
  model->push_back(Linear(120, 84));
  model->push_back(ReLU());
  model->push_back(Linear(84, classes));
  return model;
}

// A narrow VGG-11: the 8 convolutions of VGG-11 with 1/8 of its channels (64, 128, 256, 256,
// 512, ... -> 8, 16, 32, 32, 64, 64, 64, 64), max-pools where VGG-11 has them unless the
// spatial size is already below 2, then a 128-unit classifier.
torch::nn::Sequential build_vgg11s(const std::vector<std::int64_t>& shape, int classes) {
  using namespace torch::nn;
  const int kPool = -1;
  const std::vector<int> config = {8,  kPool, 16,    kPool, 32, 32,   kPool,
                                   64, 64,    kPool, 64,    64, kPool};
  Sequential model;
  std::int64_t channels = shape[0], h = shape[1], w = shape[2];
  for (int c : config) {
    if (c == kPool) {
      if (h < 2 || w < 2) continue;
      model->push_back(MaxPool2d(MaxPool2dOptions(2)));
      h /= 2;
      w /= 2;
    } else {
      model->push_back(Conv2d(Conv2dOptions(channels, c, 3).padding(1)));
      model->push_back(ReLU());
      channels = c;
    }
  }
  const std::int64_t flat = channels * h * w;
  model->push_back(Flatten());
  model->push_back(Linear(flat, 128));
  model->push_back(ReLU());
  model->push_back(Linear(128, classes));
  return model;
}

// ---------------------------------------------------------------------------------------------
// Masking: the masked inputs x_S of a whole chunk (its rows may come from several samples) in a
// fixed handful of tensor ops, whatever the number of samples in the chunk.

// The tensors are laid out element-major ([E, B]) while they are built: index_select then
// copies whole rows and torch::where broadcasts x and the baseline along the inner dimension,
// which LibTorch runs ~5x faster than the same ops on [B, E] (measured: 0.36 ms instead of
// 1.7 ms for 512 x 784 on one core); one transpose at the end gives [B, E].
//
// keep(e, S) comes from a table of n + 2 rows, built per chunk as bit_values & subsets != 0:
// row i < n holds 1 << i (player i in S); row n holds kKeptBit, which every subset of the chunk
// carries (always kept background); row n + 1 holds 0 (baseline background).
struct MaskPlan {
  int n = 0;
  torch::Device device{torch::kCPU};
  torch::Tensor baseline;    // [E, 1] float
  torch::Tensor owner_map;   // [E] int64: row of the keep table that decides element e
  torch::Tensor bit_values;  // [n + 2, 1] int64
};

constexpr std::int64_t kKeptBit = std::int64_t{1} << 62;  // above every subset (n <= 40)

MaskPlan make_mask_plan(const PlayerLayout& layout, const torch::Device& device) {
  MaskPlan plan;
  plan.n = layout.n;
  plan.device = device;
  const auto e = static_cast<std::int64_t>(layout.owner.size());
  const auto cpu_float = torch::TensorOptions().dtype(torch::kFloat32);
  plan.baseline = torch::from_blob(const_cast<float*>(layout.baseline.data()), {e, 1}, cpu_float)
                      .to(cpu_float.device(device), false, true);
  torch::Tensor map = torch::empty({e}, torch::kInt64);
  auto* m = map.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < e; ++i) {
    const std::int32_t o = layout.owner[i];
    m[i] = o >= 0 ? o : (o == PlayerLayout::kAlwaysKept ? layout.n : layout.n + 1);
  }
  plan.owner_map = map.to(device);
  torch::Tensor bits = torch::empty({layout.n + 2, 1}, torch::kInt64);
  auto* b = bits.data_ptr<std::int64_t>();
  for (int i = 0; i < layout.n; ++i) b[i] = std::int64_t{1} << i;
  b[layout.n] = kKeptBit;
  b[layout.n + 1] = 0;
  plan.bit_values = bits.to(device);
  return plan;
}

// Rows [row, row + count) of a chunk: the subsets [first, first + count) of sample `x`.
struct MaskPiece {
  const float* x;  // the sample (E floats)
  std::uint64_t first;
  std::int64_t count, row;
};

// [rows, E] masked inputs of a chunk made of `pieces` (in row order, covering [0, rows)),
// contiguous, on the plan's device. Two host-to-device copies (the chunk's subsets, with the
// row -> piece map when there are several pieces; the pieces' samples) and six tensor ops.
torch::Tensor masked_chunk(const MaskPlan& plan, const std::vector<MaskPiece>& pieces,
                           std::int64_t rows) {
  const auto elements = plan.owner_map.size(0);
  const auto count = static_cast<std::int64_t>(pieces.size());
  const bool several = count > 1;
  // Host side: row r's subset (with kKeptBit) in index[0][r], its piece in index[1][r]. For a
  // GPU, in pinned memory and copied without waiting, so the host builds the next chunk while
  // the device still works on this one (LibTorch keeps a pinned block alive until its copy ran).
  const bool gpu = plan.device.is_cuda();
  const auto host = torch::TensorOptions().pinned_memory(gpu);
  torch::Tensor index = torch::empty({several ? 2 : 1, rows}, host.dtype(torch::kInt64));
  torch::Tensor samples = torch::empty({count, elements}, host.dtype(torch::kFloat32));
  auto* subset = index.data_ptr<std::int64_t>();
  std::int64_t* piece_of_row = several ? subset + rows : nullptr;
  float* xs = samples.data_ptr<float>();
  std::int64_t next_row = 0;
  for (std::int64_t p = 0; p < count; ++p) {
    const MaskPiece& piece = pieces[p];
    if (piece.row != next_row || piece.count < 1 || piece.row + piece.count > rows)
      throw std::logic_error("masked_chunk: pieces do not tile the chunk");
    next_row += piece.count;
    for (std::int64_t b = 0; b < piece.count; ++b) {
      subset[piece.row + b] = static_cast<std::int64_t>(piece.first + b) | kKeptBit;
      if (several) piece_of_row[piece.row + b] = p;
    }
    std::memcpy(xs + p * elements, piece.x, sizeof(float) * elements);
  }
  if (next_row != rows) throw std::logic_error("masked_chunk: pieces do not tile the chunk");
  const torch::Tensor index_d = index.to(plan.device, torch::kInt64, /*non_blocking=*/gpu);
  const torch::Tensor samples_d =
      samples.to(plan.device, torch::kFloat32, /*non_blocking=*/gpu).t();  // [E, count]
  const torch::Tensor table = plan.bit_values.bitwise_and(index_d[0].unsqueeze(0)).ne(0);
  const torch::Tensor keep = table.index_select(0, plan.owner_map);  // [E, rows]
  const torch::Tensor x = several ? samples_d.index_select(1, index_d[1]) : samples_d;
  return torch::where(keep, x, plan.baseline).t().contiguous();
}

// ---------------------------------------------------------------------------------------------

class TorchNetwork final : public Network {
 public:
  // Built-in architecture.
  TorchNetwork(std::string arch, std::vector<std::int64_t> shape, int classes,
               torch::nn::Sequential model)
      : arch_(std::move(arch)),
        shape_(std::move(shape)),
        classes_(classes),
        model_(std::move(model)) {}
  // TorchScript module.
  TorchNetwork(std::string path, torch::jit::Module module)
      : arch_("torchscript"), path_(std::move(path)), script_(std::move(module)) {
    script_->eval();
  }

  std::string description() const override {
    std::int64_t count = 0;
    if (script_) {
      for (const auto& p : script_->parameters()) count += p.numel();
      return "torchscript " + path_ + " (" + std::to_string(count) + " parameters)";
    }
    for (const auto& p : model_->parameters()) count += p.numel();
    return arch_ + " (" + std::to_string(count) + " parameters)";
  }

  bool trainable() const override { return !script_.has_value(); }
  int num_classes() const override { return classes_; }

  void to_device(const std::string& name) override {
    torch::Device device(torch::kCPU);
    try {
      device = torch::Device(name);
    } catch (const std::exception&) {
      throw UserError("unknown device '" + name + "' (cpu, cuda, cuda:N)");
    }
    if (device.is_cuda() && !torch::cuda::is_available())
      throw UserError("device '" + name + "': CUDA is not available to LibTorch");
    if (device.is_cuda()) use_reproducible_cuda_kernels();
    if (device == device_) return;
    if (script_) {
      script_->to(device);
    } else {
      // Optimizer state (momentum buffers, Adam moments) moves by a round trip through an
      // archive loaded onto the new device; parameters keep their identity under Module::to.
      std::string saved;
      if (optimizer_) {
        torch::serialize::OutputArchive archive;
        optimizer_->save(archive);
        std::ostringstream os;
        archive.save_to(os);
        saved = os.str();
      }
      model_->to(device);
      if (optimizer_) {
        make_optimizer(optimizer_name_);
        std::istringstream is(saved);
        torch::serialize::InputArchive archive;
        archive.load_from(is, device);
        optimizer_->load(archive);
      }
    }
    device_ = device;
  }

  EvalStats train_epoch(const Dataset& data, const std::vector<std::int64_t>& indices,
                        const std::vector<std::int32_t>& labels, const TrainOptions& opt,
                        int epoch) override {
    require_trainable("training");
    check_data(data, labels, opt.batch);
    if (opt.optimizer != "sgd" && opt.optimizer != "adam")
      throw UserError("unknown optimizer '" + opt.optimizer + "' (sgd, adam)");
    if (!optimizer_) make_optimizer(opt.optimizer);
    if (opt.optimizer != optimizer_name_)
      throw UserError("optimizer '" + opt.optimizer + "' requested, but the network's state is " +
                      optimizer_name_);
    set_options(opt);

    const std::vector<std::int64_t> order = shuffle_for_epoch(indices, opt.seed, epoch);
    model_->train();
    double loss_sum = 0.0;
    std::int64_t correct = 0;
    for (std::size_t start = 0; start < order.size(); start += opt.batch) {
      const std::size_t end = std::min(order.size(), start + static_cast<std::size_t>(opt.batch));
      torch::Tensor x, y;
      gather(data, labels, order, start, end, x, y);
      optimizer_->zero_grad();
      const torch::Tensor logits = model_->forward(x);
      const torch::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
      loss.backward();
      optimizer_->step();
      const auto b = static_cast<double>(end - start);
      loss_sum += loss.item<double>() * b;
      correct += logits.detach().argmax(1).eq(y).sum().item<std::int64_t>();
    }
    model_->eval();
    if (order.empty()) return {};
    const auto total = static_cast<double>(order.size());
    return {loss_sum / total, static_cast<double>(correct) / total};
  }

  void evaluate_sums(const Dataset& data, const std::vector<std::int64_t>& indices,
                     const std::vector<std::int32_t>& labels, std::int64_t batch,
                     std::vector<double>& loss_sums, std::vector<std::int64_t>& correct) override {
    check_data(data, labels, batch);
    set_eval();
    torch::NoGradGuard no_grad;
    loss_sums.clear();
    correct.clear();
    namespace F = torch::nn::functional;
    for (std::size_t start = 0; start < indices.size(); start += batch) {
      const std::size_t end = std::min(indices.size(), start + static_cast<std::size_t>(batch));
      torch::Tensor x, y;
      gather(data, labels, indices, start, end, x, y);
      const torch::Tensor logits = run(x, data.source);
      check_labels_fit(logits, y);
      loss_sums.push_back(
          F::cross_entropy(logits, y, F::CrossEntropyFuncOptions().reduction(torch::kSum))
              .item<double>());
      correct.push_back(logits.argmax(1).eq(y).sum().item<std::int64_t>());
    }
  }

  std::vector<std::int32_t> predict(const Dataset& data, const std::vector<std::int64_t>& indices,
                                    std::int64_t batch) override {
    check_data(data, data.labels, batch);
    set_eval();
    torch::NoGradGuard no_grad;
    std::vector<std::int32_t> out;
    out.reserve(indices.size());
    for (std::size_t start = 0; start < indices.size(); start += batch) {
      const std::size_t end = std::min(indices.size(), start + static_cast<std::size_t>(batch));
      torch::Tensor x, y;
      gather(data, data.labels, indices, start, end, x, y);
      const torch::Tensor pred =
          run(x, data.source).argmax(1).to(torch::kCPU, torch::kInt32).contiguous();
      const auto* p = pred.data_ptr<std::int32_t>();
      out.insert(out.end(), p, p + pred.numel());
    }
    return out;
  }

  void save_checkpoint(const std::string& path) const override {
    require_trainable("save_checkpoint");
    const std::string part = path + ".part";
    try {
      torch::serialize::OutputArchive archive;
      archive.write("harsanyi_checkpoint", c10::IValue(kCheckpointFormat));
      archive.write("arch", c10::IValue(arch_));
      archive.write("input_shape", torch::tensor(shape_, torch::kInt64));
      archive.write("num_classes", c10::IValue(static_cast<std::int64_t>(classes_)));
      torch::serialize::OutputArchive model_archive;
      model_->save(model_archive);
      archive.write("model", model_archive);
      archive.write("optimizer", c10::IValue(optimizer_name_));
      if (optimizer_) {
        torch::serialize::OutputArchive optimizer_archive;
        optimizer_->save(optimizer_archive);
        archive.write("optimizer_state", optimizer_archive);
      }
      archive.save_to(part);
    } catch (const c10::Error& e) {
      std::remove(part.c_str());
      throw std::runtime_error("cannot write checkpoint " + part + ": " + first_line(e.what()));
    }
    if (std::rename(part.c_str(), path.c_str()) != 0) {
      std::remove(part.c_str());
      throw std::runtime_error("cannot rename " + part + " to " + path);
    }
  }

  void load_checkpoint(const std::string& path) override {
    require_trainable("load_checkpoint");
    if (!file_exists(path)) throw UserError("checkpoint " + path + ": no such file");
    try {
      torch::serialize::InputArchive archive;
      archive.load_from(path, device_);
      c10::IValue value;
      if (!archive.try_read("harsanyi_checkpoint", value) || !value.isInt())
        throw UserError("checkpoint " + path + " is not a harsanyi checkpoint");
      if (value.toInt() != kCheckpointFormat)
        throw UserError("checkpoint " + path + " has format " + std::to_string(value.toInt()) +
                        ", this build reads format " + std::to_string(kCheckpointFormat));
      archive.read("arch", value);
      const std::string arch = value.toStringRef();
      torch::Tensor shape_tensor;
      archive.read("input_shape", shape_tensor);
      shape_tensor = shape_tensor.to(torch::kCPU).contiguous();
      const std::vector<std::int64_t> shape(
          shape_tensor.data_ptr<std::int64_t>(),
          shape_tensor.data_ptr<std::int64_t>() + shape_tensor.numel());
      archive.read("num_classes", value);
      const auto classes = static_cast<int>(value.toInt());
      if (arch != arch_ || shape != shape_ || classes != classes_)
        throw UserError("checkpoint " + path + " holds " + arch + " for input " +
                        shape_text(shape) + " with " + std::to_string(classes) + " classes, not " +
                        arch_ + " for " + shape_text(shape_) + " with " + std::to_string(classes_));
      torch::serialize::InputArchive model_archive;
      archive.read("model", model_archive);
      model_->load(model_archive);
      archive.read("optimizer", value);
      const std::string optimizer = value.toStringRef();
      optimizer_.reset();
      optimizer_name_.clear();
      if (!optimizer.empty()) {
        make_optimizer(optimizer);
        torch::serialize::InputArchive optimizer_archive;
        archive.read("optimizer_state", optimizer_archive);
        optimizer_->load(optimizer_archive);
      }
    } catch (const UserError&) {
      throw;
    } catch (const std::exception& e) {
      throw UserError("checkpoint " + path +
                      " is damaged or not a harsanyi checkpoint: " + first_line(e.what()));
    }
  }

  void masked_values_packed(const std::vector<MaskedRequest>& requests, const PlayerLayout& layout,
                            const OutputSpec& output, std::int64_t batch) override {
    const Dataset* first_data = nullptr;
    for (const MaskedRequest& q : requests) {
      if (q.data == nullptr)
        throw std::invalid_argument("masked_values_packed: a request without a dataset");
      check_layout(layout, q.data->sample_size());
      if (q.index < 0 || q.index >= q.data->count())
        throw UserError("sample " + std::to_string(q.index) + " is outside " + q.data->source +
                        " (" + std::to_string(q.data->count()) + " samples)");
      const std::uint64_t end = q.first + q.count;
      if (end > (std::uint64_t{1} << layout.n) || end < q.first)
        throw std::invalid_argument("masked_values_packed: subsets beyond 2^n");
      if (q.on_device && !values_on_device())
        throw std::invalid_argument(
            "masked_values_packed: v in device memory, but this network computes v on the host");
      if (first_data == nullptr) first_data = q.data;
      if (q.data->shape != first_data->shape)
        throw UserError("samples of shape " + shape_text(first_data->shape) + " (" +
                        first_data->source + ") and " + shape_text(q.data->shape) + " (" +
                        q.data->source + ") cannot share a forward");
    }
    if (batch < 1) throw UserError("batch must be >= 1");
    if (first_data == nullptr) return;
    set_eval();
    torch::NoGradGuard no_grad;
    std::vector<std::int64_t> dims = {0};
    dims.insert(dims.end(), first_data->shape.begin(), first_data->shape.end());
    const MaskPlan plan = make_mask_plan(layout, device_);
    const bool on_gpu = values_on_device();
    // A chunk's pieces, pieces[i] taken from requests[piece_request[i]].
    std::vector<MaskPiece> pieces;
    std::vector<std::size_t> piece_request;
    std::size_t r = 0;       // the request the next chunk starts in
    std::uint64_t done = 0;  // its subsets already in earlier chunks
    for (;;) {
      pieces.clear();
      piece_request.clear();
      std::int64_t rows = 0;
      while (rows < batch && r < requests.size()) {
        const MaskedRequest& q = requests[r];
        if (done == q.count) {
          ++r;
          done = 0;
          continue;
        }
        const auto take = static_cast<std::int64_t>(
            std::min<std::uint64_t>(static_cast<std::uint64_t>(batch - rows), q.count - done));
        pieces.push_back({q.data->sample(q.index), q.first + done, take, rows});
        piece_request.push_back(r);
        rows += take;
        done += static_cast<std::uint64_t>(take);
      }
      if (rows == 0) break;
      const torch::Tensor x = masked_chunk(plan, pieces, rows);
      dims[0] = rows;
      const torch::Tensor logits =
          chunk_logits(x.view(dims), requests[piece_request[0]].data->source, on_gpu);
      const int classes = static_cast<int>(logits.size(1));
      for (std::size_t i = 0; i < pieces.size(); ++i) {
        const MaskedRequest& q = requests[piece_request[i]];
        if (q.label < 0 || q.label >= classes)
          throw UserError("label " + std::to_string(q.label) + " of sample " +
                          std::to_string(q.index) + " is outside the model's " +
                          std::to_string(classes) + " classes");
      }
      if (on_gpu)
        device_chunk_values(logits, pieces, piece_request, requests, output);
      else
        host_chunk_values(logits, pieces, piece_request, requests, output);
    }
    if (on_gpu) cuda::synchronize(nullptr);  // every v written when the call returns
  }

  bool values_on_device() const override {
    return device_.is_cuda() && device_.index() <= 0 && cuda::device_count() > 0;
  }

  std::vector<float> parameter_values() const override {
    torch::NoGradGuard no_grad;
    std::vector<float> out;
    std::vector<torch::Tensor> params;
    if (script_) {
      for (const auto& p : script_->parameters()) params.push_back(p);
    } else {
      params = model_->parameters();
    }
    for (const auto& p : params) {
      const torch::Tensor c = p.detach().to(torch::kCPU, torch::kFloat32).contiguous();
      out.insert(out.end(), c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    }
    return out;
  }

  void forward(const float* inputs, const std::vector<std::int64_t>& sample_shape,
               std::int64_t count, std::int64_t batch, std::vector<float>& logits) override {
    if (batch < 1) throw UserError("batch must be >= 1");
    set_eval();
    torch::NoGradGuard no_grad;
    std::int64_t size = 1;
    for (std::int64_t d : sample_shape) size *= d;
    std::vector<std::int64_t> dims = {0};
    dims.insert(dims.end(), sample_shape.begin(), sample_shape.end());
    logits.clear();
    for (std::int64_t first = 0; first < count; first += batch) {
      dims[0] = std::min(batch, count - first);
      const torch::Tensor x =
          torch::from_blob(const_cast<float*>(inputs + first * size), dims, torch::kFloat32)
              .to(device_);
      const torch::Tensor out = run(x, "inputs").to(torch::kCPU, torch::kFloat32).contiguous();
      logits.insert(logits.end(), out.data_ptr<float>(), out.data_ptr<float>() + out.numel());
    }
  }

 private:
  void require_trainable(const char* what) const {
    if (script_)
      throw UserError(std::string(what) + ": " + path_ +
                      " is a TorchScript checkpoint (evaluation only)");
  }

  void check_data(const Dataset& data, const std::vector<std::int32_t>& labels,
                  std::int64_t batch) const {
    if (batch < 1) throw UserError("batch must be >= 1");
    if (static_cast<std::int64_t>(labels.size()) != data.count())
      throw UserError(data.source + ": " + std::to_string(labels.size()) + " labels for " +
                      std::to_string(data.count()) + " samples");
    if (!script_ && data.shape != shape_)
      throw UserError(data.source + ": samples of shape " + shape_text(data.shape) + ", but the " +
                      arch_ + " model was built for " + shape_text(shape_));
  }

  // Rows order[start..end) of data as a tensor [B, shape...] on the device, and their labels.
  void gather(const Dataset& data, const std::vector<std::int32_t>& labels,
              const std::vector<std::int64_t>& order, std::size_t start, std::size_t end,
              torch::Tensor& x, torch::Tensor& y) const {
    const auto b = static_cast<std::int64_t>(end - start);
    const std::int64_t size = data.sample_size();
    std::vector<std::int64_t> dims = {b};
    dims.insert(dims.end(), data.shape.begin(), data.shape.end());
    x = torch::empty(dims, torch::kFloat32);
    y = torch::empty({b}, torch::kInt64);
    float* xp = x.data_ptr<float>();
    auto* yp = y.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < b; ++i) {
      const std::int64_t idx = order[start + i];
      if (idx < 0 || idx >= data.count())
        throw UserError("sample index " + std::to_string(idx) + " is outside " + data.source +
                        " (" + std::to_string(data.count()) + " samples)");
      std::memcpy(xp + i * size, data.sample(idx), sizeof(float) * size);
      yp[i] = labels[idx];
      if (yp[i] < 0 || (classes_ > 0 && yp[i] >= classes_))
        throw UserError(data.source + ": label " + std::to_string(yp[i]) + " of sample " +
                        std::to_string(idx) + " is outside 0.." + std::to_string(classes_ - 1));
    }
    x = x.to(device_);
    y = y.to(device_);
  }

  void check_labels_fit(const torch::Tensor& logits, const torch::Tensor& y) const {
    if (y.numel() > 0 && y.max().item<std::int64_t>() >= logits.size(1))
      throw UserError("a label is outside the model's " + std::to_string(logits.size(1)) +
                      " classes");
  }

  void set_eval() {
    if (script_)
      script_->eval();
    else
      model_->eval();
  }

  // Logits [rows, classes] (float32, contiguous) of a chunk x [rows, shape...] of masked inputs,
  // where v is computed: on the device with `on_gpu` (values_on_device(); a TorchScript may
  // return its logits elsewhere), on the CPU otherwise. A chunk of one row is forwarded as two
  // copies of the row, the copy's logits discarded: on the CPU, LibTorch 1.13 computes vgg11s'
  // convolutions for a batch of one with other kernels than for larger batches (6 of a row's 10
  // logits differ in their last bits), whereas in batches of two rows or more a row's logits
  // depend neither on the batch's size nor on the other rows (checked for mlp, lenet and vgg11s
  // on 1 and 2 threads, batches of 2 to 1100 at several offsets). With the padding, v(S) does
  // not depend on where S falls in the chunks: the same for a sample forwarded alone
  // (masked_values_range), packed with others (masked_values_packed) or split over subset ranks,
  // whatever `batch`.
  torch::Tensor chunk_logits(const torch::Tensor& x, const std::string& what, bool on_gpu) {
    const bool pad = x.size(0) == 1;
    torch::Tensor out = run(pad ? torch::cat({x, x}, 0) : x, what);
    if (pad) out = out.narrow(0, 0, 1);
    return out.to(on_gpu ? device_ : torch::Device(torch::kCPU), torch::kFloat32).contiguous();
  }

  // v of a chunk's pieces from host logits (output_value).
  static void host_chunk_values(const torch::Tensor& logits, const std::vector<MaskPiece>& pieces,
                                const std::vector<std::size_t>& piece_request,
                                const std::vector<MaskedRequest>& requests,
                                const OutputSpec& output) {
    const int classes = static_cast<int>(logits.size(1));
    const float* l = logits.data_ptr<float>();
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      const MaskPiece& p = pieces[i];
      const MaskedRequest& q = requests[piece_request[i]];
      double* v = q.v + (p.first - q.first);
      for (std::int64_t b = 0; b < p.count; ++b)
        v[b] = output_value(l + (p.row + b) * classes, classes, q.label, output.log_odds);
    }
  }

  // v of a chunk's pieces from device logits (cuda::output_values on the legacy default stream,
  // LibTorch's current stream: harsanyi never sets another, so the kernels are ordered with the
  // forward and with the caching allocator's reuse of `logits`): into
  // the requests' device memory directly; host destinations through one copy of the chunk's v.
  void device_chunk_values(const torch::Tensor& logits, const std::vector<MaskPiece>& pieces,
                           const std::vector<std::size_t>& piece_request,
                           const std::vector<MaskedRequest>& requests, const OutputSpec& output) {
    const int classes = static_cast<int>(logits.size(1));
    const float* l = logits.data_ptr<float>();
    torch::Tensor staged;  // [rows] on the device, for the pieces bound for host memory
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      const MaskPiece& p = pieces[i];
      const MaskedRequest& q = requests[piece_request[i]];
      double* dst = nullptr;
      if (q.on_device) {
        dst = q.v + (p.first - q.first);
      } else {
        if (!staged.defined())
          staged = torch::empty({logits.size(0)},
                                torch::TensorOptions().dtype(torch::kFloat64).device(device_));
        dst = staged.data_ptr<double>() + p.row;
      }
      cuda::output_values(l + p.row * classes, static_cast<std::size_t>(p.count), classes,
                          q.label, output.log_odds, dst, nullptr);
    }
    if (!staged.defined()) return;
    const torch::Tensor host = staged.to(torch::kCPU);
    const double* h = host.data_ptr<double>();
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      const MaskPiece& p = pieces[i];
      const MaskedRequest& q = requests[piece_request[i]];
      if (!q.on_device)
        std::memcpy(q.v + (p.first - q.first), h + p.row, sizeof(double) * p.count);
    }
  }

  // Logits [B, classes] of a batch.
  torch::Tensor run(const torch::Tensor& x, const std::string& what) {
    torch::Tensor out;
    if (!script_) {
      out = model_->forward(x);
    } else {
      c10::IValue r;
      try {
        r = script_->forward({x});
      } catch (const c10::Error& e) {
        throw UserError("TorchScript " + path_ + " fails on " + what + " of shape " +
                        shape_text(x.sizes().vec()) + ": " + first_line(e.what()));
      }
      if (!r.isTensor())
        throw UserError("TorchScript " + path_ + " does not return a tensor of logits");
      out = r.toTensor();
    }
    if (out.dim() != 2 || out.size(0) != x.size(0))
      throw UserError("model " + (script_ ? path_ : arch_) + " returns shape " +
                      shape_text(out.sizes().vec()) + ", not [batch, classes]");
    if (classes_ == 0) classes_ = static_cast<int>(out.size(1));
    return out;
  }

  void make_optimizer(const std::string& name) {
    if (name == "sgd") {
      optimizer_ =
          std::make_unique<torch::optim::SGD>(model_->parameters(), torch::optim::SGDOptions(0.01));
    } else if (name == "adam") {
      optimizer_ = std::make_unique<torch::optim::Adam>(model_->parameters(),
                                                        torch::optim::AdamOptions(0.001));
    } else {
      throw UserError("unknown optimizer '" + name + "' (sgd, adam)");
    }
    optimizer_name_ = name;
  }

  void set_options(const TrainOptions& opt) {
    for (auto& group : optimizer_->param_groups()) {
      if (optimizer_name_ == "sgd") {
        auto& o = static_cast<torch::optim::SGDOptions&>(group.options());
        o.lr(opt.lr).momentum(opt.momentum).weight_decay(opt.weight_decay);
      } else {
        auto& o = static_cast<torch::optim::AdamOptions&>(group.options());
        o.lr(opt.lr).weight_decay(opt.weight_decay);
      }
    }
  }

  std::string arch_;
  std::string path_;  // TorchScript file
  std::vector<std::int64_t> shape_;
  int classes_ = 0;
  torch::nn::Sequential model_{nullptr};
  std::optional<torch::jit::Module> script_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::string optimizer_name_;
  torch::Device device_{torch::kCPU};
};

}  // namespace

std::unique_ptr<Network> Network::build(const std::string& arch,
                                        const std::vector<std::int64_t>& input_shape,
                                        int num_classes, std::uint64_t seed) {
  if (num_classes < 2)
    throw UserError("model " + arch + ": needs at least 2 classes, got " +
                    std::to_string(num_classes));
  for (std::int64_t d : input_shape)
    if (d < 1) throw UserError("model " + arch + ": bad input shape " + shape_text(input_shape));
  const bool image = input_shape.size() == 3;
  if (!image && input_shape.size() != 1)
    throw UserError("model " + arch + ": inputs must be images {C,H,W} or tables {F}, got " +
                    shape_text(input_shape));
  if (arch != "mlp" && arch != "lenet" && arch != "vgg11s")
    throw UserError("unknown model architecture '" + arch + "' (mlp, lenet, vgg11s, torchscript)");
  if (!image && arch != "mlp")
    throw UserError("model " + arch + " needs image inputs {C,H,W}; tabular data (" +
                    std::to_string(input_shape[0]) + " features) takes arch = \"mlp\"");
  torch::manual_seed(seed);
  std::int64_t size = 1;
  for (std::int64_t d : input_shape) size *= d;
  torch::nn::Sequential model{nullptr};
  if (arch == "mlp")
    model = build_mlp(size, num_classes);
  else if (arch == "lenet")
    model = build_lenet(input_shape, num_classes);
  else
    model = build_vgg11s(input_shape, num_classes);
  model->eval();
  return std::make_unique<TorchNetwork>(arch, input_shape, num_classes, std::move(model));
}

std::unique_ptr<Network> Network::load_torchscript(const std::string& path) {
  if (!file_exists(path)) throw UserError("TorchScript file " + path + ": no such file");
  try {
    torch::jit::Module module = torch::jit::load(path);
    return std::make_unique<TorchNetwork>(path, std::move(module));
  } catch (const std::exception& e) {
    throw UserError("TorchScript file " + path +
                    " cannot be loaded (damaged, or not saved with "
                    "torch.jit.save): " +
                    first_line(e.what()));
  }
}

bool torch_cuda_available() { return torch::cuda::is_available(); }

void set_torch_threads(int threads) {
  if (threads < 1) throw UserError("thread count must be >= 1");
  torch::set_num_threads(threads);
}

void build_masked_batch(const PlayerLayout& layout, const float* x, std::uint64_t first_subset,
                        std::int64_t count, float* out) {
  check_layout(layout, static_cast<std::int64_t>(layout.owner.size()));
  torch::NoGradGuard no_grad;
  if (count < 0) throw std::invalid_argument("build_masked_batch: negative count");
  if (count == 0) return;
  const MaskPlan plan = make_mask_plan(layout, torch::Device(torch::kCPU));
  const torch::Tensor chunk = masked_chunk(plan, {{x, first_subset, count, 0}}, count);
  std::memcpy(out, chunk.data_ptr<float>(), sizeof(float) * chunk.numel());
}

}  // namespace harsanyi
