// The matmul family: matmul (full PyTorch semantics), mm, bmm, mv, dot, outer, linear,
// addmm, with their backward formulas. One kernel family does every product: gemm_kernel.
#pragma once
#include <optional>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

// out[..., M, N] = a[..., M, K] @ b[..., K, N]. All three have dim >= 2 and the same batch
// dims (broadcast batch dims arrive expanded, stride 0); out is contiguous; a and b may
// have any strides. One dtype for all three. K == 0 gives zeros.
BM_DECLARE_KERNEL(gemm_kernel, void (*)(const Tensor& out, const Tensor& a, const Tensor& b));

Tensor matmul(const Tensor& a, const Tensor& b);
Tensor mm(const Tensor& a, const Tensor& b);     // [M, K] x [K, N]
Tensor bmm(const Tensor& a, const Tensor& b);    // [B, M, K] x [B, K, N]
Tensor mv(const Tensor& a, const Tensor& v);     // [M, K] x [K]
Tensor dot(const Tensor& a, const Tensor& b);    // [K] . [K] -> 0-d
Tensor outer(const Tensor& a, const Tensor& b);  // [M] x [N] -> [M, N]
// y = x @ weight^T + bias; weight is [out, in] (or [in]), x is [..., in].
Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor());
// beta * input + alpha * (m1 @ m2)
Tensor addmm(const Tensor& input, const Tensor& m1, const Tensor& m2, const Scalar& beta = Scalar(int64_t{1}),
             const Scalar& alpha = Scalar(int64_t{1}));

}  // namespace bigmodel
