// Shared pieces of the CPU int8 kernels (int8_gemm.cpp, int8_conv.cpp): exact symmetric
// quantization (scalar and AVX2), the int16-pair packing of GEMM operands and the 6x16
// micro-kernels (vpmaddwd on AVX2, a portable loop elsewhere).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BM_INT8_X86 1
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the packed int8 layout assumes a little-endian host"
#endif

namespace bigmodel::cpu::int8 {

constexpr int kMR = 6;   // rows of A per micro-tile
constexpr int kNR = 16;  // columns of B per micro-tile (two AVX2 registers of int32)
inline constexpr int64_t kParallelWork = int64_t{1} << 16;

inline const int8_t* row_bytes(const int32_t* base, int64_t row, int64_t words) {
  return reinterpret_cast<const int8_t*>(base + row * words);
}

// Symmetric rounding to [-127, 127]; ties to even (nearbyint in the default rounding mode),
// NaN to 0. Done in double so the result matches a float64 reference exactly.
inline int8_t quantize_value(double x, double scale) {
  const double q = std::nearbyint(x / scale);
  if (!(q == q)) return 0;
  return static_cast<int8_t>(std::min(127.0, std::max(-127.0, q)));
}

// n values of x quantized with one scale into dst, the same results as quantize_value.
inline void quantize_span_scalar(const float* x, int64_t n, double scale, int8_t* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = quantize_value(x[i], scale);
}

#ifdef BM_INT8_X86
// Eight values per step, bit-identical to quantize_value. x * (1 / scale) in double is within
// 2^-52 (relative) of the correctly rounded quotient x / scale, which changes the rounding only
// next to a tie k + 0.5 (below 128; beyond, both saturate); the rare group of eight with a
// value that close takes the division. Then round half to even, NaN -> 0, clamp, narrow.
__attribute__((target("avx2"))) inline void quantize_span_avx2(const float* x, int64_t n,
                                                               double scale, int8_t* dst) {
  const __m256d s = _mm256_set1_pd(scale), inv = _mm256_set1_pd(1.0 / scale);
  const __m256d lo = _mm256_set1_pd(-127.0), hi = _mm256_set1_pd(127.0), half = _mm256_set1_pd(0.5);
  const __m256d near = _mm256_set1_pd(1e-9), sign = _mm256_set1_pd(-0.0);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256d xa = _mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                  xb = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    __m256d a = _mm256_mul_pd(xa, inv), b = _mm256_mul_pd(xb, inv);
    const __m256d da =
        _mm256_andnot_pd(sign, _mm256_sub_pd(_mm256_sub_pd(a, _mm256_floor_pd(a)), half));
    const __m256d db =
        _mm256_andnot_pd(sign, _mm256_sub_pd(_mm256_sub_pd(b, _mm256_floor_pd(b)), half));
    if (_mm256_movemask_pd(_mm256_or_pd(_mm256_cmp_pd(da, near, _CMP_LT_OQ),
                                        _mm256_cmp_pd(db, near, _CMP_LT_OQ)))) {
      a = _mm256_div_pd(xa, s), b = _mm256_div_pd(xb, s);  // next to a tie: the exact quotient
    }
    a = _mm256_round_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    b = _mm256_round_pd(b, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    a = _mm256_and_pd(a, _mm256_cmp_pd(a, a, _CMP_ORD_Q));  // NaN -> 0
    b = _mm256_and_pd(b, _mm256_cmp_pd(b, b, _CMP_ORD_Q));
    a = _mm256_min_pd(_mm256_max_pd(a, lo), hi);
    b = _mm256_min_pd(_mm256_max_pd(b, lo), hi);
    const __m128i w = _mm_packs_epi32(_mm256_cvtpd_epi32(a), _mm256_cvtpd_epi32(b));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + i), _mm_packs_epi16(w, w));
  }
  quantize_span_scalar(x + i, n - i, scale, dst + i);
}
#endif

// Packed operands, K in pairs (P = ceil(k/2)); bytes at k and beyond are never read, so pad
// bytes of the inputs never matter.
//   B panel (16 columns): for each pair j, 16 x (b[n][2j], b[n][2j+1]) as int16 = two registers.
//   A tile (6 rows): for each pair j, 6 int32 words holding (a[m][2j], a[m][2j+1]) as int16.
inline int32_t pair_word(int8_t lo, int8_t hi) {
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint16_t>(int16_t{lo})) |
                              (static_cast<uint32_t>(static_cast<uint16_t>(int16_t{hi})) << 16));
}

inline void pack_b_panel(const int32_t* b, int64_t N, int64_t words, int64_t k, int64_t panel,
                         int64_t P, int16_t* dst) {
  const int64_t full = k / 2;  // pairs with both bytes inside k
  for (int c = 0; c < kNR; ++c) {
    const int64_t n = panel * kNR + c;
    int16_t* d = dst + 2 * c;
    if (n >= N) {
      for (int64_t j = 0; j < P; ++j) d[j * 2 * kNR] = d[j * 2 * kNR + 1] = 0;
      continue;
    }
    const int8_t* row = row_bytes(b, n, words);
    for (int64_t j = 0; j < full; ++j) {
      d[j * 2 * kNR] = row[2 * j];
      d[j * 2 * kNR + 1] = row[2 * j + 1];
    }
    if (full < P) {  // odd k: the last pair's second byte is outside
      d[full * 2 * kNR] = row[2 * full];
      d[full * 2 * kNR + 1] = 0;
    }
  }
}

