// The convolution family: conv2d (and conv1d through it) with PyTorch's semantics, its
// three kernels (forward, input gradient, weight gradient) and the gradient ops, which are
// differentiable again so double backward works.
#pragma once
#include <array>
#include <string>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

// Geometry shared by the conv kernels. pad_h / pad_w are the top / left padding; the
// bottom / right padding is implied by the output size the caller allocated (so padding
// 'same' with an odd total needs no padded copy of the input).
struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};

// All tensors contiguous and of one floating dtype; input [N, C, H, W], weight
// [O, C/groups, kH, kW], bias [O] or undefined, out [N, O, oH, oW].
BM_DECLARE_KERNEL(conv2d_forward_kernel, void (*)(const Tensor& out, const Tensor& input, const Tensor& weight,
                                                  const Tensor& bias, const Conv2dParams& p));
// grad_input [N, C, H, W] (written, not accumulated) from grad_output [N, O, oH, oW].
BM_DECLARE_KERNEL(conv2d_backward_input_kernel, void (*)(const Tensor& grad_input, const Tensor& grad_output,
                                                         const Tensor& weight, const Conv2dParams& p));
// grad_weight [O, C/groups, kH, kW] (written) summed over the batch.
BM_DECLARE_KERNEL(conv2d_backward_weight_kernel, void (*)(const Tensor& grad_weight, const Tensor& grad_output,
                                                          const Tensor& input, const Conv2dParams& p));

// input [N, C, H, W] or unbatched [C, H, W]; weight [O, C/groups, kH, kW]; bias [O] or
// undefined. padding is symmetric per dim.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(),
              std::array<int64_t, 2> stride = {1, 1}, std::array<int64_t, 2> padding = {0, 0},
              std::array<int64_t, 2> dilation = {1, 1}, int64_t groups = 1);
// Padding modes: Valid is none; Same keeps the input size (stride 1 only; an odd total puts
// the extra row / column at the bottom / right, as PyTorch does). An enum, not a string,
// so braced pairs like {1, 1} never pick this overload.
enum class ConvPadding { Valid, Same };
// "valid" / "same" -> ConvPadding; anything else is a ValueError naming op.
ConvPadding parse_conv_padding(const std::string& padding, const char* op);
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, std::array<int64_t, 2> stride,
              ConvPadding padding, std::array<int64_t, 2> dilation = {1, 1}, int64_t groups = 1);

// input [N, C, L] or [C, L]; weight [O, C/groups, k].
Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(), int64_t stride = 1,
              int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);
Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias, int64_t stride, ConvPadding padding,
              int64_t dilation = 1, int64_t groups = 1);

// The gradients of a 4-D conv2d as ops (autograd-recording, so double backward works):
// d(input) has input_sizes, d(weight) has weight_sizes; grad_output is [N, O, oH, oW].
Tensor conv2d_backward_input(const Tensor& grad_output, const Tensor& weight, const Shape& input_sizes,
                             const Conv2dParams& p);
Tensor conv2d_backward_weight(const Tensor& grad_output, const Tensor& input, const Shape& weight_sizes,
                              const Conv2dParams& p);

}  // namespace bigmodel
