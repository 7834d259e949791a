#include "report.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <fmt/format.h>

#include "extraction.h"
#include "h5_wrappers.h"
#include "interaction_metrics.h"

namespace harsanyi {

namespace {

// Opens a file for a report; HDF5 problems become one-line user errors.
h5::File open_for_report(const std::string& path) {
  try {
    return h5::File::open_read(path);
  } catch (const h5::H5Error& e) {
    throw UserError(e.what());
  }
}

// The /orders/{and,or}_{pos,neg,count} datasets (any shape), index 0 AND, 1 OR (OR when has_or).
struct OrderArrays {
  std::vector<double> pos[2], neg[2], cnt[2];
};
OrderArrays read_orders(const h5::File& f, bool has_or) {
  OrderArrays o;
  const char* kinds[] = {"and", "or"};
  for (int k = 0; k < (has_or ? 2 : 1); ++k) {
    o.pos[k] = f.read_all<double>(fmt::format("/orders/{}_pos", kinds[k]));
    o.neg[k] = f.read_all<double>(fmt::format("/orders/{}_neg", kinds[k]));
    o.cnt[k] = f.read_all<double>(fmt::format("/orders/{}_count", kinds[k]));
  }
  return o;
}

}  // namespace

void print_extraction_report(const std::string& path, std::FILE* out) {
  h5::File f = open_for_report(path);
  if (!f.exists("/orders/and_pos") || !f.has_attribute("n_players"))
    throw UserError(path + ": not a harsanyi extraction file (no /orders/and_pos)");
  if (!f.has_attribute("complete"))
    throw UserError(path + ": incomplete file (the run that wrote it did not finish)");
  const int n = static_cast<int>(f.double_attribute("n_players"));
  const h5::DatasetInfo info = f.info("/orders/and_pos");
  const std::size_t S = info.dims[0], K = static_cast<std::size_t>(n) + 1;
  const bool has_or = f.exists("/orders/or_pos");
  const OrderArrays orders = read_orders(f, has_or);
  const auto& pos = orders.pos;
  const auto& neg = orders.neg;
  const auto& cnt = orders.cnt;
  const std::vector<double> loss = f.read_all<double>("/extraction/loss");

  auto mean_over_samples = [&](const std::vector<double>& x, std::size_t order) {
    double s = 0;
    for (std::size_t i = 0; i < S; ++i) s += x[i * K + order];
    return s / static_cast<double>(S);
  };
  fmt::print(out, "# {}: n = {} players, {} samples, mode {}, solver {}, {}\n", path, n, S,
             f.string_attribute("mode"), f.string_attribute("solver"),
             f.string_attribute("or_folding"));
  fmt::print(out, "# per-order means over samples: A+ / A- = salient positive / negative strength,"
                  " # = salient count\n");
  if (has_or)
    fmt::print(out, "{:>5} {:>11} {:>11} {:>8} {:>11} {:>11} {:>8}\n", "order", "AND A+",
               "AND A-", "AND #", "OR A+", "OR A-", "OR #");
  else
    fmt::print(out, "{:>5} {:>11} {:>11} {:>8}\n", "order", "AND A+", "AND A-", "AND #");
  double total_count = 0;
  std::vector<double> all_pos(K, 0.0), all_neg(K, 0.0);
  for (std::size_t k = 0; k < K; ++k) {
    std::string row = fmt::format("{:>5} {:>11.4g} {:>11.4g} {:>8.2f}", k,
                                  mean_over_samples(pos[0], k), mean_over_samples(neg[0], k),
                                  mean_over_samples(cnt[0], k));
    all_pos[k] += mean_over_samples(pos[0], k);
    all_neg[k] += mean_over_samples(neg[0], k);
    total_count += mean_over_samples(cnt[0], k);
    if (has_or) {
      row += fmt::format(" {:>11.4g} {:>11.4g} {:>8.2f}", mean_over_samples(pos[1], k),
                         mean_over_samples(neg[1], k), mean_over_samples(cnt[1], k));
      all_pos[k] += mean_over_samples(pos[1], k);
      all_neg[k] += mean_over_samples(neg[1], k);
      total_count += mean_over_samples(cnt[1], k);
    }
    fmt::print(out, "{}\n", row);
  }
  double mean_loss = 0;
  for (double l : loss) mean_loss += l;
  mean_loss /= static_cast<double>(S);
  const double slots = (has_or ? 2.0 : 1.0) * std::ldexp(1.0, n);
  fmt::print(out, "# mean loss (L1 of the interactions) {:.6g}; strength-weighted mean order {:.3f};"
                  " salient {:.1f} of {:.0f} ({:.2f}%)\n",
             mean_loss, mean_order(all_pos.data(), all_neg.data(), n), total_count, slots,
             100.0 * total_count / slots);
}

namespace {

// One bar per order, heights proportional to x[k] / max(x).
std::string bars(const std::vector<double>& x) {
  static const char* const kLevels[] = {" ", "\u2581", "\u2582", "\u2583", "\u2584",
                                        "\u2585", "\u2586", "\u2587", "\u2588"};
  double top = 0;
  for (double v : x) top = std::max(top, v);
  std::string row;
  for (double v : x) {
    int level = top > 0 ? static_cast<int>(std::lround(8.0 * v / top)) : 0;
    if (v > 0 && level == 0) level = 1;
    row += kLevels[level];
  }
  return row;
}

}  // namespace

void print_study_report(const std::string& path, std::FILE* out) {
  h5::File f = open_for_report(path);
  if (!f.has_attribute("kind") || f.string_attribute("kind") != "study")
    throw UserError(path + ": not a harsanyi study file");
  const int n = static_cast<int>(f.double_attribute("n_players"));
  const std::size_t K = static_cast<std::size_t>(n) + 1;
  const auto written = static_cast<std::size_t>(f.double_attribute("epochs_written"));
  const bool complete = f.has_attribute("complete");
  const bool has_or = f.exists("/orders/or_pos");
  const std::vector<std::int32_t> epoch = f.read_all<std::int32_t>("/epochs/epoch");
  const std::vector<double> trl = f.read_all<double>("/epochs/train_loss"),
                            tel = f.read_all<double>("/epochs/test_loss"),
                            tra = f.read_all<double>("/epochs/train_acc"),
                            tea = f.read_all<double>("/epochs/test_acc");
  const std::vector<std::uint8_t> split = f.read_all<std::uint8_t>("/samples/split");
  const std::size_t S = split.size();
  const OrderArrays orders = read_orders(f, has_or);
  const auto& pos = orders.pos;
  const auto& neg = orders.neg;
  const auto& cnt = orders.cnt;
  const std::size_t ntrain = static_cast<std::size_t>(std::count(split.begin(), split.end(), 0));
  fmt::print(out, "# {}: {} epochs{}, n = {} players, {} samples ({} train, {} test), mode {}, "
                  "solver {}, output {}\n",
             path, written, complete ? "" : " (incomplete: a running or interrupted study)", n, S,
             ntrain, S - ntrain, f.string_attribute("mode"), f.string_attribute("solver"),
             f.string_attribute("output_fn"));
  fmt::print(out, "# order: strength-weighted mean order of the salient interactions (AND and OR, "
                  "mean over samples); AND#/OR#: salient count per sample; orders 0..{}: salient "
                  "strength per order, scaled to the epoch's largest\n",
             n);
  fmt::print(out, "{:>5} {:>10} {:>10} {:>8} {:>7} {:>7} {:>6} {:>7} {:>7}  {}\n", "epoch",
             "train loss", "test loss", "gap", "tr acc", "te acc", "order", "AND#", "OR#",
             "orders 0.." + std::to_string(n));
  for (std::size_t e = 0; e < written; ++e) {
    const std::size_t at = e * S * K;
    const OrderSummary sum = summarize_orders(
        pos[0].data() + at, neg[0].data() + at, cnt[0].data() + at,
        has_or ? pos[1].data() + at : nullptr, has_or ? neg[1].data() + at : nullptr,
        has_or ? cnt[1].data() + at : nullptr, S, n);
    fmt::print(out, "{:>5} {:>10.4f} {:>10.4f} {:>8.4f} {:>7.3f} {:>7.3f} {:>6.2f} {:>7.1f} {:>7}  "
                    "{}\n",
               epoch[e], trl[e], tel[e], tel[e] - trl[e], tra[e], tea[e], sum.order, sum.and_count,
               has_or ? fmt::format("{:.1f}", sum.or_count) : std::string("-"), bars(sum.strength));
  }
}

void print_report(const std::string& path, std::FILE* out) {
  bool study = false;
  {
    h5::File f = open_for_report(path);
    study = f.has_attribute("kind") && f.string_attribute("kind") == "study";
  }
  if (study)
    print_study_report(path, out);
  else
    print_extraction_report(path, out);
}

}  // namespace harsanyi
