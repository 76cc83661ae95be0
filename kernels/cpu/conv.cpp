// CPU convolution: im2col + BLAS GEMM per image and group, col2im for the input gradient
// and per-thread accumulators for the weight gradient. float16 / bfloat16 run in float32.
// Batches are split over OpenMP threads with BLAS held to one thread inside (the column
// matrix of one image then stays in that core's cache); one image leaves the threads to BLAS.
// float32 stride-1 convolutions with kernels above 1x1 skip im2col: direct AVX2 kernels
// (below) for the forward, the input gradient (the padded output gradient convolved with the
// flipped kernel) and the weight gradient (a reduction over the batch); measurements in
// PERF.md, "CPU convolution".
#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/ops/conv.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/vec_math.h"

namespace bigmodel::cpu {

namespace {
// BIGMODEL_CONV_DIRECT=0 in the environment starts with the direct path off (benches).
bool direct_default() {
  const char* v = std::getenv("BIGMODEL_CONV_DIRECT");
  return v == nullptr || std::strcmp(v, "0") != 0;
}
std::atomic<bool> g_direct_enabled{direct_default()};
}  // namespace

void set_conv_direct_enabled(bool enabled) { g_direct_enabled = enabled; }
bool conv_direct_enabled() { return g_direct_enabled && vec::has_avx2_fma(); }

namespace {

// Everything the per-image loops need.
struct Geometry {
  int64_t N, C, H, W;  // input
  int64_t O, Cg, Og;   // output channels, per-group input / output channels
  int64_t kH, kW, oH, oW;
  int64_t K, L;  // column matrix rows (Cg * kH * kW) and columns (oH * oW)
  Conv2dParams p;
  // A 1x1 kernel with unit stride and no padding reads the image as its own column matrix.
  bool direct() const {
    return kH == 1 && kW == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0 && oH == H &&
           oW == W;
  }
};

Geometry make_geometry(const Tensor& input, const Tensor& weight_like, const Tensor& output,
                       const Conv2dParams& p) {
  Geometry g;
  g.N = input.size(0), g.C = input.size(1), g.H = input.size(2), g.W = input.size(3);
  g.O = weight_like.size(0), g.Cg = weight_like.size(1), g.kH = weight_like.size(2), g.kW = weight_like.size(3);
  g.Og = g.O / p.groups;
  g.oH = output.size(2), g.oW = output.size(3);
  g.K = g.Cg * g.kH * g.kW;
  g.L = g.oH * g.oW;
  g.p = p;
  return g;
}

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(M),
              static_cast<int>(N), static_cast<int>(K), 1.0f, A, static_cast<int>(lda), B, static_cast<int>(ldb),
              beta, C, static_cast<int>(ldc));
}
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B,
          int64_t ldb, double beta, double* C, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(M),
              static_cast<int>(N), static_cast<int>(K), 1.0, A, static_cast<int>(lda), B, static_cast<int>(ldb),
              beta, C, static_cast<int>(ldc));
}

// The output columns ow whose input column ow * stride + offset lies in [0, W): [lo, hi).
inline void valid_range(int64_t offset, int64_t stride, int64_t W, int64_t oW, int64_t& lo, int64_t& hi) {
  lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  hi = W - 1 - offset < 0 ? 0 : std::min(oW, (W - 1 - offset) / stride + 1);
  lo = std::min(lo, oW);
  hi = std::max(hi, lo);
}

// col[K, L] from one group's channels x[Cg, H, W] (zeros where the window is in padding).
template <typename T, typename C>
void im2col(const T* x, const Geometry& g, C* col) {
  const Conv2dParams& p = g.p;
  for (int64_t c = 0; c < g.Cg; ++c) {
    for (int64_t ki = 0; ki < g.kH; ++ki) {
      for (int64_t kj = 0; kj < g.kW; ++kj) {
        C* row = col + ((c * g.kH + ki) * g.kW + kj) * g.L;
        const int64_t ih0 = ki * p.dilation_h - p.pad_h, iw0 = kj * p.dilation_w - p.pad_w;
        int64_t lo, hi;
        valid_range(iw0, p.stride_w, g.W, g.oW, lo, hi);
        for (int64_t oh = 0; oh < g.oH; ++oh) {
          C* r = row + oh * g.oW;
          const int64_t ih = oh * p.stride_h + ih0;
          if (ih < 0 || ih >= g.H) {
            std::fill(r, r + g.oW, C(0));
            continue;
          }
          const T* src = x + (c * g.H + ih) * g.W;
          std::fill(r, r + lo, C(0));
          if (p.stride_w == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) r[ow] = static_cast<C>(src[ow + iw0]);
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) r[ow] = static_cast<C>(src[ow * p.stride_w + iw0]);
          }
          std::fill(r + hi, r + g.oW, C(0));
        }
      }
    }
  }
}

