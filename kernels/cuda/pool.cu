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

template <typename T>
using S = typename ElemTraits<T>::storage;

template <typename W>
__device__ __forceinline__ bool is_nan(W v) {
  return v != v;
}

// Element i of contiguous [P, rows, cols] planes: its plane, row and column.
struct PlanePos {
  int64_t plane;
  int r, c;
};
__device__ __forceinline__ PlanePos plane_pos(int64_t i, int rows, int cols) {
  const int64_t rest = i / cols;
  return {rest / rows, static_cast<int>(rest % rows), static_cast<int>(i % cols)};
}

// Windows are separable: along each axis, output position o reads the input positions
// lo, lo + step, ... below hi (already clipped to the input). `padded` is the window's length
// before clipping to the input (avg_pool2d's count_include_pad divisor). Each axis type below
// maps o to its Span, over n input and n_out output positions; the average ones also give
// the output positions whose windows may hold input position x (the gather of the backward).
struct Span {
  int lo, hi, step, padded;
};

// max_pool2d: kernel k, dilation d, stride s, padding pad (padding never wins a max).
struct DilatedAxis {
  int k, d, s, pad, n, n_out;
  __device__ __forceinline__ Span span(int o) const {
    int lo = o * s - pad;
    const int hi = min(lo + (k - 1) * d + 1, n);
    while (lo < 0) lo += d;
    return {lo, hi, d, 0};
  }
};

// avg_pool2d: PyTorch's clipped window (kernels/cpu/pool.cpp's avg_window), step 1.
struct AvgAxis {
  int k, s, pad, n, n_out;
  __device__ __forceinline__ Span span(int o) const {
    const int start = o * s - pad;
    const int end = min(start + k, n + pad);
    return {max(start, 0), min(end, n), 1, end - start};
  }
  // The outputs o with o * s <= x + pad < o * s + k.
  __device__ __forceinline__ void covering(int x, int& lo, int& hi) const {
    const int top = x + pad;
    lo = top - k + 1 <= 0 ? 0 : (top - k + 1 + s - 1) / s;
    hi = min(top / s + 1, n_out);
  }
};

// Adaptive pooling: rows floor(o * n / n_out) .. ceil((o + 1) * n / n_out), step 1, never padded.
struct AdaptiveAxis {
  int n, n_out;
  __device__ __forceinline__ Span span(int o) const {
    const int lo = static_cast<int>((static_cast<int64_t>(o) * n) / n_out);
    const int hi = static_cast<int>(((static_cast<int64_t>(o) + 1) * n + n_out - 1) / n_out);
    return {lo, hi, 1, hi - lo};
  }
  // A superset of the windows holding x, from the inverse map (the gather tests each).
  __device__ __forceinline__ void covering(int x, int& lo, int& hi) const {
    lo = max(static_cast<int>((static_cast<int64_t>(x) * n_out) / n) - 1, 0);
    hi = min(static_cast<int>(((static_cast<int64_t>(x) + 1) * n_out + n - 1) / n) + 1, n_out);
  }
};

// The two averages differ in their axes, their divisor and the precision of the backward's
// division (kept as they were: avg_pool2d divides in double, adaptive in the wide type).
struct AvgPool {
  static constexpr bool kMayBeEmpty = true;  // a window wholly in padding
  AvgAxis rows, cols;
  int64_t divisor_override;
  bool count_include_pad;
  __device__ __forceinline__ double divisor(const Span& r, const Span& c) const {
    return divisor_override ? static_cast<double>(divisor_override)
           : count_include_pad ? static_cast<double>(r.padded * c.padded)
                               : static_cast<double>((r.hi - r.lo) * (c.hi - c.lo));
  }
  template <typename C>
  __device__ __forceinline__ C share(C g, const Span& r, const Span& c) const {
    return static_cast<C>(static_cast<double>(g) / divisor(r, c));
  }
};

