// masked_forward_perf: v(x_S) of all 2^n masked inputs of one image through
// Network::masked_values (masks built with tensor ops per chunk, forward, v in double) against
// plain batched inference of the same model on the same inputs, pre-built, in the same run.
//
// Columns (after n, dtype, threads, samples):
//   inputs    2^n, the masked inputs of one sample
//   batch     inputs per forward, min(--batch, 2^n); both kernels use the same chunks
//   masked    median time of one masked_values call over all 2^n subsets (ms); m_spread its
//             (max - min) / median
//   masked/s  inputs / masked: masked inputs evaluated per second, v included
//   plain     median time of Network::forward on the 2^n inputs pre-built in memory (logits
//             only, no v); p_spread its spread
//   plain/s   inputs / plain
//   overhead  (masked - plain) / plain x 100 %: what building the masks on the fly (and v in
//             double) costs on top of inference; target <= 10 %
//   err_full  |v(N) from masked_values - v of a plain forward of the original image|
//   err_all   max over S of |v(S) - v from the plain forward's logits of x_S|
// The check fails when err_full or err_all exceeds 1e-5 * max(1, |v|).
// --device cuda runs the model on the GPU (a CUDA LibTorch): masked builds each chunk's masked
// inputs on the device from the one image; plain copies each pre-built chunk from host memory to
// the device, as inference from memory does. Both copy the logits back per chunk.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "dataset.h"
#include "driver.h"
#include "network.h"
#include "players.h"

namespace hb = harsanyi::bench;

namespace {

const std::vector<std::int64_t> kShape = {1, 28, 28};
constexpr int kClasses = 10;
constexpr int kLabel = 3;
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

std::int64_t chunk_of(const hb::Case& c) {
  return std::min<std::int64_t>(c.opt->extra_int("batch"), std::int64_t{1} << c.n);
}

struct MaskedState : hb::CaseState {
  int n = 0;
  std::int64_t total = 0, batch = 0;
  harsanyi::Dataset data;
  harsanyi::PlayerLayout layout;
  std::unique_ptr<harsanyi::Network> net;
  std::vector<float> inputs;  // [2^n, 1, 28, 28], pre-built for the plain forward
  std::vector<float> logits;  // plain forward's output
  std::vector<double> v;      // masked_values' output
  explicit MaskedState(const hb::Case& c)
      : n(c.n), total(std::int64_t{1} << c.n), batch(chunk_of(c)), layout(grid_players(c.n)) {
    if (c.dtype != hb::Dtype::f32)
      throw std::runtime_error("the models run in float32 only (-d f32)");
    harsanyi::set_torch_threads(c.threads);
    data.source = "synthetic image";
    data.shape = kShape;
    data.num_classes = kClasses;
    data.labels = {kLabel};
    data.data.resize(784);
    hb::fill_uniform(data.data.data(), data.data.size(), 2024);
    for (float& x : data.data) x = 0.5f * (x + 1.f);  // [0, 1) like byte / 255
    net = harsanyi::Network::build("lenet", kShape, kClasses, 0);
    net->to_device(c.opt->extra.at("device"));
    inputs.resize(static_cast<std::size_t>(total) * 784);
    harsanyi::build_masked_batch(layout, data.sample(0), 0, total, inputs.data());
    v.resize(total);
  }
};

}  // namespace

