// masked_forward_perf: v(x_S) of all 2^n masked inputs of K images (-s K) through the model,
// three ways in the same run: one Network::masked_values_range call per image (the study's
// forward before packing), one Network::masked_values_packed call over the K images (their
// masked inputs packed consecutively into chunks of --batch, a chunk spanning images when
// 2^n < --batch), and plain batched inference of the same K * 2^n inputs, pre-built.
//
// Columns (after n, dtype, threads, samples = K):
//   inputs    K * 2^n, the masked inputs of the K images
//   batch     inputs per forward of packed and plain, min(--batch, K * 2^n); masked forwards
//             chunks of min(--batch, 2^n), one image at a time
//   masked    median time of the K masked_values_range calls (ms); m_spread their spread
//   packed    median time of one masked_values_packed call over the K images (ms); k_spread
//   plain     median time of Network::forward on the K * 2^n inputs pre-built in memory (logits
//             only, no v); p_spread its spread
//   packed/s  inputs / packed: masked inputs evaluated per second, v included
//   plain/s   inputs / plain
//   vs_plain  plain / packed: packed's throughput as a fraction of plain inference's (target
//             >= 0.9)
//   speedup   masked / packed: what packing gains over one call per image
//   overhead  (packed - plain) / plain x 100 %: what building the masks on the fly (and v in
//             double) costs on top of inference
//   err_pack  max over images and S of |v packed - v of the image's own call| (must be 0)
//   err_full  max over images of |v(N) from packed - v of a plain forward of the image|
//   err_all   max over images and S of |v(S) packed - v from the plain forward's logits of x_S|
//   device    (--device cuda only) median time of masked_values_packed over the K images with v
//             written to device memory, as a GPU study does (no copy to the host per chunk)
//   d_vs_plain plain / device
//   err_dev   max |v device - v packed| (must be 0: the same kernel computes both)
// The check fails when err_pack or err_dev is not 0, or err_full or err_all exceeds
// 1e-5 * max(1, |v|).
// --device cuda runs the model on the GPU (a CUDA LibTorch): masked, packed and device build
// each chunk's masked inputs on the device from the images and compute v there from the logits
// (cuda::output_values); masked and packed copy each chunk's v to the host, device keeps it.
// plain copies each pre-built chunk from host memory to the device, as inference from memory
// does, and its logits back.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "cuda_backend.h"
#include "dataset.h"
#include "driver.h"
#include "network.h"
#include "players.h"

namespace hb = harsanyi::bench;

