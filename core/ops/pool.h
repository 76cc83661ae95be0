// The 2-D pooling family with PyTorch's semantics: max_pool2d (with flat h * W + w indices
// per plane), avg_pool2d, adaptive_avg_pool2d and adaptive_max_pool2d, their kernels and
// backward ops (themselves differentiable, so double backward works).
#pragma once
#include <array>
#include <optional>
#include <utility>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

struct Pool2dParams {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  bool count_include_pad = true;  // avg only
  int64_t divisor_override = 0;   // avg only; 0 = none
};

// Kernels see contiguous planes: input [P, H, W], out / indices [P, oH, oW] (indices int64).
BM_DECLARE_KERNEL(max_pool2d_kernel, void (*)(const Tensor& out, const Tensor& indices, const Tensor& input,
                                              const Pool2dParams& p));
BM_DECLARE_KERNEL(avg_pool2d_kernel, void (*)(const Tensor& out, const Tensor& input, const Pool2dParams& p));
// grad_input [P, H, W] is written (not accumulated) from grad_output [P, oH, oW].
BM_DECLARE_KERNEL(avg_pool2d_backward_kernel, void (*)(const Tensor& grad_input, const Tensor& grad_output,
                                                       const Pool2dParams& p));
// Adaptive windows: rows floor(i * H / oH) .. ceil((i + 1) * H / oH), columns alike.
BM_DECLARE_KERNEL(adaptive_avg_pool2d_kernel, void (*)(const Tensor& out, const Tensor& input));
BM_DECLARE_KERNEL(adaptive_avg_pool2d_backward_kernel, void (*)(const Tensor& grad_input,
                                                                const Tensor& grad_output));
BM_DECLARE_KERNEL(adaptive_max_pool2d_kernel, void (*)(const Tensor& out, const Tensor& indices,
                                                       const Tensor& input));
// grad_input [P, H * W] = 0, then grad_input[p, indices[p, j]] += grad_output[p, j] for
// grad_output / indices [P, L] (the backward of both max pools).
BM_DECLARE_KERNEL(max_pool_backward_kernel, void (*)(const Tensor& grad_input, const Tensor& grad_output,
                                                     const Tensor& indices));

// input [N, C, H, W] or [C, H, W]. stride nullopt = kernel_size.
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, std::array<int64_t, 2> kernel_size,
                                                  std::optional<std::array<int64_t, 2>> stride = std::nullopt,
                                                  std::array<int64_t, 2> padding = {0, 0},
                                                  std::array<int64_t, 2> dilation = {1, 1}, bool ceil_mode = false);
Tensor max_pool2d(const Tensor& input, std::array<int64_t, 2> kernel_size,
                  std::optional<std::array<int64_t, 2>> stride = std::nullopt, std::array<int64_t, 2> padding = {0, 0},
                  std::array<int64_t, 2> dilation = {1, 1}, bool ceil_mode = false);
Tensor avg_pool2d(const Tensor& input, std::array<int64_t, 2> kernel_size,
                  std::optional<std::array<int64_t, 2>> stride = std::nullopt, std::array<int64_t, 2> padding = {0, 0},
                  bool ceil_mode = false, bool count_include_pad = true,
                  std::optional<int64_t> divisor_override = std::nullopt);
Tensor adaptive_avg_pool2d(const Tensor& input, std::array<int64_t, 2> output_size);
std::pair<Tensor, Tensor> adaptive_max_pool2d(const Tensor& input, std::array<int64_t, 2> output_size);

// Backward ops. input_sizes is the forward input's shape (3-D or 4-D); grad_output and
// indices have the forward output's shape.
Tensor max_pool_backward(const Tensor& grad_output, const Tensor& indices, const Shape& input_sizes);
Tensor avg_pool2d_backward(const Tensor& grad_output, const Shape& input_sizes, const Pool2dParams& p);
Tensor adaptive_avg_pool2d_backward(const Tensor& grad_output, const Shape& input_sizes);

}  // namespace bigmodel
