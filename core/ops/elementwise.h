// Elementwise ops with NumPy broadcasting and PyTorch type promotion: binary arithmetic,
// comparisons, unary math and activations, where/masked_fill/clamp, and in-place forms.
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

enum class BinaryOp : uint8_t {
  Add, Sub, Mul, Div, Pow, Maximum, Minimum,              // result in the promoted dtype
  Eq, Ne, Lt, Le, Gt, Ge, LogicalAnd, LogicalOr, LogicalXor  // result is bool
};
// out = a op b; a and b already have out's shape (expanded) and the same dtype (the
// compute dtype); out has that dtype, or bool for comparisons and logical ops.
BM_DECLARE_KERNEL(binary_kernel, void (*)(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b));

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

// The rest of the family (unary, comparisons, pow, maximum/minimum, where, masked_fill,
// clamp) is declared in core/ops/unary.h and core/ops/compare.h.
