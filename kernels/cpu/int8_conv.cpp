// CPU kernel of the fused int8 convolution (int8_conv2d_kernel, core/ops/quant.h): quantizes
// the input once (AVX2), then per image builds the transposed im2col bytes [K, oH*oW] (memcpy
// runs for stride 1, L2-sized), packs each strip of 16 output positions into the micro-kernel's
// int16-pair panel and multiplies it by the weight (6-channel tiles, packed once per call): the
// output is the GEMM's rows, written as NCHW by the epilogue. No [N*oH*oW, K] im2col matrix, no
// second packing pass, no NHWC -> NCHW copy: those cost more than the GEMM did.
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/ops/quant.h"
#include "kernels/cpu/int8_kernels.h"

namespace bigmodel::cpu {
namespace {

using namespace int8;  // the shared int8 helpers (kernels/cpu/int8_kernels.h)

template <typename T>
void quantize_all(const T* in, int64_t total, double scale, int8_t* q) {
  if constexpr (std::is_same_v<T, float>) {
    quantize_span(in, total, scale, q);
  } else {
#pragma omp parallel for schedule(static) if (total > kParallelWork)
    for (int64_t i = 0; i < total; ++i)
      q[i] = quantize_value(static_cast<compute_t<T>>(in[i]), scale);
  }
}

// Rows here are a few dozen bytes: fixed-size (overlapping) copies beat a call to memcpy.
inline void copy_short(const int8_t* src, int64_t n, int8_t* dst) {
  if (n >= 16) {
    for (int64_t x = 0; x + 16 <= n; x += 16) std::memcpy(dst + x, src + x, 16);
    std::memcpy(dst + n - 16, src + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(dst, src, 8);
    std::memcpy(dst + n - 8, src + n - 8, 8);
  } else {
    for (int64_t x = 0; x < n; ++x) dst[x] = src[x];
  }
}

// Transposed im2col of one quantized image: colt[k * ld + y * ow + x] = input value k = (c, i, j)
// of output position (y, x), 0 in the padding. Stride-1 rows are memcpy runs.
void build_colt(const int8_t* img, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw,
                int64_t oh, int64_t ow, const Conv2dParams& p, int64_t ld, int8_t* colt) {
  for (int64_t c = 0, kk = 0; c < C; ++c) {
    for (int64_t i = 0; i < kh; ++i) {
      for (int64_t j = 0; j < kw; ++j, ++kk) {
        const int64_t dx = j * p.dilation_w - p.pad_w;
        // Output columns whose input column x * stride + dx lies inside [0, W).
        const int64_t x_lo =
            std::min<int64_t>(ow, dx >= 0 ? 0 : (-dx + p.stride_w - 1) / p.stride_w);
        const int64_t x_hi = std::max<int64_t>(
            x_lo, std::min<int64_t>(ow, W - dx > 0 ? (W - dx - 1) / p.stride_w + 1 : 0));
        for (int64_t y = 0; y < oh; ++y) {
          int8_t* dst = colt + kk * ld + y * ow;
          const int64_t iy = y * p.stride_h - p.pad_h + i * p.dilation_h;
          if (iy < 0 || iy >= H) {
            std::memset(dst, 0, static_cast<size_t>(ow));
            continue;
          }
          const int8_t* row = img + (c * H + iy) * W;
          for (int64_t x = 0; x < x_lo; ++x) dst[x] = 0;
          if (p.stride_w == 1) {
            copy_short(row + x_lo + dx, x_hi - x_lo, dst + x_lo);
          } else {
            for (int64_t x = x_lo; x < x_hi; ++x) dst[x] = row[x * p.stride_w + dx];
          }
          for (int64_t x = x_hi; x < ow; ++x) dst[x] = 0;
        }
      }
    }
  }
}

// The micro-kernel's B panel for 16 output positions: pair jp holds (k = 2jp, 2jp + 1) of
// each position as int16 (row K of colt is zero, so an odd K pads itself).
void pack_strip_scalar(const int8_t* colt, int64_t ld, int64_t P, int16_t* bp) {
  for (int64_t jp = 0; jp < P; ++jp) {
    const int8_t* r0 = colt + 2 * jp * ld;
    for (int c = 0; c < kNR; ++c) {
      bp[jp * 2 * kNR + 2 * c] = r0[c];
      bp[jp * 2 * kNR + 2 * c + 1] = r0[ld + c];
    }
  }
}

#ifdef BM_INT8_X86
__attribute__((target("avx2"))) void pack_strip_avx2(const int8_t* colt, int64_t ld, int64_t P,
                                                     int16_t* bp) {
  for (int64_t jp = 0; jp < P; ++jp) {
    const int8_t* r0 = colt + 2 * jp * ld;
    const __m256i a = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r0)));
    const __m256i b =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r0 + ld)));
    const __m256i lo = _mm256_unpacklo_epi16(a, b),
                  hi = _mm256_unpackhi_epi16(a, b);  // positions 0-3|8-11, 4-7|12-15
    __m256i* d = reinterpret_cast<__m256i*>(bp + jp * 2 * kNR);
    _mm256_storeu_si256(d, _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_storeu_si256(d + 1, _mm256_permute2x128_si256(lo, hi, 0x31));
  }
}
#endif

void pack_strip(const int8_t* colt, int64_t ld, int64_t /*K*/, int64_t P, bool avx2, int16_t* bp) {
#ifdef BM_INT8_X86
  if (avx2) return pack_strip_avx2(colt, ld, P, bp);
#endif
  (void)avx2;
  pack_strip_scalar(colt, ld, P, bp);
}