// The adjoint of im2col: x[Cg, H, W] += every column entry at its input position.
template <typename C>
void col2im(const C* col, const Geometry& g, C* x) {
  const Conv2dParams& p = g.p;
  for (int64_t c = 0; c < g.Cg; ++c) {
    for (int64_t ki = 0; ki < g.kH; ++ki) {
      for (int64_t kj = 0; kj < g.kW; ++kj) {
        const C* row = col + ((c * g.kH + ki) * g.kW + kj) * g.L;
        const int64_t ih0 = ki * p.dilation_h - p.pad_h, iw0 = kj * p.dilation_w - p.pad_w;
        int64_t lo, hi;
        valid_range(iw0, p.stride_w, g.W, g.oW, lo, hi);
        for (int64_t oh = 0; oh < g.oH; ++oh) {
          const int64_t ih = oh * p.stride_h + ih0;
          if (ih < 0 || ih >= g.H) continue;
          const C* r = row + oh * g.oW;
          C* dst = x + (c * g.H + ih) * g.W;
          for (int64_t ow = lo; ow < hi; ++ow) dst[ow * p.stride_w + iw0] += r[ow];
        }
      }
    }
  }
}

// Holds OpenBLAS to one thread while our own threads each run a GEMM.
class BlasSingleThread {
 public:
  BlasSingleThread() : prev_(openblas_get_num_threads()) {
    if (prev_ > 1) openblas_set_num_threads(1);
  }
  ~BlasSingleThread() {
    if (prev_ > 1) openblas_set_num_threads(prev_);
  }
  BlasSingleThread(const BlasSingleThread&) = delete;
  BlasSingleThread& operator=(const BlasSingleThread&) = delete;

 private:
  int prev_;
};

int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Split the batch over threads when there are several images and enough work for each.
bool batch_parallel(const Geometry& g) {
  return g.N > 1 && max_threads() > 1 && g.N * g.O * g.K * g.L >= (int64_t{1} << 18);
}

// Runs body(n, scratch) for every image n, each thread with its own scratch (made by
// make_scratch); finish(scratch) runs once per thread after its images (serially).
template <typename Scratch, typename Make, typename Body, typename Finish>
void for_each_image(const Geometry& g, Make&& make_scratch, Body&& body, Finish&& finish) {
  if (!batch_parallel(g)) {
    Scratch s = make_scratch();
    for (int64_t n = 0; n < g.N; ++n) body(n, s);
    finish(s);
    return;
  }
  BlasSingleThread one_blas_thread;
#pragma omp parallel
  {
    Scratch s = make_scratch();
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; ++n) body(n, s);
#pragma omp critical(bigmodel_conv_finish)
    finish(s);
  }
}

// The same where a thread's scratch holds nothing to collect afterwards.
template <typename Scratch, typename Make, typename Body>
void for_each_image(const Geometry& g, Make&& make_scratch, Body&& body) {
  for_each_image<Scratch>(g, make_scratch, body, [](Scratch&) {});
}

template <typename T, typename C>
const C* as_compute(const T* src, int64_t n, std::vector<C>& buf) {
  if constexpr (std::is_same_v<T, C>) {
    return src;
  } else {
    buf.resize(n);
    for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<C>(src[i]);
    return buf.data();
  }
}

// One group's column matrix [K, L]: the image itself where the kernel is 1x1 (direct,
// only when T == C), else im2col into col.
template <typename T, typename C>
const C* group_columns(const T* xg, const Geometry& g, bool direct, std::vector<C>& col) {
  if (direct) return reinterpret_cast<const C*>(xg);
  im2col(xg, g, col.data());
  return col.data();
}

template <typename C>
struct Scratch {
  std::vector<C> col, buf, grad;
};

// Adds each thread's grad (its images' sum) into total; runs serially (for_each_image).
template <typename C>
auto add_grad_into(std::vector<C>& total) {
  return [&total](Scratch<C>& s) {
    for (size_t i = 0; i < total.size(); ++i) total[i] += s.grad[i];
  };
}

