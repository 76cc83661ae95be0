// CPU pooling kernels over contiguous [P, H, W] planes: max (first maximum wins, NaN
// propagates, as PyTorch's CPU kernel; float32 interior columns eight at a time with AVX2),
// average (PyTorch's window clipping and divisor rules), adaptive average / max, and the
// backward passes. Planes split over threads.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/ops/pool.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/vec_math.h"

namespace bigmodel::cpu {
namespace {

// Threads only pay off once the planes hold enough elements between them.
bool plane_parallel(int64_t planes, int64_t work) { return planes > 1 && work >= kParallelGrain; }

// Adaptive window [start, end) of output index i: floor(i * in / out) .. ceil((i + 1) * in / out).
inline int64_t adaptive_start(int64_t i, int64_t out, int64_t in) { return (i * in) / out; }
inline int64_t adaptive_end(int64_t i, int64_t out, int64_t in) { return ((i + 1) * in + out - 1) / out; }

// One max-pool output from the window rows [h0, h1) (h0 already the first row inside the
// image): candidates visited row by row, left to right; the first maximum wins and a NaN
// replaces it (the last NaN wins), as PyTorch's CPU kernel does.
template <typename T>
inline void max_one(const T* xp, int64_t W, int64_t h0, int64_t h1, int64_t ow, const Pool2dParams& p, T* y,
                    int64_t* idx) {
  using C = compute_t<T>;
  int64_t w0 = ow * p.stride_w - p.pad_w;
  const int64_t w1 = std::min(w0 + (p.kernel_w - 1) * p.dilation_w + 1, W);
  while (w0 < 0) w0 += p.dilation_w;
  C best = -std::numeric_limits<C>::infinity();
  int64_t best_i = h0 * W + w0;
  for (int64_t h = h0; h < h1; h += p.dilation_h) {
    for (int64_t w = w0; w < w1; w += p.dilation_w) {
      const C v = static_cast<C>(xp[h * W + w]);
      if (v > best || std::isnan(v)) {
        best = v;
        best_i = h * W + w;
      }
    }
  }
  *y = static_cast<T>(best);
  *idx = best_i;
}

// Output columns [lo, hi) whose windows lie wholly inside the row (no padding, no clipping).
inline std::pair<int64_t, int64_t> interior_cols(int64_t W, int64_t oW, const Pool2dParams& p) {
  const int64_t lo = std::min(oW, (p.pad_w + p.stride_w - 1) / p.stride_w);
  const int64_t last = W - 1 + p.pad_w - (p.kernel_w - 1) * p.dilation_w;  // window fits while ow*sw <= last
  const int64_t hi = last < 0 ? 0 : std::min(oW, last / p.stride_w + 1);
  return {lo, std::max(lo, hi)};
}

#ifdef BM_VEC_X86
// Eight neighbouring interior outputs at a time (needs hi - lo >= 8): the same candidates in
// the same order as max_one, compared without branches (random data mispredicts every other
// `v > best`); indices tracked as int32 (the plane holds < 2^31 elements) and widened on store.
// Stride 1 loads contiguous columns, other strides gather them.
BM_TARGET_AVX2 void max_row_avx2(const float* xp, int64_t W, int64_t h0, int64_t h1, int64_t lo, int64_t hi,
                                 const Pool2dParams& p, float* yrow, int64_t* irow) {
  const int32_t sw = static_cast<int32_t>(p.stride_w);
  const __m256i lane = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(sw));
  const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t ow0 = lo; ow0 < hi; ow0 += 8) {
    // The last chunk ends at hi and may overlap the one before: those outputs are recomputed alike.
    const int64_t ow = std::min(ow0, hi - 8);
    const int64_t c0 = ow * p.stride_w - p.pad_w;  // lane 0's first window column (>= 0)
    __m256 best = neg_inf;
    __m256i bi = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(h0 * W + c0)), lane);
    for (int64_t h = h0; h < h1; h += p.dilation_h) {
      for (int64_t k = 0; k < p.kernel_w; ++k) {
        const int64_t base = h * W + c0 + k * p.dilation_w;
        const __m256 v = sw == 1 ? _mm256_loadu_ps(xp + base) : _mm256_i32gather_ps(xp + base, lane, 4);
        const __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        best = _mm256_blendv_ps(best, v, take);
        const __m256i cand = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(base)), lane);
        bi = _mm256_castps_si256(
            _mm256_blendv_ps(_mm256_castsi256_ps(bi), _mm256_castsi256_ps(cand), take));
      }
    }
    _mm256_storeu_ps(yrow + ow, best);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(irow + ow), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(bi)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(irow + ow + 4),
                        _mm256_cvtepi32_epi64(_mm256_extracti128_si256(bi, 1)));
  }
}
#endif

