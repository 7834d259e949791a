// Naive evaluations of the definitions (DESIGN §2), O(3^n) or O(4^n): the yardstick of the tests.
#pragma once

#include <cstdint>
#include <vector>

namespace harsanyi::testing {

inline int popcount(std::uint64_t s) { return __builtin_popcountll(s); }

/// I(S) = Σ_{T⊆S} (-1)^{|S|-|T|} w(T), enumerating the subsets T of every S (3^n terms).
template <class T> std::vector<T> naive_moebius(const std::vector<T>& w, int n) {
  const std::uint64_t len = std::uint64_t{1} << n;
  std::vector<T> out(len);
  for (std::uint64_t s = 0; s < len; ++s) {
    long double acc = 0;
    for (std::uint64_t t = s;; t = (t - 1) & s) {
      acc += ((popcount(s) - popcount(t)) % 2 ? -1.0L : 1.0L) * w[t];
      if (t == 0) break;
    }
    out[s] = static_cast<T>(acc);
  }
  return out;
}

/// I_or(S) = -Σ_{T⊆S} (-1)^{|S|-|T|} w(N\T) for S ≠ ∅, I_or(∅) = w(∅).
template <class T> std::vector<T> naive_or(const std::vector<T>& w, int n) {
  const std::uint64_t len = std::uint64_t{1} << n, full = len - 1;
  std::vector<T> out(len);
  for (std::uint64_t s = 0; s < len; ++s) {
    long double acc = 0;
    for (std::uint64_t t = s;; t = (t - 1) & s) {
      acc += ((popcount(s) - popcount(t)) % 2 ? -1.0L : 1.0L) * w[full ^ t];
      if (t == 0) break;
    }
    out[s] = static_cast<T>(-acc);
  }
  out[0] = w[0];
  return out;
}

/// v(S) = Σ_{T⊆S} I(T).
template <class T> std::vector<T> naive_zeta(const std::vector<T>& x, int n) {
  const std::uint64_t len = std::uint64_t{1} << n;
  std::vector<T> out(len);
  for (std::uint64_t s = 0; s < len; ++s) {
    long double acc = 0;
    for (std::uint64_t t = s;; t = (t - 1) & s) {
      acc += x[t];
      if (t == 0) break;
    }
    out[s] = static_cast<T>(acc);
  }
  return out;
}

/// The four butterflies as plain per-bit loops (one pass per bit, bits in increasing order):
/// kind 0 Möbius (hi -= lo), 1 its transpose (lo -= hi), 2 zeta (hi += lo), 3 its transpose.
template <class T> void per_bit_butterfly(std::vector<T>& f, int n, int kind) {
  const std::size_t len = std::size_t{1} << n;
  for (int b = 0; b < n; ++b) {
    const std::size_t bit = std::size_t{1} << b;
    for (std::size_t s = 0; s < len; ++s) {
      if (!(s & bit)) continue;
      T& lo = f[s ^ bit];
      T& hi = f[s];
      switch (kind) {
        case 0: hi -= lo; break;
        case 1: lo -= hi; break;
        case 2: hi += lo; break;
        default: lo += hi; break;
      }
    }
  }
}

/// Dense matrix of a linear map on R^(2^n), built by applying it to the unit vectors:
/// column j = f(e_j). Returns row-major [2^n, 2^n].
template <class F> std::vector<double> dense_matrix(int n, F&& apply) {
  const std::size_t len = std::size_t{1} << n;
  std::vector<double> m(len * len);
  for (std::size_t j = 0; j < len; ++j) {
    std::vector<double> e(len, 0.0);
    e[j] = 1.0;
    apply(e.data());
    for (std::size_t i = 0; i < len; ++i) m[i * len + j] = e[i];
  }
  return m;
}

}  // namespace harsanyi::testing
