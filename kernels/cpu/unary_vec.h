// Float32 fast paths of the unary kernels for contiguous tensors: the transcendental
// activations (exp, tanh, sigmoid, GELU's tanh form) through the AVX2 polynomials of
// vec_math.h instead of one libm call per element. Each returns false when it does not
// apply (other dtype or op, strided or broadcast operands, no AVX2+FMA), and the caller runs
// the generic loop.
#pragma once
#include "core/ops/unary.h"

namespace bigmodel::cpu {

bool unary_vec_f32(UnaryOp op, const Tensor& out, const Tensor& in);
// grad_in = grad * op'(saved) where `saved` is what unary_backward_kernel receives for op.
bool unary_backward_vec_f32(UnaryOp op, const Tensor& grad_in, const Tensor& grad, const Tensor& saved);

}  // namespace bigmodel::cpu
