// The matmul family: matmul (full PyTorch semantics), mm, bmm, mv, dot, outer, linear,
// linear_act, addmm, with their backward formulas. Products run on gemm_kernel; linear and
// linear_act run on linear_kernel, one GEMM with the bias/activation fused into its epilogue.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

// out[..., M, N] = a[..., M, K] @ b[..., K, N]. All three have dim >= 2 and the same batch
// dims (broadcast batch dims arrive expanded, stride 0); out is contiguous; a and b may
// have any strides. One dtype for all three. K == 0 gives zeros.
BM_DECLARE_KERNEL(gemm_kernel, void (*)(const Tensor& out, const Tensor& a, const Tensor& b));

// The activation fused after linear_kernel's product (GELU is the exact erf form).
enum class LinearAct : uint8_t { None, ReLU, GELU, GELUTanh };

// out[M, N] = act(pre), pre = x[M, K] @ w[N, K]^T + bias[N]; aux, when defined, receives pre
// (what the activation's backward needs). x and w are 2-D with any strides; bias is 1-D
// contiguous or undefined; out and aux are contiguous. One floating dtype for all; M, N >= 1.
BM_DECLARE_KERNEL(linear_kernel, void (*)(const Tensor& out, const Tensor& aux, const Tensor& x, const Tensor& w,
                                          const Tensor& bias, LinearAct act));

Tensor matmul(const Tensor& a, const Tensor& b);
Tensor mm(const Tensor& a, const Tensor& b);     // [M, K] x [K, N]
Tensor bmm(const Tensor& a, const Tensor& b);    // [B, M, K] x [B, K, N]
Tensor mv(const Tensor& a, const Tensor& v);     // [M, K] x [K]
Tensor dot(const Tensor& a, const Tensor& b);    // [K] . [K] -> 0-d
Tensor outer(const Tensor& a, const Tensor& b);  // [M] x [N] -> [M, N]
// y = x @ weight^T + bias; weight is [out, in] (or [in]), x is [..., in].
Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor());
// act(linear(input, weight, bias)) with act "none", "relu", "gelu" (erf) or "gelu_tanh"; weight
// is [out, in], bias [out] or undefined. One GEMM with a fused epilogue where the device has
// linear_kernel and the input's leading dims fold into rows; linear + activation otherwise.
Tensor linear_act(const Tensor& input, const Tensor& weight, const Tensor& bias, const std::string& act);
// beta * input + alpha * (m1 @ m2)
Tensor addmm(const Tensor& input, const Tensor& m1, const Tensor& m2, const Scalar& beta = Scalar(int64_t{1}),
             const Scalar& alpha = Scalar(int64_t{1}));

}  // namespace bigmodel
