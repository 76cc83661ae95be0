// CPU convolution: im2col + BLAS GEMM per image and group, col2im for the input gradient
// and per-thread accumulators for the weight gradient. float16 / bfloat16 run in float32.
// Batches are split over OpenMP threads with BLAS held to one thread inside (the column
// matrix of one image then stays in that core's cache); one image leaves the threads to BLAS.
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/ops/conv.h"
#include "kernels/cpu/loops.h"

namespace bigmodel::cpu {
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

template <typename C>
struct Scratch {
  std::vector<C> col, buf, grad;
};

template <typename T>
void forward_typed(const Tensor& out, const Tensor& input, const Tensor& weight, const Tensor& bias,
                   const Conv2dParams& p) {
  using C = compute_t<T>;
  constexpr bool same = std::is_same_v<T, C>;
  const Geometry g = make_geometry(input, weight, out, p);
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
      const C* cols = nullptr;
      if (direct) {
        cols = reinterpret_cast<const C*>(xg);  // T == C here
      } else {
        im2col(xg, g, s.col.data());
        cols = s.col.data();
      }
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
  for_each_image<Scratch<C>>(g, make, body, [](Scratch<C>&) {});
}

template <typename T>
void backward_input_typed(const Tensor& grad_input, const Tensor& grad_output, const Tensor& weight,
                          const Conv2dParams& p) {
  using C = compute_t<T>;
  constexpr bool same = std::is_same_v<T, C>;
  const Geometry g = make_geometry(grad_input, weight, grad_output, p);
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
      const C* G = nullptr;
      if constexpr (same) {
        G = gyg;
      } else {
        for (int64_t i = 0; i < g.Og * g.L; ++i) s.buf[i] = static_cast<C>(gyg[i]);
        G = s.buf.data();
      }
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
  for_each_image<Scratch<C>>(g, make, body, [](Scratch<C>&) {});
}

template <typename T>
void backward_weight_typed(const Tensor& grad_weight, const Tensor& grad_output, const Tensor& input,
                           const Conv2dParams& p) {
  using C = compute_t<T>;
  constexpr bool same = std::is_same_v<T, C>;
  const Geometry g = make_geometry(input, grad_weight, grad_output, p);
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
      const C* cols = nullptr;
      if (direct) {
        cols = reinterpret_cast<const C*>(xg);
      } else {
        im2col(xg, g, s.col.data());
        cols = s.col.data();
      }
      const T* gyg = gy + (n * g.O + grp * g.Og) * g.L;
      const C* G = nullptr;
      if constexpr (same) {
        G = gyg;
      } else {
        for (int64_t i = 0; i < g.Og * g.L; ++i) s.buf[i] = static_cast<C>(gyg[i]);
        G = s.buf.data();
      }
      // dW_g[Og, K] += dY_g[Og, L] @ col[K, L]^T
      gemm(false, true, g.Og, g.K, g.L, G, g.L, cols, g.L, C(1), s.grad.data() + grp * g.Og * g.K, g.K);
    }
  };
  auto finish = [&](Scratch<C>& s) {
    for (int64_t i = 0; i < g.O * g.K; ++i) total[i] += s.grad[i];
  };
  for_each_image<Scratch<C>>(g, make, body, finish);
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
