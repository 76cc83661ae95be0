// CPU kernel for the backward of unary elementwise ops: grad_in = grad * op'(saved), with
// `saved` the forward input or output as core/ops/unary.cpp chooses. Floating dtypes only.
#include "core/ops/unary.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/unary_vec.h"
#include "kernels/functors.h"

namespace bigmodel::cpu {
namespace {

template <typename T>
void unary_backward_typed(UnaryOp op, const Tensor& grad_in, const Tensor& grad, const Tensor& saved,
                          const Scalar& p0, const Scalar& p1) {
  using C = compute_t<T>;
  auto run = [&](auto f) {
    map_elements<T, T, T>(grad_in, {&grad, &saved}, [f](T g, T s) {
      return static_cast<T>(f(static_cast<C>(g), static_cast<C>(s)));
    });
  };
  switch (op) {
    // Derivatives from the forward input x.
    case UnaryOp::Abs: run([](C g, C x) { return g * fn::sign(x); }); break;
    case UnaryOp::Square: run([](C g, C x) { return C(2) * g * x; }); break;
    case UnaryOp::Log: run([](C g, C x) { return g / x; }); break;
    case UnaryOp::Log1p: run([](C g, C x) { return g / (C(1) + x); }); break;
    case UnaryOp::Sin: run([](C g, C x) { return g * std::cos(x); }); break;
    case UnaryOp::Cos: run([](C g, C x) { return -g * std::sin(x); }); break;
    case UnaryOp::Erf: run([](C g, C x) { return fn::d_erf(g, x); }); break;
    case UnaryOp::Gelu: run([](C g, C x) { return fn::d_gelu(g, x); }); break;
    case UnaryOp::GeluTanh: run([](C g, C x) { return fn::d_gelu_tanh(g, x); }); break;
    case UnaryOp::Silu: run([](C g, C x) { return fn::d_silu(g, x); }); break;
    case UnaryOp::Softplus: {
      const C beta = p0.to<C>(), threshold = p1.to<C>();
      run([beta, threshold](C g, C x) { return fn::d_softplus(g, x, beta, threshold); });
      break;
    }
    case UnaryOp::Clamp: {  // gradient passes where min <= x <= max, like PyTorch
      const C lo = p0.to<C>(), hi = p1.to<C>();
      run([lo, hi](C g, C x) { return (x >= lo && x <= hi) ? g : C(0); });
      break;
    }
    case UnaryOp::ClampMin: {
      const C lo = p0.to<C>();
      run([lo](C g, C x) { return x >= lo ? g : C(0); });
      break;
    }
    case UnaryOp::ClampMax: {
      const C hi = p0.to<C>();
      run([hi](C g, C x) { return x <= hi ? g : C(0); });
      break;
    }
    // Derivatives from the forward output y.
    case UnaryOp::Relu: run([](C g, C y) { return y > C(0) ? g : C(0); }); break;
    case UnaryOp::Exp: run([](C g, C y) { return g * y; }); break;
    case UnaryOp::Expm1: run([](C g, C y) { return g * (y + C(1)); }); break;
    case UnaryOp::Sqrt: run([](C g, C y) { return g / (C(2) * y); }); break;
    case UnaryOp::Rsqrt: run([](C g, C y) { return C(-0.5) * g * y * y * y; }); break;
    case UnaryOp::Tanh: run([](C g, C y) { return g * (C(1) - y * y); }); break;
    case UnaryOp::Sigmoid: run([](C g, C y) { return g * y * (C(1) - y); }); break;
    case UnaryOp::Reciprocal: run([](C g, C y) { return -g * y * y; }); break;
    default: throw NotImplementedError("[unary_backward] op has no backward kernel");
  }
}

void unary_backward_cpu(UnaryOp op, const Tensor& grad_in, const Tensor& grad, const Tensor& saved,
                        const Scalar& p0, const Scalar& p1) {
  if (grad.dtype() == DType::Float32 && unary_backward_vec_f32(op, grad_in, grad, saved)) return;
  BM_DISPATCH_FLOATING(grad.dtype(), "unary_backward",
                       [&] { unary_backward_typed<scalar_t>(op, grad_in, grad, saved, p0, p1); });
}

}  // namespace

BM_REGISTER_KERNEL(unary_backward_kernel, CPU, &unary_backward_cpu);

}  // namespace bigmodel::cpu
