// CPU kernel for binary elementwise ops (arithmetic, pow, maximum/minimum, remainder,
// bitwise, comparisons, logical). The op switch sits outside the loops: each (op, dtype)
// pair gets one small loop, and each op family only instantiates the dtypes it accepts.
#include "core/ops/elementwise.h"
#include "kernels/cpu/loops.h"
#include "kernels/functors.h"

namespace bigmodel::cpu {
namespace {

// out = f(a, b) computed in the compute type C of T (float for half types).
template <typename T, typename F>
void map_binary(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  using C = compute_t<T>;
  map_elements<T, T, T>(out, {&a, &b}, [f](T x, T y) { return static_cast<T>(f(static_cast<C>(x), static_cast<C>(y))); });
}

template <typename T, typename F>
void map_unary(const Tensor& out, const Tensor& a, F f) {
  using C = compute_t<T>;
  map_elements<T, T>(out, {&a}, [f](T x) { return static_cast<T>(f(static_cast<C>(x))); });
}

// A tensor whose elements all alias one value (a broadcast scalar): its value, else nullopt.
template <typename T>
bool broadcast_scalar(const Tensor& t, compute_t<T>* value) {
  for (int64_t s : t.strides())
    if (s != 0) return false;
  *value = static_cast<compute_t<T>>(*static_cast<const T*>(t.data_ptr()));
  return true;
}

// Pow with a scalar exponent takes cheaper paths for the common exponents.
template <typename T>
void pow_typed(const Tensor& out, const Tensor& a, const Tensor& b) {
  using C = compute_t<T>;
  C e;
  if constexpr (std::is_floating_point_v<C>) {
    if (out.numel() > 0 && broadcast_scalar<T>(b, &e)) {
      if (e == C(2)) return map_unary<T>(out, a, [](C x) { return x * x; });
      if (e == C(3)) return map_unary<T>(out, a, [](C x) { return x * x * x; });
      if (e == C(0.5)) return map_unary<T>(out, a, [](C x) { return std::sqrt(x); });
      if (e == C(-1)) return map_unary<T>(out, a, [](C x) { return C(1) / x; });
      return map_unary<T>(out, a, [e](C x) { return std::pow(x, e); });
    }
  }
  map_binary<T>(out, a, b, [](C x, C y) { return fn::pow(x, y); });
}

// Ops defined for every numeric dtype (and bool where the arithmetic makes sense).
template <typename T>
void arith_typed(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  using C = compute_t<T>;
  switch (op) {
    case BinaryOp::Add: map_binary<T>(out, a, b, [](C x, C y) { return fn::add(x, y); }); break;
    case BinaryOp::Sub: map_binary<T>(out, a, b, [](C x, C y) { return fn::sub(x, y); }); break;
    case BinaryOp::Mul: map_binary<T>(out, a, b, [](C x, C y) { return fn::mul(x, y); }); break;
    case BinaryOp::Div: map_binary<T>(out, a, b, [](C x, C y) { return fn::div(x, y); }); break;
    case BinaryOp::Maximum: map_binary<T>(out, a, b, [](C x, C y) { return fn::maximum(x, y); }); break;
    case BinaryOp::Minimum: map_binary<T>(out, a, b, [](C x, C y) { return fn::minimum(x, y); }); break;
    default:
      if constexpr (!std::is_same_v<T, bool>) {
        switch (op) {
          case BinaryOp::Pow: pow_typed<T>(out, a, b); return;
          case BinaryOp::Remainder: map_binary<T>(out, a, b, [](C x, C y) { return fn::remainder(x, y); }); return;
          case BinaryOp::Fmod: map_binary<T>(out, a, b, [](C x, C y) { return fn::fmod(x, y); }); return;
          case BinaryOp::FloorDivide:
            map_binary<T>(out, a, b, [](C x, C y) { return fn::floor_divide(x, y); });
            return;
          default: break;
        }
      }
      throw NotImplementedError(str_cat("[binary] op not implemented on the CPU for ", dtype_name(out.dtype())));
  }
}

template <typename T>
void bitwise_typed(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  switch (op) {
    case BinaryOp::BitwiseAnd: map_binary<T>(out, a, b, [](T x, T y) { return T(x & y); }); break;
    case BinaryOp::BitwiseOr: map_binary<T>(out, a, b, [](T x, T y) { return T(x | y); }); break;
    default: map_binary<T>(out, a, b, [](T x, T y) { return T(x ^ y); }); break;
  }
}

template <typename T>
void compare_typed(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  using C = compute_t<T>;
  auto run = [&](auto f) {
    map_elements<bool, T, T>(out, {&a, &b}, [f](T x, T y) { return f(static_cast<C>(x), static_cast<C>(y)); });
  };
  switch (op) {
    case BinaryOp::Eq: run([](C x, C y) { return x == y; }); break;
    case BinaryOp::Ne: run([](C x, C y) { return x != y; }); break;
    case BinaryOp::Lt: run([](C x, C y) { return x < y; }); break;
    case BinaryOp::Le: run([](C x, C y) { return x <= y; }); break;
    case BinaryOp::Gt: run([](C x, C y) { return x > y; }); break;
    default: run([](C x, C y) { return x >= y; }); break;
  }
}

void binary_cpu(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  const DType dt = a.dtype();
  switch (op) {
    case BinaryOp::BitwiseAnd:
    case BinaryOp::BitwiseOr:
    case BinaryOp::BitwiseXor:
      if (dt == DType::Bool) bitwise_typed<bool>(op, out, a, b);
      else if (dt == DType::Int32) bitwise_typed<int32_t>(op, out, a, b);
      else if (dt == DType::Int64) bitwise_typed<int64_t>(op, out, a, b);
      else throw DTypeError(str_cat("[binary] bitwise ops not implemented for ", dtype_name(dt)));
      return;
    case BinaryOp::LogicalAnd: map_binary<bool>(out, a, b, [](bool x, bool y) { return x && y; }); return;
    case BinaryOp::LogicalOr: map_binary<bool>(out, a, b, [](bool x, bool y) { return x || y; }); return;
    case BinaryOp::LogicalXor: map_binary<bool>(out, a, b, [](bool x, bool y) { return x != y; }); return;
    default: break;
  }
  if (binary_returns_bool(op)) {
    BM_DISPATCH_ALL(dt, "binary", [&] { compare_typed<scalar_t>(op, out, a, b); });
  } else {
    BM_DISPATCH_ALL(dt, "binary", [&] { arith_typed<scalar_t>(op, out, a, b); });
  }
}

}  // namespace

BM_REGISTER_KERNEL(binary_kernel, CPU, &binary_cpu);

}  // namespace bigmodel::cpu
