// Binary arithmetic front ends: promotion, broadcasting, in-place checks and backward.
#include "core/ops/elementwise.h"

#include "core/autograd.h"
#include "core/ops/compare.h"
#include "core/ops/copy_kernels.h"
#include "core/ops/creation.h"
#include "core/ops/reduce.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"

namespace bigmodel {

BM_DEFINE_KERNEL(binary_kernel);

namespace {

// Priority of a participant in type promotion: dimensioned tensors, then 0-d tensors,
// then Python scalars; a lower-priority participant only matters if its category is higher.
DType promote_with_priority(DType dim_t, bool has_dim, DType zero_t, bool has_zero, DType wrapped,
                            bool has_wrapped) {
  bool any = false;
  DType r = DType::Bool;
  auto consider = [&](bool has, DType t, bool as_default) {
    if (!has) return;
    if (!any) {
      r = t;
      any = true;
      return;
    }
    if (dtype_category(t) > dtype_category(r)) {
      r = as_default ? (dtype_category(t) == 2 ? kDefaultFloat : kDefaultInt) : t;
    }
  };
  if (has_dim) consider(true, dim_t, false);
  if (has_zero) {
    if (!any) consider(true, zero_t, false);
    else if (dtype_category(zero_t) > dtype_category(r)) r = zero_t;
  }
  if (has_wrapped) consider(true, wrapped, true);
  return r;
}

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
    case BinaryOp::Div: return "div";
    case BinaryOp::Pow: return "pow";
    case BinaryOp::Maximum: return "maximum";
    case BinaryOp::Minimum: return "minimum";
    case BinaryOp::Remainder: return "remainder";
    case BinaryOp::Fmod: return "fmod";
    case BinaryOp::FloorDivide: return "floor_divide";
    case BinaryOp::BitwiseAnd: return "bitwise_and";
    case BinaryOp::BitwiseOr: return "bitwise_or";
    case BinaryOp::BitwiseXor: return "bitwise_xor";
    default: return "binary";
  }
}

Tensor binary_raw(BinaryOp op, const Tensor& a, const Tensor& b, DType compute, const char* name) {
  return binary_op_nograd(op, a, b, compute, name);
}

Tensor arith(BinaryOp op, const Tensor& a, const Tensor& b, DType compute) {
  const char* name = binary_name(op);
  Tensor out = binary_raw(op, a, b, compute, name);
  if (!needs_grad({a, b})) return out;
  Shape sa = a.sizes(), sb = b.sizes();
  DType da = a.dtype(), db = b.dtype();
  SavedTensor save_a, save_b;
  if (op == BinaryOp::Mul || op == BinaryOp::Div) {
    if (b.requires_grad() || op == BinaryOp::Mul) save_a = SavedTensor(a);
    save_b = SavedTensor(b);
  }
  auto grad_for = [](const Tensor& g, const Shape& s, DType d) {
    return is_floating(d) ? to(sum_to(g, s), d) : Tensor();
  };
  record_function(name, {a, b}, {out}, [=](const std::vector<Tensor>& grads) {
    const Tensor& g = grads[0];
    Tensor ga, gb;
    switch (op) {
      case BinaryOp::Add: ga = g; gb = g; break;
      case BinaryOp::Sub: ga = g; gb = mul(g, Scalar(-1.0)); break;
      case BinaryOp::Mul:
        ga = mul(g, save_b.unpack(name));
        gb = save_a.defined() ? mul(g, save_a.unpack(name)) : Tensor();
        break;
      case BinaryOp::Div: {
        Tensor bv = save_b.unpack(name);
        ga = div(g, bv);
        if (save_a.defined()) gb = mul(div(mul(g, save_a.unpack(name)), mul(bv, bv)), Scalar(-1.0));
        break;
      }
      default: break;
    }
    return std::vector<Tensor>{ga.defined() ? grad_for(ga, sa, da) : Tensor(),
                               gb.defined() ? grad_for(gb, sb, db) : Tensor()};
  }, SecondOrder::Full);
  return out;
}

// A Python number as a 0-d tensor, made directly in the dtype the op will compute in.
Tensor wrap_scalar(const Tensor& like, const Scalar& s) {
  return scalar_tensor(s, result_type(like, s), like.device());
}

DType arith_dtype(BinaryOp op, DType promoted, const char* name) {
  if (op == BinaryOp::Div && !is_floating(promoted)) return kDefaultFloat;
  BM_CHECK_DTYPE(!(promoted == DType::Bool && op == BinaryOp::Sub), name,
                 "subtraction of bool tensors is not supported; use logical_xor");
  return promoted;
}