namespace {

const std::vector<std::int64_t> kShape = {1, 28, 28};
constexpr int kClasses = 10;
constexpr std::int64_t kSize = 784;
constexpr double kTolerance = 1e-5;  // relative to max(1, |v|)

// Players: the first n cells (row-major) of the smallest square grid with >= n cells (3×3 for
// n <= 9, 4×4 up to 16); the rest of the image is kept; zero baseline.
harsanyi::PlayerLayout grid_players(int n) {
  int g = 1;
  while (g * g < n) ++g;
  const std::int64_t h = kShape[1], w = kShape[2];
  harsanyi::PlayerLayout layout;
  layout.n = n;
  layout.owner.assign(h * w, harsanyi::PlayerLayout::kAlwaysKept);
  layout.baseline.assign(h * w, 0.f);
  layout.baseline_description = "zero";
  for (int p = 0; p < n; ++p) {
    const int r = p / g, c = p % g;
    layout.names.push_back(fmt::format("cell {}", p));
    for (std::int64_t y = r * h / g; y < (r + 1) * h / g; ++y)
      for (std::int64_t x = c * w / g; x < (c + 1) * w / g; ++x) layout.owner[y * w + x] = p;
  }
  return layout;
}

struct MaskedState : hb::CaseState {
  int n = 0;
  std::int64_t samples = 0, total = 0, rows = 0;
  std::int64_t flag_batch = 0;  // --batch: masked_values_range's chunks (capped by 2^n there)
  std::int64_t batch = 0;       // packed's and plain's chunks: min(--batch, K * 2^n)
  harsanyi::Dataset data;       // the K images; image i has label (3 + i) % 10
  harsanyi::PlayerLayout layout;
  std::unique_ptr<harsanyi::Network> net;
  std::vector<float> inputs;     // [K * 2^n, 1, 28, 28], pre-built for the plain forward
  std::vector<float> logits;     // plain forward's output
  std::vector<double> v_each;    // [K, 2^n] from one masked_values_range call per image
  std::vector<double> v_packed;  // [K, 2^n] from masked_values_packed
  std::vector<harsanyi::MaskedRequest> requests;
  harsanyi::cuda::DeviceBuffer d_v;                 // [K, 2^n] on the device (--device cuda)
  std::vector<harsanyi::MaskedRequest> d_requests;  // the same requests into d_v
  explicit MaskedState(const hb::Case& c)
      : n(c.n),
        samples(static_cast<std::int64_t>(c.samples)),
        total(std::int64_t{1} << c.n),
        rows(samples * total),
        flag_batch(c.opt->extra_int("batch")),
        batch(std::min(flag_batch, rows)),
        layout(grid_players(c.n)) {
    if (c.dtype != hb::Dtype::f32)
      throw std::runtime_error("the models run in float32 only (-d f32)");
    harsanyi::set_torch_threads(c.threads);
    data.source = "synthetic images";
    data.shape = kShape;
    data.num_classes = kClasses;
    data.data.resize(static_cast<std::size_t>(samples * kSize));
    hb::fill_uniform(data.data.data(), data.data.size(), 2024);
    for (float& x : data.data) x = 0.5f * (x + 1.f);  // [0, 1) like byte / 255
    net = harsanyi::Network::build("lenet", kShape, kClasses, 0);
    net->to_device(c.opt->extra.at("device"));
    inputs.resize(static_cast<std::size_t>(rows * kSize));
    v_each.resize(static_cast<std::size_t>(rows));
    v_packed.resize(static_cast<std::size_t>(rows));
    for (std::int64_t i = 0; i < samples; ++i) {
      data.labels.push_back(static_cast<std::int32_t>((3 + i) % kClasses));
      harsanyi::build_masked_batch(layout, data.sample(i), 0, total, &inputs[i * total * kSize]);
      requests.push_back(
          {&data, i, data.labels[i], 0, static_cast<std::uint64_t>(total), &v_packed[i * total]});
    }
    if (net->values_on_device()) {
      d_v = harsanyi::cuda::DeviceBuffer(static_cast<std::size_t>(rows) * sizeof(double));
      d_requests = requests;
      for (std::int64_t i = 0; i < samples; ++i) {
        d_requests[i].v = d_v.as<double>() + i * total;
        d_requests[i].on_device = true;
      }
    }
  }
};

const harsanyi::OutputSpec kOutput{true, false};  // gt-log-odds

}  // namespace

