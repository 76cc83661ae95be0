// Front ends for comparisons, logical ops, where and masked_fill: promotion, broadcasting,
// bool-mask checks, in-place rules and gradient routing.
#include "core/ops/compare.h"

#include "core/autograd.h"
#include "core/ops/copy_kernels.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/ops/view.h"

namespace bigmodel {

BM_DEFINE_KERNEL(where_kernel);

namespace {

Tensor compare(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  return binary_op_nograd(op, a, b, result_type(a, b), name);
}
Tensor compare(BinaryOp op, const Tensor& a, const Scalar& b, const char* name) {
  return binary_op_nograd(op, a, scalar_tensor(b, b.default_dtype(), a.device()), result_type(a, b), name);
}

void check_mask(const Tensor& mask, const char* name, const char* what) {
  BM_CHECK_DTYPE(mask.dtype() == DType::Bool, name, "expected a bool ", what, ", got ", dtype_name(mask.dtype()));
}

// cond ? a : b in dtype r with broadcasting; no autograd.
Tensor where_raw(const Tensor& cond, const Tensor& a, const Tensor& b, DType r, const char* name) {
  BM_CHECK_DEVICE(cond.device() == a.device() && a.device() == b.device(), name,
                  "expected all tensors on one device, got ", cond.device().str(), ", ", a.device().str(),
                  " and ", b.device().str());
  Shape shape = broadcast_shapes(broadcast_shapes(cond.sizes(), a.sizes(), name), b.sizes(), name);
  Tensor out = Tensor::empty(shape, r, a.device());
  where_kernel.get(a.device())(out, expand(cond, shape), expand(to(a.detach(), r), shape),
                               expand(to(b.detach(), r), shape));
  return out;
}

Tensor where_impl(const Tensor& cond, const Tensor& a, const Tensor& b, DType r) {
  check_mask(cond, "where", "condition");
  Tensor out = where_raw(cond, a, b, r, "where");
  if (is_floating(r) && needs_grad({a, b})) {
    SavedTensor save_cond(cond);
    Shape sa = a.sizes(), sb = b.sizes();
    DType da = a.dtype(), db = b.dtype();
    bool ga_needed = a.requires_grad(), gb_needed = b.requires_grad();
    record_function("where", {a, b}, {out}, [=](const std::vector<Tensor>& g) {
      Tensor c = save_cond.unpack("where");
      Tensor ga = ga_needed ? to(sum_to(where(c, g[0], Scalar(0.0)), sa), da) : Tensor();
      Tensor gb = gb_needed ? to(sum_to(where(c, Scalar(0.0), g[0]), sb), db) : Tensor();
      return std::vector<Tensor>{ga, gb};
    }, SecondOrder::Full);
  }
  return out;
}

Tensor wrap(const Scalar& s, Device d) { return scalar_tensor(s, s.default_dtype(), d); }

// Gradients of masked_fill: zero at the mask for self; the masked sum for a tensor value.
std::vector<Tensor> masked_fill_grads(const Tensor& g, const Tensor& mask, const Shape& self_shape, DType self_dtype,
                                      bool value_needed, DType value_dtype) {
  Tensor gs = to(sum_to(where(mask, Scalar(0.0), g), self_shape), self_dtype);
  Tensor gv = value_needed ? to(sum(where(mask, g, Scalar(0.0))), value_dtype) : Tensor();
  return {gs, gv};
}

void check_value(const Tensor& value, const char* name) {
  BM_CHECK_VALUE(value.dim() == 0, name, "only supports a 0-dimensional value tensor, got one with shape ",
                 shape_str(value.sizes()));
}

Tensor masked_fill_impl(const Tensor& self, const Tensor& mask, const Tensor& value) {
  check_mask(mask, "masked_fill", "mask");
  Tensor out = where_raw(mask, value, self, self.dtype(), "masked_fill");
  if (is_floating(self.dtype()) && needs_grad({self, value})) {
    SavedTensor save_mask(mask);
    Shape ss = self.sizes();
    DType ds = self.dtype(), dv = value.dtype();
    bool value_needed = value.requires_grad();
    record_function("masked_fill", {self, value}, {out}, [=](const std::vector<Tensor>& g) {
      return masked_fill_grads(g[0], save_mask.unpack("masked_fill"), ss, ds, value_needed, dv);
    }, SecondOrder::Full);
  }
  return out;
}

Tensor& masked_fill_inplace(Tensor& self, const Tensor& mask, const Tensor& value) {
  check_mask(mask, "masked_fill_", "mask");
  Shape shape = broadcast_shapes(self.sizes(), mask.sizes(), "masked_fill_");
  BM_CHECK_SHAPE(shape == self.sizes(), "masked_fill_", "mask with shape ", shape_str(mask.sizes()),
                 " doesn't broadcast to the shape of self ", shape_str(self.sizes()));
  BM_CHECK_DEVICE(mask.device() == self.device() && value.device() == self.device(), "masked_fill_",
                  "expected all tensors on one device");
  const bool grad = is_floating(self.dtype()) && needs_grad({self, value});
  check_inplace(self, "masked_fill_", {value});
  where_kernel.get(self.device())(self, expand(mask, shape), expand(to(value.detach(), self.dtype()), shape), self);
  if (grad) {
    SavedTensor save_mask(mask);
    Shape ss = self.sizes();
    DType ds = self.dtype(), dv = value.dtype();
    bool value_needed = value.requires_grad();
    rebase_history(self, "masked_fill_", {self, value}, [=](const std::vector<Tensor>& g) {
      return masked_fill_grads(g[0], save_mask.unpack("masked_fill_"), ss, ds, value_needed, dv);
    });
  }
  return self;
}

Tensor logical(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  return binary_op_nograd(op, a, b, DType::Bool, name);  // converting to bool tests nonzero
}

}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Eq, a, b, "eq"); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Ne, a, b, "ne"); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Lt, a, b, "lt"); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Le, a, b, "le"); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Gt, a, b, "gt"); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Ge, a, b, "ge"); }
Tensor eq(const Tensor& a, const Scalar& b) { return compare(BinaryOp::Eq, a, b, "eq"); }
Tensor ne(const Tensor& a, const Scalar& b) { return compare(BinaryOp::Ne, a, b, "ne"); }
Tensor lt(const Tensor& a, const Scalar& b) { return compare(BinaryOp::Lt, a, b, "lt"); }
Tensor le(const Tensor& a, const Scalar& b) { return compare(BinaryOp::Le, a, b, "le"); }
Tensor gt(const Tensor& a, const Scalar& b) { return compare(BinaryOp::Gt, a, b, "gt"); }
Tensor ge(const Tensor& a, const Scalar& b) { return compare(BinaryOp::Ge, a, b, "ge"); }