int main(int argc, char** argv) {
  hb::OpDef op;
  op.name = "masked_forward_perf";
  op.summary =
      "v(x_S) of all 2^n masked inputs (lenet, 1x28x28): Network::masked_values vs plain "
      "batched inference of pre-built inputs";
  op.default_min_n = 8;
  op.default_max_n = 12;
  op.max_allowed_n = 16;
  op.default_reps = 5;
  op.default_samples = 1;
  op.flags = {{"batch", "512", "masked inputs per forward (chunk size; capped at 2^n)"},
              {"device", "cpu", "where the model runs: cpu, cuda (a CUDA LibTorch)"}};
  op.preamble = {
      "model    : lenet (61706 parameters) for 1x28x28, 10 classes, seed 0, eval mode, no "
      "gradients; LibTorch threads = -t; on --device",
      "players  : the first n cells of the smallest square grid with >= n cells (3x3 for n <= 9, "
      "4x4 up to 16), rest of the image kept, zero baseline; one synthetic image",
      "kernels  : masked = masked_values(gt-log-odds) over all 2^n subsets in chunks of --batch; "
      "plain = forward of the same 2^n inputs pre-built in memory, same chunks (logits only)",
      "target   : overhead = (masked - plain) / plain <= 10 %",
      "tolerance: err_full, err_all <= 1e-5 * max(1, |v|)"};
  op.columns = {
      {"inputs", "-", hb::Fmt::integer, 0, 7},   {"batch", "-", hb::Fmt::integer, 0, 6},
      {"masked", "ms", hb::Fmt::fixed, 2, 9},    {"m_spread", "%", hb::Fmt::fixed, 1, 8},
      {"masked/s", "1/s", hb::Fmt::fixed, 0, 9}, {"plain", "ms", hb::Fmt::fixed, 2, 9},
      {"p_spread", "%", hb::Fmt::fixed, 1, 8},   {"plain/s", "1/s", hb::Fmt::fixed, 0, 9},
      {"overhead", "%", hb::Fmt::fixed, 1, 8},   {"err_full", "abs", hb::Fmt::sci, 1, 9},
      {"err_all", "abs", hb::Fmt::sci, 1, 9},
  };
  op.memory_bytes = [](const hb::Case& c) {
    return (std::size_t{1} << c.n) * (784 * 4 + 10 * 4 + 8) * 2 + (std::size_t{256} << 20);
  };
  op.setup = [](const hb::Case& c) -> std::unique_ptr<hb::CaseState> {
    if (c.opt->extra_int("batch") < 1) throw std::runtime_error("--batch must be >= 1");
    return std::make_unique<MaskedState>(c);
  };
  op.kernels = {
      {"masked", nullptr,
       [](hb::CaseState& st, int) {
         auto& s = static_cast<MaskedState&>(st);
         s.net->masked_values(s.data, 0, kLabel, s.layout, harsanyi::OutputSpec{true, false},
                              s.batch, s.v.data());
       }},
      {"plain", nullptr,
       [](hb::CaseState& st, int) {
         auto& s = static_cast<MaskedState&>(st);
         s.net->forward(s.inputs.data(), kShape, s.total, s.batch, s.logits);
       }},
  };
  op.metrics = [](const hb::Case&, hb::CaseState& st, const std::vector<hb::Timing>& t,
                  hb::Row& row) {
    auto& s = static_cast<MaskedState&>(st);
    row["inputs"] = static_cast<long long>(s.total);
    row["batch"] = static_cast<long long>(s.batch);
    row["masked"] = 1e3 * t[0].median;
    row["m_spread"] = t[0].spread_pct();
    row["masked/s"] = static_cast<double>(s.total) / t[0].median;
    row["plain"] = 1e3 * t[1].median;
    row["p_spread"] = t[1].spread_pct();
    row["plain/s"] = static_cast<double>(s.total) / t[1].median;
    row["overhead"] = 100.0 * (t[0].median - t[1].median) / t[1].median;
  };
  op.check = [](const hb::Case&, hb::CaseState& st, hb::Row& row) {
    auto& s = static_cast<MaskedState&>(st);
    hb::CheckResult r;
    // v(N) against the plain forward of the original image (the full set keeps every pixel)
    std::vector<float> original;
    s.net->forward(s.data.sample(0), kShape, 1, 1, original);
    const double v_full = harsanyi::output_value(original.data(), kClasses, kLabel, true);
    const double err_full = std::fabs(s.v[s.total - 1] - v_full);
    row["err_full"] = err_full;
    // every v(S) against v from the plain forward's logits of the pre-built x_S
    double err_all = 0.0, worst_rel = 0.0;
    for (std::int64_t k = 0; k < s.total; ++k) {
      const double plain = harsanyi::output_value(&s.logits[k * kClasses], kClasses, kLabel, true);
      const double e = std::fabs(s.v[k] - plain);
      err_all = std::max(err_all, e);
      worst_rel = std::max(worst_rel, e / std::max(1.0, std::fabs(plain)));
    }
    row["err_all"] = err_all;
    if (err_full > kTolerance * std::max(1.0, std::fabs(v_full))) {
      r.ok = false;
      r.why = fmt::format("v(N) = {} but the original image gives {}", s.v[s.total - 1], v_full);
    }
    if (worst_rel > kTolerance) {
      r.ok = false;
      r.why += fmt::format("{}masked_values differs from the plain forward by {:.3e}",
                           r.why.empty() ? "" : "; ", err_all);
    }
    return r;
  };
  // The models are float32: f32 unless -d says otherwise (a later -d replaces this one).
  std::vector<char*> args(argv, argv + argc);
  static char d_flag[] = "-d", f32[] = "f32";
  args.insert(args.begin() + 1, {d_flag, f32});
  return hb::run_benchmark(op, static_cast<int>(args.size()), args.data());
}
