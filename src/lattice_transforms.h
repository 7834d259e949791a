/// @file lattice_transforms.h
/// @brief Subset-lattice transforms on batches of set functions (CPU kernels).
///
/// A set function over n players is an array of 2^n values indexed by a subset S whose bit i is
/// player i. A batch holds `samples` such arrays back to back ([samples, 2^n], row-major).
/// Every transform is an O(n·2^n) butterfly over the bits, done in place, cache-blocked (low bits
/// inside blocks that fit in cache, high bits through a transposing buffer) and threaded over
/// samples and blocks with OpenMP. Results are bitwise independent of the thread count and of the
/// blocking: every element sees the same sequence of additions as in the per-bit loop.
#pragma once

#include <cstddef>
#include <cstdint>

namespace harsanyi {

/// Largest n the CPU kernels accept (2^n elements must be indexable and allocatable).
constexpr int kMaxPlayers = 40;

/// Number of subsets 2^n.
inline std::uint64_t subset_count(int n) { return std::uint64_t{1} << n; }

/// Which butterfly a lattice transform applies.
enum class LatticeOp { Moebius, MoebiusTranspose, Zeta, ZetaTranspose };

/// @brief Cache-blocking of the CPU kernels, in bytes. The low bits are done inside contiguous
/// blocks of `block_bytes`; the high bits in groups whose rows (`strip_bytes` contiguous bytes
/// each, at the group's stride) are gathered into a buffer of at most `buffer_bytes`. The defaults
/// suit a 1 MiB L2 (n <= 26 in double takes two passes over memory). Any blocking gives the same
/// result bitwise.
struct LatticeBlocking {
  std::size_t block_bytes = 512 * 1024;
  std::size_t buffer_bytes = 512 * 1024;
  std::size_t strip_bytes = 512;
};

/// @brief One of the four butterflies with an explicit blocking (for tuning and tests).
template <class T>
void lattice_transform(LatticeOp op, T* data, int n, std::size_t samples,
                       const LatticeBlocking& blocking);

/// @brief AND (Harsanyi / Möbius) transform: f(S) <- Σ_{T⊆S} (-1)^{|S|-|T|} f(T).
template <class T> void moebius_transform(T* data, int n, std::size_t samples = 1);
/// @brief Transpose of the Möbius transform: f(T) <- Σ_{S⊇T} (-1)^{|S|-|T|} f(S).
template <class T> void moebius_transpose(T* data, int n, std::size_t samples = 1);
/// @brief Zeta transform (sum over subsets), the inverse of Möbius: f(S) <- Σ_{T⊆S} f(T).
template <class T> void zeta_transform(T* data, int n, std::size_t samples = 1);
/// @brief Transpose of the zeta transform (sum over supersets): f(T) <- Σ_{S⊇T} f(S).
template <class T> void zeta_transpose(T* data, int n, std::size_t samples = 1);

/// @brief OR transform of DESIGN §2: I(S) = -Σ_{T⊆S} (-1)^{|S|-|T|} w(N\T) for S ≠ ∅, I(∅) = w(∅).
template <class T> void or_transform(T* data, int n, std::size_t samples = 1);
/// @brief Transpose of or_transform (the adjoint used for sub-gradients).
template <class T> void or_transform_transpose(T* data, int n, std::size_t samples = 1);
/// @brief Inverse of or_transform: w(S) = I(∅) + Σ_{T≠∅, T∩S≠∅} I(T).
template <class T> void or_synthesis(T* data, int n, std::size_t samples = 1);

/// @brief Reference per-bit loop (one full pass over the array per bit), the benchmark baseline.
/// Same result, bitwise, as moebius_transform.
template <class T> void moebius_transform_per_bit(T* data, int n, std::size_t samples = 1);

}  // namespace harsanyi
