/// @file make_values.h
/// @brief `harsanyi make-values`: an example values file of planted games (known interactions).
#pragma once

#include <cstdint>
#include <string>

namespace harsanyi {

struct MakeValuesOptions {
  std::string out_path = "values.h5";
  int n = 10;
  std::size_t samples = 8;
  int terms = 6;          ///< AND terms and OR terms per sample
  int max_order = 4;
  double noise = 0.05;    ///< standard deviation of Gaussian noise added to every v(S)
  std::uint64_t seed = 1;
  std::string dtype = "f64";
  bool force = false;
};

/// Writes /values [samples, 2^n] (and the planted terms under /planted) to out_path.
void make_values_file(const MakeValuesOptions& opt);

}  // namespace harsanyi
