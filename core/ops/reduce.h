// Reductions over any set of dims with keepdim: sum, mean, max/min (values and indices),
// argmax/argmin, var/std, logsumexp, norm, prod, all/any.
#pragma once
#include <optional>
#include <utility>
#include <vector>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

// How a reduction sees its input: the reduced dims moved last and the input made a
// contiguous [rows, cols] matrix; out_shape honours keepdim; keep_shape keeps every dim.
struct ReducePlan {
  std::vector<int64_t> dims;  // wrapped and sorted
  int64_t rows = 1, cols = 1;
  Shape out_shape, keep_shape;
  Tensor matrix;
};
ReducePlan plan_reduction(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim, const char* op);
enum class ReduceOp : uint8_t;
// Runs the reduce kernel on plan.matrix; the result has plan.out_shape. No autograd.
Tensor reduce_raw(ReduceOp op, const ReducePlan& plan, DType out_dtype, Device device);

// dims empty = reduce over all dims.
Tensor sum(const Tensor& self, const std::vector<int64_t>& dims = {}, bool keepdim = false,
           std::optional<DType> dtype = std::nullopt);
Tensor mean(const Tensor& self, const std::vector<int64_t>& dims = {}, bool keepdim = false);

}  // namespace bigmodel