struct AdaptiveAvgPool {
  static constexpr bool kMayBeEmpty = false;
  AdaptiveAxis rows, cols;
  __device__ __forceinline__ double divisor(const Span& r, const Span& c) const {
    return static_cast<double>((r.hi - r.lo) * (c.hi - c.lo));
  }
  template <typename C>
  __device__ __forceinline__ C share(C g, const Span& r, const Span& c) const {
    return g / static_cast<C>((r.hi - r.lo) * (c.hi - c.lo));
  }
};

// max_pool2d (Axis = DilatedAxis) and adaptive_max_pool2d (AdaptiveAxis): the first maximum
// in row-major window order, a NaN winning (the last one seen), its flat h * W + w index.
template <typename T, typename Axis>
__global__ void max_pool_kernel(S<T>* out, int64_t* idx, const S<T>* x, int64_t total, Axis rows, Axis cols) {
  using E = ElemTraits<T>;
  using C = typename E::wide;
  const int W = cols.n;
  BM_GRID_STRIDE(i, total) {
    const PlanePos o = plane_pos(i, rows.n_out, cols.n_out);
    const auto* xp = x + o.plane * rows.n * W;
    const Span r = rows.span(o.r), c = cols.span(o.c);
    C best = -C(INFINITY);
    int64_t best_i = static_cast<int64_t>(r.lo) * W + c.lo;
    for (int h = r.lo; h < r.hi; h += r.step) {
      for (int w = c.lo; w < c.hi; w += c.step) {
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

// avg_pool2d (Pool = AvgPool) and adaptive_avg_pool2d (AdaptiveAvgPool): the window's sum in
// double over its divisor.
template <typename T, typename Pool>
__global__ void avg_pool_kernel(S<T>* out, const S<T>* x, int64_t total, Pool pool) {
  using E = ElemTraits<T>;
  const int W = pool.cols.n;
  BM_GRID_STRIDE(i, total) {
    const PlanePos o = plane_pos(i, pool.rows.n_out, pool.cols.n_out);
    const auto* xp = x + o.plane * pool.rows.n * W;
    const Span r = pool.rows.span(o.r), c = pool.cols.span(o.c);
    if constexpr (Pool::kMayBeEmpty) {
      if (r.lo >= r.hi || c.lo >= c.hi) {
        out[i] = E::store(0.0);
        continue;
      }
    }
    double s = 0;
    for (int h = r.lo; h < r.hi; ++h)
      for (int w = c.lo; w < c.hi; ++w) s += static_cast<double>(E::load(xp[h * W + w]));
    out[i] = E::store(s / pool.divisor(r, c));
  }
}

// The averages' backward, one thread per input element gathering from the windows that
// hold it (no atomics): grad_input [P, H, W] from grad_output [P, oH, oW].
template <typename T, typename Pool>
__global__ void avg_pool_backward_kernel(S<T>* gx, const S<T>* gy, int64_t total, Pool pool) {
  using E = ElemTraits<T>;
  using C = typename E::wide;
  const int oW = pool.cols.n_out;
  BM_GRID_STRIDE(i, total) {
    const PlanePos in = plane_pos(i, pool.rows.n, pool.cols.n);
    const int h = in.r, w = in.c;
    const auto* gp = gy + in.plane * pool.rows.n_out * oW;
    int oh_lo, oh_hi, ow_lo, ow_hi;
    pool.rows.covering(h, oh_lo, oh_hi);
    pool.cols.covering(w, ow_lo, ow_hi);
    C acc = C(0);
    for (int oh = oh_lo; oh < oh_hi; ++oh) {
      const Span r = pool.rows.span(oh);
      if (h < r.lo || h >= r.hi) continue;  // clipped away, or (adaptive) not a window of h
      for (int ow = ow_lo; ow < ow_hi; ++ow) {
        const Span c = pool.cols.span(ow);
        if (w < c.lo || w >= c.hi) continue;
        acc += pool.share(E::load(gp[oh * oW + ow]), r, c);
      }
    }
    gx[i] = E::store(acc);
  }
}

// gx[idx] += g through atomics. Half types add into a float32 scratch buffer (A = float),
// rounded once by narrow_kernel: adding in half precision would round at every add, in the
// order the atomics land, so overlapping windows would give run-to-run differences of a few
// half ulps.
template <typename T, typename A>
__global__ void max_backward_kernel(A* gx, const S<T>* gy, const int64_t* idx, int64_t total, int64_t L,
                                    int64_t HW) {
  BM_GRID_STRIDE(i, total) atomicAdd(gx + (i / L) * HW + idx[i], static_cast<A>(ElemTraits<T>::load(gy[i])));
}

template <typename T>
__global__ void narrow_kernel(S<T>* out, const float* in, int64_t n) {
  BM_GRID_STRIDE(i, n) out[i] = ElemTraits<T>::store(in[i]);
}

template <typename T>
S<T>* ptr(const Tensor& t) {
  return static_cast<S<T>*>(t.data_ptr());
}

int as_int(int64_t v) { return static_cast<int>(v); }

template <typename T>
struct Tag {
  using type = T;
};

// One thread per element of `out`, on its device and current stream: launch(Tag<scalar_t>,
// blocks, stream, n) for the dtype, then the launch check.
template <typename Launch>
void launch_per_element(const char* name, const Tensor& out, DType dtype, Launch launch) {
  DeviceGuard guard(out.device().index);
  cudaStream_t s = current_cuda_stream(out.device().index);
  const int64_t n = out.numel();
  BM_DISPATCH_FLOATING(dtype, name, [&] { launch(Tag<scalar_t>{}, grid_blocks(n, kThreads), s, n); });
  BM_CUDA_CHECK_LAUNCH();
}

// Input [P, H, W] and output [P, oH, oW] sizes of a pooling call, as the axes want them.
AvgAxis avg_axis(int64_t k, int64_t s, int64_t pad, int64_t n, int64_t n_out) {
  return {as_int(k), as_int(s), as_int(pad), as_int(n), as_int(n_out)};
}
AvgPool avg_pool(const Tensor& in, const Tensor& out, const Pool2dParams& p) {
  return {avg_axis(p.kernel_h, p.stride_h, p.pad_h, in.size(1), out.size(1)),
          avg_axis(p.kernel_w, p.stride_w, p.pad_w, in.size(2), out.size(2)), p.divisor_override,
          p.count_include_pad};
}
AdaptiveAxis adaptive_axis(const Tensor& in, const Tensor& out, int dim) {
  return {as_int(in.size(dim)), as_int(out.size(dim))};
}
AdaptiveAvgPool adaptive_avg_pool(const Tensor& in, const Tensor& out) {
  return {adaptive_axis(in, out, 1), adaptive_axis(in, out, 2)};
}

template <typename Axis>
void max_pool_forward(const char* name, const Tensor& out, const Tensor& indices, const Tensor& input, Axis rows,
                      Axis cols) {
  launch_per_element(name, out, input.dtype(), [&](auto tag, unsigned blocks, cudaStream_t s, int64_t n) {
    using T = typename decltype(tag)::type;
    max_pool_kernel<T, Axis>
        <<<blocks, kThreads, 0, s>>>(ptr<T>(out), indices.data<int64_t>(), ptr<T>(input), n, rows, cols);
  });
}

template <typename Pool>
void avg_pool_forward(const char* name, const Tensor& out, const Tensor& input, const Pool& pool) {
  launch_per_element(name, out, input.dtype(), [&](auto tag, unsigned blocks, cudaStream_t s, int64_t n) {
    using T = typename decltype(tag)::type;
    avg_pool_kernel<T, Pool><<<blocks, kThreads, 0, s>>>(ptr<T>(out), ptr<T>(input), n, pool);
  });
}

template <typename Pool>
void avg_pool_backward(const char* name, const Tensor& grad_input, const Tensor& grad_output, const Pool& pool) {
  launch_per_element(name, grad_input, grad_output.dtype(), [&](auto tag, unsigned blocks, cudaStream_t s,
                                                                int64_t n) {
    using T = typename decltype(tag)::type;
    avg_pool_backward_kernel<T, Pool><<<blocks, kThreads, 0, s>>>(ptr<T>(grad_input), ptr<T>(grad_output), n, pool);
  });
}

void max_pool2d_cuda(const Tensor& out, const Tensor& indices, const Tensor& input, const Pool2dParams& p) {
  const DilatedAxis rows{as_int(p.kernel_h), as_int(p.dilation_h), as_int(p.stride_h),
                         as_int(p.pad_h),    as_int(input.size(1)), as_int(out.size(1))};
  const DilatedAxis cols{as_int(p.kernel_w), as_int(p.dilation_w), as_int(p.stride_w),
                         as_int(p.pad_w),    as_int(input.size(2)), as_int(out.size(2))};
  max_pool_forward("max_pool2d", out, indices, input, rows, cols);
}

void adaptive_max_pool2d_cuda(const Tensor& out, const Tensor& indices, const Tensor& input) {
  max_pool_forward("adaptive_max_pool2d", out, indices, input, adaptive_axis(input, out, 1),
                   adaptive_axis(input, out, 2));
}

void avg_pool2d_cuda(const Tensor& out, const Tensor& input, const Pool2dParams& p) {
  avg_pool_forward("avg_pool2d", out, input, avg_pool(input, out, p));
}

void avg_pool2d_backward_cuda(const Tensor& grad_input, const Tensor& grad_output, const Pool2dParams& p) {
  avg_pool_backward("avg_pool2d_backward", grad_input, grad_output, avg_pool(grad_input, grad_output, p));
}

void adaptive_avg_pool2d_cuda(const Tensor& out, const Tensor& input) {
  avg_pool_forward("adaptive_avg_pool2d", out, input, adaptive_avg_pool(input, out));
}

void adaptive_avg_pool2d_backward_cuda(const Tensor& grad_input, const Tensor& grad_output) {
  avg_pool_backward("adaptive_avg_pool2d_backward", grad_input, grad_output,
                    adaptive_avg_pool(grad_input, grad_output));
}

void max_pool_backward_cuda(const Tensor& grad_input, const Tensor& grad_output, const Tensor& indices) {
  DeviceGuard guard(grad_input.device().index);
  cudaStream_t s = current_cuda_stream(grad_input.device().index);
  const int64_t n = grad_output.numel();
  BM_DISPATCH_FLOATING(grad_output.dtype(), "max_pool_backward", [&] {
    using A = typename ElemTraits<scalar_t>::wide;
    const bool half = !std::is_same_v<A, S<scalar_t>>;
    Tensor acc = half ? Tensor::empty(grad_input.sizes(), DType::Float32, grad_input.device()) : grad_input;
    BM_CUDA_CHECK(cudaMemsetAsync(acc.data_ptr(), 0, acc.nbytes(), s));  // 0 bits are +0.0
    if (n > 0) {
      max_backward_kernel<scalar_t, A><<<grid_blocks(n, kThreads), kThreads, 0, s>>>(
          static_cast<A*>(acc.data_ptr()), ptr<scalar_t>(grad_output), indices.data<int64_t>(), n,
          grad_output.size(1), grad_input.size(1));
      BM_CUDA_CHECK_LAUNCH();
    }
    if (half) {
      const int64_t m = grad_input.numel();
      narrow_kernel<scalar_t><<<grid_blocks(m, kThreads), kThreads, 0, s>>>(ptr<scalar_t>(grad_input),
                                                                          acc.data<float>(), m);
      BM_CUDA_CHECK_LAUNCH();
    }
  });
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
