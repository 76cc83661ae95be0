// Binary elementwise ops with NumPy broadcasting and PyTorch type promotion: arithmetic,
// pow, maximum/minimum, remainder/fmod, bitwise ops, lerp, and their in-place forms.
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

enum class BinaryOp : uint8_t {
  Add, Sub, Mul, Div, Pow, Maximum, Minimum, Remainder, Fmod, FloorDivide,  // promoted dtype
  BitwiseAnd, BitwiseOr, BitwiseXor,                      // bool and integer dtypes
  Eq, Ne, Lt, Le, Gt, Ge, LogicalAnd, LogicalOr, LogicalXor  // result is bool
};
inline bool binary_returns_bool(BinaryOp op) { return op >= BinaryOp::Eq; }
// out = a op b; a and b already have out's shape (expanded) and the same dtype (the
// compute dtype; bool for the logical ops); out has that dtype, or bool for comparisons
// and logical ops.
BM_DECLARE_KERNEL(binary_kernel, void (*)(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b));

// Runs `a op b` with broadcasting after converting both inputs to `compute`; records no
// autograd. The building block of every binary front end.
Tensor binary_op_nograd(BinaryOp op, const Tensor& a, const Tensor& b, DType compute, const char* name);

// The dtype PyTorch gives `a op b` (0-d tensors and scalars rank below dimensioned ones).
DType result_type(const Tensor& a, const Tensor& b);
DType result_type(const Tensor& a, const Scalar& b);

Tensor add(const Tensor& a, const Tensor& b, const Scalar& alpha = Scalar(int64_t{1}));
Tensor sub(const Tensor& a, const Tensor& b, const Scalar& alpha = Scalar(int64_t{1}));
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);  // true division: integers give float32
Tensor add(const Tensor& a, const Scalar& b);
Tensor sub(const Tensor& a, const Scalar& b);
Tensor rsub(const Tensor& a, const Scalar& b);  // b - a
Tensor mul(const Tensor& a, const Scalar& b);
Tensor div(const Tensor& a, const Scalar& b);
Tensor rdiv(const Tensor& a, const Scalar& b);  // b / a

Tensor& add_(Tensor& self, const Tensor& other, const Scalar& alpha = Scalar(int64_t{1}));
Tensor& sub_(Tensor& self, const Tensor& other, const Scalar& alpha = Scalar(int64_t{1}));
Tensor& mul_(Tensor& self, const Tensor& other);
Tensor& div_(Tensor& self, const Tensor& other);
Tensor& add_(Tensor& self, const Scalar& other);
Tensor& sub_(Tensor& self, const Scalar& other);
Tensor& mul_(Tensor& self, const Scalar& other);
Tensor& div_(Tensor& self, const Scalar& other);

// pow: float exponents of integer tensors give float32; integer tensors to negative
// integer scalar powers raise (as PyTorch). Gradients flow to base and exponent.
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Scalar& b);
Tensor pow(const Scalar& a, const Tensor& b);
Tensor& pow_(Tensor& self, const Tensor& other);
Tensor& pow_(Tensor& self, const Scalar& other);
// maximum/minimum propagate NaN; at ties the gradient is split half to each input (PyTorch).
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
// remainder: Python's % (sign of the divisor); fmod: C's fmod (sign of the dividend).
// floor_divide: floor(a / b), no gradient. Integer division by zero gives 0.
Tensor remainder(const Tensor& a, const Tensor& b);
Tensor remainder(const Tensor& a, const Scalar& b);
Tensor remainder(const Scalar& a, const Tensor& b);
Tensor fmod(const Tensor& a, const Tensor& b);
Tensor fmod(const Tensor& a, const Scalar& b);
Tensor floor_divide(const Tensor& a, const Tensor& b);
Tensor floor_divide(const Tensor& a, const Scalar& b);
Tensor& remainder_(Tensor& self, const Tensor& other);
Tensor& remainder_(Tensor& self, const Scalar& other);
// lerp: start + weight * (end - start), composed from ops.
Tensor lerp(const Tensor& start, const Tensor& end, const Scalar& weight);
Tensor lerp(const Tensor& start, const Tensor& end, const Tensor& weight);
// Bitwise ops on bool (logical) and integer tensors.
Tensor bitwise_and(const Tensor& a, const Tensor& b);
Tensor bitwise_or(const Tensor& a, const Tensor& b);
Tensor bitwise_xor(const Tensor& a, const Tensor& b);
Tensor bitwise_and(const Tensor& a, const Scalar& b);
Tensor bitwise_or(const Tensor& a, const Scalar& b);
Tensor bitwise_xor(const Tensor& a, const Scalar& b);
Tensor& bitwise_and_(Tensor& self, const Tensor& other);
Tensor& bitwise_or_(Tensor& self, const Tensor& other);
Tensor& bitwise_xor_(Tensor& self, const Tensor& other);
Tensor& bitwise_and_(Tensor& self, const Scalar& other);
Tensor& bitwise_or_(Tensor& self, const Scalar& other);
Tensor& bitwise_xor_(Tensor& self, const Scalar& other);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, const Scalar& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Scalar& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Scalar& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Scalar& b) { return div(a, b); }
inline Tensor operator*(const Scalar& a, const Tensor& b) { return mul(b, a); }
inline Tensor operator+(const Scalar& a, const Tensor& b) { return add(b, a); }

}  // namespace bigmodel

// The rest of the family is declared in core/ops/unary.h (unary math, activations, clamp)
// and core/ops/compare.h (comparisons, logical ops, where, masked_fill).
