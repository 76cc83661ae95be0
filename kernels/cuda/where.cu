// CUDA kernel for where(cond, a, b), which also serves masked_fill (out may alias b for
// masked_fill_), registered into where_kernel with the CPU's contract
// (kernels/cpu/where.cpp): every dtype, operands already expanded to out's shape. The
// choice moves storage bits, so one kernel per element size serves every dtype.
#include "core/ops/compare.h"
#include "kernels/cuda/elementwise_launch.cuh"

namespace bigmodel::cuda {
namespace {

template <typename W>
struct WhereFunctor {
  __device__ __forceinline__ W operator()(bool c, W x, W y) const { return c ? x : y; }
};

template <typename W>
void launch_where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  elementwise::launch<W, bool, W, W>("where", WhereFunctor<W>{}, out, cond, a, b);
}

void where_cuda(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  switch (out.itemsize()) {
    case 1: return launch_where<uint8_t>(out, cond, a, b);
    case 2: return launch_where<uint16_t>(out, cond, a, b);
    case 4: return launch_where<uint32_t>(out, cond, a, b);
    case 8: return launch_where<uint64_t>(out, cond, a, b);
    default: throw DTypeError(str_cat("[where] unsupported element size ", out.itemsize()));
  }
}

}  // namespace

BM_REGISTER_KERNEL(where_kernel, CUDA, &where_cuda);

}  // namespace bigmodel::cuda
