// int8 quantization ops: symmetric per-row / per-tensor quantize and dequantize, the int8 GEMM
// (int32 accumulation, float epilogue with per-row and per-column scales), and the quantized
// linear and conv2d built on it. Inference only: nothing here records autograd.
#pragma once
#include <array>

#include "core/dispatch.h"
#include "core/ops/conv.h"
#include "core/tensor.h"

namespace bigmodel {

// Storage of int8 matrices. bigmodel has no int8 dtype, so an int8 matrix [R, K] lives in an
// Int32 tensor [R, K4], K4 = ceil(K / 4): four int8 values per 32-bit word along K, the first
// in the lowest byte (little-endian), pad bytes zero. Memory is one byte per value, and the
// words are what dp4a / int8 MMA instructions consume. Values are in [-127, 127] when made by
// quantize_int8 (symmetric, zero point 0); the GEMM is exact for the whole int8 range.
inline int64_t int8_words(int64_t k) { return (k + 3) / 4; }

// out Int32 [R, K4] contiguous; x floating [R, K] any strides; scale Float32 contiguous [R] or
// [1] (positive). q = clamp(round_half_even(x / scale), -127, 127).
BM_DECLARE_KERNEL(quantize_int8_kernel, void (*)(const Tensor& out, const Tensor& x, const Tensor& scale));
// out Float32 [R, K] contiguous = q * scale (per row, or one scale); q packed Int32 [R, K4].
BM_DECLARE_KERNEL(dequantize_int8_kernel, void (*)(const Tensor& out, const Tensor& q, const Tensor& scale));
// a packed [M, K4], b packed [N, K4] (both contiguous): acc[m, n] = sum_k a[m, k] * b[n, k] in
// int32. out Int32 [M, N]: acc (scales and bias undefined). out Float32 [M, N]:
// acc * a_scale[m or 0] * b_scale[n or 0] + bias[n] (bias may be undefined); scales and bias
// contiguous Float32.
BM_DECLARE_KERNEL(int8_gemm_kernel, void (*)(const Tensor& out, const Tensor& a, const Tensor& b, int64_t k,
                                             const Tensor& a_scale, const Tensor& b_scale, const Tensor& bias));
// Quantizes input [N, C, H, W] (contiguous floating) with one scale and writes its im2col rows
// packed: out Int32 [N*oH*oW, int8_words(C*kH*kW)], column order (c, i, j) as
// weight.reshape(O, -1); padding reads as 0.
BM_DECLARE_KERNEL(int8_im2col_kernel, void (*)(const Tensor& out, const Tensor& input, const Tensor& scale,
                                               int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                                               const Conv2dParams& p));
// Optional fused convolution (registered on the CPU only; other devices use im2col + GEMM):
// out Float32 [N, O, oH, oW] contiguous; input [N, C, H, W] contiguous floating; weight_q
// packed [O, int8_words(C*kH*kW)] contiguous; input_scale Float32 [1]; weight_scale Float32
// [O] or [1]; bias Float32 [O] or undefined. Same result as im2col + int8_gemm + NCHW.
BM_DECLARE_KERNEL(int8_conv2d_kernel, void (*)(const Tensor& out, const Tensor& input, const Tensor& weight_q,
                                               const Tensor& input_scale, const Tensor& weight_scale,
                                               const Tensor& bias, int64_t kh, int64_t kw, const Conv2dParams& p));

// x [R, K] floating (any strides), scale Float32 [R] or [1] -> packed Int32 [R, K4].
Tensor quantize_int8(const Tensor& x, const Tensor& scale);
// packed [R, K4] with logical width k -> Float32 [R, k].
Tensor dequantize_int8(const Tensor& q, int64_t k, const Tensor& scale);
// packed [M, K4] x packed [N, K4] (logical K = k) -> exact Int32 [M, N] accumulators.
Tensor int8_gemm(const Tensor& a, const Tensor& b, int64_t k);
// The same with the float epilogue: Float32 [M, N] = acc * a_scale * b_scale + bias.
Tensor int8_gemm_scaled(const Tensor& a, const Tensor& b, int64_t k, const Tensor& a_scale,
                        const Tensor& b_scale, const Tensor& bias = Tensor());
// y[..., N] = dequant(quant(x, input_scale)) @ dequant(weight_q)^T + bias, computed in int8;
// x [..., K] floating, weight_q packed [N, K4], weight_scale [N] or [1], input_scale [1].
Tensor quantized_linear(const Tensor& input, const Tensor& weight_q, int64_t in_features,
                        const Tensor& weight_scale, const Tensor& input_scale, const Tensor& bias = Tensor());
// input [N, C, H, W] floating; weight_q packed [O, int8_words(C*kH*kW)] of a weight with shape
// weight_shape = {O, C, kH, kW}; groups 1. Returns Float32 [N, O, oH, oW].
Tensor quantized_conv2d(const Tensor& input, const Tensor& weight_q, const Shape& weight_shape,
                        const Tensor& weight_scale, const Tensor& input_scale, const Tensor& bias,
                        std::array<int64_t, 2> stride = {1, 1}, std::array<int64_t, 2> padding = {0, 0},
                        std::array<int64_t, 2> dilation = {1, 1});

}  // namespace bigmodel
