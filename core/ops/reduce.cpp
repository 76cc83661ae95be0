// Reduction front ends: dims handling, keepdim, dtypes and backward.
#include "core/ops/reduce.h"

#include "core/autograd.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce_kernels.h"
#include "core/ops/view.h"

namespace bigmodel {

BM_DEFINE_KERNEL(reduce_kernel);

ReducePlan plan_reduction(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim,
                          const char* op) {
  ReducePlan p;
  p.dims = wrap_dims(dims, self.dim(), op);
  std::vector<bool> reduced(self.dim(), false);
  for (int64_t d : p.dims) reduced[d] = true;
  std::vector<int64_t> perm;
  for (int64_t d = 0; d < self.dim(); ++d) {
    if (!reduced[d]) {
      perm.push_back(d);
      p.rows *= self.size(d);
      p.out_shape.push_back(self.size(d));
      p.keep_shape.push_back(self.size(d));
    } else {
      p.keep_shape.push_back(1);
      if (keepdim) p.out_shape.push_back(1);
    }
  }
  if (keepdim) p.out_shape = p.keep_shape;
  for (int64_t d : p.dims) {
    perm.push_back(d);
    p.cols *= self.size(d);
  }
  // A matrix view [rows, cols] of the input with the reduced dims last.
  Tensor moved = permute(self.detach(), perm);
  p.matrix = reshape(contiguous(moved), {p.rows, p.cols});
  return p;
}

Tensor reduce_raw(ReduceOp op, const ReducePlan& plan, DType out_dtype, Device device) {
  Tensor out = Tensor::empty({plan.rows}, out_dtype, device);
  reduce_kernel.get(device)(op, out, plan.matrix);
  return reshape(out, plan.out_shape);
}

Tensor sum(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim, std::optional<DType> dtype) {
  DType out_dtype = dtype ? *dtype : (is_floating(self.dtype()) ? self.dtype() : DType::Int64);
  Tensor src = dtype && *dtype != self.dtype() ? to(self.detach(), *dtype) : self.detach();
  ReducePlan plan = plan_reduction(src, dims, keepdim, "sum");
  Tensor out = reduce_raw(ReduceOp::Sum, plan, is_floating(out_dtype) ? out_dtype : DType::Int64, self.device());
  if (needs_grad({self})) {
    Shape in = self.sizes(), keep = plan.keep_shape;
    DType in_dtype = self.dtype();
    record_function("sum", {self}, {out}, [in, keep, in_dtype](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{to(expand(reshape(g[0], keep), in), in_dtype)};
    });
  }
  return out;
}

Tensor mean(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim) {
  BM_CHECK_DTYPE(is_floating(self.dtype()), "mean", "expects a floating point tensor, got ",
                 dtype_name(self.dtype()), "; convert with .float() first");
  std::vector<int64_t> wrapped = wrap_dims(dims, self.dim(), "mean");
  int64_t count = 1;
  for (int64_t d : wrapped) count *= self.size(d);
  return div(sum(self, dims, keepdim), Scalar(static_cast<double>(count)));
}

}  // namespace bigmodel
