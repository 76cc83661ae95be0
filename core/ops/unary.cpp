// Unary op front ends: dtype rules (PyTorch's: integer inputs to float functions give
// float32), output allocation, the kernel call, autograd records and in-place forms.
#include "core/ops/unary.h"

#include <cmath>

#include <limits>

#include "core/autograd.h"
#include "core/ops/compare.h"
#include "core/ops/copy_kernels.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/view.h"

namespace bigmodel {

BM_DEFINE_KERNEL(unary_kernel);
BM_DEFINE_KERNEL(unary_backward_kernel);

namespace {

enum class Kind : uint8_t { Numeric, Floating, FloatOnly, Rounding, Predicate, Logical, Bitwise };
// What the backward needs: nothing (grad is -g or 0), the forward input, or the output.
enum class Saves : uint8_t { None, Input, Output };

struct UnaryInfo {
  const char* name;
  Kind kind;
  Saves saves;
  bool differentiable;
};

const UnaryInfo& info(UnaryOp op) {
  static const UnaryInfo table[] = {
      {"neg", Kind::Numeric, Saves::None, true},
      {"abs", Kind::Numeric, Saves::Input, true},
      {"sign", Kind::Numeric, Saves::None, true},
      {"relu", Kind::Numeric, Saves::Output, true},
      {"square", Kind::Numeric, Saves::Input, true},
      {"clamp", Kind::Numeric, Saves::Input, true},
      {"clamp_min", Kind::Numeric, Saves::Input, true},
      {"clamp_max", Kind::Numeric, Saves::Input, true},
      {"exp", Kind::Floating, Saves::Output, true},
      {"log", Kind::Floating, Saves::Input, true},
      {"log1p", Kind::Floating, Saves::Input, true},
      {"expm1", Kind::Floating, Saves::Output, true},
      {"sqrt", Kind::Floating, Saves::Output, true},
      {"rsqrt", Kind::Floating, Saves::Output, true},
      {"sin", Kind::Floating, Saves::Input, true},
      {"cos", Kind::Floating, Saves::Input, true},
      {"tanh", Kind::Floating, Saves::Output, true},
      {"sigmoid", Kind::Floating, Saves::Output, true},
      {"erf", Kind::Floating, Saves::Input, true},
      {"reciprocal", Kind::Floating, Saves::Output, true},
      {"gelu", Kind::FloatOnly, Saves::Input, true},
      {"gelu", Kind::FloatOnly, Saves::Input, true},
      {"silu", Kind::FloatOnly, Saves::Input, true},
      {"softplus", Kind::FloatOnly, Saves::Input, true},
      {"floor", Kind::Rounding, Saves::None, true},
      {"ceil", Kind::Rounding, Saves::None, true},
      {"round", Kind::Rounding, Saves::None, true},
      {"trunc", Kind::Rounding, Saves::None, true},
      {"isnan", Kind::Predicate, Saves::None, false},
      {"isinf", Kind::Predicate, Saves::None, false},
      {"isfinite", Kind::Predicate, Saves::None, false},
      {"logical_not", Kind::Logical, Saves::None, false},
      {"bitwise_not", Kind::Bitwise, Saves::None, false},
  };
  static_assert(sizeof(table) / sizeof(table[0]) == static_cast<size_t>(UnaryOp::BitwiseNot) + 1,
                "one table row per UnaryOp");
  return table[static_cast<int>(op)];
}

// The dtype of op(x) for an input of dtype `in`; raises DTypeError for unsupported inputs.
DType result_dtype(UnaryOp op, DType in, const char* name) {
  const UnaryInfo& i = info(op);
  switch (i.kind) {
    case Kind::Numeric:
      BM_CHECK_DTYPE(in != DType::Bool, name, "not supported for bool tensors");
      return in;
    case Kind::Floating: return is_floating(in) ? in : kDefaultFloat;
    case Kind::FloatOnly:
      BM_CHECK_DTYPE(is_floating(in), name, "expected a floating point tensor, got ", dtype_name(in));
      return in;
    case Kind::Rounding:
      BM_CHECK_DTYPE(in != DType::Bool, name, "not supported for bool tensors");
      return in;
    case Kind::Predicate:
    case Kind::Logical: return DType::Bool;
    case Kind::Bitwise:
      BM_CHECK_DTYPE(!is_floating(in), name, "only integer and bool tensors are supported, got ", dtype_name(in));
      return in;
  }
  return in;
}

// op'(s) for the smooth ops, built from differentiable ops (s: the saved input, or the
// output for the ops that save it). Undefined for the piecewise-linear ops, whose derivative
// is a constant mask. Used by backward passes that build a graph (create_graph).
Tensor smooth_derivative(UnaryOp op, const Tensor& s, const Scalar& p0) {
  constexpr double kPi = 3.14159265358979323846;
  switch (op) {
    case UnaryOp::Square: return mul(s, Scalar(2.0));
    case UnaryOp::Exp: return s;
    case UnaryOp::Log: return reciprocal(s);
    case UnaryOp::Log1p: return reciprocal(add(s, Scalar(1.0)));
    case UnaryOp::Expm1: return add(s, Scalar(1.0));
    case UnaryOp::Sqrt: return rdiv(s, Scalar(0.5));
    case UnaryOp::Rsqrt: return mul(pow(s, Scalar(3.0)), Scalar(-0.5));
    case UnaryOp::Sin: return cos(s);
    case UnaryOp::Cos: return neg(sin(s));
    case UnaryOp::Tanh: return rsub(square(s), Scalar(1.0));
    case UnaryOp::Sigmoid: return mul(s, rsub(s, Scalar(1.0)));
    case UnaryOp::Erf: return mul(exp(neg(square(s))), Scalar(2.0 / std::sqrt(kPi)));
    case UnaryOp::Reciprocal: return neg(square(s));
    case UnaryOp::Gelu: {  // Phi(x) + x phi(x)
      Tensor cdf = mul(add(erf(mul(s, Scalar(1.0 / std::sqrt(2.0)))), Scalar(1.0)), Scalar(0.5));
      return add(cdf, mul(s, mul(exp(mul(square(s), Scalar(-0.5))), Scalar(1.0 / std::sqrt(2.0 * kPi)))));
    }
    case UnaryOp::GeluTanh: {  // 0.5 (1 + t) + 0.5 x (1 - t^2) u'(x), t = tanh(u(x))
      const double k = std::sqrt(2.0 / kPi);
      Tensor t = tanh(mul(add(s, mul(pow(s, Scalar(3.0)), Scalar(0.044715))), Scalar(k)));
      Tensor du = mul(add(mul(square(s), Scalar(3.0 * 0.044715)), Scalar(1.0)), Scalar(k));
      return add(mul(add(t, Scalar(1.0)), Scalar(0.5)), mul(mul(s, rsub(square(t), Scalar(1.0))), mul(du, Scalar(0.5))));
    }
    case UnaryOp::Silu: {  // sigma (1 + x (1 - sigma))
      Tensor sg = sigmoid(s);
      return mul(sg, add(mul(s, rsub(sg, Scalar(1.0))), Scalar(1.0)));
    }
    case UnaryOp::Softplus: {  // sigmoid(beta x), or 1 above the threshold (where it is linear)
      const double beta = p0.to<double>();
      return sigmoid(mul(s, Scalar(beta)));
    }
    default: return Tensor();
  }
}

// grad_in for one unary op, written with ops (the backward kernel is itself an op).
Tensor unary_backward(UnaryOp op, const Tensor& g, const Tensor& saved, const Scalar& p0, const Scalar& p1) {
  const UnaryInfo& i = info(op);
  if (op == UnaryOp::Neg) return neg(g);
  if (i.saves == Saves::None) return zeros_like(g);  // sign and rounding: zero almost everywhere
  Tensor s = to(saved, g.dtype());
  if (GradMode::is_enabled() && (g.requires_grad() || s.requires_grad())) {
    // A backward that builds a graph: the derivative must itself be differentiable. The
    // piecewise-linear ops' derivative is a constant mask (the kernel, with grad 1).
    Tensor d = smooth_derivative(op, s, p0);
    if (d.defined() && op == UnaryOp::Softplus) {
      d = where(gt(mul(s, p0), p1), Scalar(1.0), d);
    } else if (!d.defined()) {
      NoGradGuard no_grad;
      Tensor ones = ones_like(g);
      d = Tensor::empty(g.sizes(), g.dtype(), g.device());
      unary_backward_kernel.get(g.device())(op, d, ones, s.detach(), p0, p1);
    }
    return mul(g, d);
  }
  Tensor grad_in = Tensor::empty(g.sizes(), g.dtype(), g.device());
  unary_backward_kernel.get(g.device())(op, grad_in, g, s, p0, p1);
  return grad_in;
}

Tensor unary_op(UnaryOp op, const Tensor& x, const Scalar& p0 = Scalar(), const Scalar& p1 = Scalar()) {
  const UnaryInfo& i = info(op);
  const DType out_t = result_dtype(op, x.dtype(), i.name);
  const DType compute = (i.kind == Kind::Predicate) ? x.dtype()
                        : (i.kind == Kind::Logical) ? DType::Bool
                                                    : out_t;
  Tensor in = to(x.detach(), compute);
  Tensor out = Tensor::empty(x.sizes(), out_t, x.device());
  unary_kernel.get(x.device())(op, out, in, p0, p1);
  if (i.differentiable && is_floating(out_t) && needs_grad({x})) {
    SavedTensor saved(i.saves == Saves::Output ? out : x, /*is_output=*/i.saves == Saves::Output);
    const char* name = i.name;
    record_function(name, {x}, {out}, [=](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{unary_backward(op, g[0], saved.defined() ? saved.unpack(name) : Tensor(), p0, p1)};
    }, SecondOrder::Full);
  }
  return out;
}

// True when several elements of t share memory (a stride-0 dim of size > 1).
bool has_internal_overlap(const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.stride(d) == 0 && t.size(d) > 1) return true;
  return false;
}

Tensor& unary_inplace(UnaryOp op, Tensor& x, const char* name, const Scalar& p0 = Scalar(),
                      const Scalar& p1 = Scalar()) {
  const UnaryInfo& i = info(op);
  const DType out_t = result_dtype(op, x.dtype(), name);
  BM_CHECK_DTYPE(out_t == x.dtype() || i.kind == Kind::Logical, name, "result type ", dtype_name(out_t),
                 " can't be cast to the desired output type ", dtype_name(x.dtype()));
  if (i.kind == Kind::Logical && x.dtype() != DType::Bool) {  // e.g. float logical_not_: 0/1 values
    Tensor r = unary_op(op, x);
    check_inplace(x, name);
    copy_kernel.get(x.device())(x, r);
    return x;
  }
  const bool grad = i.differentiable && is_floating(x.dtype()) && needs_grad({x});
  Tensor before = grad && i.saves == Saves::Input ? clone(x.detach()) : Tensor();
  check_inplace(x, name);
  if (has_internal_overlap(x)) {  // an expanded x: apply op once per memory location
    Tensor tmp = Tensor::empty(x.sizes(), x.dtype(), x.device());
    unary_kernel.get(x.device())(op, tmp, x, p0, p1);
    copy_kernel.get(x.device())(x, tmp);
  } else {
    unary_kernel.get(x.device())(op, x, x, p0, p1);
  }
  if (grad) {
    SavedTensor saved(i.saves == Saves::Input ? before : x, /*is_output=*/i.saves == Saves::Output);
    rebase_history(x, name, {x}, [=](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{unary_backward(op, g[0], saved.defined() ? saved.unpack(name) : Tensor(), p0, p1)};
    });
  }
  return x;
}

// Rounding an integer tensor changes nothing (PyTorch returns a copy).
Tensor rounding(UnaryOp op, const Tensor& x) {
  if (!is_floating(x.dtype())) {
    result_dtype(op, x.dtype(), info(op).name);  // rejects bool
    return clone(x);
  }
  return unary_op(op, x);
}
Tensor& rounding_(UnaryOp op, Tensor& x, const char* name) {
  if (!is_floating(x.dtype())) {
    result_dtype(op, x.dtype(), name);
    return x;
  }
  return unary_inplace(op, x, name);
}

// The dtype clamp gives x with these bounds: float bounds lift integer tensors to float32.
DType clamp_dtype(const Tensor& x, const std::optional<Scalar>& lo, const std::optional<Scalar>& hi) {
  DType r = x.dtype();
  BM_CHECK_DTYPE(r != DType::Bool, "clamp", "not supported for bool tensors");
  for (const auto& s : {lo, hi})
    if (s && s->is_floating() && !is_floating(r)) r = kDefaultFloat;
  return r;
}

struct ClampArgs {
  UnaryOp op;
  Scalar p0, p1;
};
ClampArgs clamp_args(const std::optional<Scalar>& lo, const std::optional<Scalar>& hi, const char* name) {
  BM_CHECK_VALUE(lo || hi, name, "at least one of 'min' or 'max' must not be None");
  if (lo && hi) return {UnaryOp::Clamp, *lo, *hi};
  if (lo) return {UnaryOp::ClampMin, *lo, Scalar()};
  return {UnaryOp::ClampMax, *hi, Scalar()};
}

}  // namespace