template <typename T>
void max_pool_typed(const Tensor& out, const Tensor& indices, const Tensor& input, const Pool2dParams& p) {
  const int64_t P = input.size(0), H = input.size(1), W = input.size(2), oH = out.size(1), oW = out.size(2);
  const T* x = input.data<T>();
  T* y = out.data<T>();
  int64_t* idx = indices.data<int64_t>();
  const int64_t work = P * oH * oW * p.kernel_h * p.kernel_w;
  const auto cols = interior_cols(W, oW, p);
  int64_t lo = cols.first, hi = cols.second;  // plain variables: the lambda captures them
  bool vec = false;
#ifdef BM_VEC_X86
  vec = std::is_same_v<T, float> && vec::has_avx2_fma() && hi - lo >= 8 &&
        H * W < (int64_t{1} << 31);
#endif
  if (!vec) lo = hi = 0;  // every column through max_one
  parallel_for(P, plane_parallel(P, work), [&](int64_t pl) {
    const T* xp = x + pl * H * W;
    for (int64_t oh = 0; oh < oH; ++oh) {
      int64_t h0 = oh * p.stride_h - p.pad_h;
      const int64_t h1 = std::min(h0 + (p.kernel_h - 1) * p.dilation_h + 1, H);
      while (h0 < 0) h0 += p.dilation_h;
      T* yrow = y + (pl * oH + oh) * oW;
      int64_t* irow = idx + (pl * oH + oh) * oW;
      for (int64_t ow = 0; ow < lo; ++ow) max_one(xp, W, h0, h1, ow, p, yrow + ow, irow + ow);
#ifdef BM_VEC_X86
      if constexpr (std::is_same_v<T, float>) {
        if (hi > lo) max_row_avx2(xp, W, h0, h1, lo, hi, p, yrow, irow);
      }
#endif
      for (int64_t ow = hi; ow < oW; ++ow) max_one(xp, W, h0, h1, ow, p, yrow + ow, irow + ow);
    }
  });
}

// The divisor and clipped window of one average-pool output, as PyTorch computes them.
struct AvgWindow {
  int64_t h0, h1, w0, w1;
  double divisor;
};

inline AvgWindow avg_window(int64_t oh, int64_t ow, int64_t H, int64_t W, const Pool2dParams& p) {
  int64_t h0 = oh * p.stride_h - p.pad_h, w0 = ow * p.stride_w - p.pad_w;
  int64_t h1 = std::min(h0 + p.kernel_h, H + p.pad_h), w1 = std::min(w0 + p.kernel_w, W + p.pad_w);
  const int64_t padded_size = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0), w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, H), w1 = std::min(w1, W);
  double divisor = p.divisor_override ? static_cast<double>(p.divisor_override)
                   : p.count_include_pad ? static_cast<double>(padded_size)
                                         : static_cast<double>((h1 - h0) * (w1 - w0));
  return {h0, h1, w0, w1, divisor};
}

template <typename T>
void avg_pool_typed(const Tensor& out, const Tensor& input, const Pool2dParams& p) {
  const int64_t P = input.size(0), H = input.size(1), W = input.size(2), oH = out.size(1), oW = out.size(2);
  const T* x = input.data<T>();
  T* y = out.data<T>();
  const int64_t work = P * oH * oW * p.kernel_h * p.kernel_w;
  parallel_for(P, plane_parallel(P, work), [&](int64_t pl) {
    const T* xp = x + pl * H * W;
    T* yp = y + pl * oH * oW;
    for (int64_t oh = 0; oh < oH; ++oh) {
      for (int64_t ow = 0; ow < oW; ++ow) {
        const AvgWindow win = avg_window(oh, ow, H, W, p);
        if (win.h0 >= win.h1 || win.w0 >= win.w1) {  // a window wholly in padding
          yp[oh * oW + ow] = T(0);
          continue;
        }
        double s = 0;
        for (int64_t h = win.h0; h < win.h1; ++h)
          for (int64_t w = win.w0; w < win.w1; ++w) s += static_cast<double>(static_cast<compute_t<T>>(xp[h * W + w]));
        yp[oh * oW + ow] = static_cast<T>(s / win.divisor);
      }
    }
  });
}

