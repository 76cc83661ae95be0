// CUDA copy (any dtype pair, any strides, broadcast sources) and fill kernels, registered
// into copy_kernel / fill_kernel. Same-dtype contiguous copies go to cudaMemcpyAsync;
// contiguous casts use a flat loop; everything else walks an OffsetCalc.
#include <cstring>

#include "core/dispatch.h"
#include "core/ops/copy_kernels.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/offset_calc.h"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda {
namespace {

constexpr int kThreads = 256;

template <typename To, typename From>
__global__ void cast_contiguous_kernel(typename ElemTraits<To>::storage* __restrict__ dst,
                                       const typename ElemTraits<From>::storage* __restrict__ src, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dst[i] = convert_elem<To, From>(src[i]);
}

template <typename To, typename From>
__global__ void copy_strided_kernel(typename ElemTraits<To>::storage* __restrict__ dst,
                                    const typename ElemTraits<From>::storage* __restrict__ src, OffsetCalc<2> calc,
                                    int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t off[2];
    calc.offsets(i, off);
    dst[off[0]] = convert_elem<To, From>(src[off[1]]);
  }
}

template <typename S>
__global__ void fill_contiguous_kernel(S* __restrict__ dst, S value, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) dst[i] = value;
}

template <typename S>
__global__ void fill_strided_kernel(S* __restrict__ dst, S value, OffsetCalc<1> calc, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t off[1];
    calc.offsets(i, off);
    dst[off[0]] = value;
  }
}

template <typename To, typename From>
void launch_copy(const Tensor& dst, const Tensor& src, cudaStream_t stream) {
  using DS = typename ElemTraits<To>::storage;
  using SS = typename ElemTraits<From>::storage;
  const int64_t n = dst.numel();
  auto* d = static_cast<DS*>(dst.data_ptr());
  auto* s = static_cast<const SS*>(src.data_ptr());
  if (dst.is_contiguous() && src.is_contiguous()) {
    if constexpr (std::is_same_v<To, From>) {
      BM_CUDA_CHECK(cudaMemcpyAsync(d, s, static_cast<size_t>(n) * sizeof(DS), cudaMemcpyDeviceToDevice, stream));
    } else {
      cast_contiguous_kernel<To, From><<<grid_blocks(n, kThreads), kThreads, 0, stream>>>(d, s, n);
      BM_CUDA_CHECK_LAUNCH();
    }
    return;
  }
  const Tensor* ts[2] = {&dst, &src};
  OffsetCalc<2> calc = make_offset_calc<2>(ts, "copy");
  copy_strided_kernel<To, From><<<grid_blocks(n, kThreads), kThreads, 0, stream>>>(d, s, calc, n);
  BM_CUDA_CHECK_LAUNCH();
}

void copy_cuda(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  BM_CHECK_DEVICE(dst.device() == src.device(), "copy", "source is on ", src.device().str(), ", destination on ",
                  dst.device().str());
  DeviceGuard guard(dst.device().index);
  cudaStream_t stream = current_cuda_stream(dst.device().index);
  BM_DISPATCH_ALL(dst.dtype(), "copy", [&] {
    using dst_t = scalar_t;
    BM_DISPATCH_ALL(src.dtype(), "copy", [&] { launch_copy<dst_t, scalar_t>(dst, src, stream); });
  });
}

void fill_cuda(const Tensor& dst, const Scalar& value) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  DeviceGuard guard(dst.device().index);
  cudaStream_t stream = current_cuda_stream(dst.device().index);
  BM_DISPATCH_ALL(dst.dtype(), "fill", [&] {
    using S = typename ElemTraits<scalar_t>::storage;
    const scalar_t host_value = value.to<scalar_t>();
    S v;
    static_assert(sizeof(S) == sizeof(scalar_t), "storage type must match the host element");
    std::memcpy(&v, &host_value, sizeof(S));  // Half/BFloat16 hold exactly their bits
    S* d = static_cast<S*>(dst.data_ptr());
    if (dst.is_contiguous()) {
      fill_contiguous_kernel<S><<<grid_blocks(n, kThreads), kThreads, 0, stream>>>(d, v, n);
    } else {
      const Tensor* ts[1] = {&dst};
      fill_strided_kernel<S><<<grid_blocks(n, kThreads), kThreads, 0, stream>>>(d, v, make_offset_calc<1>(ts, "fill"), n);
    }
    BM_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace

BM_REGISTER_KERNEL(copy_kernel, CUDA, &copy_cuda);
BM_REGISTER_KERNEL(fill_kernel, CUDA, &fill_cuda);

}  // namespace bigmodel::cuda
