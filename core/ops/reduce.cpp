// Reduction front ends: dims handling, keepdim, dtypes and backward for sum, mean, prod,
// amax/amin, max/min, argmax/argmin and all/any (var/std/logsumexp/norm: reduce_stats.cpp).
#include "core/ops/reduce.h"

#include "core/autograd.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce_kernels.h"
#include "core/ops/view.h"
#include "core/shape.h"

namespace bigmodel {

BM_DEFINE_KERNEL(reduce_kernel);
BM_DEFINE_KERNEL(arg_reduce_kernel);
BM_DEFINE_KERNEL(row_stat_kernel);
BM_DEFINE_KERNEL(row_grad_kernel);
BM_DEFINE_KERNEL(index_grad_kernel);

namespace {

// The plan's shapes and dim order, without its matrix.
ReducePlan plan_layout(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim, const char* op) {
  ReducePlan p;
  p.dims = wrap_dims(dims, self.dim(), op);
  p.in_shape = self.sizes();
  std::vector<bool> reduced(self.dim(), false);
  for (int64_t d : p.dims) reduced[d] = true;
  for (int64_t d = 0; d < self.dim(); ++d) {
    if (!reduced[d]) {
      p.perm.push_back(d);
      p.rows *= self.size(d);
      p.out_shape.push_back(self.size(d));
      p.keep_shape.push_back(self.size(d));
    } else {
      p.keep_shape.push_back(1);
    }
  }
  if (keepdim) p.out_shape = p.keep_shape;
  for (int64_t d : p.dims) {
    p.perm.push_back(d);
    p.cols *= self.size(d);
  }
  return p;
}

// A float sum over leading dims of a contiguous CPU tensor (bias gradients: sum_to of a
// [N, F] gradient to [F]) reads the input in place as a column-major [rows, cols] view
// (strides {1, rows}); the CPU reduce kernel sums its columns. Everywhere else the kernel
// gets the contiguous [rows, cols] matrix its contract promises (the CUDA kernel included).
bool column_sum_view_ok(const Tensor& self, const ReducePlan& p) {
  if (!self.device().is_cpu() || !is_floating(self.dtype()) || !self.is_contiguous()) return false;
  const int64_t k = static_cast<int64_t>(p.dims.size());
  if (k == 0 || k == self.dim() || p.rows < 2 || p.cols < 2) return false;
  for (int64_t i = 0; i < k; ++i)
    if (p.dims[i] != i) return false;  // reduced dims are exactly the leading ones
  return true;
}

// Reduced dims = some leading dims plus some trailing ones around kept middle dims (a conv
// bias gradient: [N, C, H, W] over {0, 2, 3}), float32/64 on the CPU, contiguous: summed in two
// copy-free passes (trailing dims as plain rows, then the leading dims as columns) instead of
// a transposing copy. The intermediate is rounded to the dtype once, so half types stay out.
bool split_leading_trailing(const Tensor& self, const ReducePlan& p, std::vector<int64_t>& lead,
                            std::vector<int64_t>& trail) {
  if (!self.device().is_cpu() || !self.is_contiguous() || p.rows < 2) return false;
  if (self.dtype() != DType::Float32 && self.dtype() != DType::Float64) return false;
  const int64_t n = self.dim();
  size_t i = 0;
  while (i < p.dims.size() && p.dims[i] == static_cast<int64_t>(i)) lead.push_back(p.dims[i++]);
  for (; i < p.dims.size(); ++i) trail.push_back(p.dims[i]);
  for (size_t j = 0; j < trail.size(); ++j)
    if (trail[j] != n - static_cast<int64_t>(trail.size()) + static_cast<int64_t>(j)) return false;
  return !lead.empty() && !trail.empty();
}

}  // namespace

ReducePlan plan_reduction(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim,
                          const char* op) {
  ReducePlan p = plan_layout(self, dims, keepdim, op);
  // A matrix view [rows, cols] of the input with the reduced dims last. The common case
  // (reduced dims already last, input contiguous) is a plain view: no permute, no copy.
  bool identity = true;
  for (size_t i = 0; i < p.perm.size(); ++i) identity = identity && p.perm[i] == static_cast<int64_t>(i);
  if (identity && self.is_contiguous()) {
    p.matrix = Tensor::make_view(self, {p.rows, p.cols}, {p.cols, 1}, self.offset());
    return p;
  }
  Tensor moved = permute(self.detach(), p.perm);
  p.matrix = reshape(contiguous(moved), {p.rows, p.cols});
  return p;
}

Tensor unplan_matrix(const Tensor& matrix, const ReducePlan& plan) {
  Shape moved;
  std::vector<int64_t> inverse(plan.perm.size());
  for (size_t i = 0; i < plan.perm.size(); ++i) {
    moved.push_back(plan.in_shape[plan.perm[i]]);
    inverse[plan.perm[i]] = static_cast<int64_t>(i);
  }
  return permute(reshape(matrix, moved), inverse);
}

Tensor reduce_raw(ReduceOp op, const ReducePlan& plan, DType out_dtype, Device device) {
  // The result is allocated in its final shape (not a view), and the kernel sees it flat.
  Tensor out = Tensor::empty(plan.out_shape, out_dtype, device);
  reduce_kernel.get(device)(op, Tensor::make_view(out, {plan.rows}, {1}, 0), plan.matrix);
  return out;
}

namespace {

// The plan without its matrix: what a backward closure keeps (no copy of the input).
ReducePlan layout_of(const ReducePlan& plan) {
  ReducePlan l = plan;
  l.matrix = Tensor();
  return l;
}

// grad (shaped like the forward output) as a contiguous [rows] vector of dtype.
Tensor grad_rows(const Tensor& grad, const ReducePlan& plan, DType dtype) {
  return contiguous(reshape(to(grad, dtype), {plan.rows}));
}

// Extreme values need at least one element per output (PyTorch raises the same way).
void check_nonempty(const ReducePlan& plan, bool dims_given, const char* op) {
  if (plan.cols > 0 || plan.rows == 0) return;
  if (!dims_given)
    throw Error(str_cat("[", op, "] the ", op, " of an empty tensor of shape ", shape_str(plan.in_shape),
                        " is undefined; pass dim= to reduce over a non-empty dim"));
  throw IndexError(str_cat("[", op, "] expected reduction dims of non-zero size, got input of shape ",
                           shape_str(plan.in_shape)));
}

// amax/amin and the full max()/min(): values, with ties sharing the gradient.
Tensor extremum(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim, bool is_max,
                const char* op, bool dims_given) {
  ReducePlan plan = plan_reduction(self, dims, keepdim, op);
  check_nonempty(plan, dims_given, op);
  Tensor out = reduce_raw(is_max ? ReduceOp::Max : ReduceOp::Min, plan, self.dtype(), self.device());
  if (needs_grad({self})) {
    ReducePlan layout = layout_of(plan);
    SavedTensor saved_in(self), saved_out(out);
    std::vector<int64_t> dims_copy = dims;
    record_function(op, {self}, {out}, [=](const std::vector<Tensor>& g) {
      Tensor in = saved_in.unpack(op);
      Tensor matrix = plan_reduction(in, dims_copy, keepdim, op).matrix;
      Tensor result = contiguous(reshape(saved_out.unpack(op), {layout.rows}));
      Tensor grad = Tensor::empty({layout.rows, layout.cols}, in.dtype(), in.device());
      row_grad_kernel.get(in.device())(RowGrad::Extremum, grad, matrix, result,
                                       grad_rows(g[0], layout, in.dtype()), 0.0);
      return std::vector<Tensor>{unplan_matrix(grad, layout)};
    }, SecondOrder::ConstantGrad);
  }
  return out;
}

std::pair<Tensor, Tensor> extremum_dim(const Tensor& self, int64_t dim, bool keepdim, bool is_max, const char* op) {
  ReducePlan plan = plan_reduction(self, {dim}, keepdim, op);
  check_nonempty(plan, true, op);
  Tensor values = Tensor::empty({plan.rows}, self.dtype(), self.device());
  Tensor indices = Tensor::empty({plan.rows}, DType::Int64, self.device());
  if (plan.rows > 0) arg_reduce_kernel.get(self.device())(is_max, values, indices, plan.matrix);
  values = reshape(values, plan.out_shape);
  indices = reshape(indices, plan.out_shape);
  if (needs_grad({self})) {
    ReducePlan layout = layout_of(plan);
    SavedTensor saved_idx(indices);
    DType dtype = self.dtype();
    Device device = self.device();
    record_function(op, {self}, {values}, [=](const std::vector<Tensor>& g) {
      Tensor idx = contiguous(reshape(saved_idx.unpack(op), {layout.rows}));
      Tensor grad = Tensor::empty({layout.rows, layout.cols}, dtype, device);
      index_grad_kernel.get(device)(grad, idx, grad_rows(g[0], layout, dtype));
      return std::vector<Tensor>{unplan_matrix(grad, layout)};
    }, SecondOrder::ConstantGrad);
  }
  return {values, indices};
}

Tensor arg_extremum(const Tensor& self, std::optional<int64_t> dim, bool keepdim, bool is_max, const char* op) {
  // Without dim the input is read flat in row-major order: reducing every dim in order.
  ReducePlan plan = plan_reduction(self, dim ? std::vector<int64_t>{*dim} : std::vector<int64_t>{}, keepdim, op);
  check_nonempty(plan, dim.has_value(), op);
  Tensor indices = Tensor::empty({plan.rows}, DType::Int64, self.device());
  if (plan.rows > 0) arg_reduce_kernel.get(self.device())(is_max, Tensor(), indices, plan.matrix);
  return reshape(indices, plan.out_shape);
}

}  // namespace

Tensor sum(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim, std::optional<DType> dtype) {
  DType out_dtype = dtype ? *dtype : (is_floating(self.dtype()) ? self.dtype() : DType::Int64);
  Tensor src = dtype && *dtype != self.dtype() ? to(self.detach(), *dtype) : self;  // plan_reduction never records
  ReducePlan plan = plan_layout(src, dims, keepdim, "sum");
  std::vector<int64_t> lead, trail;
  Tensor out;
  if (split_leading_trailing(src, plan, lead, trail)) {
    NoGradGuard no_grad;  // two copy-free passes: trailing dims as rows, then leading as columns
    out = reshape(sum(sum(src.detach(), trail, true), lead, true), plan.out_shape);
  } else {
    if (column_sum_view_ok(src, plan))
      plan.matrix = Tensor::make_view(src, {plan.rows, plan.cols}, {1, plan.rows}, src.offset());
    else
      plan = plan_reduction(src, dims, keepdim, "sum");
    out = reduce_raw(ReduceOp::Sum, plan, is_floating(out_dtype) ? out_dtype : DType::Int64, self.device());
  }
  if (needs_grad({self})) {
    Shape in = self.sizes(), keep = plan.keep_shape;
    DType in_dtype = self.dtype();
    record_function("sum", {self}, {out}, [in, keep, in_dtype](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{to(expand(reshape(g[0], keep), in), in_dtype)};
    }, SecondOrder::Full);
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

Tensor prod(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim, std::optional<DType> dtype) {
  Tensor src = dtype && *dtype != self.dtype() ? to(self, *dtype) : self;
  DType out_dtype = is_floating(src.dtype()) ? src.dtype() : DType::Int64;
  ReducePlan plan = plan_reduction(src, dims, keepdim, "prod");
  Tensor out = reduce_raw(ReduceOp::Prod, plan, out_dtype, src.device());
  if (needs_grad({src})) {
    ReducePlan layout = layout_of(plan);
    SavedTensor saved_in(src);
    std::vector<int64_t> dims_copy = dims;
    record_function("prod", {src}, {out}, [=](const std::vector<Tensor>& g) {
      Tensor in = saved_in.unpack("prod");
      Tensor matrix = plan_reduction(in, dims_copy, keepdim, "prod").matrix;
      Tensor grad = Tensor::empty({layout.rows, layout.cols}, in.dtype(), in.device());
      row_grad_kernel.get(in.device())(RowGrad::Prod, grad, matrix, Tensor(),
                                       grad_rows(g[0], layout, in.dtype()), 0.0);
      return std::vector<Tensor>{unplan_matrix(grad, layout)};
    });
  }
  return out;
}

Tensor amax(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum(self, dims, keepdim, true, "amax", !dims.empty());
}
Tensor amin(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum(self, dims, keepdim, false, "amin", !dims.empty());
}
Tensor max(const Tensor& self) { return extremum(self, {}, false, true, "max", false); }
Tensor min(const Tensor& self) { return extremum(self, {}, false, false, "min", false); }
std::pair<Tensor, Tensor> max(const Tensor& self, int64_t dim, bool keepdim) {
  return extremum_dim(self, dim, keepdim, true, "max");
}
std::pair<Tensor, Tensor> min(const Tensor& self, int64_t dim, bool keepdim) {
  return extremum_dim(self, dim, keepdim, false, "min");
}
Tensor argmax(const Tensor& self, std::optional<int64_t> dim, bool keepdim) {
  return arg_extremum(self, dim, keepdim, true, "argmax");
}
Tensor argmin(const Tensor& self, std::optional<int64_t> dim, bool keepdim) {
  return arg_extremum(self, dim, keepdim, false, "argmin");
}

Tensor all(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim) {
  ReducePlan plan = plan_reduction(self, dims, keepdim, "all");
  return reduce_raw(ReduceOp::All, plan, DType::Bool, self.device());
}
Tensor any(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim) {
  ReducePlan plan = plan_reduction(self, dims, keepdim, "any");
  return reduce_raw(ReduceOp::Any, plan, DType::Bool, self.device());
}

}  // namespace bigmodel
