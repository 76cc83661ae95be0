// Reductions over any set of dims with keepdim: sum, mean, prod, max/min (values and
// indices), amax/amin, argmax/argmin, var/std, logsumexp, norm, all/any.
#pragma once
#include <limits>
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
  Shape in_shape;             // the input's sizes
  std::vector<int64_t> perm;  // kept dims, then reduced dims: the matrix's dim order
  Tensor matrix;
};
ReducePlan plan_reduction(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim, const char* op);
// The inverse of the plan's layout: a [rows, cols] matrix back in the input's dim order.
Tensor unplan_matrix(const Tensor& matrix, const ReducePlan& plan);
enum class ReduceOp : uint8_t;
// Runs the reduce kernel on plan.matrix; the result has plan.out_shape. No autograd.
Tensor reduce_raw(ReduceOp op, const ReducePlan& plan, DType out_dtype, Device device);

// dims empty = reduce over all dims.
Tensor sum(const Tensor& self, const std::vector<int64_t>& dims = {}, bool keepdim = false,
           std::optional<DType> dtype = std::nullopt);
Tensor mean(const Tensor& self, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Integers and bools multiply in int64.
Tensor prod(const Tensor& self, const std::vector<int64_t>& dims = {}, bool keepdim = false,
            std::optional<DType> dtype = std::nullopt);

// Greatest / least value over dims (all when empty); ties share the gradient.
Tensor amax(const Tensor& self, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& self, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// max()/min() of every element: a 0-d tensor (raises on an empty tensor).
Tensor max(const Tensor& self);
Tensor min(const Tensor& self);
// Along one dim: (values, int64 indices of the first extreme element).
std::pair<Tensor, Tensor> max(const Tensor& self, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min(const Tensor& self, int64_t dim, bool keepdim = false);
// dim empty: index into the flattened tensor.
Tensor argmax(const Tensor& self, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& self, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);

// Divisor max(0, N - correction); correction 1 is the unbiased estimate.
Tensor var(const Tensor& self, const std::vector<int64_t>& dims = {}, double correction = 1.0,
           bool keepdim = false);
Tensor std_dev(const Tensor& self, const std::vector<int64_t>& dims = {}, double correction = 1.0,
               bool keepdim = false);
// log(sum(exp(x))) computed stably; integers are converted to float32 first.
Tensor logsumexp(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim = false);
// Vector p-norm over dims: p = 2 (Frobenius), 1, +-inf, 0 (count of non-zeros) or any p.
Tensor norm(const Tensor& self, double p = 2.0, const std::vector<int64_t>& dims = {}, bool keepdim = false);

// Truth reductions: the result is bool.
Tensor all(const Tensor& self, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor any(const Tensor& self, const std::vector<int64_t>& dims = {}, bool keepdim = false);

}  // namespace bigmodel
