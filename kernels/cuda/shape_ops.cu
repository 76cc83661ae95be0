// CUDA kernels for the shape ops that move or mask elements without arithmetic, registered
// with the CPU's contract (kernels/cpu/shape_ops.cpp): triangle masking (tril/triu, in
// place on a contiguous out) and flip (contiguous out from a strided src). Both depend only
// on the element size, so one kernel per word size serves every dtype.
#include <vector>

#include "core/ops/shape_ops.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/offset_calc.h"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda {
namespace {

constexpr int kThreads = 256;

// Zeros element (m, i, j) of the contiguous [mats, rows, cols] out where it lies outside
// the kept triangle: upper keeps j - i >= diagonal, lower keeps j - i <= diagonal. All-zero
// bits are zero in every dtype. Kept elements are neither read nor written.
template <typename Word>
__global__ void __launch_bounds__(kThreads) triangle_kernel_impl(Word* out, int64_t n, int64_t rows, int64_t cols,
                                                                 int64_t diagonal, bool upper) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n; idx += stride) {
    const int64_t rc = idx / cols;
    const int64_t j = idx - rc * cols;
    const int64_t i = rc % rows;
    const int64_t d = j - i;  // |d| < 2^62: no overflow against any int64 diagonal below
    const bool keep = upper ? d >= diagonal : d <= diagonal;
    if (!keep) out[idx] = Word(0);
  }
}

template <typename Word>
void launch_triangle(const Tensor& out, int64_t diagonal, bool upper) {
  const int64_t n = out.numel(), rows = out.size(-2), cols = out.size(-1);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  triangle_kernel_impl<Word><<<grid_blocks(n, kThreads), kThreads, 0, stream>>>(static_cast<Word*>(out.data_ptr()), n,
                                                                               rows, cols, diagonal, upper);
  BM_CUDA_CHECK_LAUNCH();
}

void triangle_cuda(const Tensor& out, int64_t diagonal, bool upper) {
  if (out.size(-2) == 0 || out.size(-1) == 0) return;
  DeviceGuard guard(out.device().index);
  switch (out.itemsize()) {
    case 1: return launch_triangle<uint8_t>(out, diagonal, upper);
    case 2: return launch_triangle<uint16_t>(out, diagonal, upper);
    case 4: return launch_triangle<uint32_t>(out, diagonal, upper);
    case 8: return launch_triangle<uint64_t>(out, diagonal, upper);
    default: throw DTypeError(str_cat("[tril/triu] unsupported element size ", out.itemsize()));
  }
}

// out[i] (contiguous) = src at the element whose flipped coordinates are i's: src is read
// from its far end along flipped dims with negated strides (calc holds src's sizes and
// those signed strides; size-1 dims are dropped, nothing is merged).
template <typename Word>
__global__ void __launch_bounds__(kThreads) flip_kernel_impl(Word* out, const Word* src, OffsetCalc<1> calc,
                                                             int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t off[1];
    calc.offsets(i, off);
    out[i] = src[off[0]];
  }
}

template <typename Word>
void launch_flip(const Tensor& out, const Tensor& src, const std::vector<bool>& flip) {
  OffsetCalc<1> calc;
  int64_t start = 0;
  for (int64_t d = 0; d < src.dim(); ++d) {
    const int64_t size = src.size(d), st = src.stride(d);
    if (size == 1) continue;
    BM_CHECK(calc.ndim < kMaxKernelDims, NotImplementedError, "flip", "tensors with more than ", kMaxKernelDims,
             " dims of size > 1 are not supported on CUDA");
    const bool f = d < static_cast<int64_t>(flip.size()) && flip[d];
    if (f) start += (size - 1) * st;
    calc.sizes[calc.ndim] = size;
    calc.strides[calc.ndim][0] = f ? -st : st;
    ++calc.ndim;
  }
  const int64_t n = out.numel();
  const Word* in = static_cast<const Word*>(src.data_ptr()) + start;
  cudaStream_t stream = current_cuda_stream(out.device().index);
  flip_kernel_impl<Word><<<grid_blocks(n, kThreads), kThreads, 0, stream>>>(static_cast<Word*>(out.data_ptr()), in,
                                                                           calc, n);
  BM_CUDA_CHECK_LAUNCH();
}

void flip_cuda(const Tensor& out, const Tensor& src, const std::vector<bool>& flip) {
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device().index);
  switch (src.itemsize()) {
    case 1: return launch_flip<uint8_t>(out, src, flip);
    case 2: return launch_flip<uint16_t>(out, src, flip);
    case 4: return launch_flip<uint32_t>(out, src, flip);
    case 8: return launch_flip<uint64_t>(out, src, flip);
    default: throw DTypeError(str_cat("[flip] unsupported element size ", src.itemsize()));
  }
}

}  // namespace

BM_REGISTER_KERNEL(triangle_kernel, CUDA, &triangle_cuda);
BM_REGISTER_KERNEL(flip_kernel, CUDA, &flip_cuda);

}  // namespace bigmodel::cuda
