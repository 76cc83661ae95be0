// int8 quantization front ends: validate shapes, dtypes and devices, allocate, dispatch to the
// quant kernels. No autograd: quantized inference works on detached values.
#include "core/ops/quant.h"

#include "core/ops/view.h"

namespace bigmodel {

BM_DEFINE_KERNEL(quantize_int8_kernel);
BM_DEFINE_KERNEL(dequantize_int8_kernel);
BM_DEFINE_KERNEL(int8_gemm_kernel);
BM_DEFINE_KERNEL(int8_im2col_kernel);
BM_DEFINE_KERNEL(int8_conv2d_kernel);

namespace {

// Products of two int8 values are at most 2^14 in magnitude: int32 holds 2^17 of them.
constexpr int64_t kMaxInt8K = int64_t{1} << 17;

void check_packed(const Tensor& q, int64_t k, const char* op, const char* what) {
  BM_CHECK_VALUE(q.defined(), op, what, " is undefined");
  BM_CHECK_DTYPE(q.dtype() == DType::Int32, op, what, " must be an int32 tensor of packed int8 values, got ",
                 dtype_name(q.dtype()));
  BM_CHECK_SHAPE(q.dim() == 2, op, what, " must be 2-D [rows, ceil(k/4)], got shape ", shape_str(q.sizes()));
  BM_CHECK_VALUE(k >= 0, op, "k must be non-negative, got ", k);
  BM_CHECK_SHAPE(q.size(1) == int8_words(k), op, what, " of shape ", shape_str(q.sizes()), " holds ",
                 q.size(1) * 4, " int8 columns, which does not fit k = ", k, " (expected ", int8_words(k),
                 " words per row)");
}

// A scale vector for `rows` rows: Float32 [rows] or [1], made contiguous on the data's device.
Tensor check_scale(const Tensor& s, int64_t rows, Device device, const char* op, const char* what) {
  BM_CHECK_VALUE(s.defined(), op, what, " is undefined");
  BM_CHECK_DTYPE(is_floating(s.dtype()), op, what, " must be floating, got ", dtype_name(s.dtype()));
  BM_CHECK_SHAPE(s.dim() == 1 && (s.size(0) == rows || s.size(0) == 1), op, what, " must have shape [", rows,
                 "] or [1], got ", shape_str(s.sizes()));
  BM_CHECK_DEVICE(s.device() == device, op, what, " is on ", s.device().str(), ", the data on ", device.str());
  return contiguous(to(s.detach(), DType::Float32));
}

Tensor check_bias(const Tensor& b, int64_t n, Device device, const char* op) {
  if (!b.defined()) return b;
  BM_CHECK_DTYPE(is_floating(b.dtype()), op, "bias must be floating, got ", dtype_name(b.dtype()));
  BM_CHECK_SHAPE(b.dim() == 1 && b.size(0) == n, op, "bias must have shape [", n, "], got ", shape_str(b.sizes()));
  BM_CHECK_DEVICE(b.device() == device, op, "bias is on ", b.device().str(), ", the data on ", device.str());
  return contiguous(to(b.detach(), DType::Float32));
}

void check_gemm(const Tensor& a, const Tensor& b, int64_t k, const char* op) {
  check_packed(a, k, op, "a");
  check_packed(b, k, op, "b");
  BM_CHECK_DEVICE(a.device() == b.device(), op, "operands on different devices: ", a.device().str(), " and ",
                  b.device().str());
  BM_CHECK_VALUE(k <= kMaxInt8K, op, "k = ", k, " exceeds ", kMaxInt8K, ", where int32 accumulation could overflow");
}

}  // namespace

Tensor quantize_int8(const Tensor& x, const Tensor& scale) {
  const char* op = "quantize_int8";
  BM_CHECK_VALUE(x.defined(), op, "input is undefined");
  BM_CHECK_DTYPE(is_floating(x.dtype()), op, "input must be floating, got ", dtype_name(x.dtype()));
  BM_CHECK_SHAPE(x.dim() == 2, op, "input must be 2-D [rows, k], got shape ", shape_str(x.sizes()));
  Tensor s = check_scale(scale, x.size(0), x.device(), op, "scale");
  Tensor out = Tensor::empty({x.size(0), int8_words(x.size(1))}, DType::Int32, x.device());
  quantize_int8_kernel.get(x.device())(out, x.detach(), s);
  return out;
}

Tensor dequantize_int8(const Tensor& q, int64_t k, const Tensor& scale) {
  const char* op = "dequantize_int8";
  check_packed(q, k, op, "q");
  Tensor s = check_scale(scale, q.size(0), q.device(), op, "scale");
  Tensor out = Tensor::empty({q.size(0), k}, DType::Float32, q.device());
  dequantize_int8_kernel.get(q.device())(out, contiguous(q.detach()), s);
  return out;
}

Tensor int8_gemm(const Tensor& a, const Tensor& b, int64_t k) {
  check_gemm(a, b, k, "int8_gemm");
  Tensor out = Tensor::empty({a.size(0), b.size(0)}, DType::Int32, a.device());
  int8_gemm_kernel.get(a.device())(out, contiguous(a.detach()), contiguous(b.detach()), k, Tensor(), Tensor(),
                                   Tensor());
  return out;
}

Tensor int8_gemm_scaled(const Tensor& a, const Tensor& b, int64_t k, const Tensor& a_scale, const Tensor& b_scale,
                        const Tensor& bias) {
  const char* op = "int8_gemm";
  check_gemm(a, b, k, op);
  Tensor sa = check_scale(a_scale, a.size(0), a.device(), op, "a_scale");
  Tensor sb = check_scale(b_scale, b.size(0), a.device(), op, "b_scale");
  Tensor bi = check_bias(bias, b.size(0), a.device(), op);
  Tensor out = Tensor::empty({a.size(0), b.size(0)}, DType::Float32, a.device());
  int8_gemm_kernel.get(a.device())(out, contiguous(a.detach()), contiguous(b.detach()), k, sa, sb, bi);
  return out;
}

Tensor quantized_linear(const Tensor& input, const Tensor& weight_q, int64_t in_features, const Tensor& weight_scale,
                        const Tensor& input_scale, const Tensor& bias) {
  const char* op = "quantized_linear";
  BM_CHECK_VALUE(input.defined(), op, "input is undefined");
  BM_CHECK_DTYPE(is_floating(input.dtype()), op, "input must be floating, got ", dtype_name(input.dtype()));
  BM_CHECK_SHAPE(input.dim() >= 1 && input.size(-1) == in_features, op, "input of shape ",
                 shape_str(input.sizes()), " does not end in in_features = ", in_features);
  check_packed(weight_q, in_features, op, "weight");
  BM_CHECK_SHAPE(input_scale.defined() && input_scale.numel() == 1, op, "input_scale must hold one value");
  Shape lead(input.sizes().begin(), input.sizes().end() - 1);
  const int64_t rows = shape_numel(lead);
  Tensor xq = quantize_int8(reshape(input.detach(), {rows, in_features}), reshape(input_scale, {1}));
  Tensor y = int8_gemm_scaled(xq, weight_q, in_features, reshape(input_scale, {1}), weight_scale, bias);
  lead.push_back(weight_q.size(0));
  return reshape(y, lead);
}

Tensor quantized_conv2d(const Tensor& input, const Tensor& weight_q, const Shape& weight_shape,
                        const Tensor& weight_scale, const Tensor& input_scale, const Tensor& bias,
                        std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
                        std::array<int64_t, 2> dilation) {
  const char* op = "quantized_conv2d";
  BM_CHECK_VALUE(input.defined(), op, "input is undefined");
  BM_CHECK_DTYPE(is_floating(input.dtype()), op, "input must be floating, got ", dtype_name(input.dtype()));
  BM_CHECK_SHAPE(input.dim() == 4, op, "input must be 4-D [N, C, H, W], got shape ", shape_str(input.sizes()));
  BM_CHECK_SHAPE(weight_shape.size() == 4, op, "weight_shape must be [O, C, kH, kW], got ", shape_str(weight_shape));
  const int64_t O = weight_shape[0], C = weight_shape[1], kh = weight_shape[2], kw = weight_shape[3];
  BM_CHECK_SHAPE(O > 0 && kh > 0 && kw > 0, op, "weight_shape ", shape_str(weight_shape), " must be positive");
  BM_CHECK_SHAPE(input.size(1) == C, op, "input ", shape_str(input.sizes()), " has ", input.size(1),
                 " channels, weight ", shape_str(weight_shape), " expects ", C, " (groups=1)");
  check_packed(weight_q, C * kh * kw, op, "weight");
  BM_CHECK_SHAPE(weight_q.size(0) == O, op, "weight holds ", weight_q.size(0), " rows, weight_shape says ", O);
  BM_CHECK_VALUE(stride[0] > 0 && stride[1] > 0 && dilation[0] > 0 && dilation[1] > 0 && padding[0] >= 0 &&
                     padding[1] >= 0,
                 op, "stride and dilation must be positive and padding non-negative");
  BM_CHECK_SHAPE(input_scale.defined() && input_scale.numel() == 1, op, "input_scale must hold one value");
  Tensor s_in = check_scale(reshape(input_scale, {1}), 1, input.device(), op, "input_scale");
  Tensor s_w = check_scale(weight_scale, O, input.device(), op, "weight_scale");
  Tensor bi = check_bias(bias, O, input.device(), op);
  const int64_t N = input.size(0), H = input.size(2), W = input.size(3);
  const int64_t oh = (H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) / stride[0] + 1;
  const int64_t ow = (W + 2 * padding[1] - dilation[1] * (kw - 1) - 1) / stride[1] + 1;
  BM_CHECK_SHAPE(oh > 0 && ow > 0, op, "input ", shape_str(input.sizes()), " is smaller than the (dilated) kernel ",
                 shape_str(weight_shape), " with padding");
  const int64_t K = C * kh * kw;
  BM_CHECK_VALUE(K <= kMaxInt8K, op, "C*kH*kW = ", K, " exceeds ", kMaxInt8K);
  Conv2dParams p;
  p.stride_h = stride[0], p.stride_w = stride[1], p.pad_h = padding[0], p.pad_w = padding[1];
  p.dilation_h = dilation[0], p.dilation_w = dilation[1];
  if (int8_conv2d_kernel.table[static_cast<int>(input.device().type)]) {  // fused: NCHW straight out
    Tensor out = Tensor::empty({N, O, oh, ow}, DType::Float32, input.device());
    int8_conv2d_kernel.get(input.device())(out, contiguous(input.detach()), contiguous(weight_q.detach()), s_in, s_w,
                                           bi, kh, kw, p);
    return out;
  }
  Tensor cols = Tensor::empty({N * oh * ow, int8_words(K)}, DType::Int32, input.device());
  int8_im2col_kernel.get(input.device())(cols, contiguous(input.detach()), s_in, kh, kw, oh, ow, p);
  Tensor y = Tensor::empty({N * oh * ow, O}, DType::Float32, input.device());
  int8_gemm_kernel.get(input.device())(y, cols, contiguous(weight_q.detach()), K, s_in, s_w, bi);
  // Rows are (n, y, x) and columns channels: NHWC -> NCHW.
  return contiguous(permute(reshape(y, {N, oh, ow, O}), {0, 3, 1, 2}));
}

}  // namespace bigmodel
