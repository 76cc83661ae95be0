// Vectorised float32 exp / sigmoid / tanh for the CPU kernels: AVX2 + FMA polynomials chosen
// at run time (__builtin_cpu_supports, as int8_gemm.cpp does; the build has no -march flag),
// std:: everywhere else. Accurate to a few ulp; NaN, +-inf and denormals behave like std::.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BM_VEC_X86 1
#define BM_TARGET_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace bigmodel::cpu::vec {

inline bool has_avx2_fma() {
#ifdef BM_VEC_X86
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

inline float sigmoid_scalar(float x) { return 1.0f / (1.0f + std::exp(-x)); }

#ifdef BM_VEC_X86
// exp(x) = 2^n * e^r with n = round(x / ln 2), r = x - n ln 2 (ln 2 split in two so n ln 2 is
// exact), e^r by a degree-7 polynomial (Taylor-like minimax coefficients). 2^n is applied as
// two factors 2^(n/2) so results in the denormal range round once, like std::exp.
BM_TARGET_AVX2 inline __m256 exp8(__m256 x) {
  const __m256 nan_mask = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  // exp(-104) is below half the smallest denormal and exp(89) above FLT_MAX: the clamp keeps
  // n in int range while the result still rounds to 0 / overflows to inf.
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(89.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 r2 = _mm256_mul_ps(r, r);
  __m256 y = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i ni = _mm256_cvtps_epi32(n);  // in [-150, 129]
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  y = _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
  return _mm256_blendv_ps(y, _mm256_add_ps(x, x), nan_mask);  // NaN in, (quiet) NaN out
}

// 1 / (1 + exp(-x)): exp overflowing to inf gives 0, as the scalar formula does.
BM_TARGET_AVX2 inline __m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
  return _mm256_div_ps(one, _mm256_add_ps(one, e));
}

// |x| < 0.625: odd polynomial x + x^3 P(x^2) (no cancellation near 0; exact for denormals);
// otherwise sign(x) (1 - 2 / (exp(2|x|) + 1)), which saturates to +-1 through exp = inf.
BM_TARGET_AVX2 inline __m256 tanh8(__m256 x) {
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  const __m256 ax = _mm256_andnot_ps(sign_bit, x);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), ax, ax);  // on |x|: the sign goes on last
  const __m256 e = exp8(_mm256_add_ps(ax, ax));
  const __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
  const __m256 is_small = _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ);
  return _mm256_or_ps(_mm256_blendv_ps(big, small, is_small), _mm256_and_ps(sign_bit, x));  // tanh(-0) = -0
}

// Applies f8 to x[0, n) (n may be any size: the tail goes through a padded block, so every
// element gets the same arithmetic wherever it sits).
template <typename F8>
BM_TARGET_AVX2 inline void map8(const float* x, float* y, int64_t n, F8 f8) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f8(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t k = i; k < n; ++k) buf[k - i] = x[k];
    _mm256_store_ps(buf, f8(_mm256_load_ps(buf)));
    for (int64_t k = i; k < n; ++k) y[k] = buf[k - i];
  }
}
struct Exp8 {
  BM_TARGET_AVX2 __m256 operator()(__m256 v) const { return exp8(v); }
};
struct Sigmoid8 {
  BM_TARGET_AVX2 __m256 operator()(__m256 v) const { return sigmoid8(v); }
};
struct Tanh8 {
  BM_TARGET_AVX2 __m256 operator()(__m256 v) const { return tanh8(v); }
};
#endif

// Array forms (used by the tests; kernels call the 8-wide forms inside their own loops).
inline void exp_f32(const float* x, float* y, int64_t n) {
#ifdef BM_VEC_X86
  if (has_avx2_fma()) return map8(x, y, n, Exp8{});
#endif
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}
inline void sigmoid_f32(const float* x, float* y, int64_t n) {
#ifdef BM_VEC_X86
  if (has_avx2_fma()) return map8(x, y, n, Sigmoid8{});
#endif
  for (int64_t i = 0; i < n; ++i) y[i] = sigmoid_scalar(x[i]);
}
inline void tanh_f32(const float* x, float* y, int64_t n) {
#ifdef BM_VEC_X86
  if (has_avx2_fma()) return map8(x, y, n, Tanh8{});
#endif
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

}  // namespace bigmodel::cpu::vec