#ifdef BM_INT8_X86
// The epilogue of a tile of 16 positions: accumulators to float, times the row's scale, plus its
// bias, into `rows` NCHW rows (ld floats apart). The same arithmetic as the scalar loop (convert,
// multiply, add; no FMA). Kept apart from the micro-kernel, where it made GCC spill.
__attribute__((target("avx2"))) void store_nchw_avx2(const int32_t* acc, int64_t rows, float* dst,
                                                     int64_t ld, const float* sc,
                                                     const float* bias) {
  for (int64_t r = 0; r < rows; ++r) {
    const __m256 s = _mm256_set1_ps(sc[r]), b = _mm256_set1_ps(bias[r]);
    for (int h = 0; h < kNR; h += 8) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + r * kNR + h));
      _mm256_storeu_ps(dst + r * ld + h, _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(v), s), b));
    }
  }
}
#endif

void int8_conv2d_cpu(const Tensor& out, const Tensor& input, const Tensor& weight_q,
                     const Tensor& input_scale, const Tensor& weight_scale, const Tensor& bias,
                     int64_t kh, int64_t kw, const Conv2dParams& p) {
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t O = out.size(1), oh = out.size(2), ow = out.size(3), HW = oh * ow;
  const int64_t K = C * kh * kw, P = (K + 1) / 2, words = weight_q.size(1);
  if (N == 0 || O == 0 || HW == 0) return;
  const double s_in = input_scale.data<float>()[0];
  int8_t* q = scratch<int8_t, 2>(N * C * H * W);  // every byte is written here
  BM_DISPATCH_FLOATING(input.dtype(), "quantized_conv2d",
                       [&] { quantize_all(input.data<scalar_t>(), N * C * H * W, s_in, q); });
  // Weight rows are the GEMM's A (6 output channels per tile); k = (c, i, j) as the weight.
  const int64_t tiles = (O + kMR - 1) / kMR;
  std::vector<int32_t> wpack(static_cast<size_t>(tiles * std::max<int64_t>(P, 1) * kMR));
  for (int64_t t = 0; t < tiles; ++t)
    pack_a_tile(weight_q.data<int32_t>(), O, words, K, t, P, wpack.data() + t * P * kMR);
  const float* sw = weight_scale.data<float>();
  const bool sw_per_row = weight_scale.numel() != 1 || O == 1;
  const float* bi = bias.defined() ? bias.data<float>() : nullptr;
  float* o = out.data<float>();
  // Per output channel: the combined scale and the bias (0 without one), padded to whole tiles.
  std::vector<float> ch_scale(static_cast<size_t>(tiles * kMR), 0.0f),
      ch_bias(ch_scale.size(), 0.0f);
  for (int64_t ch = 0; ch < O; ++ch) {
    ch_scale[ch] = static_cast<float>(s_in) * sw[sw_per_row ? ch : 0];
    ch_bias[ch] = bi ? bi[ch] : 0.0f;
  }
  const MicroKernel micro = pick_micro();
  const bool avx2 = micro != &micro_portable;
  const int64_t panels = (HW + kNR - 1) / kNR, HWp = panels * kNR;
  const bool parallel = N * HW * O * std::max<int64_t>(K, 1) > kParallelWork * 4 && N > 1;
#pragma omp parallel if (parallel)
  {
    // One image's im2col columns transposed, [K + 1, HWp] bytes: row k holds input value k of
    // every output position, so with stride 1 a row is runs of contiguous input bytes. Row K
    // and the columns past HW stay zero (odd K, the last partial strip).
    int8_t* colt = scratch<int8_t, 3>((K + 1) * HWp);
    std::memset(colt, 0, static_cast<size_t>((K + 1) * HWp));
    std::vector<int16_t> bpanel(static_cast<size_t>(std::max<int64_t>(P, 1) * 2 * kNR));
    int32_t acc[kMR * kNR];
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      build_colt(q + n * C * H * W, C, H, W, kh, kw, oh, ow, p, HWp, colt);
      for (int64_t pos0 = 0; pos0 < HW; pos0 += kNR) {
        const int64_t npos = std::min<int64_t>(kNR, HW - pos0);
        int16_t* bp = bpanel.data();
        pack_strip(colt + pos0, HWp, K, P, avx2, bp);
        for (int64_t t = 0; t < tiles; ++t) {
          const int64_t rows = std::min<int64_t>(kMR, O - t * kMR);
          float* dst = o + (n * O + t * kMR) * HW + pos0;
#ifdef BM_INT8_X86
          if (avx2 && npos == kNR) {
            micro(wpack.data() + t * P * kMR, bp, P, acc);
            store_nchw_avx2(acc, rows, dst, HW, ch_scale.data() + t * kMR,
                            ch_bias.data() + t * kMR);
            continue;
          }
#endif
          micro(wpack.data() + t * P * kMR, bp, P, acc);
          for (int64_t r = 0; r < rows; ++r) {
            const float sc = ch_scale[t * kMR + r], b = ch_bias[t * kMR + r];
            for (int64_t c = 0; c < npos; ++c)
              dst[r * HW + c] = static_cast<float>(acc[r * kNR + c]) * sc + b;
          }
        }
      }
    }
  }
}

}  // namespace

BM_REGISTER_KERNEL(int8_conv2d_kernel, CPU, &int8_conv2d_cpu);

}  // namespace bigmodel::cpu
