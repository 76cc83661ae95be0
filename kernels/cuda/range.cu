// CUDA kernels of the range factories (arange, linspace) on contiguous outputs, registered
// with the CPU's contract (kernels/cpu/range.cpp) and bit-identical results: the same
// int64 or double arithmetic per element, with __dmul_rn/__dadd_rn so nvcc cannot fuse a
// multiply-add the CPU rounds twice, and the same double -> float -> half conversions.
#include <type_traits>

#include "core/ops/range_kernels.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda {
namespace {

constexpr int kThreads = 256;

// The CPU's cast_double: half types through float, everything else a static_cast.
template <typename T>
__device__ __forceinline__ typename ElemTraits<T>::storage from_double(double v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) return ElemTraits<T>::store(static_cast<float>(v));
  else return static_cast<T>(v);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) arange_int_kernel(typename ElemTraits<T>::storage* out, int64_t n,
                                                              int64_t start, int64_t step) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    // Wrapping like the CPU's int64 arithmetic (the front end keeps the range in int64).
    const int64_t v = static_cast<int64_t>(static_cast<uint64_t>(start) + static_cast<uint64_t>(i) * static_cast<uint64_t>(step));
    if constexpr (std::is_integral_v<T>) out[i] = static_cast<T>(v);
    else out[i] = from_double<T>(static_cast<double>(v));
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) arange_double_kernel(typename ElemTraits<T>::storage* out, int64_t n,
                                                                 double start, double step) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = from_double<T>(__dadd_rn(start, __dmul_rn(static_cast<double>(i), step)));
}

// Symmetric about the middle so both ends are exact (see range_kernels.h).
template <typename T>
__global__ void __launch_bounds__(kThreads) linspace_kernel_impl(typename ElemTraits<T>::storage* out, int64_t n,
                                                                 double start, double end, double step) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t half = n / 2;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const double v = i < half ? __dadd_rn(start, __dmul_rn(step, static_cast<double>(i)))
                              : __dsub_rn(end, __dmul_rn(step, static_cast<double>(n - 1 - i)));
    out[i] = from_double<T>(v);
  }
}

void arange_cuda(const Tensor& out, const Scalar& start, const Scalar& step) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const bool exact_int = !start.is_floating() && !step.is_floating();
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  BM_DISPATCH_NUMERIC(out.dtype(), "arange", [&] {
    auto* p = static_cast<typename ElemTraits<scalar_t>::storage*>(out.data_ptr());
    if (exact_int) {
      arange_int_kernel<scalar_t><<<grid_blocks(n, kThreads), kThreads, 0, stream>>>(p, n, start.to<int64_t>(),
                                                                                     step.to<int64_t>());
    } else {
      arange_double_kernel<scalar_t><<<grid_blocks(n, kThreads), kThreads, 0, stream>>>(p, n, start.to<double>(),
                                                                                        step.to<double>());
    }
    BM_CUDA_CHECK_LAUNCH();
  });
}

void linspace_cuda(const Tensor& out, double start, double end) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  // n == 1 gives start (the CPU's special case): i = 0 < half = 0 is false, so the kernel
  // would compute end - step * 0; pass end = start to keep one kernel.
  const double step = n == 1 ? 0.0 : (end - start) / static_cast<double>(n - 1);
  const double last = n == 1 ? start : end;
  BM_DISPATCH_NUMERIC(out.dtype(), "linspace", [&] {
    auto* p = static_cast<typename ElemTraits<scalar_t>::storage*>(out.data_ptr());
    linspace_kernel_impl<scalar_t><<<grid_blocks(n, kThreads), kThreads, 0, stream>>>(p, n, start, last, step);
    BM_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace

BM_REGISTER_KERNEL(arange_kernel, CUDA, &arange_cuda);
BM_REGISTER_KERNEL(linspace_kernel, CUDA, &linspace_cuda);

}  // namespace bigmodel::cuda
