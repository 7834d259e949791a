#include "make_values.h"

#include <random>
#include <vector>

#include <fmt/format.h>

#include "extraction.h"
#include "h5_wrappers.h"
#include "harsanyi_config.h"
#include "lattice_transforms.h"
#include "output_file.h"
#include "planted_game.h"

namespace harsanyi {

void make_values_file(const MakeValuesOptions& opt) {
  if (opt.n < 1 || opt.n > 30) throw UserError("--n must be in 1..30");
  if (opt.samples < 1) throw UserError("--samples must be >= 1");
  if (opt.dtype != "f32" && opt.dtype != "f64") throw UserError("--dtype must be f32 or f64");
  if (opt.max_order < 1) throw UserError("--max-order must be at least 1");
  if (opt.terms < 0) throw UserError("--terms must be >= 0");
  if (!(opt.noise >= 0)) throw UserError("--noise must be >= 0");
  OutputFile out(opt.out_path, opt.force);
  {
    const std::uint64_t len = subset_count(opt.n);
    h5::File& f = *out;
    const hsize_t S = opt.samples, L = len, T = static_cast<hsize_t>(opt.terms);
    f.create_dataset("/values", opt.dtype == "f32" ? h5::Dtype::F32 : h5::Dtype::F64, {S, L},
                     std::max<hsize_t>(1, (hsize_t{1} << 20) / L));
    f.create_dataset("/planted/and_set", h5::Dtype::I64, {S, T});
    f.create_dataset("/planted/and_coef", h5::Dtype::F64, {S, T});
    f.create_dataset("/planted/or_set", h5::Dtype::I64, {S, T});
    f.create_dataset("/planted/or_coef", h5::Dtype::F64, {S, T});
    std::mt19937_64 rng(opt.seed * 7919 + 17);
    std::normal_distribution<double> gauss(0.0, 1.0);
    for (std::size_t s = 0; s < opt.samples; ++s) {
      const PlantedGame g = random_planted_game(opt.n, opt.terms, opt.max_order, opt.seed + s);
      std::vector<double> v = g.values();
      if (opt.noise > 0)
        for (double& x : v) x += opt.noise * gauss(rng);
      f.write_rows("/values", s, 1, v.data());
      std::vector<std::int64_t> as, os;
      std::vector<double> ac, oc;
      for (const auto& t : g.and_terms) {
        as.push_back(static_cast<std::int64_t>(t.set));
        ac.push_back(t.coefficient);
      }
      for (const auto& t : g.or_terms) {
        os.push_back(static_cast<std::int64_t>(t.set));
        oc.push_back(t.coefficient);
      }
      f.write_rows("/planted/and_set", s, 1, as.data());
      f.write_rows("/planted/and_coef", s, 1, ac.data());
      f.write_rows("/planted/or_set", s, 1, os.data());
      f.write_rows("/planted/or_coef", s, 1, oc.data());
    }
    f.set_attribute("schema", std::string("harsanyi/1"));
    f.set_attribute("kind", std::string("values"));
    f.set_attribute("tool_version", std::string(HARSANYI_VERSION));
    f.set_attribute("n_players", std::int64_t{opt.n});
    f.set_attribute("subset_index", std::string("bit i = player i"));
    f.set_attribute("output_fn",
                    fmt::format("planted game: base + sum of {} AND and {} OR unanimity terms "
                                "(orders 1..{}), Gaussian noise sd {}",
                                opt.terms, opt.terms, opt.max_order, opt.noise));
    f.set_attribute("baseline", std::string("n/a (synthetic game)"));
  }
  out.commit();
}

}  // namespace harsanyi