Tensor neg(const Tensor& x) {
  BM_CHECK_DTYPE(x.dtype() != DType::Bool, "neg",
                 "negation, the `-` operator, on a bool tensor is not supported; use logical_not or ~");
  return unary_op(UnaryOp::Neg, x);
}
Tensor abs(const Tensor& x) { return unary_op(UnaryOp::Abs, x); }
Tensor sign(const Tensor& x) { return x.dtype() == DType::Bool ? clone(x) : unary_op(UnaryOp::Sign, x); }
Tensor relu(const Tensor& x) { return unary_op(UnaryOp::Relu, x); }
Tensor square(const Tensor& x) {
  return unary_op(UnaryOp::Square, x.dtype() == DType::Bool ? to(x, kDefaultInt) : x);
}
Tensor exp(const Tensor& x) { return unary_op(UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary_op(UnaryOp::Log, x); }
Tensor log1p(const Tensor& x) { return unary_op(UnaryOp::Log1p, x); }
Tensor expm1(const Tensor& x) { return unary_op(UnaryOp::Expm1, x); }
Tensor sqrt(const Tensor& x) { return unary_op(UnaryOp::Sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary_op(UnaryOp::Rsqrt, x); }
Tensor sin(const Tensor& x) { return unary_op(UnaryOp::Sin, x); }
Tensor cos(const Tensor& x) { return unary_op(UnaryOp::Cos, x); }
Tensor tanh(const Tensor& x) { return unary_op(UnaryOp::Tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary_op(UnaryOp::Sigmoid, x); }
Tensor erf(const Tensor& x) { return unary_op(UnaryOp::Erf, x); }
Tensor reciprocal(const Tensor& x) { return unary_op(UnaryOp::Reciprocal, x); }
Tensor floor(const Tensor& x) { return rounding(UnaryOp::Floor, x); }
Tensor ceil(const Tensor& x) { return rounding(UnaryOp::Ceil, x); }
Tensor round(const Tensor& x) { return rounding(UnaryOp::Round, x); }
Tensor trunc(const Tensor& x) { return rounding(UnaryOp::Trunc, x); }

Tensor gelu(const Tensor& x, const std::string& approximate) {
  BM_CHECK_VALUE(approximate == "none" || approximate == "tanh", "gelu",
                 "approximate must be 'none' or 'tanh', got '", approximate, "'");
  return unary_op(approximate == "tanh" ? UnaryOp::GeluTanh : UnaryOp::Gelu, x);
}
Tensor silu(const Tensor& x) { return unary_op(UnaryOp::Silu, x); }
Tensor softplus(const Tensor& x, double beta, double threshold) {
  BM_CHECK_VALUE(beta != 0.0, "softplus", "beta must be nonzero");
  return unary_op(UnaryOp::Softplus, x, Scalar(beta), Scalar(threshold));
}

Tensor clamp(const Tensor& x, const std::optional<Scalar>& min, const std::optional<Scalar>& max) {
  ClampArgs a = clamp_args(min, max, "clamp");
  DType r = clamp_dtype(x, min, max);
  return unary_op(a.op, r == x.dtype() ? x : to(x, r), a.p0, a.p1);
}
Tensor clamp(const Tensor& x, const Tensor& min, const Tensor& max) {
  return minimum(maximum(x, min), max);
}
Tensor clamp_min(const Tensor& x, const Scalar& min) { return clamp(x, min, std::nullopt); }
Tensor clamp_max(const Tensor& x, const Scalar& max) { return clamp(x, std::nullopt, max); }

Tensor isnan(const Tensor& x) {
  return is_floating(x.dtype()) ? unary_op(UnaryOp::IsNan, x) : zeros(x.sizes(), DType::Bool, x.device());
}
Tensor isinf(const Tensor& x) {
  return is_floating(x.dtype()) ? unary_op(UnaryOp::IsInf, x) : zeros(x.sizes(), DType::Bool, x.device());
}
Tensor isfinite(const Tensor& x) {
  return is_floating(x.dtype()) ? unary_op(UnaryOp::IsFinite, x) : ones(x.sizes(), DType::Bool, x.device());
}
Tensor logical_not(const Tensor& x) { return unary_op(UnaryOp::LogicalNot, x); }
Tensor bitwise_not(const Tensor& x) { return unary_op(UnaryOp::BitwiseNot, x); }

Tensor& neg_(Tensor& x) {
  BM_CHECK_DTYPE(x.dtype() != DType::Bool, "neg_", "negation on a bool tensor is not supported");
  return unary_inplace(UnaryOp::Neg, x, "neg_");
}
Tensor& abs_(Tensor& x) { return unary_inplace(UnaryOp::Abs, x, "abs_"); }
Tensor& sign_(Tensor& x) {
  if (x.dtype() == DType::Bool) return x;
  return unary_inplace(UnaryOp::Sign, x, "sign_");
}
Tensor& relu_(Tensor& x) { return unary_inplace(UnaryOp::Relu, x, "relu_"); }
Tensor& square_(Tensor& x) { return unary_inplace(UnaryOp::Square, x, "square_"); }
Tensor& exp_(Tensor& x) { return unary_inplace(UnaryOp::Exp, x, "exp_"); }
Tensor& log_(Tensor& x) { return unary_inplace(UnaryOp::Log, x, "log_"); }
Tensor& log1p_(Tensor& x) { return unary_inplace(UnaryOp::Log1p, x, "log1p_"); }
Tensor& expm1_(Tensor& x) { return unary_inplace(UnaryOp::Expm1, x, "expm1_"); }
Tensor& sqrt_(Tensor& x) { return unary_inplace(UnaryOp::Sqrt, x, "sqrt_"); }
Tensor& rsqrt_(Tensor& x) { return unary_inplace(UnaryOp::Rsqrt, x, "rsqrt_"); }
Tensor& sin_(Tensor& x) { return unary_inplace(UnaryOp::Sin, x, "sin_"); }
Tensor& cos_(Tensor& x) { return unary_inplace(UnaryOp::Cos, x, "cos_"); }
Tensor& tanh_(Tensor& x) { return unary_inplace(UnaryOp::Tanh, x, "tanh_"); }
Tensor& sigmoid_(Tensor& x) { return unary_inplace(UnaryOp::Sigmoid, x, "sigmoid_"); }
Tensor& erf_(Tensor& x) { return unary_inplace(UnaryOp::Erf, x, "erf_"); }
Tensor& reciprocal_(Tensor& x) { return unary_inplace(UnaryOp::Reciprocal, x, "reciprocal_"); }
Tensor& floor_(Tensor& x) { return rounding_(UnaryOp::Floor, x, "floor_"); }
Tensor& ceil_(Tensor& x) { return rounding_(UnaryOp::Ceil, x, "ceil_"); }
Tensor& round_(Tensor& x) { return rounding_(UnaryOp::Round, x, "round_"); }
Tensor& trunc_(Tensor& x) { return rounding_(UnaryOp::Trunc, x, "trunc_"); }
Tensor& silu_(Tensor& x) { return unary_inplace(UnaryOp::Silu, x, "silu_"); }
Tensor& clamp_(Tensor& x, const std::optional<Scalar>& min, const std::optional<Scalar>& max) {
  ClampArgs a = clamp_args(min, max, "clamp_");
  DType r = clamp_dtype(x, min, max);
  BM_CHECK_DTYPE(r == x.dtype(), "clamp_", "result type ", dtype_name(r),
                 " can't be cast to the desired output type ", dtype_name(x.dtype()));
  return unary_inplace(a.op, x, "clamp_", a.p0, a.p1);
}
Tensor& logical_not_(Tensor& x) { return unary_inplace(UnaryOp::LogicalNot, x, "logical_not_"); }
Tensor& bitwise_not_(Tensor& x) { return unary_inplace(UnaryOp::BitwiseNot, x, "bitwise_not_"); }

}  // namespace bigmodel