void inplace_arith(BinaryOp op, Tensor& self, const Tensor& other, const char* name) {
  DType r = arith_dtype(op, result_type(self, other), name);
  BM_CHECK_DTYPE(dtype_category(r) <= dtype_category(self.dtype()), name, "result type ", dtype_name(r), " can't be cast to the desired output type ",
                 dtype_name(self.dtype()));
  Shape shape = broadcast_shapes(self.sizes(), other.sizes(), name);
  BM_CHECK_SHAPE(shape == self.sizes(), name, "output with shape ", shape_str(self.sizes()),
                 " doesn't match the broadcast shape ", shape_str(shape));
  bool grad = needs_grad({self, other});
  const bool keep_self = grad && (op == BinaryOp::Mul || op == BinaryOp::Div) && other.requires_grad();
  Tensor self_before = keep_self ? clone(self.detach()) : Tensor();
  Tensor result = binary_raw(op, self, other, r, name);
  check_inplace(self, name, {other});
  copy_kernel.get(self.device())(self, result);
  if (grad) {
    Shape so = other.sizes();
    DType dself = self.dtype(), dother = other.dtype();
    SavedTensor save_other(other);
    SavedTensor save_self_before(self_before);
    rebase_history(self, name, {self, other}, [=](const std::vector<Tensor>& g) {
      Tensor ga, gb;
      switch (op) {
        case BinaryOp::Add: ga = g[0]; gb = g[0]; break;
        case BinaryOp::Sub: ga = g[0]; gb = mul(g[0], Scalar(-1.0)); break;
        case BinaryOp::Mul:
          ga = mul(g[0], save_other.unpack(name));
          if (save_self_before.defined()) gb = mul(g[0], save_self_before.unpack(name));
          break;
        default: {  // Div: self_new = self / other
          Tensor o = save_other.unpack(name);
          ga = div(g[0], o);
          if (save_self_before.defined())
            gb = mul(div(mul(g[0], save_self_before.unpack(name)), mul(o, o)), Scalar(-1.0));
          break;
        }
      }
      return std::vector<Tensor>{to(ga, dself),
                                 gb.defined() && is_floating(dother) ? to(sum_to(gb, so), dother) : Tensor()};
    });
  }
}

// In-place form of any binary op: checks that the result type can be stored in self and
// that broadcasting keeps self's shape. With autograd, the op runs on a clone of self (so
// the values its backward saves stay valid) and self takes the result's history.
template <typename F>
Tensor& inplace_generic(Tensor& self, const Tensor& other, DType r, const char* name, F compute) {
  BM_CHECK_DTYPE(dtype_category(r) <= dtype_category(self.dtype()), name, "result type ", dtype_name(r),
                 " can't be cast to the desired output type ", dtype_name(self.dtype()));
  Shape shape = broadcast_shapes(self.sizes(), other.sizes(), name);
  BM_CHECK_SHAPE(shape == self.sizes(), name, "output with shape ", shape_str(self.sizes()),
                 " doesn't match the broadcast shape ", shape_str(shape));
  if (!needs_grad({self, other})) {
    Tensor result = compute(self.detach(), other.detach());
    check_inplace(self, name, {other});
    copy_kernel.get(self.device())(self, result);
    return self;
  }
  Tensor result = compute(clone(self), other);
  check_inplace(self, name, {other});
  copy_kernel.get(self.device())(self, result);
  DType rdt = result.dtype();
  rebase_history(self, name, {result}, [rdt](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{to(g[0], rdt)};
  });
  return self;
}

Tensor not_differentiable(BinaryOp op, const Tensor& a, const Tensor& b, DType compute) {
  return binary_raw(op, a, b, compute, binary_name(op));
}

DType bitwise_dtype(DType r, const char* name) {
  BM_CHECK_DTYPE(!is_floating(r), name, "only integer and bool tensors are supported, got ", dtype_name(r));
  return r;
}

Tensor zero_where_scalar_zero(const Tensor& cond, const Tensor& v) { return where(cond, Scalar(0.0), v); }

