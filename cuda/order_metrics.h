/// @file order_metrics.h
/// @brief Host API of the GPU per-order metrics (DESIGN §2.2): the lab's folding, the salient
/// threshold and the per-order strength and counts of a batch of samples whose interactions are
/// in device memory, bitwise equal to the CPU functions of src/interaction_metrics.h.
///
/// Pure C++ header (no CUDA headers), like cuda_backend.h. Every call checks its CUDA calls and
/// kernel launches and throws std::runtime_error on failure; in builds without CUDA it throws
/// ("built without CUDA").
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cuda_backend.h"
#include "interaction_metrics.h"

namespace harsanyi::cuda {

/// The rows of a batch (src/interaction_metrics.h), as harsanyi::order_rows gives them.
using harsanyi::OrderRows;

/// @brief The metrics of `samples` rows of 2^n elements in device memory (0 <= n <= 32), as the
/// CPU computes them row by row: with `fold` (and an OR array), fold_low_orders first, in place
/// on d_and and d_or; then per sample τ = salient_threshold(and, or, v, n, tau_rel, ref), then
/// order_strength of the AND row and of the OR row with that τ. Results are bitwise equal to
/// those functions' (the sums follow order_strength's canonical tree, see cuda/order_index.h),
/// NaN payloads aside: a NaN that the fold or τ computes is the GPU's canonical NaN
/// (the sums and counts never hold one).
/// @param d_or the OR rows, or nullptr (AND only: the or_* rows of `out` come back empty)
/// @param d_v the values, read only for ThresholdReference::ValueRange (may be null otherwise)
/// @param out resized and filled; the call queues its work on `stream` and synchronises it.
/// Device work memory: a few small arrays per sample plus, for n > 12, partial bins of about
/// 1/16 byte per element.
template <class T>
void order_metrics_batch(T* d_and, T* d_or, const T* d_v, std::size_t samples, int n,
                         double tau_rel, ThresholdReference ref, bool fold, OrderRows& out,
                         Stream stream);

}  // namespace harsanyi::cuda
