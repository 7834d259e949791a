// Players and masking: the reference construction of one masked input x_S.
#include "players.h"

#include <cstddef>

namespace harsanyi {

void masked_input(const PlayerLayout& layout, const float* x, std::uint64_t subset, float* out) {
  const std::size_t size = layout.owner.size();
  for (std::size_t e = 0; e < size; ++e) {
    const std::int32_t owner = layout.owner[e];
    const bool keep = owner == PlayerLayout::kAlwaysKept ||
                      (owner >= 0 && ((subset >> owner) & 1u) != 0);
    out[e] = keep ? x[e] : layout.baseline[e];
  }
}

}  // namespace harsanyi
