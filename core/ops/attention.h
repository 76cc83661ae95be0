// scaled_dot_product_attention: PyTorch's F.scaled_dot_product_attention as a composed
// reference (matmul, masking, softmax, dropout, matmul), so autograd comes from the parts.
#pragma once
#include <optional>
#include <string>
#include <utility>

#include "core/dispatch.h"
#include "core/random.h"
#include "core/tensor.h"

namespace bigmodel {

// q [..., L, E], k [..., S, E], v [..., S, Ev] -> [..., L, Ev] (batch dims broadcast).
// attn_mask (optional, undefined = none) broadcasts to [..., L, S]: bool keeps where true,
// floating is added to the scores. is_causal keeps the lower triangle (row i sees j <= i).
// scale defaults to 1/sqrt(E). dropout_p > 0 drops attention weights with `gen` (nullptr =
// the default generator).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& attn_mask = Tensor(), double dropout_p = 0.0,
                                    bool is_causal = false, std::optional<double> scale = std::nullopt,
                                    Generator* gen = nullptr);

// As above but also returns the attention weights [..., L, S] (after dropout), which
// nn.MultiheadAttention hands back when need_weights is set.
std::pair<Tensor, Tensor> scaled_dot_product_attention_with_weights(
    const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask = Tensor(), double dropout_p = 0.0,
    bool is_causal = false, std::optional<double> scale = std::nullopt, Generator* gen = nullptr);

// ---- fused (flash) attention kernels, registered for CUDA only (kernels/cuda/flash_attention*.cu) ----
// The front end hands them 4-D [B, H, N, D] views (any strides; B and H already broadcast
// among q, k, v, stride 0 allowed), q/k/v of one dtype (float32, float16 or bfloat16), one head
// dim D <= 128 shared by q, k and v, Nq >= 1, Nk >= 1. mask is undefined or a bool / q-dtype
// tensor expanded to [B, H, Nq, Nk] (stride-0 broadcast dims). Outputs are fresh contiguous:
// out [B, H, Nq, D] in q's dtype, lse [B, H, Nq] float32 (natural-log logsumexp of the scaled,
// masked scores; NaN for a row whose keys are all masked, whose output is NaN as in the
// composed path).
BM_DECLARE_KERNEL(flash_attention_forward_kernel,
                  void (*)(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                           const Tensor& mask, double scale, bool causal));
// Gradients from the forward's out and lse (recomputing the scores, no N x N buffer):
// dq/dk/dv fresh contiguous [B, H, N, D] in q's dtype; dout any strides, q's dtype.
BM_DECLARE_KERNEL(flash_attention_backward_kernel,
                  void (*)(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout, const Tensor& q,
                           const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& mask,
                           double scale, bool causal));

// True when a fused kernel is registered for `device` (a CUDA build).
bool flash_attention_available(Device device);

// ---- the cuDNN baseline (bm.backends.attention = "cudnn"; kernels/cuda/attention_cudnn.cpp) ----
// Registered for CUDA only when the build found cuDNN and its frontend. Same contract as the
// flash stubs above, except: q/k/v/dout have unit stride along D (the front end makes them so),
// dtype float16 or bfloat16, D a multiple of 8 up to 128, and instead of a mask an optional
// additive `bias` in q's dtype, [Bb, Hb, Nq, Nk] with Bb in {1, B}, Hb in {1, H}, unit stride
// along Nk and 16-byte aligned rows (the row stride rounded up to a multiple of 8).
// lse is the same natural-log logsumexp (cuDNN's "Stats"), so out/lse pair with either backward.
BM_DECLARE_KERNEL(cudnn_attention_forward_kernel,
                  void (*)(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                           const Tensor& bias, double scale, bool causal));
BM_DECLARE_KERNEL(cudnn_attention_backward_kernel,
                  void (*)(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout, const Tensor& q,
                           const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& bias,
                           double scale, bool causal));

// Empty when the cuDNN attention baseline can run on `device`'s type; otherwise the reason
// (built without CUDA, cuDNN or the cuDNN frontend) and how to get it.
std::string cudnn_attention_unavailable_reason(Device device);

}  // namespace bigmodel
