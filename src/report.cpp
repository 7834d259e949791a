#include "report.h"

#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "extraction.h"
#include "h5_wrappers.h"
#include "interaction_metrics.h"

namespace harsanyi {

void print_extraction_report(const std::string& path, std::FILE* out) {
  h5::File f = [&] {
    try {
      return h5::File::open_read(path);
    } catch (const h5::H5Error& e) {
      throw UserError(e.what());
    }
  }();
  if (!f.exists("/orders/and_pos") || !f.has_attribute("n_players"))
    throw UserError(path + ": not a harsanyi extraction file (no /orders/and_pos)");
  if (!f.has_attribute("complete"))
    throw UserError(path + ": incomplete file (the run that wrote it did not finish)");
  const int n = static_cast<int>(f.double_attribute("n_players"));
  const h5::DatasetInfo info = f.info("/orders/and_pos");
  const std::size_t S = info.dims[0], K = static_cast<std::size_t>(n) + 1;
  const bool has_or = f.exists("/orders/or_pos");
  const char* kinds[] = {"and", "or"};
  std::vector<double> pos[2], neg[2], cnt[2];
  for (int k = 0; k < (has_or ? 2 : 1); ++k) {
    pos[k] = f.read_all<double>(fmt::format("/orders/{}_pos", kinds[k]));
    neg[k] = f.read_all<double>(fmt::format("/orders/{}_neg", kinds[k]));
    cnt[k] = f.read_all<double>(fmt::format("/orders/{}_count", kinds[k]));
  }
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

}  // namespace harsanyi