// ---- direct stride-1 convolution (float32, AVX2 + FMA) -----------------------------------
//
// y[o, oh, ow] = bias[o] + sum_{c, kh, kw} w[o, c, kh, kw] * xp[c, oh + kh, ow + kw] over an
// input copied into a zero-padded plane xp [C, oH + kH - 1, oW + kW - 1] (plus slack, so
// vector loads past a row's end stay inside the buffer; those lanes are never stored). One
// tile is 4 output channels x 24 output columns of one row: 12 accumulators, 3 input loads
// and 4 weight broadcasts per tap, all FMA (the im2col copy and sgemm's packing go away).
struct DirectShape {
  int64_t C, O, kH, kW, oH, oW;  // one group: input / output channels, kernel, output
  int64_t Hp() const { return oH + kH - 1; }
  int64_t Wp() const { return oW + kW - 1; }
  int64_t padded_size() const { return C * Hp() * Wp() + 32; }
};

// x [C, H, W] into xp [C, Hp, Wp] at offset (top, left) (either may be negative: clipped).
void pad_plane(const float* x, int64_t H, int64_t W, int64_t top, int64_t left, const DirectShape& d, float* xp) {
  const int64_t Hp = d.Hp(), Wp = d.Wp();
  std::fill(xp, xp + d.padded_size(), 0.0f);
  const int64_t j0 = std::max<int64_t>(0, left), j1 = std::min(Wp, W + left);  // dst columns
  if (j1 <= j0) return;
  for (int64_t c = 0; c < d.C; ++c)
    for (int64_t i = std::max<int64_t>(0, top); i < std::min(Hp, H + top); ++i)
      std::memcpy(xp + (c * Hp + i) * Wp + j0, x + (c * H + i - top) * W + j0 - left,
                  static_cast<size_t>(j1 - j0) * sizeof(float));
}

// w [O, C, kH, kW] into blocks of 4 output channels: packed[o / 4][c][kh][kw][o % 4], zero
// for channels past O, so a tile's 4 weights per tap are one 16-byte run. flip: w is the
// forward weight [C, O, kH, kW] of the convolution whose input gradient this is, read with
// its channel dims swapped and the kernel rotated by 180 degrees.
std::vector<float> pack_direct_weights(const float* w, const DirectShape& d, bool flip) {
  const int64_t blocks = (d.O + 3) / 4, khw = d.kH * d.kW, taps = d.C * khw;
  std::vector<float> packed(static_cast<size_t>(blocks * taps * 4), 0.0f);
  for (int64_t o = 0; o < d.O; ++o)
    for (int64_t c = 0; c < d.C; ++c)
      for (int64_t k = 0; k < khw; ++k)
        packed[static_cast<size_t>(((o / 4) * taps + c * khw + k) * 4 + o % 4)] =
            flip ? w[(c * d.O + o) * khw + (khw - 1 - k)] : w[(o * d.C + c) * khw + k];
  return packed;
}

// Row tiles (below) waste lanes and accumulators where oW is not a multiple of 24 (26 ->
// 13 + 13: 2 vectors of 8 for 13 columns, 8 accumulators); flattened tiles waste the
// kW - 1 padding columns of each row instead. Take the one with more useful lanes, row
// tiles of fewer than 3 vectors counted at their measured speed (~0.8 of a full tile).
inline bool use_flat_tiles(const DirectShape& d) {
  const int64_t tiles = (d.oW + 23) / 24, tile_w = (d.oW + tiles - 1) / tiles, nv = (tile_w + 7) / 8;
  const double row = static_cast<double>(d.oW) / static_cast<double>(tiles * nv * 8) * (nv == 3 ? 1.0 : 0.8);
  const double flat = static_cast<double>(d.oW) / static_cast<double>(d.Wp());
  return d.oH > 1 && flat > row;
}

