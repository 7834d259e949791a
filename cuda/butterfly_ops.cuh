/// @file butterfly_ops.cuh
/// @brief The four butterflies of the subset-lattice transforms as device functors (CUDA only),
/// shared by the transform kernels and the fused sgd kernel. Each takes the element without the
/// bit (lo) and the element with it (hi), with the same operation as the CPU kernels.
#pragma once

namespace harsanyi::cuda::ops {

struct MoebiusOp {  // I(S) -= I(S \ b)
  template <class T>
  __device__ static void apply(T& lo, T& hi) {
    hi -= lo;
  }
};
struct MoebiusTOp {  // g(S \ b) -= g(S)
  template <class T>
  __device__ static void apply(T& lo, T& hi) {
    lo -= hi;
  }
};
struct ZetaOp {  // f(S) += f(S \ b)
  template <class T>
  __device__ static void apply(T& lo, T& hi) {
    hi += lo;
  }
};
struct ZetaTOp {  // f(S \ b) += f(S)
  template <class T>
  __device__ static void apply(T& lo, T& hi) {
    lo += hi;
  }
};

}  // namespace harsanyi::cuda::ops