template <typename T>
void avg_pool_backward_typed(const Tensor& grad_input, const Tensor& grad_output, const Pool2dParams& p) {
  using C = compute_t<T>;
  const int64_t P = grad_input.size(0), H = grad_input.size(1), W = grad_input.size(2);
  const int64_t oH = grad_output.size(1), oW = grad_output.size(2);
  const T* gy = grad_output.data<T>();
  T* gx = grad_input.data<T>();
  const int64_t work = P * oH * oW * p.kernel_h * p.kernel_w;
  parallel_for(P, plane_parallel(P, work), [&](int64_t pl) {
    std::vector<C> acc(H * W, C(0));  // half types accumulate in float
    const T* gp = gy + pl * oH * oW;
    for (int64_t oh = 0; oh < oH; ++oh) {
      for (int64_t ow = 0; ow < oW; ++ow) {
        const AvgWindow win = avg_window(oh, ow, H, W, p);
        const C v = static_cast<C>(static_cast<double>(static_cast<C>(gp[oh * oW + ow])) / win.divisor);
        for (int64_t h = win.h0; h < win.h1; ++h)
          for (int64_t w = win.w0; w < win.w1; ++w) acc[h * W + w] += v;
      }
    }
    T* xp = gx + pl * H * W;
    for (int64_t i = 0; i < H * W; ++i) xp[i] = static_cast<T>(acc[i]);
  });
}

template <typename T>
void adaptive_avg_typed(const Tensor& out, const Tensor& input) {
  const int64_t P = input.size(0), H = input.size(1), W = input.size(2), oH = out.size(1), oW = out.size(2);
  const T* x = input.data<T>();
  T* y = out.data<T>();
  parallel_for(P, plane_parallel(P, P * H * W), [&](int64_t pl) {
    const T* xp = x + pl * H * W;
    for (int64_t oh = 0; oh < oH; ++oh) {
      const int64_t h0 = adaptive_start(oh, oH, H), h1 = adaptive_end(oh, oH, H);
      for (int64_t ow = 0; ow < oW; ++ow) {
        const int64_t w0 = adaptive_start(ow, oW, W), w1 = adaptive_end(ow, oW, W);
        double s = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) s += static_cast<double>(static_cast<compute_t<T>>(xp[h * W + w]));
        y[(pl * oH + oh) * oW + ow] = static_cast<T>(s / static_cast<double>((h1 - h0) * (w1 - w0)));
      }
    }
  });
}

template <typename T>
void adaptive_avg_backward_typed(const Tensor& grad_input, const Tensor& grad_output) {
  using C = compute_t<T>;
  const int64_t P = grad_input.size(0), H = grad_input.size(1), W = grad_input.size(2);
  const int64_t oH = grad_output.size(1), oW = grad_output.size(2);
  const T* gy = grad_output.data<T>();
  T* gx = grad_input.data<T>();
  parallel_for(P, plane_parallel(P, P * H * W), [&](int64_t pl) {
    std::vector<C> acc(H * W, C(0));
    const T* gp = gy + pl * oH * oW;
    for (int64_t oh = 0; oh < oH; ++oh) {
      const int64_t h0 = adaptive_start(oh, oH, H), h1 = adaptive_end(oh, oH, H);
      for (int64_t ow = 0; ow < oW; ++ow) {
        const int64_t w0 = adaptive_start(ow, oW, W), w1 = adaptive_end(ow, oW, W);
        const C v = static_cast<C>(gp[oh * oW + ow]) / static_cast<C>((h1 - h0) * (w1 - w0));
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) acc[h * W + w] += v;
      }
    }
    T* xp = gx + pl * H * W;
    for (int64_t i = 0; i < H * W; ++i) xp[i] = static_cast<T>(acc[i]);
  });
}

template <typename T>
void adaptive_max_typed(const Tensor& out, const Tensor& indices, const Tensor& input) {
  using C = compute_t<T>;
  const int64_t P = input.size(0), H = input.size(1), W = input.size(2), oH = out.size(1), oW = out.size(2);
  const T* x = input.data<T>();
  T* y = out.data<T>();
  int64_t* idx = indices.data<int64_t>();
  parallel_for(P, plane_parallel(P, P * H * W), [&](int64_t pl) {
    const T* xp = x + pl * H * W;
    for (int64_t oh = 0; oh < oH; ++oh) {
      const int64_t h0 = adaptive_start(oh, oH, H), h1 = adaptive_end(oh, oH, H);
      for (int64_t ow = 0; ow < oW; ++ow) {
        const int64_t w0 = adaptive_start(ow, oW, W), w1 = adaptive_end(ow, oW, W);
        C best = -std::numeric_limits<C>::infinity();
        int64_t best_i = h0 * W + w0;
        for (int64_t h = h0; h < h1; ++h) {
          for (int64_t w = w0; w < w1; ++w) {
            const C v = static_cast<C>(xp[h * W + w]);
            if (v > best || std::isnan(v)) {
              best = v;
              best_i = h * W + w;
            }
          }
        }
        const int64_t o = (pl * oH + oh) * oW + ow;
        y[o] = static_cast<T>(best);
        idx[o] = best_i;
      }
    }
  });
}