#ifdef BM_VEC_X86
template <int NV>
BM_TARGET_AVX2 inline void direct_tile(const float* x, const float* wb, const DirectShape& d, float* const* rows,
                                       int nq, int64_t valid, const float* bias4, float* all = nullptr) {
  // Every index into acc is a compile-time constant (unrolled loops), so the 4 x NV
  // accumulators live in registers for the whole reduction.
  __m256 acc[4][NV];
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q)
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) acc[q][v] = _mm256_setzero_ps();
  const int64_t Hp = d.Hp(), Wp = d.Wp();
  for (int64_t c = 0; c < d.C; ++c) {
    for (int64_t kh = 0; kh < d.kH; ++kh) {
      const float* xr = x + (c * Hp + kh) * Wp;
      for (int64_t kw = 0; kw < d.kW; ++kw, wb += 4) {
        __m256 xv[NV];
#pragma GCC unroll 3
        for (int v = 0; v < NV; ++v) xv[v] = _mm256_loadu_ps(xr + kw + 8 * v);
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          const __m256 wq = _mm256_broadcast_ss(wb + q);
#pragma GCC unroll 3
          for (int v = 0; v < NV; ++v) acc[q][v] = _mm256_fmadd_ps(wq, xv[v], acc[q][v]);
        }
      }
    }
  }
  if (all != nullptr) {  // flattened tiles: every lane to all[4][8 * NV], the caller scatters
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q)
#pragma GCC unroll 3
      for (int v = 0; v < NV; ++v) _mm256_storeu_ps(all + q * 8 * NV + 8 * v, acc[q][v]);
    return;
  }
  if (nq == 4 && valid == 8 * NV) {  // the common full tile: straight vector stores
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      const __m256 b = _mm256_set1_ps(bias4[q]);
#pragma GCC unroll 3
      for (int v = 0; v < NV; ++v) _mm256_storeu_ps(rows[q] + 8 * v, _mm256_add_ps(acc[q][v], b));
    }
    return;
  }
  alignas(32) float res[4][8 * NV];  // edge tile: through a buffer, then only the valid part
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q)
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) _mm256_store_ps(res[q] + 8 * v, acc[q][v]);
  for (int q = 0; q < nq; ++q)
    for (int64_t l = 0; l < valid; ++l) rows[q][l] = res[q][l] + bias4[q];
}

// One image (one group): y [O, oH, oW] from the padded plane xp and the packed weights.
BM_TARGET_AVX2 void direct_image(const float* xp, const float* packed, const float* bias, const DirectShape& d,
                                 float* y) {
  const int64_t blocks = (d.O + 3) / 4, taps = d.C * d.kH * d.kW;
  const bool flat = use_flat_tiles(d);
  for (int64_t ob = 0; ob < blocks; ++ob) {
    const int nq = static_cast<int>(std::min<int64_t>(4, d.O - ob * 4));
    float bias4[4] = {0, 0, 0, 0};
    for (int q = 0; q < nq; ++q) bias4[q] = bias ? bias[ob * 4 + q] : 0.0f;
    const float* wb = packed + ob * taps * 4;
    if (flat) {
      // Flattened tiles: output position p = oh * Wp + ow over the padded width, so input
      // tap (kh, kw) of the whole tile sits at xp + p + kh * Wp + kw and every tile is 24
      // lanes (12 accumulators) even where oW is not a multiple of 8; lanes with ow >= oW
      // are computed and dropped (reads past the plane stay in the 32-float slack).
      const int64_t Wp = d.Wp(), P = (d.oH - 1) * Wp + d.oW;
      alignas(32) float res[4 * 24];
      for (int64_t p0 = 0; p0 < P; p0 += 24) {
        direct_tile<3>(xp + p0, wb, d, nullptr, nq, 24, bias4, res);
        const int64_t end = std::min(P, p0 + 24);
        for (int64_t p = p0; p < end;) {
          const int64_t oh = p / Wp, ow = p % Wp, seg = std::min(end - p, Wp - ow);
          const int64_t n = std::max<int64_t>(0, std::min(seg, d.oW - ow));
          for (int q = 0; q < nq; ++q) {
            float* dst = y + ((ob * 4 + q) * d.oH + oh) * d.oW + ow;
            const float* src = res + q * 24 + (p - p0);
            for (int64_t l = 0; l < n; ++l) dst[l] = src[l] + bias4[q];
          }
          p += seg;
        }
      }
      continue;
    }
    // Rows split into equal tiles of at most 24 columns (26 -> 13 + 13, not 24 + 2): a
    // narrow last tile would run on 4 accumulators, too few to hide the FMA latency.
    const int64_t tiles = (d.oW + 23) / 24, tile_w = (d.oW + tiles - 1) / tiles;
    for (int64_t oh = 0; oh < d.oH; ++oh) {
      for (int64_t ow0 = 0; ow0 < d.oW; ow0 += tile_w) {
        const int64_t valid = std::min<int64_t>(tile_w, d.oW - ow0);
        float* rows[4];
        for (int q = 0; q < 4; ++q) rows[q] = y + ((ob * 4 + std::min(q, nq - 1)) * d.oH + oh) * d.oW + ow0;
        const float* x = xp + oh * d.Wp() + ow0;
        if (valid > 16) direct_tile<3>(x, wb, d, rows, nq, valid, bias4);
        else if (valid > 8) direct_tile<2>(x, wb, d, rows, nq, valid, bias4);
        else direct_tile<1>(x, wb, d, rows, nq, valid, bias4);
      }
    }
  }
}
#else
void direct_image(const float*, const float*, const float*, const DirectShape&, float*) {}
#endif