int main(int argc, char** argv) {
  hb::OpDef op;
  op.name = "masked_forward_perf";
  op.summary =
      "v(x_S) of all 2^n masked inputs of K images (lenet, 1x28x28): one masked_values_range "
      "call per image vs one masked_values_packed call vs plain batched inference";
  op.default_min_n = 8;
  op.default_max_n = 12;
  op.max_allowed_n = 16;
  op.default_reps = 5;
  op.default_samples = 1;
  op.flags = {{"batch", "512", "masked inputs per forward (chunk size; capped at K * 2^n)"},
              {"device", "cpu", "where the model runs: cpu, cuda (a CUDA LibTorch)"}};
  op.preamble = {
      "model    : lenet (61706 parameters) for 1x28x28, 10 classes, seed 0, eval mode, no "
      "gradients; LibTorch threads = -t; on --device",
      "players  : the first n cells of the smallest square grid with >= n cells (3x3 for n <= 9, "
      "4x4 up to 16), rest of the image kept, zero baseline; K = -s synthetic images",
      "kernels  : masked = masked_values_range(gt-log-odds) over all 2^n subsets of each image "
      "in turn, chunks of min(--batch, 2^n); packed = masked_values_packed over the K images, "
      "chunks of --batch spanning images; plain = forward of the same K * 2^n inputs pre-built "
      "in memory, chunks of --batch (logits only); device (--device cuda) = packed with v "
      "written to device memory",
      "target   : vs_plain = plain / packed >= 0.9 (d_vs_plain on the GPU: the study's path)",
      "tolerance: err_pack = err_dev = 0; err_full, err_all <= 1e-5 * max(1, |v|)"};
  op.columns = {
      {"inputs", "-", hb::Fmt::integer, 0, 7},   {"batch", "-", hb::Fmt::integer, 0, 6},
      {"masked", "ms", hb::Fmt::fixed, 2, 9},    {"m_spread", "%", hb::Fmt::fixed, 1, 8},
      {"packed", "ms", hb::Fmt::fixed, 2, 9},    {"k_spread", "%", hb::Fmt::fixed, 1, 8},
      {"plain", "ms", hb::Fmt::fixed, 2, 9},     {"p_spread", "%", hb::Fmt::fixed, 1, 8},
      {"packed/s", "1/s", hb::Fmt::fixed, 0, 9}, {"plain/s", "1/s", hb::Fmt::fixed, 0, 9},
      {"vs_plain", "x", hb::Fmt::fixed, 3, 8},   {"speedup", "x", hb::Fmt::fixed, 3, 8},
      {"overhead", "%", hb::Fmt::fixed, 1, 8},   {"err_pack", "abs", hb::Fmt::sci, 1, 9},
      {"err_full", "abs", hb::Fmt::sci, 1, 9},   {"err_all", "abs", hb::Fmt::sci, 1, 9},
      {"device", "ms", hb::Fmt::fixed, 2, 9},    {"d_vs_plain", "x", hb::Fmt::fixed, 3, 10},
      {"err_dev", "abs", hb::Fmt::sci, 1, 9},
  };
  op.memory_bytes = [](const hb::Case& c) {
    // pre-built inputs, logits and two v arrays per input, and the model's activations
    return c.samples * (std::size_t{1} << c.n) * (kSize * 4 + kClasses * 4 + 2 * 8) +
           (std::size_t{256} << 20);
  };
  op.setup = [](const hb::Case& c) -> std::unique_ptr<hb::CaseState> {
    if (c.opt->extra_int("batch") < 1) throw std::runtime_error("--batch must be >= 1");
    return std::make_unique<MaskedState>(c);
  };
  op.kernels = {
      {"masked", nullptr,
       [](hb::CaseState& st, int) {
         auto& s = static_cast<MaskedState&>(st);
         for (std::int64_t i = 0; i < s.samples; ++i)
           s.net->masked_values_range(s.data, i, s.data.labels[i], s.layout, kOutput, s.flag_batch,
                                      0, static_cast<std::uint64_t>(s.total),
                                      &s.v_each[i * s.total]);
       }},
      {"packed", nullptr,
       [](hb::CaseState& st, int) {
         auto& s = static_cast<MaskedState&>(st);
         s.net->masked_values_packed(s.requests, s.layout, kOutput, s.batch);
       }},
      {"plain", nullptr,
       [](hb::CaseState& st, int) {
         auto& s = static_cast<MaskedState&>(st);
         s.net->forward(s.inputs.data(), kShape, s.rows, s.batch, s.logits);
       }},
      {"device", nullptr,
       [](hb::CaseState& st, int) {
         auto& s = static_cast<MaskedState&>(st);
         if (!s.d_requests.empty())
           s.net->masked_values_packed(s.d_requests, s.layout, kOutput, s.batch);
       }},
  };
  op.metrics = [](const hb::Case&, hb::CaseState& st, const std::vector<hb::Timing>& t,
                  hb::Row& row) {
    auto& s = static_cast<MaskedState&>(st);
    const double rows = static_cast<double>(s.rows);
    row["inputs"] = static_cast<long long>(s.rows);
    row["batch"] = static_cast<long long>(s.batch);
    row["masked"] = 1e3 * t[0].median;
    row["m_spread"] = t[0].spread_pct();
    row["packed"] = 1e3 * t[1].median;
    row["k_spread"] = t[1].spread_pct();
    row["plain"] = 1e3 * t[2].median;
    row["p_spread"] = t[2].spread_pct();
    row["packed/s"] = rows / t[1].median;
    row["plain/s"] = rows / t[2].median;
    row["vs_plain"] = t[2].median / t[1].median;
    row["speedup"] = t[0].median / t[1].median;
    row["overhead"] = 100.0 * (t[1].median - t[2].median) / t[2].median;
    if (!s.d_requests.empty()) {
      row["device"] = 1e3 * t[3].median;
      row["d_vs_plain"] = t[2].median / t[3].median;
    }
  };
  op.check = [](const hb::Case&, hb::CaseState& st, hb::Row& row) {
    auto& s = static_cast<MaskedState&>(st);
    hb::CheckResult r;
    const auto fail = [&r](const std::string& why) {
      r.ok = false;
      r.why += (r.why.empty() ? "" : "; ") + why;
    };
    // packed against each image's own call: bitwise
    double err_pack = 0.0;
    for (std::int64_t k = 0; k < s.rows; ++k)
      err_pack = std::max(err_pack, std::fabs(s.v_packed[k] - s.v_each[k]));
    row["err_pack"] = err_pack;
    if (err_pack != 0.0 || !std::equal(s.v_packed.begin(), s.v_packed.end(), s.v_each.begin()))
      fail(
          fmt::format("masked_values_packed differs from masked_values_range by {:.3e}", err_pack));
    // v(N) against the plain forward of each original image (the full set keeps every pixel);
    // every v(S) against v from the plain forward's logits of the pre-built x_S
    double err_full = 0.0, err_all = 0.0, worst_full = 0.0, worst_all = 0.0;
    for (std::int64_t i = 0; i < s.samples; ++i) {
      const int label = s.data.labels[i];
      std::vector<float> original;
      s.net->forward(s.data.sample(i), kShape, 1, 1, original);
      const double v_full = harsanyi::output_value(original.data(), kClasses, label, true);
      const double e_full = std::fabs(s.v_packed[(i + 1) * s.total - 1] - v_full);
      err_full = std::max(err_full, e_full);
      worst_full = std::max(worst_full, e_full / std::max(1.0, std::fabs(v_full)));
      for (std::int64_t k = i * s.total; k < (i + 1) * s.total; ++k) {
        const double plain = harsanyi::output_value(&s.logits[k * kClasses], kClasses, label, true);
        const double e = std::fabs(s.v_packed[k] - plain);
        err_all = std::max(err_all, e);
        worst_all = std::max(worst_all, e / std::max(1.0, std::fabs(plain)));
      }
    }
    row["err_full"] = err_full;
    row["err_all"] = err_all;
    if (!s.d_requests.empty()) {
      std::vector<double> v_dev(static_cast<std::size_t>(s.rows));
      harsanyi::cuda::copy_bytes(v_dev.data(), s.d_v.as<double>(), v_dev.size() * sizeof(double));
      double err_dev = 0.0;
      for (std::int64_t k = 0; k < s.rows; ++k)
        err_dev = std::max(err_dev, std::fabs(v_dev[k] - s.v_packed[k]));
      row["err_dev"] = err_dev;
      if (err_dev != 0.0 || !std::equal(v_dev.begin(), v_dev.end(), s.v_packed.begin()))
        fail(fmt::format("v written to device memory differs from v copied to the host by {:.3e}",
                         err_dev));
    }
    if (worst_full > kTolerance)
      fail(fmt::format("v(N) differs from the plain forward of the original image by {:.3e}",
                       err_full));
    if (worst_all > kTolerance)
      fail(fmt::format("masked_values_packed differs from the plain forward by {:.3e}", err_all));
    return r;
  };
  // The models are float32: f32 unless -d says otherwise (a later -d replaces this one).
  std::vector<char*> args(argv, argv + argc);
  static char d_flag[] = "-d", f32[] = "f32";
  args.insert(args.begin() + 1, {d_flag, f32});
  return hb::run_benchmark(op, static_cast<int>(args.size()), args.data());
}
