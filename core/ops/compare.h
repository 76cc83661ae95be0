// Comparisons (eq ne lt le gt ge), logical and/or/xor, where and masked_fill: the
// elementwise ops that produce or consume bool masks. Comparisons record no gradient.
#pragma once
#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

// out = cond ? a : b; all four have out's shape (expanded); a, b and out share a dtype.
BM_DECLARE_KERNEL(where_kernel, void (*)(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b));

// Bool results; inputs are compared in their promoted dtype.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Scalar& b);
Tensor ne(const Tensor& a, const Scalar& b);
Tensor lt(const Tensor& a, const Scalar& b);
Tensor le(const Tensor& a, const Scalar& b);
Tensor gt(const Tensor& a, const Scalar& b);
Tensor ge(const Tensor& a, const Scalar& b);

// Nonzero is true, for any dtype; bool results.
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_xor(const Tensor& a, const Tensor& b);

// cond must be bool; a and b broadcast and promote; gradients route by cond.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, const Scalar& b);
Tensor where(const Tensor& cond, const Scalar& a, const Tensor& b);
Tensor where(const Tensor& cond, const Scalar& a, const Scalar& b);

// self with value where mask is true; the result keeps self's dtype. mask is bool and
// broadcasts (in place: to self's shape). A tensor value must be 0-d.
Tensor masked_fill(const Tensor& self, const Tensor& mask, const Scalar& value);
Tensor masked_fill(const Tensor& self, const Tensor& mask, const Tensor& value);
Tensor& masked_fill_(Tensor& self, const Tensor& mask, const Scalar& value);
Tensor& masked_fill_(Tensor& self, const Tensor& mask, const Tensor& value);

}  // namespace bigmodel
