// CPU kernels of the int8 family (core/ops/quant.h): quantize / dequantize rows, quantize +
// im2col for convolutions, and the int8 GEMM. The GEMM packs both operands into int16 pairs
// and runs a 6x16 register-tiled micro-kernel on AVX2 (vpmaddwd: 16 exact multiply-adds per
// instruction, int32 accumulators), chosen at run time; other CPUs use a portable loop.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/ops/quant.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BM_INT8_X86 1
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the packed int8 layout assumes a little-endian host"
#endif

namespace bigmodel::cpu {
namespace {

constexpr int kMR = 6;   // rows of A per micro-tile
constexpr int kNR = 16;  // columns of B per micro-tile (two AVX2 registers of int32)
constexpr int64_t kParallelWork = int64_t{1} << 16;

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

// ------------------------------------------------------------------ quantize / dequantize
template <typename T>
void quantize_typed(const Tensor& out, const Tensor& x, const float* scale, bool per_row) {
  const int64_t R = x.size(0), K = x.size(1), rs = x.stride(0), cs = x.stride(1);
  const int64_t words = out.size(1);
  const T* xp = x.data<T>();
  int32_t* o = out.data<int32_t>();
#pragma omp parallel for schedule(static) if (R * K > kParallelWork)
  for (int64_t r = 0; r < R; ++r) {
    int8_t* dst = reinterpret_cast<int8_t*>(o + r * words);
    const double s = scale[per_row ? r : 0];
    for (int64_t k = 0; k < K; ++k) dst[k] = quantize_value(static_cast<compute_t<T>>(xp[r * rs + k * cs]), s);
    for (int64_t k = K; k < words * 4; ++k) dst[k] = 0;
  }
}

void quantize_cpu(const Tensor& out, const Tensor& x, const Tensor& scale) {
  const bool per_row = scale.numel() != 1 || x.size(0) == 1;
  BM_DISPATCH_FLOATING(x.dtype(), "quantize_int8", [&] {
    quantize_typed<scalar_t>(out, x, scale.data<float>(), per_row);
  });
}

void dequantize_cpu(const Tensor& out, const Tensor& q, const Tensor& scale) {
  const int64_t R = out.size(0), K = out.size(1), words = q.size(1);
  const bool per_row = scale.numel() != 1 || R == 1;
  const float* s = scale.data<float>();
  const int32_t* qp = q.data<int32_t>();
  float* o = out.data<float>();
#pragma omp parallel for schedule(static) if (R * K > kParallelWork)
  for (int64_t r = 0; r < R; ++r) {
    const int8_t* src = row_bytes(qp, r, words);
    const float sr = s[per_row ? r : 0];
    for (int64_t k = 0; k < K; ++k) o[r * K + k] = static_cast<float>(src[k]) * sr;
  }
}

// ------------------------------------------------------------------ quantize + im2col
template <typename T>
void im2col_typed(const Tensor& out, const Tensor& input, double scale, int64_t kh, int64_t kw, int64_t oh,
                  int64_t ow, const Conv2dParams& p) {
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t total = N * C * H * W;
  std::vector<int8_t> q(total);  // the input quantized once, then gathered
  const T* in = input.data<T>();
#pragma omp parallel for schedule(static) if (total > kParallelWork)
  for (int64_t i = 0; i < total; ++i) q[i] = quantize_value(static_cast<compute_t<T>>(in[i]), scale);
  const int64_t words = out.size(1), rows = N * oh * ow;
  int32_t* o = out.data<int32_t>();
#pragma omp parallel for schedule(static) if (rows * words > kParallelWork / 4)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / (oh * ow), y = (r / ow) % oh, x = r % ow;
    const int64_t y0 = y * p.stride_h - p.pad_h, x0 = x * p.stride_w - p.pad_w, dw = p.dilation_w;
    const bool x_inside = x0 >= 0 && x0 + (kw - 1) * dw < W;  // the common case: no column checks
    int8_t* dst = reinterpret_cast<int8_t*>(o + r * words);
    int64_t col = 0;
    for (int64_t c = 0; c < C; ++c) {
      const int8_t* plane = q.data() + (n * C + c) * H * W;
      for (int64_t i = 0; i < kh; ++i, col += kw) {
        const int64_t iy = y0 + i * p.dilation_h;
        if (iy < 0 || iy >= H) {
          std::memset(dst + col, 0, kw);
          continue;
        }
        const int8_t* src = plane + iy * W;
        if (x_inside) {
          for (int64_t j = 0; j < kw; ++j) dst[col + j] = src[x0 + j * dw];
        } else {
          for (int64_t j = 0; j < kw; ++j) {
            const int64_t ix = x0 + j * dw;
            dst[col + j] = (ix >= 0 && ix < W) ? src[ix] : 0;
          }
        }
      }
    }
    for (; col < words * 4; ++col) dst[col] = 0;
  }
}

void im2col_cpu(const Tensor& out, const Tensor& input, const Tensor& scale, int64_t kh, int64_t kw, int64_t oh,
                int64_t ow, const Conv2dParams& p) {
  const double s = scale.data<float>()[0];
  BM_DISPATCH_FLOATING(input.dtype(), "quantized_conv2d", [&] {
    im2col_typed<scalar_t>(out, input, s, kh, kw, oh, ow, p);
  });
}

// ------------------------------------------------------------------ GEMM
// Packed operands, K in pairs (P = ceil(k/2)); bytes at k and beyond are never read, so pad
// bytes of the inputs never matter.
//   B panel (16 columns): for each pair j, 16 x (b[n][2j], b[n][2j+1]) as int16 = two registers.
//   A tile (6 rows): for each pair j, 6 int32 words holding (a[m][2j], a[m][2j+1]) as int16.
inline int32_t pair_word(int8_t lo, int8_t hi) {
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint16_t>(int16_t{lo})) |
                              (static_cast<uint32_t>(static_cast<uint16_t>(int16_t{hi})) << 16));
}

