// The LibTorch-free parts of network.h: output names, v from logits, layout checks and the
// per-epoch shuffle.
#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "network.h"
#include "user_error.h"

namespace harsanyi {

OutputSpec OutputSpec::parse(const std::string& name) {
  OutputSpec spec;
  std::string base = name;
  const std::string suffix = "-v0";
  spec.subtract_empty = false;
  if (base.size() > suffix.size() &&
      base.compare(base.size() - suffix.size(), suffix.size(), suffix) == 0) {
    spec.subtract_empty = true;
    base.resize(base.size() - suffix.size());
  }
  if (base == "gt-log-odds") {
    spec.log_odds = true;
  } else if (base == "gt-logit") {
    spec.log_odds = false;
  } else {
    throw UserError("unknown output function '" + name +
                    "' (gt-log-odds, gt-log-odds-v0, gt-logit, gt-logit-v0)");
  }
  return spec;
}

double output_value(const float* logits, int classes, int y, bool log_odds) {
  if (!log_odds) return static_cast<double>(logits[y]);
  double m = static_cast<double>(logits[0]);
  for (int j = 1; j < classes; ++j) m = std::max(m, static_cast<double>(logits[j]));
  double sum = 0.0;
  for (int j = 0; j < classes; ++j) sum += std::exp(static_cast<double>(logits[j]) - m);
  const double p = std::exp(static_cast<double>(logits[y]) - m) / sum;
  return std::log(p / (1.0 - p + 1e-7) + 1e-7);
}

void check_layout(const PlayerLayout& layout, std::int64_t sample_size) {
  if (layout.n < 0 || layout.n > 40)
    throw UserError("players: n = " + std::to_string(layout.n) + " is outside 0..40");
  if (static_cast<std::int64_t>(layout.owner.size()) != sample_size)
    throw UserError("players: the layout covers " + std::to_string(layout.owner.size()) +
                    " input elements but a sample has " + std::to_string(sample_size));
  if (layout.baseline.size() != layout.owner.size())
    throw UserError("players: the baseline has " + std::to_string(layout.baseline.size()) +
                    " elements, the layout " + std::to_string(layout.owner.size()));
  for (std::size_t e = 0; e < layout.owner.size(); ++e) {
    const std::int32_t o = layout.owner[e];
    if (o < PlayerLayout::kAlwaysBaseline || o >= layout.n)
      throw UserError("players: element " + std::to_string(e) + " has owner " + std::to_string(o) +
                      ", not a player of 0.." + std::to_string(layout.n - 1) +
                      " or a background code");
  }
}

namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform integer in [0, bound), bound >= 1 (Lemire, "Fast random integer generation in an
// interval", 2019): unbiased, and fully specified by the generator's outputs.
std::uint64_t bounded(std::mt19937_64& gen, std::uint64_t bound) {
  unsigned __int128 m = static_cast<unsigned __int128>(gen()) * bound;
  auto low = static_cast<std::uint64_t>(m);
  if (low < bound) {
    const std::uint64_t threshold = (0 - bound) % bound;
    while (low < threshold) {
      m = static_cast<unsigned __int128>(gen()) * bound;
      low = static_cast<std::uint64_t>(m);
    }
  }
  return static_cast<std::uint64_t>(m >> 64);
}

}  // namespace

std::vector<std::int64_t> shuffle_for_epoch(const std::vector<std::int64_t>& indices,
                                            std::uint64_t seed, int epoch) {
  std::vector<std::int64_t> order = indices;
  std::mt19937_64 gen(splitmix64(splitmix64(seed) + static_cast<std::uint64_t>(epoch)));
  for (std::size_t i = order.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(bounded(gen, i));
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

void subtract_empty(const OutputSpec& output, double* v, std::uint64_t len) {
  if (!output.subtract_empty || len == 0) return;
  const double v0 = v[0];
  for (std::uint64_t s = 0; s < len; ++s) v[s] -= v0;
}

EvalStats Network::evaluate(const Dataset& data, const std::vector<std::int64_t>& indices,
                            const std::vector<std::int32_t>& labels, std::int64_t batch) {
  std::vector<double> loss_sums;
  std::vector<std::int64_t> correct;
  evaluate_sums(data, indices, labels, batch, loss_sums, correct);
  if (indices.empty()) return {};
  double loss = 0.0;
  std::int64_t right = 0;
  for (std::size_t i = 0; i < loss_sums.size(); ++i) loss += loss_sums[i], right += correct[i];
  const auto total = static_cast<double>(indices.size());
  return {loss / total, static_cast<double>(right) / total};
}

void Network::masked_values_range(const Dataset& data, std::int64_t index, int label,
                                  const PlayerLayout& layout, const OutputSpec& output,
                                  std::int64_t batch, std::uint64_t first, std::uint64_t count,
                                  double* v) {
  masked_values_packed({MaskedRequest{&data, index, label, first, count, v}}, layout, output,
                       batch);
}

void Network::masked_values(const Dataset& data, std::int64_t index, int label,
                            const PlayerLayout& layout, const OutputSpec& output,
                            std::int64_t batch, double* v) {
  const std::uint64_t total = std::uint64_t{1} << layout.n;
  masked_values_range(data, index, label, layout, output, batch, 0, total, v);
  subtract_empty(output, v, total);
}

}  // namespace harsanyi