// Records the backward of pow/maximum/minimum/remainder/fmod. `a`/`b` may be 0-d wrapped
// scalars that do not require grad; out is the forward result.
void record_binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  const char* name = binary_name(op);
  Shape sa = a.sizes(), sb = b.sizes();
  DType da = a.dtype(), db = b.dtype();
  bool ga_needed = a.requires_grad(), gb_needed = b.requires_grad();
  SavedTensor save_a(a), save_b(b);
  SavedTensor save_out(op == BinaryOp::Pow && gb_needed ? out : Tensor(), /*is_output=*/true);
  record_function(name, {a, b}, {out}, [=](const std::vector<Tensor>& grads) {
    const Tensor& g = grads[0];
    Tensor av = save_a.unpack(name), bv = save_b.unpack(name);
    Tensor ga, gb;
    switch (op) {
      case BinaryOp::Pow:
        // d/da = b * a^(b-1), zero where b == 0 (so 0^0 gives 0, not nan);
        // d/db = a^b * log(a), zero where a == 0 and b >= 0.
        if (ga_needed) ga = mul(g, zero_where_scalar_zero(eq(bv, Scalar(0)), mul(bv, pow(av, sub(bv, Scalar(1))))));
        if (gb_needed) {
          Tensor mask = logical_and(eq(av, Scalar(0)), ge(bv, Scalar(0)));
          gb = mul(g, zero_where_scalar_zero(mask, mul(save_out.unpack(name), log(av))));
        }
        break;
      case BinaryOp::Maximum:
      case BinaryOp::Minimum: {
        // Weight 1 to the selected input, 0.5 to each at ties.
        Tensor wins = op == BinaryOp::Maximum ? gt(av, bv) : lt(av, bv);
        Tensor ties = eq(av, bv);
        Tensor half_g = mul(g, Scalar(0.5));
        if (ga_needed) ga = where(wins, g, where(ties, half_g, Scalar(0.0)));
        if (gb_needed) {
          Tensor loses = op == BinaryOp::Maximum ? lt(av, bv) : gt(av, bv);
          gb = where(loses, g, where(ties, half_g, Scalar(0.0)));
        }
        break;
      }
      case BinaryOp::Remainder:
        if (ga_needed) ga = g;
        if (gb_needed) gb = neg(mul(g, floor(div(av, bv))));
        break;
      case BinaryOp::Fmod:
        if (ga_needed) ga = g;
        if (gb_needed) gb = neg(mul(g, trunc(div(av, bv))));
        break;
      default: break;
    }
    auto fit = [](const Tensor& t, const Shape& s, DType d) {
      return t.defined() && is_floating(d) ? to(sum_to(t, s), d) : Tensor();
    };
    return std::vector<Tensor>{fit(ga, sa, da), fit(gb, sb, db)};
  }, SecondOrder::Full);
}

// Forward of a differentiable binary op in dtype r, with its backward when needed.
Tensor binary_with_grad(BinaryOp op, const Tensor& a, const Tensor& b, DType r) {
  Tensor out = binary_raw(op, a, b, r, binary_name(op));
  if (is_floating(r) && needs_grad({a, b})) record_binary(op, a, b, out);
  return out;
}

DType pow_dtype(DType r) {
  BM_CHECK_DTYPE(r != DType::Bool, "pow", "not supported for bool tensors");
  return r;
}

DType numeric_dtype(DType r, const char* name) {
  BM_CHECK_DTYPE(r != DType::Bool, name, "not supported for bool tensors");
  return r;
}

void check_int_pow_exponent(DType base, const Scalar& e) {
  BM_CHECK_RUNTIME(is_floating(base) || e.is_floating() || e.to_int() >= 0, "pow",
                   "integers to negative integer powers are not allowed");
}

}  // namespace

Tensor binary_op_nograd(BinaryOp op, const Tensor& a, const Tensor& b, DType compute, const char* name) {
  BM_CHECK_DEVICE(a.device() == b.device(), name, "expected both tensors on one device, got ",
                  a.device().str(), " and ", b.device().str());
  Shape shape = broadcast_shapes(a.sizes(), b.sizes(), name);
  Tensor out = Tensor::empty(shape, binary_returns_bool(op) ? DType::Bool : compute, a.device());
  // Operands as the kernel wants them; no history (the caller records one node), and no
  // allocation when they already have the compute dtype and the output's shape.
  NoGradGuard no_grad;
  Tensor ea = expand(to(a, compute), shape);
  Tensor eb = expand(to(b, compute), shape);
  binary_kernel.get(a.device())(op, out, ea, eb);
  return out;
}

DType result_type(const Tensor& a, const Tensor& b) {
  bool da = a.dim() > 0, db = b.dim() > 0;
  if (da == db) return promote_types(a.dtype(), b.dtype());
  const Tensor& dimmed = da ? a : b;
  const Tensor& zero = da ? b : a;
  return promote_with_priority(dimmed.dtype(), true, zero.dtype(), true, DType::Bool, false);
}

