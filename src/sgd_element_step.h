/// @file sgd_element_step.h
/// @brief The per-element arithmetic of the sgd protocol, shared by the CPU solver and the CUDA
/// kernels (host and device), so that both perform the same operations in the same order and
/// agree bitwise in float64.
#pragma once

#include "host_device.h"

namespace harsanyi::sgd_step {

/// q clamped to [-bound, bound], as std::min(std::max(q, -bound), bound).
template <class T> HARSANYI_HD T clamp_q(T q, T bound) {
  const T lo = -bound;
  const T m = (q < lo) ? lo : q;   // std::max(q, lo)
  return (bound < m) ? bound : m;  // std::min(m, bound)
}

/// v_and = ½(v + q) + p and v_or = ½(v + q) − p of one subset.
template <class T> HARSANYI_HD void split(T v, T q, T p, T& v_and, T& v_or) {
  const T h = T(0.5) * (v + q);
  v_and = h + p;
  v_or = h - p;
}

/// sign(x) with sign(0) = 0.
template <class T> HARSANYI_HD T sign_of(T x) { return static_cast<T>((x > T(0)) - (x < T(0))); }

/// @brief One subset's momentum-SGD step (PyTorch semantics: first buffer = gradient, no
/// dampening) on p and q, from sa = (Mᵀ sign I_and)(S) and so = (Oᵀ sign I_or)(S):
/// ∂L/∂p = sa − so, ∂L/∂q = ½sa + ½so.
template <class T>
HARSANYI_HD void momentum_step(T sa, T so, bool first, T momentum, T eta, T& buf_p, T& buf_q,
                               T& p, T& q) {
  const T gp = sa - so;
  const T gq = T(0.5) * sa + T(0.5) * so;
  const T np = first ? gp : momentum * buf_p + gp;
  const T nq = first ? gq : momentum * buf_q + gq;
  buf_p = np;
  buf_q = nq;
  p = p - eta * np;
  q = q - eta * nq;
}

}  // namespace harsanyi::sgd_step
