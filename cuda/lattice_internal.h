/// @file lattice_internal.h
/// @brief Internal host helpers shared by the .cu files of the CUDA backend (not installed, no
/// CUDA headers needed): launch sizing and the ∅-entry and reversal steps of the OR transforms.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda_backend.h"
#include "lattice_transforms.h"

namespace harsanyi::cuda {

/// Largest n the device kernels accept (the same as the CPU kernels).
constexpr int kMaxDevicePlayers = harsanyi::kMaxPlayers;
/// Largest grid the kernels are launched with; they loop over the rest (grid-stride loops).
constexpr std::uint64_t kMaxBlocks = std::uint64_t{1} << 24;

/// @brief Blocks of `threads` threads to cover `work` items, clamped to [1, kMaxBlocks].
unsigned launch_blocks(std::uint64_t work, int threads);

/// @brief In-place x(S) <- -x(N \ S) on device rows; `d_save` (optional, [samples]) receives each
/// row's x(∅) before, `d_add` (optional, [samples]) is added to each new x(∅) after.
template <class T>
void reverse_negate_rows(T* d_data, int n, std::size_t samples, T* d_save, const T* d_add,
                         Stream stream);

/// @brief Per device row: `d_save` (optional) receives x(∅), then x(∅) is set to `d_value[s]`
/// (or to zero when d_value is null).
template <class T>
void set_empty_entries(T* d_data, int n, std::size_t samples, T* d_save, const T* d_value,
                       Stream stream);

}  // namespace harsanyi::cuda