void pack_b_panel(const int32_t* b, int64_t N, int64_t words, int64_t k, int64_t panel, int64_t P, int16_t* dst) {
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

void pack_a_tile(const int32_t* a, int64_t M, int64_t words, int64_t k, int64_t tile, int64_t P, int32_t* dst) {
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
void micro_portable(const int32_t* ap, const int16_t* bp, int64_t P, int32_t* acc) {
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
__attribute__((target("avx2"))) void micro_avx2(const int32_t* ap, const int16_t* bp, int64_t P, int32_t* acc) {
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
  _mm256_storeu_si256(o + 9, c41), _mm256_storeu_si256(o + 10, c50), _mm256_storeu_si256(o + 11, c51);
}

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#endif

using MicroKernel = void (*)(const int32_t*, const int16_t*, int64_t, int32_t*);

// BIGMODEL_INT8_PORTABLE=1 forces the portable loop (the tests compare both paths).
MicroKernel pick_micro() {
  const char* force = std::getenv("BIGMODEL_INT8_PORTABLE");
  if (force && force[0] == '1') return &micro_portable;
#ifdef BM_INT8_X86
  if (cpu_has_avx2()) return &micro_avx2;
#endif
  return &micro_portable;
}

// Writes a tile's accumulators into out: int32 as is, or float with the scale/bias epilogue.
struct Epilogue {
  int32_t* out_i = nullptr;
  float* out_f = nullptr;
  const float* sa = nullptr;
  const float* sb = nullptr;
  const float* bias = nullptr;
  bool sa_per_row = false, sb_per_col = false;
  int64_t M = 0, N = 0;

  void store(const int32_t* acc, int64_t m0, int64_t n0) const {
    const int64_t mr = std::min<int64_t>(kMR, M - m0), nr = std::min<int64_t>(kNR, N - n0);
    for (int64_t r = 0; r < mr; ++r) {
      const int64_t m = m0 + r;
      if (out_i) {
        std::memcpy(out_i + m * N + n0, acc + r * kNR, nr * sizeof(int32_t));
        continue;
      }
      const float a = sa[sa_per_row ? m : 0];
      float* dst = out_f + m * N + n0;
      for (int64_t c = 0; c < nr; ++c) {
        const int64_t n = n0 + c;
        float v = static_cast<float>(acc[r * kNR + c]) * (a * sb[sb_per_col ? n : 0]);
        dst[c] = bias ? v + bias[n] : v;
      }
    }
  }
};

void int8_gemm_cpu(const Tensor& out, const Tensor& a, const Tensor& b, int64_t k, const Tensor& a_scale,
                   const Tensor& b_scale, const Tensor& bias) {
  const int64_t M = a.size(0), N = b.size(0), words = a.size(1);
  if (M == 0 || N == 0) return;
  Epilogue ep;
  ep.M = M, ep.N = N;
  if (out.dtype() == DType::Int32) {
    ep.out_i = out.data<int32_t>();
  } else {
    ep.out_f = out.data<float>();
    ep.sa = a_scale.data<float>(), ep.sb = b_scale.data<float>();
    ep.sa_per_row = a_scale.numel() != 1 || M == 1;
    ep.sb_per_col = b_scale.numel() != 1 || N == 1;
    ep.bias = bias.defined() ? bias.data<float>() : nullptr;
  }
  const int64_t P = (k + 1) / 2;
  const int64_t tiles = (M + kMR - 1) / kMR, panels = (N + kNR - 1) / kNR;
  const int32_t* ap = a.data<int32_t>();
  const int32_t* bpk = b.data<int32_t>();
  // B is packed once (it is the weight in linear layers, reused by every row tile).
  std::vector<int16_t> bpack(static_cast<size_t>(panels * P * 2 * kNR));
#pragma omp parallel for schedule(static) if (N * k > kParallelWork)
  for (int64_t pnl = 0; pnl < panels; ++pnl) pack_b_panel(bpk, N, words, k, pnl, P, bpack.data() + pnl * P * 2 * kNR);
  const MicroKernel micro = pick_micro();
  const bool parallel = M * N * std::max<int64_t>(k, 1) > kParallelWork * 4 && tiles * panels > 1;
#pragma omp parallel if (parallel)
  {
    std::vector<int32_t> apack(static_cast<size_t>(std::max<int64_t>(P, 1) * kMR));
    int32_t acc[kMR * kNR];
    int64_t packed_tile = -1;
    // Tasks run tile-major, and the static schedule hands each thread a contiguous range,
    // so a thread packs each A tile it meets about once.
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles * panels; ++t) {
      const int64_t tile = t / panels, pnl = t % panels;
      if (tile != packed_tile) {
        pack_a_tile(ap, M, words, k, tile, P, apack.data());
        packed_tile = tile;
      }
      micro(apack.data(), bpack.data() + pnl * P * 2 * kNR, P, acc);
      ep.store(acc, tile * kMR, pnl * kNR);
    }
  }
}

}  // namespace

BM_REGISTER_KERNEL(quantize_int8_kernel, CPU, &quantize_cpu);
BM_REGISTER_KERNEL(dequantize_int8_kernel, CPU, &dequantize_cpu);
BM_REGISTER_KERNEL(int8_im2col_kernel, CPU, &im2col_cpu);
BM_REGISTER_KERNEL(int8_gemm_kernel, CPU, &int8_gemm_cpu);

}  // namespace bigmodel::cpu
