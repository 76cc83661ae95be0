// CUDA kernel for the backward of unary elementwise ops, registered into
// unary_backward_kernel with the CPU's contract (kernels/cpu/unary_backward.cpp):
// grad_in = grad * op'(saved), `saved` the forward input or output as core/ops/unary.cpp
// chooses; floating dtypes only, half types computed in float; derivative formulas from
// kernels/functors.h where it has them, the same inline ones as the CPU kernel otherwise.
#include "core/ops/unary.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/elementwise_launch.cuh"
#include "kernels/functors.h"

namespace bigmodel::cuda {
namespace {

template <UnaryOp OP, typename T>
struct UnaryBackwardFunctor {
  using S = typename ElemTraits<T>::storage;
  using C = typename ElemTraits<T>::wide;
  C p0, p1;

  __device__ __forceinline__ S operator()(S gs, S ss) const {
    return ElemTraits<T>::store(apply(ElemTraits<T>::load(gs), ElemTraits<T>::load(ss)));
  }

  // `s` is the forward input x for the first group, the forward output y for the second.
  __device__ __forceinline__ C apply(C g, C s) const {
    if constexpr (OP == UnaryOp::Abs) return g * fn::sign(s);
    else if constexpr (OP == UnaryOp::Square) return C(2) * g * s;
    else if constexpr (OP == UnaryOp::Log) return g / s;
    else if constexpr (OP == UnaryOp::Log1p) return g / (C(1) + s);
    else if constexpr (OP == UnaryOp::Sin) return g * std::cos(s);
    else if constexpr (OP == UnaryOp::Cos) return -g * std::sin(s);
    else if constexpr (OP == UnaryOp::Erf) return fn::d_erf(g, s);
    else if constexpr (OP == UnaryOp::Gelu) return fn::d_gelu(g, s);
    else if constexpr (OP == UnaryOp::GeluTanh) return fn::d_gelu_tanh(g, s);
    else if constexpr (OP == UnaryOp::Silu) return fn::d_silu(g, s);
    else if constexpr (OP == UnaryOp::Softplus) return fn::d_softplus(g, s, p0, p1);
    // Clamp gradients pass where min <= x <= max, like PyTorch.
    else if constexpr (OP == UnaryOp::Clamp) return (s >= p0 && s <= p1) ? g : C(0);
    else if constexpr (OP == UnaryOp::ClampMin) return s >= p0 ? g : C(0);
    else if constexpr (OP == UnaryOp::ClampMax) return s <= p0 ? g : C(0);
    else if constexpr (OP == UnaryOp::Relu) return s > C(0) ? g : C(0);
    else if constexpr (OP == UnaryOp::Exp) return g * s;
    else if constexpr (OP == UnaryOp::Expm1) return g * (s + C(1));
    else if constexpr (OP == UnaryOp::Sqrt) return g / (C(2) * s);
    else if constexpr (OP == UnaryOp::Rsqrt) return C(-0.5) * g * s * s * s;
    else if constexpr (OP == UnaryOp::Tanh) return g * (C(1) - s * s);
    else if constexpr (OP == UnaryOp::Sigmoid) return g * s * (C(1) - s);
    else return -g * s * s;  // Reciprocal
  }
};

template <UnaryOp OP, typename T>
void launch_backward(const Tensor& grad_in, const Tensor& grad, const Tensor& saved, compute_t<T> p0 = {},
                     compute_t<T> p1 = {}) {
  using F = UnaryBackwardFunctor<OP, T>;
  using S = typename F::S;
  elementwise::launch<S, S, S>("unary_backward", F{p0, p1}, grad_in, grad, saved);
}

template <typename T>
void unary_backward_typed(UnaryOp op, const Tensor& gi, const Tensor& g, const Tensor& s, const Scalar& p0,
                          const Scalar& p1) {
  using C = compute_t<T>;
  switch (op) {
    case UnaryOp::Abs: return launch_backward<UnaryOp::Abs, T>(gi, g, s);
    case UnaryOp::Square: return launch_backward<UnaryOp::Square, T>(gi, g, s);
    case UnaryOp::Log: return launch_backward<UnaryOp::Log, T>(gi, g, s);
    case UnaryOp::Log1p: return launch_backward<UnaryOp::Log1p, T>(gi, g, s);
    case UnaryOp::Sin: return launch_backward<UnaryOp::Sin, T>(gi, g, s);
    case UnaryOp::Cos: return launch_backward<UnaryOp::Cos, T>(gi, g, s);
    case UnaryOp::Erf: return launch_backward<UnaryOp::Erf, T>(gi, g, s);
    case UnaryOp::Gelu: return launch_backward<UnaryOp::Gelu, T>(gi, g, s);
    case UnaryOp::GeluTanh: return launch_backward<UnaryOp::GeluTanh, T>(gi, g, s);
    case UnaryOp::Silu: return launch_backward<UnaryOp::Silu, T>(gi, g, s);
    case UnaryOp::Softplus: return launch_backward<UnaryOp::Softplus, T>(gi, g, s, p0.to<C>(), p1.to<C>());
    case UnaryOp::Clamp: return launch_backward<UnaryOp::Clamp, T>(gi, g, s, p0.to<C>(), p1.to<C>());
    case UnaryOp::ClampMin: return launch_backward<UnaryOp::ClampMin, T>(gi, g, s, p0.to<C>());
    case UnaryOp::ClampMax: return launch_backward<UnaryOp::ClampMax, T>(gi, g, s, p0.to<C>());
    case UnaryOp::Relu: return launch_backward<UnaryOp::Relu, T>(gi, g, s);
    case UnaryOp::Exp: return launch_backward<UnaryOp::Exp, T>(gi, g, s);
    case UnaryOp::Expm1: return launch_backward<UnaryOp::Expm1, T>(gi, g, s);
    case UnaryOp::Sqrt: return launch_backward<UnaryOp::Sqrt, T>(gi, g, s);
    case UnaryOp::Rsqrt: return launch_backward<UnaryOp::Rsqrt, T>(gi, g, s);
    case UnaryOp::Tanh: return launch_backward<UnaryOp::Tanh, T>(gi, g, s);
    case UnaryOp::Sigmoid: return launch_backward<UnaryOp::Sigmoid, T>(gi, g, s);
    case UnaryOp::Reciprocal: return launch_backward<UnaryOp::Reciprocal, T>(gi, g, s);
    default: throw NotImplementedError("[unary_backward] op has no backward kernel");
  }
}

void unary_backward_cuda(UnaryOp op, const Tensor& grad_in, const Tensor& grad, const Tensor& saved,
                         const Scalar& p0, const Scalar& p1) {
  BM_DISPATCH_FLOATING(grad.dtype(), "unary_backward",
                       [&] { unary_backward_typed<scalar_t>(op, grad_in, grad, saved, p0, p1); });
}

}  // namespace

BM_REGISTER_KERNEL(unary_backward_kernel, CUDA, &unary_backward_cuda);

}  // namespace bigmodel::cuda
