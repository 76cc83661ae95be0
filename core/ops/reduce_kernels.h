// Kernel families behind the reductions. Front ends move the reduced dims last and make
// the input contiguous, so kernels see a [rows, cols] matrix and reduce each row; the
// backward helpers write a [rows, cols] gradient matrix in the same layout.
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

// values[r] / indices[r] = the max (or min) of in[r, :] and its first position; a NaN wins
// (the first one), as in PyTorch. values may be undefined (argmax/argmin). cols >= 1.
BM_DECLARE_KERNEL(arg_reduce_kernel, void (*)(bool is_max, const Tensor& values, const Tensor& indices,
                                              const Tensor& in));

enum class RowStat : uint8_t { Var, Std, LogSumExp, Norm };
// out[r] = statistic of in[r, :] (floating dtypes; out has in's dtype; double accumulation).
// Var/Std: param = correction (divisor max(0, cols - correction)); Norm: param = p (+-inf ok);
// LogSumExp: max-shifted, -inf for empty rows.
BM_DECLARE_KERNEL(row_stat_kernel, void (*)(RowStat stat, const Tensor& out, const Tensor& in, double param));

enum class RowGrad : uint8_t { Extremum, Prod, Norm };
// grad_in[r, c] = grad_out[r] * d result[r] / d in[r, c]; all contiguous, in's dtype.
// Extremum (amax/amin/max/min without dim): ties share the gradient evenly.
// Prod: the product of the other entries of the row (exact with zeros).
// Norm: derivative of the p-norm (param = p); 0 where the norm is 0.
BM_DECLARE_KERNEL(row_grad_kernel, void (*)(RowGrad kind, const Tensor& grad_in, const Tensor& in,
                                            const Tensor& result, const Tensor& grad_out, double param));

// grad_in[r, :] = 0 except grad_in[r, indices[r]] = grad_out[r] (max/min with dim).
BM_DECLARE_KERNEL(index_grad_kernel, void (*)(const Tensor& grad_in, const Tensor& indices, const Tensor& grad_out));

}  // namespace bigmodel
