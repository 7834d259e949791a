/// @file dataset.h
/// @brief In-memory datasets (images or tables) read from IDX, CIFAR-10 binary or CSV files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace harsanyi {

/// @brief A labelled dataset held as float32, one contiguous row per sample.
/// Images are [C, H, W] per sample with values byte/255 in [0, 1] (then normalised if the
/// config asks for it); tables are [F] per sample.
struct Dataset {
  std::string source;                     ///< where it came from (file or prefix), for messages
  std::vector<std::int64_t> shape;        ///< per-sample shape: {C, H, W} (images) or {F} (tables)
  std::vector<float> data;                ///< [count, prod(shape)] row-major
  std::vector<std::int32_t> labels;       ///< [count], in [0, num_classes)
  std::int32_t num_classes = 0;
  std::vector<std::string> feature_names; ///< tables: one name per feature; images: empty
  /// CSV files whose labels are not all non-negative integers: the label text of each class
  /// (class k = class_names[k], the distinct texts sorted; num_classes = its size); empty when
  /// labels are integers (num_classes = max label + 1 of the loaded samples).
  std::vector<std::string> class_names;

  std::int64_t count() const { return static_cast<std::int64_t>(labels.size()); }
  std::int64_t sample_size() const {       ///< prod(shape)
    std::int64_t size = 1;
    for (std::int64_t d : shape) size *= d;
    return size;
  }
  bool is_image() const { return shape.size() == 3; }
  const float* sample(std::int64_t i) const { return data.data() + i * sample_size(); }
};

}  // namespace harsanyi
