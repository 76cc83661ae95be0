// Statistical reductions: var/std, logsumexp and the vector norm, with their backward.
// Part of the reduction family (declared in core/ops/reduce.h).
#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/ops/reduce_kernels.h"
#include "core/ops/softmax.h"
#include "core/ops/view.h"

namespace bigmodel {
namespace {

Tensor row_stat(RowStat stat, const ReducePlan& plan, DType dtype, Device device, double param) {
  Tensor out = Tensor::empty({plan.rows}, dtype, device);
  if (plan.rows > 0) row_stat_kernel.get(device)(stat, out, plan.matrix, param);
  return reshape(out, plan.out_shape);
}

void check_floating(const Tensor& self, const char* op) {
  BM_CHECK_DTYPE(is_floating(self.dtype()), op, "expects a floating point tensor, got ", dtype_name(self.dtype()),
                 "; convert with .float() first");
}

// Shared by var and std: the backward of var is g * 2 (x - mean) / (N - c); of std it is
// g * (x - mean) / ((N - c) * std). Written with ops, so it is itself differentiable.
Tensor variance(const Tensor& self, const std::vector<int64_t>& dims, double correction, bool keepdim, bool take_sqrt) {
  const char* op = take_sqrt ? "std" : "var";
  check_floating(self, op);
  ReducePlan plan = plan_reduction(self, dims, keepdim, op);
  Tensor out = row_stat(take_sqrt ? RowStat::Std : RowStat::Var, plan, self.dtype(), self.device(), correction);
  if (needs_grad({self})) {
    Shape keep = plan.keep_shape;
    std::vector<int64_t> wrapped = plan.dims;
    const double divisor = std::max(0.0, static_cast<double>(plan.cols) - correction);
    SavedTensor saved_in(self), saved_out(take_sqrt ? out : Tensor());
    record_function(op, {self}, {out}, [=](const std::vector<Tensor>& g) {
      Tensor x = saved_in.unpack(op);
      Tensor centered = sub(x, mean(x, wrapped, true));
      Tensor gk = reshape(g[0], keep);
      Tensor scale = take_sqrt ? mul(reshape(saved_out.unpack(op), keep), Scalar(divisor))
                               : Tensor();
      Tensor grad = take_sqrt ? div(mul(centered, gk), scale) : mul(centered, mul(gk, Scalar(2.0 / divisor)));
      return std::vector<Tensor>{grad};
    }, take_sqrt ? SecondOrder::None : SecondOrder::Full);
  }
  return out;
}

}  // namespace

Tensor var(const Tensor& self, const std::vector<int64_t>& dims, double correction, bool keepdim) {
  return variance(self, dims, correction, keepdim, false);
}

Tensor std_dev(const Tensor& self, const std::vector<int64_t>& dims, double correction, bool keepdim) {
  return variance(self, dims, correction, keepdim, true);
}

Tensor logsumexp(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor src = is_floating(self.dtype()) ? self : to(self, kDefaultFloat);
  ReducePlan plan = plan_reduction(src, dims, keepdim, "logsumexp");
  Tensor out = row_stat(RowStat::LogSumExp, plan, src.dtype(), src.device(), 0.0);
  if (needs_grad({src})) {
    // d lse / dx = softmax of x over the reduced dims: the matrix layout's softmax along
    // its columns, moved back. Built from view ops and softmax, so it is differentiable.
    ReducePlan layout = plan;
    layout.matrix = Tensor();
    SavedTensor saved_in(src);
    record_function("logsumexp", {src}, {out}, [=](const std::vector<Tensor>& g) {
      Tensor x = saved_in.unpack("logsumexp");
      Tensor matrix = reshape(permute(x, layout.perm), {layout.rows, layout.cols});
      Tensor probs = unplan_matrix(softmax(matrix, 1), layout);
      return std::vector<Tensor>{mul(probs, reshape(g[0], layout.keep_shape))};
    }, SecondOrder::Full);
  }
  return out;
}

Tensor norm(const Tensor& self, double p, const std::vector<int64_t>& dims, bool keepdim) {
  check_floating(self, "norm");
  ReducePlan plan = plan_reduction(self, dims, keepdim, "norm");
  Tensor out = row_stat(RowStat::Norm, plan, self.dtype(), self.device(), p);
  if (needs_grad({self})) {
    ReducePlan layout = plan;
    layout.matrix = Tensor();
    SavedTensor saved_in(self), saved_out(out);
    std::vector<int64_t> dims_copy = dims;
    record_function("norm", {self}, {out}, [=](const std::vector<Tensor>& g) {
      Tensor in = saved_in.unpack("norm");
      Tensor matrix = plan_reduction(in, dims_copy, keepdim, "norm").matrix;
      Tensor result = contiguous(reshape(saved_out.unpack("norm"), {layout.rows}));
      Tensor grad_out = contiguous(reshape(to(g[0], in.dtype()), {layout.rows}));
      Tensor grad = Tensor::empty({layout.rows, layout.cols}, in.dtype(), in.device());
      row_grad_kernel.get(in.device())(RowGrad::Norm, grad, matrix, result, grad_out, p);
      return std::vector<Tensor>{unplan_matrix(grad, layout)};
    });
  }
  return out;
}

}  // namespace bigmodel