DType result_type(const Tensor& a, const Scalar& b) {
  if (a.dim() > 0) return promote_with_priority(a.dtype(), true, DType::Bool, false, b.default_dtype(), true);
  return promote_with_priority(DType::Bool, false, a.dtype(), true, b.default_dtype(), true);
}

Tensor add(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  if (alpha.to<double>() != 1.0) return add(a, mul(b, alpha));
  return arith(BinaryOp::Add, a, b, arith_dtype(BinaryOp::Add, result_type(a, b), "add"));
}
Tensor sub(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  if (alpha.to<double>() != 1.0) return sub(a, mul(b, alpha));
  return arith(BinaryOp::Sub, a, b, arith_dtype(BinaryOp::Sub, result_type(a, b), "sub"));
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return arith(BinaryOp::Mul, a, b, arith_dtype(BinaryOp::Mul, result_type(a, b), "mul"));
}
Tensor div(const Tensor& a, const Tensor& b) {
  return arith(BinaryOp::Div, a, b, arith_dtype(BinaryOp::Div, result_type(a, b), "div"));
}

Tensor add(const Tensor& a, const Scalar& b) {
  return arith(BinaryOp::Add, a, wrap_scalar(a, b), arith_dtype(BinaryOp::Add, result_type(a, b), "add"));
}
Tensor sub(const Tensor& a, const Scalar& b) {
  return arith(BinaryOp::Sub, a, wrap_scalar(a, b), arith_dtype(BinaryOp::Sub, result_type(a, b), "sub"));
}
Tensor rsub(const Tensor& a, const Scalar& b) {
  return arith(BinaryOp::Sub, wrap_scalar(a, b), a, arith_dtype(BinaryOp::Sub, result_type(a, b), "sub"));
}
Tensor mul(const Tensor& a, const Scalar& b) {
  return arith(BinaryOp::Mul, a, wrap_scalar(a, b), arith_dtype(BinaryOp::Mul, result_type(a, b), "mul"));
}
Tensor div(const Tensor& a, const Scalar& b) {
  return arith(BinaryOp::Div, a, wrap_scalar(a, b), arith_dtype(BinaryOp::Div, result_type(a, b), "div"));
}
Tensor rdiv(const Tensor& a, const Scalar& b) {
  return arith(BinaryOp::Div, wrap_scalar(a, b), a, arith_dtype(BinaryOp::Div, result_type(a, b), "div"));
}

Tensor& add_(Tensor& self, const Tensor& other, const Scalar& alpha) {
  if (alpha.to<double>() != 1.0) return add_(self, mul(other, alpha));
  inplace_arith(BinaryOp::Add, self, other, "add_");
  return self;
}
Tensor& sub_(Tensor& self, const Tensor& other, const Scalar& alpha) {
  if (alpha.to<double>() != 1.0) return sub_(self, mul(other, alpha));
  inplace_arith(BinaryOp::Sub, self, other, "sub_");
  return self;
}
Tensor& mul_(Tensor& self, const Tensor& other) { inplace_arith(BinaryOp::Mul, self, other, "mul_");
  return self; }
Tensor& div_(Tensor& self, const Tensor& other) { inplace_arith(BinaryOp::Div, self, other, "div_");
  return self; }
Tensor& add_(Tensor& self, const Scalar& other) { return add_(self, wrap_scalar(self, other)); }
Tensor& sub_(Tensor& self, const Scalar& other) { return sub_(self, wrap_scalar(self, other)); }
Tensor& mul_(Tensor& self, const Scalar& other) { return mul_(self, wrap_scalar(self, other)); }
Tensor& div_(Tensor& self, const Scalar& other) { return div_(self, wrap_scalar(self, other)); }

Tensor pow(const Tensor& a, const Tensor& b) {
  return binary_with_grad(BinaryOp::Pow, a, b, pow_dtype(result_type(a, b)));
}
Tensor pow(const Tensor& a, const Scalar& b) {
  DType r = pow_dtype(result_type(a, b));
  check_int_pow_exponent(r, b);
  return binary_with_grad(BinaryOp::Pow, a, wrap_scalar(a, b), r);
}
Tensor pow(const Scalar& a, const Tensor& b) {
  return binary_with_grad(BinaryOp::Pow, wrap_scalar(b, a), b, pow_dtype(result_type(b, a)));
}
Tensor& pow_(Tensor& self, const Tensor& other) {
  return inplace_generic(self, other, pow_dtype(result_type(self, other)), "pow_",
                         [](const Tensor& s, const Tensor& o) { return pow(s, o); });
}
Tensor& pow_(Tensor& self, const Scalar& other) {
  DType r = pow_dtype(result_type(self, other));
  check_int_pow_exponent(r, other);
  return inplace_generic(self, wrap_scalar(self, other), r, "pow_",
                         [](const Tensor& s, const Tensor& o) { return pow(s, o); });
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  return binary_with_grad(BinaryOp::Maximum, a, b, result_type(a, b));
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return binary_with_grad(BinaryOp::Minimum, a, b, result_type(a, b));
}

