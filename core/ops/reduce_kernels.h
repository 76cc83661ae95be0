// Kernel families behind the reductions. Front ends move the reduced dims last and make
// the input contiguous, so kernels see a [rows, cols] matrix and reduce each row.
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

enum class ReduceOp : uint8_t { Sum, Prod, Max, Min, All, Any };
// out[r] = reduce(in[r, :]); in is contiguous [rows, cols]; out is contiguous [rows] with
// the result dtype (sum/prod of integers and bools: int64; all/any: bool). Sums of floats
// accumulate in double on the CPU.
BM_DECLARE_KERNEL(reduce_kernel, void (*)(ReduceOp op, const Tensor& out, const Tensor& in));

}  // namespace bigmodel