inline void pack_a_tile(const int32_t* a, int64_t M, int64_t words, int64_t k, int64_t tile,
                        int64_t P, int32_t* dst) {
  const int64_t full = k / 2;
  for (int r = 0; r < kMR; ++r) {
    const int64_t m = tile * kMR + r;
    if (m >= M) {
      for (int64_t j = 0; j < P; ++j) dst[j * kMR + r] = 0;
      continue;
    }
    const int8_t* row = row_bytes(a, m, words);
    for (int64_t j = 0; j < full; ++j) dst[j * kMR + r] = pair_word(row[2 * j], row[2 * j + 1]);
    if (full < P) dst[full * kMR + r] = pair_word(row[2 * full], 0);
  }
}

// acc[6][16] = A tile . B panel over P pairs.
inline void micro_portable(const int32_t* ap, const int16_t* bp, int64_t P, int32_t* acc) {
  std::fill(acc, acc + kMR * kNR, 0);
  for (int64_t j = 0; j < P; ++j) {
    const int16_t* bj = bp + j * 2 * kNR;
    for (int r = 0; r < kMR; ++r) {
      const uint32_t w = static_cast<uint32_t>(ap[j * kMR + r]);
      const int32_t lo = static_cast<int16_t>(w & 0xffff), hi = static_cast<int16_t>(w >> 16);
      for (int c = 0; c < kNR; ++c) acc[r * kNR + c] += lo * bj[2 * c] + hi * bj[2 * c + 1];
    }
  }
}

#ifdef BM_INT8_X86
__attribute__((target("avx2"))) inline void micro_avx2(const int32_t* ap, const int16_t* bp,
                                                       int64_t P, int32_t* acc) {
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t j = 0; j < P; ++j) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + j * 2 * kNR));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + j * 2 * kNR + kNR));
    const int32_t* a = ap + j * kMR;
    __m256i x = _mm256_set1_epi32(a[0]);
    c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(x, b0));
    c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(x, b1));
    x = _mm256_set1_epi32(a[1]);
    c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(x, b0));
    c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(x, b1));
    x = _mm256_set1_epi32(a[2]);
    c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(x, b0));
    c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(x, b1));
    x = _mm256_set1_epi32(a[3]);
    c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(x, b0));
    c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(x, b1));
    x = _mm256_set1_epi32(a[4]);
    c40 = _mm256_add_epi32(c40, _mm256_madd_epi16(x, b0));
    c41 = _mm256_add_epi32(c41, _mm256_madd_epi16(x, b1));
    x = _mm256_set1_epi32(a[5]);
    c50 = _mm256_add_epi32(c50, _mm256_madd_epi16(x, b0));
    c51 = _mm256_add_epi32(c51, _mm256_madd_epi16(x, b1));
  }
  __m256i* o = reinterpret_cast<__m256i*>(acc);
  _mm256_storeu_si256(o + 0, c00), _mm256_storeu_si256(o + 1, c01), _mm256_storeu_si256(o + 2, c10);
  _mm256_storeu_si256(o + 3, c11), _mm256_storeu_si256(o + 4, c20), _mm256_storeu_si256(o + 5, c21);
  _mm256_storeu_si256(o + 6, c30), _mm256_storeu_si256(o + 7, c31), _mm256_storeu_si256(o + 8, c40);
  _mm256_storeu_si256(o + 9, c41), _mm256_storeu_si256(o + 10, c50),
      _mm256_storeu_si256(o + 11, c51);
}

inline bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#endif

using MicroKernel = void (*)(const int32_t*, const int16_t*, int64_t, int32_t*);

// BIGMODEL_INT8_PORTABLE=1 forces the portable loop (the tests compare both paths).
inline MicroKernel pick_micro() {
  const char* force = std::getenv("BIGMODEL_INT8_PORTABLE");
  if (force && force[0] == '1') return &micro_portable;
#ifdef BM_INT8_X86
  if (cpu_has_avx2()) return &micro_avx2;
#endif
  return &micro_portable;
}

// A per-thread scratch buffer of at least n elements (contents left from earlier calls): big
// per-call buffers cost page faults on every call, more than the work done in them. Each
// call site has its own buffer (the template tag), so nested uses never share one.
template <typename T, int Tag>
T* scratch(int64_t n) {
  thread_local std::vector<T> buf;
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(static_cast<size_t>(n));
  return buf.data();
}

inline void quantize_span(const float* x, int64_t n, double scale, int8_t* dst) {
#ifdef BM_INT8_X86
  if (pick_micro() != &micro_portable) return quantize_span_avx2(x, n, scale, dst);
#endif
  quantize_span_scalar(x, n, scale, dst);
}

}  // namespace bigmodel::cpu::int8
