// Loss functions with PyTorch semantics (reduction 'mean' | 'sum' | 'none'): cross_entropy,
// nll_loss, mse_loss, l1_loss, binary_cross_entropy(_with_logits); their kernel families.
#pragma once
#include <cstdint>
#include <string>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

// Class-index NLL on a contiguous [N, C, D] input and [N, D] int64 target (D = product of
// the extra dims): loss[n, d] = -w[t] * in[n, t, d] and target_weight[n, d] = w[t], both 0
// where t == ignore_index; valid (may be undefined) = 1 where not ignored, else 0. weight
// ([C], input dtype) may be undefined (all ones). Targets outside [0, C) raise IndexError
// "[op] target T is out of bounds for C classes".
BM_DECLARE_KERNEL(nll_forward_kernel, void (*)(const Tensor& loss, const Tensor& target_weight, const Tensor& valid,
                                               const Tensor& input, const Tensor& target, const Tensor& weight,
                                               int64_t ignore_index, const char* op));
// grad_input ([N, C, D], contiguous) = 0 except grad_input[n, t, d] = -w[t] * grad[n, d].
BM_DECLARE_KERNEL(nll_backward_kernel, void (*)(const Tensor& grad_input, const Tensor& grad, const Tensor& target,
                                                const Tensor& weight, int64_t ignore_index));

enum class PointwiseLoss : uint8_t { L1, BCE, BCEWithLogits };
// out = loss(input, target, pos_weight), all one shape and dtype (inputs may be expanded).
// BCE logs are clamped at -100 as in PyTorch; BCE raises ValueError for inputs outside [0, 1].
BM_DECLARE_KERNEL(pointwise_loss_kernel, void (*)(PointwiseLoss kind, const Tensor& out, const Tensor& input,
                                                  const Tensor& target, const Tensor& pos_weight));
// grad = grad_out * d loss / d input (or d target when wrt_target).
BM_DECLARE_KERNEL(pointwise_loss_backward_kernel,
                  void (*)(PointwiseLoss kind, bool wrt_target, const Tensor& grad, const Tensor& input,
                           const Tensor& target, const Tensor& pos_weight, const Tensor& grad_out));

// Fused cross-entropy on [N, C] logits, registered for CUDA only (the CPU composes
// log_softmax + nll_loss; cross_entropy takes the fused path on CUDA for 2-D logits with
// class-index targets). input [N, C] contiguous, target [N] int64, weight [C] in the stat
// dtype (float32; float64 for float64 input) or undefined (all ones), eps = label smoothing.
// Forward, per row i with t = target[i]: lse[i] = logsumexp(input[i, :]) (stat dtype),
// target_weight[i] = w[t] and loss[i] = (1 - eps) * -w[t] * (input[i, t] - lse[i])
// + eps / C * -sum_c w[c] * (input[i, c] - lse[i]) (input dtype), both 0 where t ==
// ignore_index; wsum ([1], stat dtype) is given when weight is and eps > 0 and receives
// sum_c w[c] (undefined otherwise: the kernels use C). Targets outside [0, C) raise
// IndexError "[op] target T is out of bounds for C classes".
BM_DECLARE_KERNEL(cross_entropy_fused_forward_kernel,
                  void (*)(const Tensor& loss, const Tensor& target_weight, const Tensor& lse, const Tensor& wsum,
                           const Tensor& input, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                           double label_smoothing, const char* op));
// grad_input [N, C] (input dtype) = grad_rows[i] * ((1 - eps) * w[t] * (p - [c == t])
// + eps / C * (wsum * p - w[c])) with p = exp(input[i, c] - lse[i]) recomputed on the fly;
// rows with t == ignore_index get 0. grad_rows [N] is in the stat dtype; wsum as above.
BM_DECLARE_KERNEL(cross_entropy_fused_backward_kernel,
                  void (*)(const Tensor& grad_input, const Tensor& grad_rows, const Tensor& input, const Tensor& target,
                           const Tensor& weight, const Tensor& lse, const Tensor& wsum, int64_t ignore_index,
                           double label_smoothing));

// input [N, C] or [N, C, d1, ...] (or [C]) logits; target int64 class indices [N] / [N, d1, ...]
// (or a 0-d index), or class probabilities with the input's shape.
Tensor cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                     int64_t ignore_index = -100, const std::string& reduction = "mean",
                     double label_smoothing = 0.0);
Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                int64_t ignore_index = -100, const std::string& reduction = "mean");
Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean");
Tensor l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean");
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                                        const Tensor& pos_weight = Tensor(), const std::string& reduction = "mean");
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                            const std::string& reduction = "mean");

}  // namespace bigmodel