// Stride 1, dilation 1, a kernel above 1x1 (1x1 already skips im2col), float32, AVX2, and
// at least 4 output channels per group (tiles hold 4 output channels; fewer waste lanes).
bool use_direct(const Geometry& g, int64_t out_channels) {
  const Conv2dParams& p = g.p;
  return conv_direct_enabled() && p.stride_h == 1 && p.stride_w == 1 && p.dilation_h == 1 && p.dilation_w == 1 &&
         g.kH * g.kW > 1 && out_channels >= 4;
}

// pack_direct_weights for every group's slice of w.
std::vector<std::vector<float>> pack_group_weights(const float* w, const Geometry& g, const DirectShape& d, bool flip) {
  std::vector<std::vector<float>> packed(static_cast<size_t>(g.p.groups));
  for (int64_t grp = 0; grp < g.p.groups; ++grp) packed[grp] = pack_direct_weights(w + grp * g.Og * g.K, d, flip);
  return packed;
}

// A thread's scratch on the direct paths: its padded plane (col).
Scratch<float> padded_scratch(const DirectShape& d) {
  Scratch<float> s;
  s.col.resize(d.padded_size());
  return s;
}

// Forward over the batch: each thread pads its images into its own plane.
void direct_forward(const float* x, const float* w, const float* bias, float* y, const Geometry& g) {
  const DirectShape d{g.Cg, g.Og, g.kH, g.kW, g.oH, g.oW};
  const auto packed = pack_group_weights(w, g, d, false);
  auto make = [&] { return padded_scratch(d); };
  auto body = [&](int64_t n, Scratch<float>& s) {
    for (int64_t grp = 0; grp < g.p.groups; ++grp) {
      pad_plane(x + (n * g.C + grp * g.Cg) * g.H * g.W, g.H, g.W, g.p.pad_h, g.p.pad_w, d, s.col.data());
      direct_image(s.col.data(), packed[grp].data(), bias ? bias + grp * g.Og : nullptr, d,
                   y + (n * g.O + grp * g.Og) * g.L);
    }
  };
  for_each_image<Scratch<float>>(g, make, body);
}

// Input gradient: dx[c, ih, iw] = sum_{o, kh, kw} dy[o, ih + pad - kh, iw + pad - kw] w[o, c, kh, kw],
// i.e. a stride-1 convolution of dy (placed at offset k - 1 - pad) with the flipped kernel.
void direct_backward_input(const float* gy, const float* w, float* gx, const Geometry& g) {
  const DirectShape d{g.Og, g.Cg, g.kH, g.kW, g.H, g.W};  // reads dy's Og channels, writes dx's Cg
  const auto packed = pack_group_weights(w, g, d, true);
  auto make = [&] { return padded_scratch(d); };
  auto body = [&](int64_t n, Scratch<float>& s) {
    for (int64_t grp = 0; grp < g.p.groups; ++grp) {
      pad_plane(gy + (n * g.O + grp * g.Og) * g.L, g.oH, g.oW, g.kH - 1 - g.p.pad_h, g.kW - 1 - g.p.pad_w, d,
                s.col.data());
      direct_image(s.col.data(), packed[grp].data(), nullptr, d, gx + (n * g.C + grp * g.Cg) * g.H * g.W);
    }
  };
  for_each_image<Scratch<float>>(g, make, body);
}

