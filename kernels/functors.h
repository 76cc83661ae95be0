// Elementwise math shared by CPU and CUDA kernels: one definition of each function,
// callable from host and device code. Values arrive in the compute type (float for
// half types), so half and bfloat16 tensors use the float formulas.
#pragma once
#include <cmath>
#include <cstdint>
#include <type_traits>

#ifdef __CUDACC__
#define BM_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define BM_HOST_DEVICE inline
#endif

namespace bigmodel::fn {

template <typename T> constexpr bool kIsFloat = std::is_floating_point_v<T>;

// ---- binary arithmetic ------------------------------------------------------------
template <typename T> BM_HOST_DEVICE T add(T a, T b) { return a + b; }
template <typename T> BM_HOST_DEVICE T sub(T a, T b) { return a - b; }
template <typename T> BM_HOST_DEVICE T mul(T a, T b) { return a * b; }
template <typename T> BM_HOST_DEVICE T div(T a, T b) { return a / b; }
BM_HOST_DEVICE bool add(bool a, bool b) { return a || b; }
BM_HOST_DEVICE bool mul(bool a, bool b) { return a && b; }

// Integer powers by squaring; negative exponents give 1/base truncated (0 unless |base| is 1).
template <typename T> BM_HOST_DEVICE T int_pow(T base, T exp) {
  if (exp < 0) {
    if (base == 1) return 1;
    if (base == -1) return (exp % 2 == 0) ? 1 : -1;
    return 0;
  }
  T r = 1;
  while (exp) {
    if (exp & 1) r *= base;
    base *= base;
    exp >>= 1;
  }
  return r;
}
template <typename T> BM_HOST_DEVICE T pow(T a, T b) {
  if constexpr (kIsFloat<T>) return std::pow(a, b);
  else return int_pow(a, b);
}
// maximum/minimum propagate NaN like PyTorch.
template <typename T> BM_HOST_DEVICE T maximum(T a, T b) {
  if constexpr (kIsFloat<T>) {
    if (a != a) return a;
    if (b != b) return b;
  }
  return a > b ? a : b;
}
template <typename T> BM_HOST_DEVICE T minimum(T a, T b) {
  if constexpr (kIsFloat<T>) {
    if (a != a) return a;
    if (b != b) return b;
  }
  return a < b ? a : b;
}
// Python-style modulo (the result has the divisor's sign). Integer division by zero
// gives 0 instead of trapping.
template <typename T> BM_HOST_DEVICE T remainder(T a, T b) {
  if constexpr (kIsFloat<T>) {
    T r = std::fmod(a, b);
    if (r != T(0) && ((r < T(0)) != (b < T(0)))) r += b;
    return r;
  } else {
    if (b == 0 || b == -1) return 0;  // -1 also avoids the INT_MIN % -1 trap
    T r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
  }
}
template <typename T> BM_HOST_DEVICE T fmod(T a, T b) {
  if constexpr (kIsFloat<T>) return std::fmod(a, b);
  else return (b == 0 || b == -1) ? T(0) : T(a % b);
}
template <typename T> BM_HOST_DEVICE T floor_divide(T a, T b) {
  if constexpr (kIsFloat<T>) {
    return std::floor(a / b);
  } else {
    if (b == 0) return 0;
    if (b == -1) return T(0) - a;
    T q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
  }
}

// ---- unary math ---------------------------------------------------------------------
template <typename T> BM_HOST_DEVICE T neg(T a) { return -a; }
template <typename T> BM_HOST_DEVICE T abs(T a) {
  if constexpr (kIsFloat<T>) return std::fabs(a);
  else return a < 0 ? -a : a;
}
template <typename T> BM_HOST_DEVICE T sign(T a) { return T((T(0) < a) - (a < T(0))); }
template <typename T> BM_HOST_DEVICE T relu(T a) { return a > T(0) ? a : T(0); }
template <typename T> BM_HOST_DEVICE T square(T a) { return a * a; }
// NaN passes through; with lo > hi every value becomes hi (as min(max(x, lo), hi)).
template <typename T> BM_HOST_DEVICE T clamp(T a, T lo, T hi) {
  T v = a < lo ? lo : a;
  return v > hi ? hi : v;
}
template <typename T> BM_HOST_DEVICE T clamp_min(T a, T lo) { return a < lo ? lo : a; }
template <typename T> BM_HOST_DEVICE T clamp_max(T a, T hi) { return a > hi ? hi : a; }

template <typename T> BM_HOST_DEVICE T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }
template <typename T> BM_HOST_DEVICE T rsqrt(T x) { return T(1) / std::sqrt(x); }
template <typename T> BM_HOST_DEVICE T reciprocal(T x) { return T(1) / x; }
template <typename T> BM_HOST_DEVICE T round_even(T x) { return std::nearbyint(x); }  // half to even

template <typename T> struct GeluConst {
  static constexpr T kInvSqrt2 = T(0.70710678118654752440);
  static constexpr T kInvSqrt2Pi = T(0.39894228040143267794);
  static constexpr T kSqrt2OverPi = T(0.79788456080286535588);
  static constexpr T kCubic = T(0.044715);
};
// gelu(x) = x * Phi(x), Phi the standard normal CDF.
template <typename T> BM_HOST_DEVICE T gelu(T x) {
  return T(0.5) * x * (T(1) + std::erf(x * GeluConst<T>::kInvSqrt2));
}
template <typename T> BM_HOST_DEVICE T gelu_tanh(T x) {
  using K = GeluConst<T>;
  T inner = K::kSqrt2OverPi * (x + K::kCubic * x * x * x);
  return T(0.5) * x * (T(1) + std::tanh(inner));
}
template <typename T> BM_HOST_DEVICE T silu(T x) { return x / (T(1) + std::exp(-x)); }
// Softplus reverts to the identity where beta * x > threshold (numerical stability).
template <typename T> BM_HOST_DEVICE T softplus(T x, T beta, T threshold) {
  T bx = beta * x;
  return bx > threshold ? x : std::log1p(std::exp(bx)) / beta;
}

// ---- derivatives: d(op)/dx times the incoming gradient g -----------------------------
// `x` is the forward input, `y` the forward output; each op uses whichever is cheaper.
template <typename T> BM_HOST_DEVICE T d_gelu(T g, T x) {
  using K = GeluConst<T>;
  T cdf = T(0.5) * (T(1) + std::erf(x * K::kInvSqrt2));
  T pdf = K::kInvSqrt2Pi * std::exp(T(-0.5) * x * x);
  return g * (cdf + x * pdf);
}
template <typename T> BM_HOST_DEVICE T d_gelu_tanh(T g, T x) {
  using K = GeluConst<T>;
  T x2 = x * x;
  T t = std::tanh(K::kSqrt2OverPi * (x + K::kCubic * x2 * x));
  T dinner = K::kSqrt2OverPi * (T(1) + T(3) * K::kCubic * x2);
  return g * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * dinner);
}
template <typename T> BM_HOST_DEVICE T d_silu(T g, T x) {
  T s = sigmoid(x);
  return g * s * (T(1) + x * (T(1) - s));
}
template <typename T> BM_HOST_DEVICE T d_softplus(T g, T x, T beta, T threshold) {
  T bx = beta * x;
  return bx > threshold ? g : g * sigmoid(bx);
}
template <typename T> BM_HOST_DEVICE T d_erf(T g, T x) {
  return g * T(1.12837916709551257390) * std::exp(-x * x);  // 2/sqrt(pi) e^{-x^2}
}

}  // namespace bigmodel::fn
