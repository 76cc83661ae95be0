// CPU kernel for unary elementwise ops (forward). One small loop per (op, dtype) pair, with
// the op switch outside the loop; each op family only instantiates the dtypes it accepts.
#include "core/ops/unary.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/unary_vec.h"
#include "kernels/functors.h"

namespace bigmodel::cpu {
namespace {

// Runs y = f(x) in the compute type C of T (float for half types).
template <typename T, typename F>
void map_unary(const Tensor& out, const Tensor& in, F f) {
  using C = compute_t<T>;
  map_elements<T, T>(out, {&in}, [f](T x) { return static_cast<T>(f(static_cast<C>(x))); });
}

// Ops valid for every numeric dtype (integers and floats).
template <typename T>
void numeric_typed(UnaryOp op, const Tensor& out, const Tensor& in, const Scalar& p0, const Scalar& p1) {
  using C = compute_t<T>;
  switch (op) {
    case UnaryOp::Neg: map_unary<T>(out, in, [](C x) { return fn::neg(x); }); break;
    case UnaryOp::Abs: map_unary<T>(out, in, [](C x) { return fn::abs(x); }); break;
    case UnaryOp::Sign: map_unary<T>(out, in, [](C x) { return fn::sign(x); }); break;
    case UnaryOp::Relu: map_unary<T>(out, in, [](C x) { return fn::relu(x); }); break;
    case UnaryOp::Square: map_unary<T>(out, in, [](C x) { return fn::square(x); }); break;
    case UnaryOp::Clamp: {
      const C lo = p0.to<C>(), hi = p1.to<C>();
      map_unary<T>(out, in, [lo, hi](C x) { return fn::clamp(x, lo, hi); });
      break;
    }
    case UnaryOp::ClampMin: {
      const C lo = p0.to<C>();
      map_unary<T>(out, in, [lo](C x) { return fn::clamp_min(x, lo); });
      break;
    }
    case UnaryOp::ClampMax: {
      const C hi = p0.to<C>();
      map_unary<T>(out, in, [hi](C x) { return fn::clamp_max(x, hi); });
      break;
    }
    default: throw NotImplementedError("[unary] op is not a numeric op");
  }
}

template <typename T>
void floating_typed(UnaryOp op, const Tensor& out, const Tensor& in, const Scalar& p0, const Scalar& p1) {
  using C = compute_t<T>;
  switch (op) {
    case UnaryOp::Exp: map_unary<T>(out, in, [](C x) { return std::exp(x); }); break;
    case UnaryOp::Log: map_unary<T>(out, in, [](C x) { return std::log(x); }); break;
    case UnaryOp::Log1p: map_unary<T>(out, in, [](C x) { return std::log1p(x); }); break;
    case UnaryOp::Expm1: map_unary<T>(out, in, [](C x) { return std::expm1(x); }); break;
    case UnaryOp::Sqrt: map_unary<T>(out, in, [](C x) { return std::sqrt(x); }); break;
    case UnaryOp::Rsqrt: map_unary<T>(out, in, [](C x) { return fn::rsqrt(x); }); break;
    case UnaryOp::Sin: map_unary<T>(out, in, [](C x) { return std::sin(x); }); break;
    case UnaryOp::Cos: map_unary<T>(out, in, [](C x) { return std::cos(x); }); break;
    case UnaryOp::Tanh: map_unary<T>(out, in, [](C x) { return std::tanh(x); }); break;
    case UnaryOp::Sigmoid: map_unary<T>(out, in, [](C x) { return fn::sigmoid(x); }); break;
    case UnaryOp::Erf: map_unary<T>(out, in, [](C x) { return std::erf(x); }); break;
    case UnaryOp::Reciprocal: map_unary<T>(out, in, [](C x) { return fn::reciprocal(x); }); break;
    case UnaryOp::Gelu: map_unary<T>(out, in, [](C x) { return fn::gelu(x); }); break;
    case UnaryOp::GeluTanh: map_unary<T>(out, in, [](C x) { return fn::gelu_tanh(x); }); break;
    case UnaryOp::Silu: map_unary<T>(out, in, [](C x) { return fn::silu(x); }); break;
    case UnaryOp::Softplus: {
      const C beta = p0.to<C>(), threshold = p1.to<C>();
      map_unary<T>(out, in, [beta, threshold](C x) { return fn::softplus(x, beta, threshold); });
      break;
    }
    case UnaryOp::Floor: map_unary<T>(out, in, [](C x) { return std::floor(x); }); break;
    case UnaryOp::Ceil: map_unary<T>(out, in, [](C x) { return std::ceil(x); }); break;
    case UnaryOp::Round: map_unary<T>(out, in, [](C x) { return fn::round_even(x); }); break;
    case UnaryOp::Trunc: map_unary<T>(out, in, [](C x) { return std::trunc(x); }); break;
    default: numeric_typed<T>(op, out, in, p0, p1);  // neg, abs, relu, clamp... on floats
  }
}

// Bool-valued tests of floating inputs.
template <typename T>
void predicate_typed(UnaryOp op, const Tensor& out, const Tensor& in) {
  using C = compute_t<T>;
  auto run = [&](auto f) { map_elements<bool, T>(out, {&in}, [f](T x) { return f(static_cast<C>(x)); }); };
  switch (op) {
    case UnaryOp::IsNan: run([](C x) { return x != x; }); break;
    case UnaryOp::IsInf: run([](C x) { return std::isinf(x); }); break;
    case UnaryOp::IsFinite: run([](C x) { return std::isfinite(x); }); break;
    default: throw NotImplementedError("[unary] op is not a predicate");
  }
}

bool is_numeric_op(UnaryOp op) { return op <= UnaryOp::ClampMax; }

void unary_cpu(UnaryOp op, const Tensor& out, const Tensor& in, const Scalar& p0, const Scalar& p1) {
  const DType dt = in.dtype();
  switch (op) {
    case UnaryOp::IsNan:
    case UnaryOp::IsInf:
    case UnaryOp::IsFinite:
      BM_DISPATCH_FLOATING(dt, "unary", [&] { predicate_typed<scalar_t>(op, out, in); });
      return;
    case UnaryOp::LogicalNot:
      map_elements<bool, bool>(out, {&in}, [](bool x) { return !x; });
      return;
    case UnaryOp::BitwiseNot:
      if (dt == DType::Bool) map_elements<bool, bool>(out, {&in}, [](bool x) { return !x; });
      else if (dt == DType::Int32) map_elements<int32_t, int32_t>(out, {&in}, [](int32_t x) { return ~x; });
      else map_elements<int64_t, int64_t>(out, {&in}, [](int64_t x) { return ~x; });
      return;
    default: break;
  }
  if (is_floating(dt)) {
    if (dt == DType::Float32 && unary_vec_f32(op, out, in)) return;
    BM_DISPATCH_FLOATING(dt, "unary", [&] { floating_typed<scalar_t>(op, out, in, p0, p1); });
  } else {
    BM_CHECK_DTYPE(is_numeric_op(op) && dt != DType::Bool, "unary", "op not implemented for ", dtype_name(dt));
    if (dt == DType::Int32) numeric_typed<int32_t>(op, out, in, p0, p1);
    else numeric_typed<int64_t>(op, out, in, p0, p1);
  }
}

}  // namespace

BM_REGISTER_KERNEL(unary_kernel, CPU, &unary_cpu);

}  // namespace bigmodel::cpu