// Weight gradient: dw[o, c, kh, kw] = sum_{oh, ow} dy[o, oh, ow] * xp[c, oh + kh, ow + kw]
// summed over the batch (oneDNN's backward-weights scheme instead of im2col + one sgemm per
// image, which packs both operands for a short 64 x 288 x 576 product each image). One tile
// is 4 output channels x NK (<= 3) neighbouring kw taps of one (c, kh): 4 * NK accumulators
// of 8 output columns, 4 dy loads + NK input loads per 4 * NK FMAs, over the whole image;
// the 8 lanes are summed once per tile and image. Row tails use masked loads for both
// operands, so lanes past a row's end add exact zeros (no 0 * inf from the slack).
#ifdef BM_VEC_X86
template <int NK>
BM_TARGET_AVX2 inline void wgrad_tile(const float* xp, const float* const* gy, const DirectShape& d, float* out[4]) {
  __m256 acc[4][NK];
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q)
#pragma GCC unroll 3
    for (int j = 0; j < NK; ++j) acc[q][j] = _mm256_setzero_ps();
  const int64_t Wp = d.Wp(), full = d.oW / 8 * 8, tail = d.oW - full;
  alignas(32) int32_t lanes[8];
  for (int l = 0; l < 8; ++l) lanes[l] = l < tail ? -1 : 0;
  const __m256i mask = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
  for (int64_t oh = 0; oh < d.oH; ++oh) {
    const float* xr = xp + oh * Wp;
    const int64_t go = oh * d.oW;
    for (int64_t ow = 0; ow < full; ow += 8) {
      __m256 xv[NK];
#pragma GCC unroll 3
      for (int j = 0; j < NK; ++j) xv[j] = _mm256_loadu_ps(xr + ow + j);
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        const __m256 g = _mm256_loadu_ps(gy[q] + go + ow);
#pragma GCC unroll 3
        for (int j = 0; j < NK; ++j) acc[q][j] = _mm256_fmadd_ps(g, xv[j], acc[q][j]);
      }
    }
    if (tail) {
      __m256 xv[NK];
#pragma GCC unroll 3
      for (int j = 0; j < NK; ++j) xv[j] = _mm256_maskload_ps(xr + full + j, mask);
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        const __m256 g = _mm256_maskload_ps(gy[q] + go + full, mask);
#pragma GCC unroll 3
        for (int j = 0; j < NK; ++j) acc[q][j] = _mm256_fmadd_ps(g, xv[j], acc[q][j]);
      }
    }
  }
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q)
#pragma GCC unroll 3
    for (int j = 0; j < NK; ++j) {
      const __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[q][j]), _mm256_extractf128_ps(acc[q][j], 1));
      const __m128 h2 = _mm_add_ps(h, _mm_movehl_ps(h, h));
      out[q][j] += _mm_cvtss_f32(_mm_add_ss(h2, _mm_shuffle_ps(h2, h2, 1)));
    }
}

// One image, one group: dw [O, C, kH, kW] += from xp [C, Hp, Wp] and dy [O, oH, oW]. Output
// channels past O (last block) read the block's last channel and write a scratch row.
BM_TARGET_AVX2 void wgrad_image(const float* xp, const float* gy, const DirectShape& d, float* dw) {
  const int64_t L = d.oH * d.oW, khw = d.kH * d.kW, Hp = d.Hp();
  float spare[3] = {0, 0, 0};
  for (int64_t o0 = 0; o0 < d.O; o0 += 4) {
    const int nq = static_cast<int>(std::min<int64_t>(4, d.O - o0));
    const float* rows[4];
    for (int q = 0; q < 4; ++q) rows[q] = gy + (o0 + std::min(q, nq - 1)) * L;
    for (int64_t c = 0; c < d.C; ++c) {
      for (int64_t kh = 0; kh < d.kH; ++kh) {
        const float* x = xp + (c * Hp + kh) * d.Wp();
        for (int64_t kw = 0; kw < d.kW; kw += 3) {
          float* out[4];
          for (int q = 0; q < 4; ++q) out[q] = q < nq ? dw + ((o0 + q) * d.C + c) * khw + kh * d.kW + kw : spare;
          const int64_t nk = std::min<int64_t>(3, d.kW - kw);
          if (nk == 3) wgrad_tile<3>(x + kw, rows, d, out);
          else if (nk == 2) wgrad_tile<2>(x + kw, rows, d, out);
          else wgrad_tile<1>(x + kw, rows, d, out);
        }
      }
    }
  }
}
#else
void wgrad_image(const float*, const float*, const DirectShape&, float*) {}
#endif

// Over the batch: each thread pads its images into its own plane and sums into its own dw.
void direct_backward_weight(const float* x, const float* gy, float* gw, const Geometry& g) {
  const DirectShape d{g.Cg, g.Og, g.kH, g.kW, g.oH, g.oW};
  std::vector<float> total(static_cast<size_t>(g.O * g.K), 0.0f);
  auto make = [&] {
    Scratch<float> s = padded_scratch(d);
    s.grad.assign(static_cast<size_t>(g.O * g.K), 0.0f);
    return s;
  };
  auto body = [&](int64_t n, Scratch<float>& s) {
    for (int64_t grp = 0; grp < g.p.groups; ++grp) {
      pad_plane(x + (n * g.C + grp * g.Cg) * g.H * g.W, g.H, g.W, g.p.pad_h, g.p.pad_w, d, s.col.data());
      wgrad_image(s.col.data(), gy + (n * g.O + grp * g.Og) * g.L, d, s.grad.data() + grp * g.Og * g.K);
    }
  };
  for_each_image<Scratch<float>>(g, make, body, add_grad_into(total));
  std::copy(total.begin(), total.end(), gw);
}