template <typename T>
void max_backward_typed(const Tensor& grad_input, const Tensor& grad_output, const Tensor& indices) {
  using C = compute_t<T>;
  const int64_t P = grad_input.size(0), HW = grad_input.size(1), L = grad_output.size(1);
  const T* gy = grad_output.data<T>();
  const int64_t* idx = indices.data<int64_t>();
  T* gx = grad_input.data<T>();
  parallel_for(P, plane_parallel(P, P * (HW + L)), [&](int64_t pl) {
    T* xp = gx + pl * HW;
    const T* gp = gy + pl * L;
    const int64_t* ip = idx + pl * L;
    if constexpr (std::is_same_v<C, T>) {
      std::fill(xp, xp + HW, T(0));
      for (int64_t j = 0; j < L; ++j) xp[ip[j]] += gp[j];
    } else {
      // Half types sum overlapping windows in float and round once, as the CUDA kernel does.
      thread_local std::vector<C> acc;
      acc.assign(static_cast<size_t>(HW), C(0));
      for (int64_t j = 0; j < L; ++j) acc[ip[j]] += static_cast<C>(gp[j]);
      for (int64_t k = 0; k < HW; ++k) xp[k] = static_cast<T>(acc[k]);
    }
  });
}

void max_pool2d_cpu(const Tensor& out, const Tensor& indices, const Tensor& input, const Pool2dParams& p) {
  BM_DISPATCH_FLOATING(input.dtype(), "max_pool2d", [&] { max_pool_typed<scalar_t>(out, indices, input, p); });
}
void avg_pool2d_cpu(const Tensor& out, const Tensor& input, const Pool2dParams& p) {
  BM_DISPATCH_FLOATING(input.dtype(), "avg_pool2d", [&] { avg_pool_typed<scalar_t>(out, input, p); });
}
void avg_pool2d_backward_cpu(const Tensor& grad_input, const Tensor& grad_output, const Pool2dParams& p) {
  BM_DISPATCH_FLOATING(grad_output.dtype(), "avg_pool2d_backward",
                       [&] { avg_pool_backward_typed<scalar_t>(grad_input, grad_output, p); });
}
void adaptive_avg_pool2d_cpu(const Tensor& out, const Tensor& input) {
  BM_DISPATCH_FLOATING(input.dtype(), "adaptive_avg_pool2d", [&] { adaptive_avg_typed<scalar_t>(out, input); });
}
void adaptive_avg_pool2d_backward_cpu(const Tensor& grad_input, const Tensor& grad_output) {
  BM_DISPATCH_FLOATING(grad_output.dtype(), "adaptive_avg_pool2d_backward",
                       [&] { adaptive_avg_backward_typed<scalar_t>(grad_input, grad_output); });
}
void adaptive_max_pool2d_cpu(const Tensor& out, const Tensor& indices, const Tensor& input) {
  BM_DISPATCH_FLOATING(input.dtype(), "adaptive_max_pool2d",
                       [&] { adaptive_max_typed<scalar_t>(out, indices, input); });
}
void max_pool_backward_cpu(const Tensor& grad_input, const Tensor& grad_output, const Tensor& indices) {
  BM_DISPATCH_FLOATING(grad_output.dtype(), "max_pool_backward",
                       [&] { max_backward_typed<scalar_t>(grad_input, grad_output, indices); });
}

}  // namespace

BM_REGISTER_KERNEL(max_pool2d_kernel, CPU, &max_pool2d_cpu);
BM_REGISTER_KERNEL(avg_pool2d_kernel, CPU, &avg_pool2d_cpu);
BM_REGISTER_KERNEL(avg_pool2d_backward_kernel, CPU, &avg_pool2d_backward_cpu);
BM_REGISTER_KERNEL(adaptive_avg_pool2d_kernel, CPU, &adaptive_avg_pool2d_cpu);
BM_REGISTER_KERNEL(adaptive_avg_pool2d_backward_kernel, CPU, &adaptive_avg_pool2d_backward_cpu);
BM_REGISTER_KERNEL(adaptive_max_pool2d_kernel, CPU, &adaptive_max_pool2d_cpu);
BM_REGISTER_KERNEL(max_pool_backward_kernel, CPU, &max_pool_backward_cpu);

}  // namespace bigmodel::cpu
