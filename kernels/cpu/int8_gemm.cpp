// CPU kernels of the int8 family (core/ops/quant.h): quantize / dequantize rows, quantize +
// im2col for convolutions (the generic path; the CPU runs int8_conv.cpp's fused kernel), and
// the int8 GEMM. The GEMM packs both operands into int16 pairs and runs a 6x16 register-tiled
// micro-kernel on AVX2 (vpmaddwd: 16 exact multiply-adds per instruction, int32 accumulators),
// chosen at run time; other CPUs use a portable loop. A with <= 4 rows skips the packing.
#include <type_traits>
#include <vector>

#include "core/ops/quant.h"
#include "kernels/cpu/int8_kernels.h"

namespace bigmodel::cpu {
namespace {

using namespace int8;  // the shared int8 helpers (kernels/cpu/int8_kernels.h)

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
    if constexpr (std::is_same_v<T, float>) {
      if (cs == 1) {  // the common case: contiguous float rows, eight values per step
        quantize_span(xp + r * rs, K, s, dst);
        for (int64_t k = K; k < words * 4; ++k) dst[k] = 0;
        continue;
      }
    }
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
  int8_t* q = scratch<int8_t, 1>(total);  // the input quantized once, then gathered
  const T* in = input.data<T>();
  if constexpr (std::is_same_v<T, float>) {
    quantize_span(in, total, scale, q);
  } else {
#pragma omp parallel for schedule(static) if (total > kParallelWork)
    for (int64_t i = 0; i < total; ++i) q[i] = quantize_value(static_cast<compute_t<T>>(in[i]), scale);
  }
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
      const int8_t* plane = q + (n * C + c) * H * W;
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

#ifdef BM_INT8_X86
// A with few rows (batch-1 linear layers): packing B into int16 pairs would cost as much as
// the product itself, so each B row is read once as bytes and widened in registers.
constexpr int64_t kFewRows = 4;

__attribute__((target("avx2"))) inline int32_t hsum_avx2(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// acc + (a16 row chunk) . (widened B chunk), eight int32 lanes of pair sums.
__attribute__((target("avx2"))) inline __m256i madd_chunk(const int16_t* ap, __m256i bw, __m256i acc) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ap)), bw));
}

__attribute__((target("avx2"))) void gemm_few_rows_avx2(const int32_t* a, const int32_t* b, int64_t M, int64_t N,
                                                        int64_t words, int64_t k, const Epilogue& ep) {
  const int64_t chunks = (k + 15) / 16, full = k / 16;
  std::vector<int16_t> a16(static_cast<size_t>(kFewRows * chunks * 16), 0);  // rows >= M stay zero
  for (int64_t m = 0; m < M; ++m) {
    const int8_t* row = row_bytes(a, m, words);
    for (int64_t i = 0; i < k; ++i) a16[m * chunks * 16 + i] = row[i];
  }
#pragma omp parallel for schedule(static) if (N * k > kParallelWork * 8)
  for (int64_t n0 = 0; n0 < N; n0 += kNR) {
    int32_t acc[kMR * kNR] = {};
    for (int64_t n = n0; n < std::min(N, n0 + kNR); ++n) {
      const int8_t* row = row_bytes(b, n, words);
      __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0;
      for (int64_t j = 0; j < chunks; ++j) {
        __m128i raw;
        if (j < full) {
          raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + j * 16));
        } else {  // the last partial chunk: never read past the row (a16 is zero beyond k)
          alignas(16) int8_t tmp[16] = {};
          std::memcpy(tmp, row + j * 16, static_cast<size_t>(k - j * 16));
          raw = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
        }
        const __m256i bw = _mm256_cvtepi8_epi16(raw);
        const int16_t* ap = a16.data() + j * 16;
        const int64_t ld = chunks * 16;
        c0 = madd_chunk(ap, bw, c0);
        if (M > 1) c1 = madd_chunk(ap + ld, bw, c1);
        if (M > 2) c2 = madd_chunk(ap + 2 * ld, bw, c2);
        if (M > 3) c3 = madd_chunk(ap + 3 * ld, bw, c3);
      }
      const int64_t c = n - n0;
      acc[c] = hsum_avx2(c0), acc[kNR + c] = hsum_avx2(c1), acc[2 * kNR + c] = hsum_avx2(c2);
      acc[3 * kNR + c] = hsum_avx2(c3);
    }
    ep.store(acc, 0, n0);
  }
}
#endif

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
#ifdef BM_INT8_X86
  if (M <= kFewRows && pick_micro() != &micro_portable) {
    return gemm_few_rows_avx2(a.data<int32_t>(), b.data<int32_t>(), M, N, words, k, ep);
  }
#endif
  const int64_t P = (k + 1) / 2;
  const int64_t tiles = (M + kMR - 1) / kMR, panels = (N + kNR - 1) / kNR;
  const int32_t* ap = a.data<int32_t>();
  const int32_t* bpk = b.data<int32_t>();
  // B is packed once (it is the weight in linear layers, reused by every row tile).
  int16_t* bpack = scratch<int16_t, 0>(panels * P * 2 * kNR);
#pragma omp parallel for schedule(static) if (N * k > kParallelWork)
  for (int64_t pnl = 0; pnl < panels; ++pnl) pack_b_panel(bpk, N, words, k, pnl, P, bpack + pnl * P * 2 * kNR);
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
      micro(apack.data(), bpack + pnl * P * 2 * kNR, P, acc);
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