// Runs direct_kernel (float32 only) where use_direct allows it; false: take im2col + GEMM.
template <typename T, typename Kernel>
bool ran_direct(const Geometry& g, int64_t out_channels, Kernel&& direct_kernel) {
  if constexpr (std::is_same_v<T, float>) {
    if (use_direct(g, out_channels)) {
      direct_kernel();
      return true;
    }
  }
  return false;
}

template <typename T>
void forward_typed(const Tensor& out, const Tensor& input, const Tensor& weight, const Tensor& bias,
                   const Conv2dParams& p) {
  using C = compute_t<T>;
  constexpr bool same = std::is_same_v<T, C>;
  const Geometry g = make_geometry(input, weight, out, p);
  if (ran_direct<T>(g, g.Og, [&] {
        direct_forward(input.data<float>(), weight.data<float>(), bias.defined() ? bias.data<float>() : nullptr,
                       out.data<float>(), g);
      }))
    return;
  const T* x = input.data<T>();
  T* y = out.data<T>();
  std::vector<C> wbuf, bbuf;
  const C* w = as_compute(weight.data<T>(), weight.numel(), wbuf);
  const C* b = bias.defined() ? as_compute(bias.data<T>(), bias.numel(), bbuf) : nullptr;
  const bool direct = g.direct() && same;
  auto make = [&] {
    Scratch<C> s;
    if (!direct) s.col.resize(g.K * g.L);
    if (!same) s.buf.resize(g.O * g.L);
    return s;
  };
  auto body = [&](int64_t n, Scratch<C>& s) {
    for (int64_t grp = 0; grp < p.groups; ++grp) {
      const T* xg = x + (n * g.C + grp * g.Cg) * g.H * g.W;
      const C* cols = group_columns(xg, g, direct, s.col);
      C* dst = same ? reinterpret_cast<C*>(y + (n * g.O + grp * g.Og) * g.L) : s.buf.data() + grp * g.Og * g.L;
      gemm(false, false, g.Og, g.L, g.K, w + grp * g.Og * g.K, g.K, cols, g.L, C(0), dst, g.L);
    }
    T* yn = y + n * g.O * g.L;
    for (int64_t o = 0; o < g.O; ++o) {
      const C bo = b ? b[o] : C(0);
      T* row = yn + o * g.L;
      if constexpr (same) {
        if (b)
          for (int64_t l = 0; l < g.L; ++l) row[l] += bo;
      } else {
        const C* src = s.buf.data() + o * g.L;
        for (int64_t l = 0; l < g.L; ++l) row[l] = static_cast<T>(src[l] + bo);
      }
    }
  };
  for_each_image<Scratch<C>>(g, make, body);
}

template <typename T>
void backward_input_typed(const Tensor& grad_input, const Tensor& grad_output, const Tensor& weight,
                          const Conv2dParams& p) {
  using C = compute_t<T>;
  constexpr bool same = std::is_same_v<T, C>;
  const Geometry g = make_geometry(grad_input, weight, grad_output, p);
  if (ran_direct<T>(g, g.Cg, [&] {
        direct_backward_input(grad_output.data<float>(), weight.data<float>(), grad_input.data<float>(), g);
      }))
    return;
  const T* gy = grad_output.data<T>();
  T* gx = grad_input.data<T>();
  std::vector<C> wbuf;
  const C* w = as_compute(weight.data<T>(), weight.numel(), wbuf);
  const bool direct = g.direct();
  const int64_t plane = g.H * g.W;
  auto make = [&] {
    Scratch<C> s;
    if (!direct) s.col.resize(g.K * g.L);
    if (!same) {
      s.buf.resize(g.Og * g.L);
      s.grad.resize(g.Cg * plane);
    }
    return s;
  };
  auto body = [&](int64_t n, Scratch<C>& s) {
    for (int64_t grp = 0; grp < p.groups; ++grp) {
      const T* gyg = gy + (n * g.O + grp * g.Og) * g.L;
      const C* G = as_compute(gyg, g.Og * g.L, s.buf);  // s.buf already holds Og * L
      T* gxg = gx + (n * g.C + grp * g.Cg) * plane;
      C* dst = same ? reinterpret_cast<C*>(gxg) : s.grad.data();
      const C* wg = w + grp * g.Og * g.K;
      if (direct) {  // col2im is the identity: the GEMM writes the gradient itself
        gemm(true, false, g.K, g.L, g.Og, wg, g.K, G, g.L, C(0), dst, g.L);
      } else {
        gemm(true, false, g.K, g.L, g.Og, wg, g.K, G, g.L, C(0), s.col.data(), g.L);
        std::fill(dst, dst + g.Cg * plane, C(0));
        col2im(s.col.data(), g, dst);
      }
      if constexpr (!same)
        for (int64_t i = 0; i < g.Cg * plane; ++i) gxg[i] = static_cast<T>(dst[i]);
    }
  };
  for_each_image<Scratch<C>>(g, make, body);
}

