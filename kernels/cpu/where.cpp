// CPU kernel for where(cond, a, b), which also serves masked_fill: one loop per dtype.
#include "core/ops/compare.h"
#include "kernels/cpu/loops.h"

namespace bigmodel::cpu {
namespace {

void where_cpu(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  BM_DISPATCH_ALL(out.dtype(), "where", [&] {
    map_elements<scalar_t, bool, scalar_t, scalar_t>(out, {&cond, &a, &b},
                                                     [](bool c, scalar_t x, scalar_t y) { return c ? x : y; });
  });
}

}  // namespace

BM_REGISTER_KERNEL(where_kernel, CPU, &where_cpu);

}  // namespace bigmodel::cpu
