// Normalisation ops: batch_norm (per-channel statistics over N and the spatial dims) and
// layer_norm (per-row statistics over the trailing normalized_shape), their fused kernel
// families and backward.
#pragma once
#include <array>
#include <tuple>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

// Batch norm kernels see the input as a contiguous [N, C, S] tensor (S = product of the
// spatial dims). Per-channel tensors (weight, bias, mean, invstd) are contiguous [C] of the
// stat dtype (float64 for float64 inputs, float32 otherwise); weight/bias may be undefined.
// training: mean/invstd are outputs (batch statistics, biased variance) and var_out gets
// the biased variance; otherwise mean/invstd are inputs (from the running statistics).
BM_DECLARE_KERNEL(batch_norm_forward_kernel,
                  void (*)(const Tensor& out, const Tensor& in, const Tensor& weight, const Tensor& bias,
                           const Tensor& mean, const Tensor& invstd, const Tensor& var_out, bool training,
                           double eps));
// grad_in (may be undefined) has the input's dtype and shape; grad_weight and grad_bias
// (may be undefined) are [C] in the stat dtype. training selects the batch-statistics
// formula (the mean and variance depend on the input).
BM_DECLARE_KERNEL(batch_norm_backward_kernel,
                  void (*)(const Tensor& grad_in, const Tensor& grad_weight, const Tensor& grad_bias,
                           const Tensor& grad_out, const Tensor& in, const Tensor& weight, const Tensor& mean,
                           const Tensor& invstd, bool training));

// Layer norm kernels see the input as a contiguous [rows, cols] matrix; weight/bias (may
// be undefined) are contiguous [cols] and mean/invstd [rows], all of the stat dtype.
BM_DECLARE_KERNEL(layer_norm_forward_kernel,
                  void (*)(const Tensor& out, const Tensor& in, const Tensor& weight, const Tensor& bias,
                           const Tensor& mean, const Tensor& invstd, double eps));
BM_DECLARE_KERNEL(layer_norm_backward_kernel,
                  void (*)(const Tensor& grad_in, const Tensor& grad_weight, const Tensor& grad_bias,
                           const Tensor& grad_out, const Tensor& in, const Tensor& weight, const Tensor& mean,
                           const Tensor& invstd));

// PyTorch's F.batch_norm: input [N, C, ...]. Training normalises with the batch mean and
// biased variance and, when running stats are given, updates them in place (no grad):
// running = (1 - momentum) * running + momentum * batch, with the UNBIASED batch variance.
// Eval normalises with the running statistics (which must then be given).
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum, double eps);

// Gradients of batch_norm for (input, weight, bias); an entry is undefined when its mask
// bit is off. Used by batch_norm's backward node.
std::tuple<Tensor, Tensor, Tensor> batch_norm_backward(const Tensor& grad_out, const Tensor& input,
                                                       const Tensor& weight, const Tensor& mean,
                                                       const Tensor& invstd, bool training,
                                                       std::array<bool, 3> mask);

// PyTorch's F.layer_norm over the trailing dims given by normalized_shape.
Tensor layer_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps);

}  // namespace bigmodel