Tensor remainder(const Tensor& a, const Tensor& b) {
  return binary_with_grad(BinaryOp::Remainder, a, b, numeric_dtype(result_type(a, b), "remainder"));
}
Tensor remainder(const Tensor& a, const Scalar& b) {
  return binary_with_grad(BinaryOp::Remainder, a, wrap_scalar(a, b), numeric_dtype(result_type(a, b), "remainder"));
}
Tensor remainder(const Scalar& a, const Tensor& b) {
  return binary_with_grad(BinaryOp::Remainder, wrap_scalar(b, a), b, numeric_dtype(result_type(b, a), "remainder"));
}
Tensor fmod(const Tensor& a, const Tensor& b) {
  return binary_with_grad(BinaryOp::Fmod, a, b, numeric_dtype(result_type(a, b), "fmod"));
}
Tensor fmod(const Tensor& a, const Scalar& b) {
  return binary_with_grad(BinaryOp::Fmod, a, wrap_scalar(a, b), numeric_dtype(result_type(a, b), "fmod"));
}
Tensor floor_divide(const Tensor& a, const Tensor& b) {
  return not_differentiable(BinaryOp::FloorDivide, a, b, numeric_dtype(result_type(a, b), "floor_divide"));
}
Tensor floor_divide(const Tensor& a, const Scalar& b) {
  return not_differentiable(BinaryOp::FloorDivide, a, wrap_scalar(a, b),
                            numeric_dtype(result_type(a, b), "floor_divide"));
}
Tensor& remainder_(Tensor& self, const Tensor& other) {
  return inplace_generic(self, other, numeric_dtype(result_type(self, other), "remainder_"), "remainder_",
                         [](const Tensor& s, const Tensor& o) { return remainder(s, o); });
}
Tensor& remainder_(Tensor& self, const Scalar& other) { return remainder_(self, wrap_scalar(self, other)); }

Tensor lerp(const Tensor& start, const Tensor& end, const Scalar& weight) {
  BM_CHECK_DTYPE(start.dtype() == end.dtype() && is_floating(start.dtype()), "lerp",
                 "expected start and end of one floating dtype, got ", dtype_name(start.dtype()), " and ",
                 dtype_name(end.dtype()));
  return add(start, mul(sub(end, start), weight));
}
Tensor lerp(const Tensor& start, const Tensor& end, const Tensor& weight) {
  BM_CHECK_DTYPE(start.dtype() == end.dtype() && start.dtype() == weight.dtype() && is_floating(start.dtype()),
                 "lerp", "expected start, end and weight of one floating dtype, got ", dtype_name(start.dtype()),
                 ", ", dtype_name(end.dtype()), " and ", dtype_name(weight.dtype()));
  return add(start, mul(weight, sub(end, start)));
}

#define BM_BITWISE(fname, OP)                                                                         \
  Tensor fname(const Tensor& a, const Tensor& b) {                                                    \
    return not_differentiable(OP, a, b, bitwise_dtype(result_type(a, b), #fname));                   \
  }                                                                                                   \
  Tensor fname(const Tensor& a, const Scalar& b) {                                                    \
    return not_differentiable(OP, a, wrap_scalar(a, b), bitwise_dtype(result_type(a, b), #fname));   \
  }                                                                                                   \
  Tensor& fname##_(Tensor& self, const Tensor& other) {                                               \
    return inplace_generic(self, other, bitwise_dtype(result_type(self, other), #fname "_"), #fname "_", \
                           [](const Tensor& s, const Tensor& o) { return fname(s, o); });             \
  }                                                                                                   \
  Tensor& fname##_(Tensor& self, const Scalar& other) { return fname##_(self, wrap_scalar(self, other)); }
BM_BITWISE(bitwise_and, BinaryOp::BitwiseAnd)
BM_BITWISE(bitwise_or, BinaryOp::BitwiseOr)
BM_BITWISE(bitwise_xor, BinaryOp::BitwiseXor)
#undef BM_BITWISE

}  // namespace bigmodel