Tensor logical_and(const Tensor& a, const Tensor& b) { return logical(BinaryOp::LogicalAnd, a, b, "logical_and"); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return logical(BinaryOp::LogicalOr, a, b, "logical_or"); }
Tensor logical_xor(const Tensor& a, const Tensor& b) { return logical(BinaryOp::LogicalXor, a, b, "logical_xor"); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  return where_impl(cond, a, b, result_type(a, b));
}
Tensor where(const Tensor& cond, const Tensor& a, const Scalar& b) {
  return where_impl(cond, a, wrap(b, a.device()), result_type(a, b));
}
Tensor where(const Tensor& cond, const Scalar& a, const Tensor& b) {
  return where_impl(cond, wrap(a, b.device()), b, result_type(b, a));
}
Tensor where(const Tensor& cond, const Scalar& a, const Scalar& b) {
  Tensor ta = wrap(a, cond.device()), tb = wrap(b, cond.device());
  return where_impl(cond, ta, tb, promote_types(ta.dtype(), tb.dtype()));
}

Tensor masked_fill(const Tensor& self, const Tensor& mask, const Scalar& value) {
  return masked_fill_impl(self, mask, scalar_tensor(value, self.dtype(), self.device()));
}
Tensor masked_fill(const Tensor& self, const Tensor& mask, const Tensor& value) {
  check_value(value, "masked_fill");
  return masked_fill_impl(self, mask, value);
}
Tensor& masked_fill_(Tensor& self, const Tensor& mask, const Scalar& value) {
  return masked_fill_inplace(self, mask, scalar_tensor(value, self.dtype(), self.device()));
}
Tensor& masked_fill_(Tensor& self, const Tensor& mask, const Tensor& value) {
  check_value(value, "masked_fill_");
  return masked_fill_inplace(self, mask, value);
}

}  // namespace bigmodel
