// CPU softmax / log_softmax over the middle dim of a contiguous [outer, n, inner] tensor.
// Max-shifted; half types compute in float, sums accumulate in double.
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/ops/softmax.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/vec_math.h"

namespace bigmodel::cpu {
namespace {

// Float32 rows through the vectorised exp (vec_math.h): the shifted values go into the output
// row, are exponentiated in place, summed in double, then scaled (softmax) or replaced by
// (x - m) - log s (log_softmax). Needs out and in to be distinct buffers.
void softmax_rows_f32(const float* src, float* dst, int64_t outer, int64_t n, bool log, bool parallel) {
#pragma omp parallel for if (parallel)
  for (int64_t o = 0; o < outer; ++o) {
    const float* x = src + o * n;
    float* y = dst + o * n;
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t k = 0; k < n; ++k) m = std::max(m, x[k]);
    for (int64_t k = 0; k < n; ++k) y[k] = x[k] - m;
    vec::exp_f32(y, y, n);
    double s = 0;
    for (int64_t k = 0; k < n; ++k) s += y[k];
    if (log) {
      const float log_sum = static_cast<float>(std::log(s));
      for (int64_t k = 0; k < n; ++k) y[k] = (x[k] - m) - log_sum;
    } else {
      const float inv = static_cast<float>(1.0 / s);
      for (int64_t k = 0; k < n; ++k) y[k] *= inv;
    }
  }
}

template <typename T>
void softmax_typed(const Tensor& out, const Tensor& in, int64_t outer, int64_t n, int64_t inner, bool log) {
  using C = compute_t<T>;
  const T* src = static_cast<const T*>(in.data_ptr());
  T* dst = static_cast<T*>(out.data_ptr());
  const bool parallel = outer * n * inner > kParallelGrain && outer > 1;
  if constexpr (std::is_same_v<T, float>) {
    if (inner == 1 && src != dst && vec::has_avx2_fma()) return softmax_rows_f32(src, dst, outer, n, log, parallel);
  }
  if (inner == 1) {  // the common case: contiguous rows
#pragma omp parallel for if (parallel)
    for (int64_t o = 0; o < outer; ++o) {
      const T* x = src + o * n;
      T* y = dst + o * n;
      C m = -std::numeric_limits<C>::infinity();
      for (int64_t k = 0; k < n; ++k) m = std::max(m, static_cast<C>(x[k]));
      double s = 0;
      for (int64_t k = 0; k < n; ++k) s += std::exp(static_cast<C>(x[k]) - m);
      if (log) {
        // (x - m) - log s, not x - (m + log s): the shifted value keeps its precision.
        const C log_sum = static_cast<C>(std::log(s));
        for (int64_t k = 0; k < n; ++k) y[k] = static_cast<T>((static_cast<C>(x[k]) - m) - log_sum);
      } else {
        const C inv = static_cast<C>(1.0 / s);
        for (int64_t k = 0; k < n; ++k) y[k] = static_cast<T>(std::exp(static_cast<C>(x[k]) - m) * inv);
      }
    }
    return;
  }
  // Strided case: walk the n slices of [inner] vectors, keeping per-column max and sum.
#pragma omp parallel for if (parallel)
  for (int64_t o = 0; o < outer; ++o) {
    const T* x = src + o * n * inner;
    T* y = dst + o * n * inner;
    std::vector<C> m(inner, -std::numeric_limits<C>::infinity());
    std::vector<double> s(inner, 0.0);
    for (int64_t k = 0; k < n; ++k)
      for (int64_t i = 0; i < inner; ++i) m[i] = std::max(m[i], static_cast<C>(x[k * inner + i]));
    for (int64_t k = 0; k < n; ++k)
      for (int64_t i = 0; i < inner; ++i) s[i] += std::exp(static_cast<C>(x[k * inner + i]) - m[i]);
    for (int64_t k = 0; k < n; ++k) {
      for (int64_t i = 0; i < inner; ++i) {
        const C v = static_cast<C>(x[k * inner + i]) - m[i];
        y[k * inner + i] = static_cast<T>(log ? v - static_cast<C>(std::log(s[i]))
                                              : std::exp(v) / static_cast<C>(s[i]));
      }
    }
  }
}

void softmax_cpu(const Tensor& out, const Tensor& in, int64_t outer, int64_t n, int64_t inner, bool log) {
  BM_DISPATCH_FLOATING(in.dtype(), log ? "log_softmax" : "softmax",
                       [&] { softmax_typed<scalar_t>(out, in, outer, n, inner, log); });
}

}  // namespace

BM_REGISTER_KERNEL(softmax_kernel, CPU, &softmax_cpu);

}  // namespace bigmodel::cpu
