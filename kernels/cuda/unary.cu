// CUDA kernel for unary elementwise ops (forward), registered into unary_kernel with the
// CPU's contract (kernels/cpu/unary.cpp): the same op/dtype table, the math of
// kernels/functors.h, half types computed in float. One kernel per (op, dtype): the op
// switch runs on the host. Layouts go through elementwise_launch.cuh (16-byte packs on
// contiguous aligned data, OffsetCalc otherwise; out may alias in for the in-place forms).
#include <type_traits>

#include "core/ops/unary.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/elementwise_launch.cuh"
#include "kernels/functors.h"

namespace bigmodel::cuda {
namespace {

// y = op(x) in the compute type C of T; p0/p1 are the op's parameters already in C.
template <UnaryOp OP, typename T>
struct UnaryFunctor {
  using S = typename ElemTraits<T>::storage;
  using C = typename ElemTraits<T>::wide;
  C p0, p1;

  __device__ __forceinline__ S operator()(S xs) const { return ElemTraits<T>::store(apply(ElemTraits<T>::load(xs))); }

  __device__ __forceinline__ C apply(C x) const {
    if constexpr (OP == UnaryOp::Neg) return fn::neg(x);
    else if constexpr (OP == UnaryOp::Abs) return fn::abs(x);
    else if constexpr (OP == UnaryOp::Sign) return fn::sign(x);
    else if constexpr (OP == UnaryOp::Relu) return fn::relu(x);
    else if constexpr (OP == UnaryOp::Square) return fn::square(x);
    else if constexpr (OP == UnaryOp::Clamp) return fn::clamp(x, p0, p1);
    else if constexpr (OP == UnaryOp::ClampMin) return fn::clamp_min(x, p0);
    else if constexpr (OP == UnaryOp::ClampMax) return fn::clamp_max(x, p0);
    else if constexpr (OP == UnaryOp::Exp) return std::exp(x);
    else if constexpr (OP == UnaryOp::Log) return std::log(x);
    else if constexpr (OP == UnaryOp::Log1p) return std::log1p(x);
    else if constexpr (OP == UnaryOp::Expm1) return std::expm1(x);
    else if constexpr (OP == UnaryOp::Sqrt) return std::sqrt(x);
    else if constexpr (OP == UnaryOp::Rsqrt) return fn::rsqrt(x);
    else if constexpr (OP == UnaryOp::Sin) return std::sin(x);
    else if constexpr (OP == UnaryOp::Cos) return std::cos(x);
    else if constexpr (OP == UnaryOp::Tanh) return std::tanh(x);
    else if constexpr (OP == UnaryOp::Sigmoid) return fn::sigmoid(x);
    else if constexpr (OP == UnaryOp::Erf) return std::erf(x);
    else if constexpr (OP == UnaryOp::Reciprocal) return fn::reciprocal(x);
    else if constexpr (OP == UnaryOp::Gelu) return fn::gelu(x);
    else if constexpr (OP == UnaryOp::GeluTanh) return fn::gelu_tanh(x);
    else if constexpr (OP == UnaryOp::Silu) return fn::silu(x);
    else if constexpr (OP == UnaryOp::Softplus) return fn::softplus(x, p0, p1);
    else if constexpr (OP == UnaryOp::Floor) return std::floor(x);
    else if constexpr (OP == UnaryOp::Ceil) return std::ceil(x);
    else if constexpr (OP == UnaryOp::Round) return fn::round_even(x);
    else return std::trunc(x);  // Trunc
  }
};

// Bool-valued tests of floating inputs.
template <UnaryOp OP, typename T>
struct PredicateFunctor {
  using S = typename ElemTraits<T>::storage;
  __device__ __forceinline__ bool operator()(S xs) const {
    const auto x = ElemTraits<T>::load(xs);
    if constexpr (OP == UnaryOp::IsNan) return x != x;
    else if constexpr (OP == UnaryOp::IsInf) return std::isinf(x);
    else return std::isfinite(x);  // IsFinite
  }
};

struct LogicalNotFunctor {
  __device__ __forceinline__ bool operator()(bool x) const { return !x; }
};
template <typename T>
struct BitwiseNotFunctor {
  __device__ __forceinline__ T operator()(T x) const { return ~x; }
};

// p0/p1 arrive converted on the host (Scalar::to<C>), as the CPU kernel converts them.
template <UnaryOp OP, typename T>
void launch_unary(const Tensor& out, const Tensor& in, compute_t<T> p0 = {}, compute_t<T> p1 = {}) {
  using F = UnaryFunctor<OP, T>;
  using S = typename F::S;
  elementwise::launch<S, S>("unary", F{p0, p1}, out, in);
}

// Ops valid for every numeric dtype (integers and floats).
template <typename T>
void numeric_typed(UnaryOp op, const Tensor& out, const Tensor& in, const Scalar& p0, const Scalar& p1) {
  using C = compute_t<T>;
  switch (op) {
    case UnaryOp::Neg: return launch_unary<UnaryOp::Neg, T>(out, in);
    case UnaryOp::Abs: return launch_unary<UnaryOp::Abs, T>(out, in);
    case UnaryOp::Sign: return launch_unary<UnaryOp::Sign, T>(out, in);
    case UnaryOp::Relu: return launch_unary<UnaryOp::Relu, T>(out, in);
    case UnaryOp::Square: return launch_unary<UnaryOp::Square, T>(out, in);
    case UnaryOp::Clamp: return launch_unary<UnaryOp::Clamp, T>(out, in, p0.to<C>(), p1.to<C>());
    case UnaryOp::ClampMin: return launch_unary<UnaryOp::ClampMin, T>(out, in, p0.to<C>());
    case UnaryOp::ClampMax: return launch_unary<UnaryOp::ClampMax, T>(out, in, p0.to<C>());
    default: throw NotImplementedError("[unary] op is not a numeric op");
  }
}

template <typename T>
void floating_typed(UnaryOp op, const Tensor& out, const Tensor& in, const Scalar& p0, const Scalar& p1) {
  using C = compute_t<T>;
  switch (op) {
    case UnaryOp::Exp: return launch_unary<UnaryOp::Exp, T>(out, in);
    case UnaryOp::Log: return launch_unary<UnaryOp::Log, T>(out, in);
    case UnaryOp::Log1p: return launch_unary<UnaryOp::Log1p, T>(out, in);
    case UnaryOp::Expm1: return launch_unary<UnaryOp::Expm1, T>(out, in);
    case UnaryOp::Sqrt: return launch_unary<UnaryOp::Sqrt, T>(out, in);
    case UnaryOp::Rsqrt: return launch_unary<UnaryOp::Rsqrt, T>(out, in);
    case UnaryOp::Sin: return launch_unary<UnaryOp::Sin, T>(out, in);
    case UnaryOp::Cos: return launch_unary<UnaryOp::Cos, T>(out, in);
    case UnaryOp::Tanh: return launch_unary<UnaryOp::Tanh, T>(out, in);
    case UnaryOp::Sigmoid: return launch_unary<UnaryOp::Sigmoid, T>(out, in);
    case UnaryOp::Erf: return launch_unary<UnaryOp::Erf, T>(out, in);
    case UnaryOp::Reciprocal: return launch_unary<UnaryOp::Reciprocal, T>(out, in);
    case UnaryOp::Gelu: return launch_unary<UnaryOp::Gelu, T>(out, in);
    case UnaryOp::GeluTanh: return launch_unary<UnaryOp::GeluTanh, T>(out, in);
    case UnaryOp::Silu: return launch_unary<UnaryOp::Silu, T>(out, in);
    case UnaryOp::Softplus: return launch_unary<UnaryOp::Softplus, T>(out, in, p0.to<C>(), p1.to<C>());
    case UnaryOp::Floor: return launch_unary<UnaryOp::Floor, T>(out, in);
    case UnaryOp::Ceil: return launch_unary<UnaryOp::Ceil, T>(out, in);
    case UnaryOp::Round: return launch_unary<UnaryOp::Round, T>(out, in);
    case UnaryOp::Trunc: return launch_unary<UnaryOp::Trunc, T>(out, in);
    default: return numeric_typed<T>(op, out, in, p0, p1);  // neg, abs, relu, clamp... on floats
  }
}

template <typename T>
void predicate_typed(UnaryOp op, const Tensor& out, const Tensor& in) {
  using S = typename ElemTraits<T>::storage;
  switch (op) {
    case UnaryOp::IsNan: return elementwise::launch<bool, S>("isnan", PredicateFunctor<UnaryOp::IsNan, T>{}, out, in);
    case UnaryOp::IsInf: return elementwise::launch<bool, S>("isinf", PredicateFunctor<UnaryOp::IsInf, T>{}, out, in);
    case UnaryOp::IsFinite:
      return elementwise::launch<bool, S>("isfinite", PredicateFunctor<UnaryOp::IsFinite, T>{}, out, in);
    default: throw NotImplementedError("[unary] op is not a predicate");
  }
}

bool is_numeric_op(UnaryOp op) { return op <= UnaryOp::ClampMax; }

void unary_cuda(UnaryOp op, const Tensor& out, const Tensor& in, const Scalar& p0, const Scalar& p1) {
  const DType dt = in.dtype();
  switch (op) {
    case UnaryOp::IsNan:
    case UnaryOp::IsInf:
    case UnaryOp::IsFinite:
      BM_DISPATCH_FLOATING(dt, "unary", [&] { predicate_typed<scalar_t>(op, out, in); });
      return;
    case UnaryOp::LogicalNot: return elementwise::launch<bool, bool>("logical_not", LogicalNotFunctor{}, out, in);
    case UnaryOp::BitwiseNot:
      if (dt == DType::Bool) elementwise::launch<bool, bool>("bitwise_not", LogicalNotFunctor{}, out, in);
      else if (dt == DType::Int32) elementwise::launch<int32_t, int32_t>("bitwise_not", BitwiseNotFunctor<int32_t>{}, out, in);
      else elementwise::launch<int64_t, int64_t>("bitwise_not", BitwiseNotFunctor<int64_t>{}, out, in);
      return;
    default: break;
  }
  if (is_floating(dt)) {
    BM_DISPATCH_FLOATING(dt, "unary", [&] { floating_typed<scalar_t>(op, out, in, p0, p1); });
  } else {
    BM_CHECK_DTYPE(is_numeric_op(op) && dt != DType::Bool, "unary", "op not implemented for ", dtype_name(dt));
    if (dt == DType::Int32) numeric_typed<int32_t>(op, out, in, p0, p1);
    else numeric_typed<int64_t>(op, out, in, p0, p1);
  }
}

}  // namespace

BM_REGISTER_KERNEL(unary_kernel, CUDA, &unary_cuda);

}  // namespace bigmodel::cuda
