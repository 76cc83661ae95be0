// Unary elementwise ops: math (exp, log, sqrt, trig, rounding), activations (relu, gelu,
// silu, softplus, sigmoid, tanh), clamp, predicates (isnan, isinf, isfinite,
// logical_not, bitwise_not), their in-place forms and their backward.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

enum class UnaryOp : uint8_t {
  // Numeric (any non-bool dtype, result keeps it).
  Neg, Abs, Sign, Relu, Square, Clamp, ClampMin, ClampMax,
  // Floating only (integer inputs are promoted to float32 by the front end).
  Exp, Log, Log1p, Expm1, Sqrt, Rsqrt, Sin, Cos, Tanh, Sigmoid, Erf, Reciprocal,
  Gelu, GeluTanh, Silu, Softplus, Floor, Ceil, Round, Trunc,
  // Bool results: predicates on floating inputs; logical_not on bool inputs.
  IsNan, IsInf, IsFinite, LogicalNot,
  // Bool or integer inputs, same-dtype result.
  BitwiseNot,
};

// out = op(in). `in` has out's shape and the compute dtype (out's dtype, except for the
// bool-result ops). p0/p1 are the op's parameters: clamp bounds, softplus beta/threshold.
BM_DECLARE_KERNEL(unary_kernel, void (*)(UnaryOp op, const Tensor& out, const Tensor& in,
                                         const Scalar& p0, const Scalar& p1));
// grad_in = grad * op'(saved), where `saved` is the forward input or output (see unary.cpp).
// All three tensors share one shape and one floating dtype.
BM_DECLARE_KERNEL(unary_backward_kernel,
                  void (*)(UnaryOp op, const Tensor& grad_in, const Tensor& grad, const Tensor& saved,
                           const Scalar& p0, const Scalar& p1));

Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor square(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor expm1(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor erf(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor floor(const Tensor& x);
Tensor ceil(const Tensor& x);
Tensor round(const Tensor& x);  // half to even, like PyTorch
Tensor trunc(const Tensor& x);
// approximate: "none" (erf form) or "tanh".
Tensor gelu(const Tensor& x, const std::string& approximate = "none");
Tensor silu(const Tensor& x);
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);
// Scalar bounds; at least one must be given. Integer tensors with float bounds give float32.
Tensor clamp(const Tensor& x, const std::optional<Scalar>& min, const std::optional<Scalar>& max);
// Tensor bounds (broadcast): min(max(x, lo), hi) built from maximum/minimum.
Tensor clamp(const Tensor& x, const Tensor& min, const Tensor& max);
Tensor clamp_min(const Tensor& x, const Scalar& min);
Tensor clamp_max(const Tensor& x, const Scalar& max);

Tensor isnan(const Tensor& x);
Tensor isinf(const Tensor& x);
Tensor isfinite(const Tensor& x);
Tensor logical_not(const Tensor& x);
Tensor bitwise_not(const Tensor& x);  // bool and integer tensors

// In place. A result dtype that can't be stored in x's dtype raises DTypeError.
Tensor& neg_(Tensor& x);
Tensor& abs_(Tensor& x);
Tensor& sign_(Tensor& x);
Tensor& relu_(Tensor& x);
Tensor& square_(Tensor& x);
Tensor& exp_(Tensor& x);
Tensor& log_(Tensor& x);
Tensor& log1p_(Tensor& x);
Tensor& expm1_(Tensor& x);
Tensor& sqrt_(Tensor& x);
Tensor& rsqrt_(Tensor& x);
Tensor& sin_(Tensor& x);
Tensor& cos_(Tensor& x);
Tensor& tanh_(Tensor& x);
Tensor& sigmoid_(Tensor& x);
Tensor& erf_(Tensor& x);
Tensor& reciprocal_(Tensor& x);
Tensor& floor_(Tensor& x);
Tensor& ceil_(Tensor& x);
Tensor& round_(Tensor& x);
Tensor& trunc_(Tensor& x);
Tensor& silu_(Tensor& x);
Tensor& clamp_(Tensor& x, const std::optional<Scalar>& min, const std::optional<Scalar>& max);
Tensor& logical_not_(Tensor& x);
Tensor& bitwise_not_(Tensor& x);

}  // namespace bigmodel