template <typename T>
void backward_weight_typed(const Tensor& grad_weight, const Tensor& grad_output, const Tensor& input,
                           const Conv2dParams& p) {
  using C = compute_t<T>;
  constexpr bool same = std::is_same_v<T, C>;
  const Geometry g = make_geometry(input, grad_weight, grad_output, p);
  if (ran_direct<T>(g, g.Og, [&] {
        direct_backward_weight(input.data<float>(), grad_output.data<float>(), grad_weight.data<float>(), g);
      }))
    return;
  const T* gy = grad_output.data<T>();
  const T* x = input.data<T>();
  const bool direct = g.direct() && same;
  std::vector<C> total(g.O * g.K, C(0));
  auto make = [&] {
    Scratch<C> s;
    if (!direct) s.col.resize(g.K * g.L);
    if (!same) s.buf.resize(g.Og * g.L);
    s.grad.assign(g.O * g.K, C(0));  // this thread's sum over its images
    return s;
  };
  auto body = [&](int64_t n, Scratch<C>& s) {
    for (int64_t grp = 0; grp < p.groups; ++grp) {
      const T* xg = x + (n * g.C + grp * g.Cg) * g.H * g.W;
      const C* cols = group_columns(xg, g, direct, s.col);
      const T* gyg = gy + (n * g.O + grp * g.Og) * g.L;
      const C* G = as_compute(gyg, g.Og * g.L, s.buf);  // s.buf already holds Og * L
      // dW_g[Og, K] += dY_g[Og, L] @ col[K, L]^T
      gemm(false, true, g.Og, g.K, g.L, G, g.L, cols, g.L, C(1), s.grad.data() + grp * g.Og * g.K, g.K);
    }
  };
  for_each_image<Scratch<C>>(g, make, body, add_grad_into(total));
  T* gw = grad_weight.data<T>();
  for (int64_t i = 0; i < g.O * g.K; ++i) gw[i] = static_cast<T>(total[i]);
}

void conv2d_forward_cpu(const Tensor& out, const Tensor& input, const Tensor& weight, const Tensor& bias,
                        const Conv2dParams& p) {
  BM_DISPATCH_FLOATING(input.dtype(), "conv2d", [&] { forward_typed<scalar_t>(out, input, weight, bias, p); });
}

void conv2d_backward_input_cpu(const Tensor& grad_input, const Tensor& grad_output, const Tensor& weight,
                               const Conv2dParams& p) {
  BM_DISPATCH_FLOATING(grad_output.dtype(), "conv2d_backward_input",
                       [&] { backward_input_typed<scalar_t>(grad_input, grad_output, weight, p); });
}

void conv2d_backward_weight_cpu(const Tensor& grad_weight, const Tensor& grad_output, const Tensor& input,
                                const Conv2dParams& p) {
  BM_DISPATCH_FLOATING(grad_output.dtype(), "conv2d_backward_weight",
                       [&] { backward_weight_typed<scalar_t>(grad_weight, grad_output, input, p); });
}

}  // namespace

BM_REGISTER_KERNEL(conv2d_forward_kernel, CPU, &conv2d_forward_cpu);
BM_REGISTER_KERNEL(conv2d_backward_input_kernel, CPU, &conv2d_backward_input_cpu);
BM_REGISTER_KERNEL(conv2d_backward_weight_kernel, CPU, &conv2d_backward_weight_cpu);

}  // namespace bigmodel::cpu
