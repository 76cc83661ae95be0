// CUDA pooling kernels over contiguous [P, H, W] planes (core/ops/pool.h's contract), one
// thread per output element (per input element for the average backward passes, which
// gather from the windows covering them: no atomics), consecutive threads along the
// innermost dim. Window, tie, NaN and divisor rules are kernels/cpu/pool.cpp's. The max
// backward scatters through the saved indices with atomic adds (the kernel cannot tell
// whether windows overlap: where they do not, each address is hit once and the adds are
// uncontended).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "core/dispatch.h"
#include "core/ops/pool.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda {
namespace {

constexpr int kThreads = 256;

#define BM_GRID_STRIDE(i, n)                                                              \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

__device__ __forceinline__ int64_t adaptive_start(int64_t i, int64_t out, int64_t in) { return (i * in) / out; }
__device__ __forceinline__ int64_t adaptive_end(int64_t i, int64_t out, int64_t in) {
  return ((i + 1) * in + out - 1) / out;
}

template <typename W>
__device__ __forceinline__ bool is_nan(W v) {
  return v != v;
}

template <typename T>
__global__ void max_pool_kernel(typename ElemTraits<T>::storage* out, int64_t* idx,
                                const typename ElemTraits<T>::storage* x, int64_t total, int H, int W, int oH,
                                int oW, Pool2dParams p) {
  using E = ElemTraits<T>;
  using C = typename E::wide;
  BM_GRID_STRIDE(i, total) {
    const int ow = static_cast<int>(i % oW);
    const int64_t rest = i / oW;
    const int oh = static_cast<int>(rest % oH);
    const int64_t pl = rest / oH;
    const auto* xp = x + pl * H * W;
    int h0 = oh * static_cast<int>(p.stride_h) - static_cast<int>(p.pad_h);
    const int h1 = min(h0 + static_cast<int>((p.kernel_h - 1) * p.dilation_h) + 1, H);
    while (h0 < 0) h0 += static_cast<int>(p.dilation_h);
    int w0 = ow * static_cast<int>(p.stride_w) - static_cast<int>(p.pad_w);
    const int w1 = min(w0 + static_cast<int>((p.kernel_w - 1) * p.dilation_w) + 1, W);
    while (w0 < 0) w0 += static_cast<int>(p.dilation_w);
    C best = -C(INFINITY);
    int64_t best_i = static_cast<int64_t>(h0) * W + w0;
    for (int h = h0; h < h1; h += static_cast<int>(p.dilation_h)) {
      for (int w = w0; w < w1; w += static_cast<int>(p.dilation_w)) {
        const C v = E::load(xp[h * W + w]);
        if (v > best || is_nan(v)) {
          best = v;
          best_i = static_cast<int64_t>(h) * W + w;
        }
      }
    }
    out[i] = E::store(best);
    idx[i] = best_i;
  }
}

// PyTorch's clipped average window (kernels/cpu/pool.cpp's avg_window).
struct AvgWindow {
  int h0, h1, w0, w1;
  double divisor;
};

__device__ __forceinline__ AvgWindow avg_window(int oh, int ow, int H, int W, const Pool2dParams& p) {
  int h0 = oh * static_cast<int>(p.stride_h) - static_cast<int>(p.pad_h);
  int w0 = ow * static_cast<int>(p.stride_w) - static_cast<int>(p.pad_w);
  int h1 = min(h0 + static_cast<int>(p.kernel_h), H + static_cast<int>(p.pad_h));
  int w1 = min(w0 + static_cast<int>(p.kernel_w), W + static_cast<int>(p.pad_w));
  const int padded = (h1 - h0) * (w1 - w0);
  h0 = max(h0, 0), w0 = max(w0, 0);
  h1 = min(h1, H), w1 = min(w1, W);
  const double divisor = p.divisor_override ? static_cast<double>(p.divisor_override)
                         : p.count_include_pad ? static_cast<double>(padded)
                                               : static_cast<double>((h1 - h0) * (w1 - w0));
  return {h0, h1, w0, w1, divisor};
}

template <typename T>
__global__ void avg_pool_kernel(typename ElemTraits<T>::storage* out, const typename ElemTraits<T>::storage* x,
                                int64_t total, int H, int W, int oH, int oW, Pool2dParams p) {
  using E = ElemTraits<T>;
  BM_GRID_STRIDE(i, total) {
    const int ow = static_cast<int>(i % oW);
    const int64_t rest = i / oW;
    const int oh = static_cast<int>(rest % oH);
    const auto* xp = x + (rest / oH) * H * W;
    const AvgWindow win = avg_window(oh, ow, H, W, p);
    if (win.h0 >= win.h1 || win.w0 >= win.w1) {  // a window wholly in padding
      out[i] = E::store(0.0);
      continue;
    }
    double s = 0;
    for (int h = win.h0; h < win.h1; ++h)
      for (int w = win.w0; w < win.w1; ++w) s += static_cast<double>(E::load(xp[h * W + w]));
    out[i] = E::store(s / win.divisor);
  }
}

// Output rows (or columns) [lo, hi) whose window [o * s - pad, o * s - pad + k) holds x.
__device__ __forceinline__ void covering(int x, int s, int pad, int k, int n_out, int& lo, int& hi) {
  const int top = x + pad;  // o * s <= top and o * s > top - k
  lo = top - k + 1 <= 0 ? 0 : (top - k + 1 + s - 1) / s;
  hi = min(top / s + 1, n_out);
}

template <typename T>
__global__ void avg_pool_backward_kernel(typename ElemTraits<T>::storage* gx,
                                         const typename ElemTraits<T>::storage* gy, int64_t total, int H, int W,
                                         int oH, int oW, Pool2dParams p) {
  using E = ElemTraits<T>;
  using C = typename E::wide;
  BM_GRID_STRIDE(i, total) {
    const int w = static_cast<int>(i % W);
    const int64_t rest = i / W;
    const int h = static_cast<int>(rest % H);
    const auto* gp = gy + (rest / H) * oH * oW;
    int oh_lo, oh_hi, ow_lo, ow_hi;
    covering(h, static_cast<int>(p.stride_h), static_cast<int>(p.pad_h), static_cast<int>(p.kernel_h), oH, oh_lo,
             oh_hi);
    covering(w, static_cast<int>(p.stride_w), static_cast<int>(p.pad_w), static_cast<int>(p.kernel_w), oW, ow_lo,
             ow_hi);
    C acc = C(0);
    for (int oh = oh_lo; oh < oh_hi; ++oh) {
      for (int ow = ow_lo; ow < ow_hi; ++ow) {
        const AvgWindow win = avg_window(oh, ow, H, W, p);
        if (h < win.h0 || h >= win.h1 || w < win.w0 || w >= win.w1) continue;  // clipped away
        acc += static_cast<C>(static_cast<double>(E::load(gp[oh * oW + ow])) / win.divisor);
      }
    }
    gx[i] = E::store(acc);
  }
}

template <typename T>
__global__ void adaptive_avg_kernel(typename ElemTraits<T>::storage* out, const typename ElemTraits<T>::storage* x,
                                    int64_t total, int H, int W, int oH, int oW) {
  using E = ElemTraits<T>;
  BM_GRID_STRIDE(i, total) {
    const int ow = static_cast<int>(i % oW);
    const int64_t rest = i / oW;
    const int oh = static_cast<int>(rest % oH);
    const auto* xp = x + (rest / oH) * H * W;
    const int h0 = static_cast<int>(adaptive_start(oh, oH, H)), h1 = static_cast<int>(adaptive_end(oh, oH, H));
    const int w0 = static_cast<int>(adaptive_start(ow, oW, W)), w1 = static_cast<int>(adaptive_end(ow, oW, W));
    double s = 0;
    for (int h = h0; h < h1; ++h)
      for (int w = w0; w < w1; ++w) s += static_cast<double>(E::load(xp[h * W + w]));
    out[i] = E::store(s / static_cast<double>((h1 - h0) * (w1 - w0)));
  }
}

// The adaptive windows holding input row x: a superset from the inverse map, each tested.
__device__ __forceinline__ void adaptive_covering(int x, int n_in, int n_out, int& lo, int& hi) {
  lo = max(static_cast<int>((static_cast<int64_t>(x) * n_out) / n_in) - 1, 0);
  hi = min(static_cast<int>(((static_cast<int64_t>(x) + 1) * n_out + n_in - 1) / n_in) + 1, n_out);
}

template <typename T>
__global__ void adaptive_avg_backward_kernel(typename ElemTraits<T>::storage* gx,
                                             const typename ElemTraits<T>::storage* gy, int64_t total, int H, int W,
                                             int oH, int oW) {
  using E = ElemTraits<T>;
  using C = typename E::wide;
  BM_GRID_STRIDE(i, total) {
    const int w = static_cast<int>(i % W);
    const int64_t rest = i / W;
    const int h = static_cast<int>(rest % H);
    const auto* gp = gy + (rest / H) * oH * oW;
    int oh_lo, oh_hi, ow_lo, ow_hi;
    adaptive_covering(h, H, oH, oh_lo, oh_hi);
    adaptive_covering(w, W, oW, ow_lo, ow_hi);
    C acc = C(0);
    for (int oh = oh_lo; oh < oh_hi; ++oh) {
      const int h0 = static_cast<int>(adaptive_start(oh, oH, H)), h1 = static_cast<int>(adaptive_end(oh, oH, H));
      if (h < h0 || h >= h1) continue;
      for (int ow = ow_lo; ow < ow_hi; ++ow) {
        const int w0 = static_cast<int>(adaptive_start(ow, oW, W)), w1 = static_cast<int>(adaptive_end(ow, oW, W));
        if (w < w0 || w >= w1) continue;
        acc += E::load(gp[oh * oW + ow]) / static_cast<C>((h1 - h0) * (w1 - w0));
      }
    }
    gx[i] = E::store(acc);
  }
}

template <typename T>
__global__ void adaptive_max_kernel(typename ElemTraits<T>::storage* out, int64_t* idx,
                                    const typename ElemTraits<T>::storage* x, int64_t total, int H, int W, int oH,
                                    int oW) {
  using E = ElemTraits<T>;
  using C = typename E::wide;
  BM_GRID_STRIDE(i, total) {
    const int ow = static_cast<int>(i % oW);
    const int64_t rest = i / oW;
    const int oh = static_cast<int>(rest % oH);
    const auto* xp = x + (rest / oH) * H * W;
    const int h0 = static_cast<int>(adaptive_start(oh, oH, H)), h1 = static_cast<int>(adaptive_end(oh, oH, H));
    const int w0 = static_cast<int>(adaptive_start(ow, oW, W)), w1 = static_cast<int>(adaptive_end(ow, oW, W));
    C best = -C(INFINITY);
    int64_t best_i = static_cast<int64_t>(h0) * W + w0;
    for (int h = h0; h < h1; ++h) {
      for (int w = w0; w < w1; ++w) {
        const C v = E::load(xp[h * W + w]);
        if (v > best || is_nan(v)) {
          best = v;
          best_i = static_cast<int64_t>(h) * W + w;
        }
      }
    }
    out[i] = E::store(best);
    idx[i] = best_i;
  }
}

// atomic gx += g in the element type (half types add in half precision, as the hardware does).
__device__ __forceinline__ void atomic_add_elem(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add_elem(double* p, double v) { atomicAdd(p, v); }

template <typename T>
__global__ void max_backward_kernel(typename ElemTraits<T>::storage* gx, const typename ElemTraits<T>::storage* gy,
                                    const int64_t* idx, int64_t total, int64_t L, int64_t HW) {
  using E = ElemTraits<T>;
  BM_GRID_STRIDE(i, total) {
    auto* dst = gx + (i / L) * HW + idx[i];
    if constexpr (std::is_same_v<T, Half>) {
      atomicAdd(reinterpret_cast<__half*>(dst), __ushort_as_half(gy[i]));
    } else if constexpr (std::is_same_v<T, BFloat16>) {
      atomicAdd(reinterpret_cast<__nv_bfloat16*>(dst), __ushort_as_bfloat16(gy[i]));
    } else {
      atomic_add_elem(dst, E::load(gy[i]));
    }
  }
}

template <typename T>
using S = typename ElemTraits<T>::storage;

template <typename T>
S<T>* ptr(const Tensor& t) {
  return static_cast<S<T>*>(t.data_ptr());
}

int as_int(int64_t v) { return static_cast<int>(v); }

void max_pool2d_cuda(const Tensor& out, const Tensor& indices, const Tensor& input, const Pool2dParams& p) {
  DeviceGuard guard(out.device().index);
  cudaStream_t s = current_cuda_stream(out.device().index);
  const int64_t n = out.numel();
  BM_DISPATCH_FLOATING(input.dtype(), "max_pool2d", [&] {
    max_pool_kernel<scalar_t><<<grid_blocks(n, kThreads), kThreads, 0, s>>>(
        ptr<scalar_t>(out), indices.data<int64_t>(), ptr<scalar_t>(input), n, as_int(input.size(1)),
        as_int(input.size(2)), as_int(out.size(1)), as_int(out.size(2)), p);
  });
  BM_CUDA_CHECK_LAUNCH();
}

void avg_pool2d_cuda(const Tensor& out, const Tensor& input, const Pool2dParams& p) {
  DeviceGuard guard(out.device().index);
  cudaStream_t s = current_cuda_stream(out.device().index);
  const int64_t n = out.numel();
  BM_DISPATCH_FLOATING(input.dtype(), "avg_pool2d", [&] {
    avg_pool_kernel<scalar_t><<<grid_blocks(n, kThreads), kThreads, 0, s>>>(
        ptr<scalar_t>(out), ptr<scalar_t>(input), n, as_int(input.size(1)), as_int(input.size(2)),
        as_int(out.size(1)), as_int(out.size(2)), p);
  });
  BM_CUDA_CHECK_LAUNCH();
}

void avg_pool2d_backward_cuda(const Tensor& grad_input, const Tensor& grad_output, const Pool2dParams& p) {
  DeviceGuard guard(grad_input.device().index);
  cudaStream_t s = current_cuda_stream(grad_input.device().index);
  const int64_t n = grad_input.numel();
  BM_DISPATCH_FLOATING(grad_output.dtype(), "avg_pool2d_backward", [&] {
    avg_pool_backward_kernel<scalar_t><<<grid_blocks(n, kThreads), kThreads, 0, s>>>(
        ptr<scalar_t>(grad_input), ptr<scalar_t>(grad_output), n, as_int(grad_input.size(1)),
        as_int(grad_input.size(2)), as_int(grad_output.size(1)), as_int(grad_output.size(2)), p);
  });
  BM_CUDA_CHECK_LAUNCH();
}

void adaptive_avg_pool2d_cuda(const Tensor& out, const Tensor& input) {
  DeviceGuard guard(out.device().index);
  cudaStream_t s = current_cuda_stream(out.device().index);
  const int64_t n = out.numel();
  BM_DISPATCH_FLOATING(input.dtype(), "adaptive_avg_pool2d", [&] {
    adaptive_avg_kernel<scalar_t><<<grid_blocks(n, kThreads), kThreads, 0, s>>>(
        ptr<scalar_t>(out), ptr<scalar_t>(input), n, as_int(input.size(1)), as_int(input.size(2)),
        as_int(out.size(1)), as_int(out.size(2)));
  });
  BM_CUDA_CHECK_LAUNCH();
}

void adaptive_avg_pool2d_backward_cuda(const Tensor& grad_input, const Tensor& grad_output) {
  DeviceGuard guard(grad_input.device().index);
  cudaStream_t s = current_cuda_stream(grad_input.device().index);
  const int64_t n = grad_input.numel();
  BM_DISPATCH_FLOATING(grad_output.dtype(), "adaptive_avg_pool2d_backward", [&] {
    adaptive_avg_backward_kernel<scalar_t><<<grid_blocks(n, kThreads), kThreads, 0, s>>>(
        ptr<scalar_t>(grad_input), ptr<scalar_t>(grad_output), n, as_int(grad_input.size(1)),
        as_int(grad_input.size(2)), as_int(grad_output.size(1)), as_int(grad_output.size(2)));
  });
  BM_CUDA_CHECK_LAUNCH();
}

void adaptive_max_pool2d_cuda(const Tensor& out, const Tensor& indices, const Tensor& input) {
  DeviceGuard guard(out.device().index);
  cudaStream_t s = current_cuda_stream(out.device().index);
  const int64_t n = out.numel();
  BM_DISPATCH_FLOATING(input.dtype(), "adaptive_max_pool2d", [&] {
    adaptive_max_kernel<scalar_t><<<grid_blocks(n, kThreads), kThreads, 0, s>>>(
        ptr<scalar_t>(out), indices.data<int64_t>(), ptr<scalar_t>(input), n, as_int(input.size(1)),
        as_int(input.size(2)), as_int(out.size(1)), as_int(out.size(2)));
  });
  BM_CUDA_CHECK_LAUNCH();
}

void max_pool_backward_cuda(const Tensor& grad_input, const Tensor& grad_output, const Tensor& indices) {
  DeviceGuard guard(grad_input.device().index);
  cudaStream_t s = current_cuda_stream(grad_input.device().index);
  BM_CUDA_CHECK(cudaMemsetAsync(grad_input.data_ptr(), 0, grad_input.nbytes(), s));  // 0 bits are +0.0
  const int64_t n = grad_output.numel();
  if (n == 0) return;
  BM_DISPATCH_FLOATING(grad_output.dtype(), "max_pool_backward", [&] {
    max_backward_kernel<scalar_t><<<grid_blocks(n, kThreads), kThreads, 0, s>>>(
        ptr<scalar_t>(grad_input), ptr<scalar_t>(grad_output), indices.data<int64_t>(), n, grad_output.size(1),
        grad_input.size(1));
  });
  BM_CUDA_CHECK_LAUNCH();
}

}  // namespace

BM_REGISTER_KERNEL(max_pool2d_kernel, CUDA, &max_pool2d_cuda);
BM_REGISTER_KERNEL(avg_pool2d_kernel, CUDA, &avg_pool2d_cuda);
BM_REGISTER_KERNEL(avg_pool2d_backward_kernel, CUDA, &avg_pool2d_backward_cuda);
BM_REGISTER_KERNEL(adaptive_avg_pool2d_kernel, CUDA, &adaptive_avg_pool2d_cuda);
BM_REGISTER_KERNEL(adaptive_avg_pool2d_backward_kernel, CUDA, &adaptive_avg_pool2d_backward_cuda);
BM_REGISTER_KERNEL(adaptive_max_pool2d_kernel, CUDA, &adaptive_max_pool2d_cuda);
BM_REGISTER_KERNEL(max_pool_backward_kernel, CUDA, &max_pool_backward_cuda);

}  // namespace bigmodel::cuda
