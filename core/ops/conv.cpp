// conv2d / conv1d front ends: validation with PyTorch's rules, output geometry (padding
// 'same' included), and the backward formulas, written with the gradient ops below so they
// run on every device. conv1d is conv2d over a height-1 image.
#include "core/ops/conv.h"

#include <algorithm>

#include "core/amp.h"
#include "core/autograd.h"
#include "core/ops/reduce.h"
#include "core/ops/view.h"

namespace bigmodel {

BM_DEFINE_KERNEL(conv2d_forward_kernel);
BM_DEFINE_KERNEL(conv2d_backward_input_kernel);
BM_DEFINE_KERNEL(conv2d_backward_weight_kernel);

namespace {

// The spatial dims of a request as the user wrote them: 1 for conv1d, 2 for conv2d. In
// 1-D requests only index 1 (width) is meaningful; height is a fixed 1 with no padding.
struct ConvRequest {
  const char* op;
  int spatial;
  std::array<int64_t, 2> stride, pad_lo, pad_hi, dilation;
  int64_t groups;
};

std::string tuple_str(const std::array<int64_t, 2>& v, int spatial) {
  return spatial == 1 ? str_cat("(", v[1], ",)") : str_cat("(", v[0], ", ", v[1], ")");
}

// Forward conv over 4-D operands with the output size given; records autograd.
Tensor conv2d_raw(const char* name, const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p,
                  int64_t out_h, int64_t out_w) {
  Tensor out = Tensor::empty({x.size(0), w.size(0), out_h, out_w}, x.dtype(), x.device());
  if (out.numel() > 0) {
    conv2d_forward_kernel.get(x.device())(out, contiguous(x.detach()), contiguous(w.detach()),
                                          b.defined() ? contiguous(b.detach()) : Tensor(), p);
  }
  if (needs_grad({x, w, b})) {
    const bool gx = x.requires_grad(), gw = w.requires_grad(), gb = b.defined() && b.requires_grad();
    SavedTensor save_x = gw ? SavedTensor(x) : SavedTensor();
    SavedTensor save_w = gx ? SavedTensor(w) : SavedTensor();
    const Shape xs = x.sizes(), ws = w.sizes();
    record_function(name, {x, w, b}, {out}, [=](const std::vector<Tensor>& g) {
      Tensor dx, dw, db;
      if (gx) dx = conv2d_backward_input(g[0], save_w.unpack(name), xs, p);
      if (gw) dw = conv2d_backward_weight(g[0], save_x.unpack(name), ws, p);
      if (gb) db = sum(g[0], {0, 2, 3});
      return std::vector<Tensor>{dx, dw, db};
    }, SecondOrder::Full);
  }
  return out;
}

// Validates a conv request against PyTorch's rules and runs it as a 4-D conv2d.
Tensor conv_front(const ConvRequest& r, const Tensor& input_in, const Tensor& weight_in, const Tensor& bias_in) {
  // Autocast (core/amp.h): conv runs in the autocast dtype.
  const Tensor input = amp::autocast_lower(input_in), weight = amp::autocast_lower(weight_in),
               bias = amp::autocast_lower(bias_in);
  const char* op = r.op;
  const int sp = r.spatial;
  BM_CHECK_VALUE(input.defined() && weight.defined(), op, "expected defined input and weight tensors");
  BM_CHECK_SHAPE(input.dim() == sp + 1 || input.dim() == sp + 2, op, "expected ", sp + 1, "-D (unbatched) or ",
                 sp + 2, "-D (batched) input, got input ", shape_str(input.sizes()), " (", input.dim(), "-D)");
  BM_CHECK_SHAPE(weight.dim() == sp + 2, op, "expected a ", sp + 2, "-D weight [out_channels, in_channels/groups",
                 sp == 2 ? ", kH, kW" : ", k", "], got weight ", shape_str(weight.sizes()));
  BM_CHECK_DTYPE(is_floating(input.dtype()), op, "expected a floating point input, got ",
                 dtype_name(input.dtype()));
  BM_CHECK_DTYPE(input.dtype() == weight.dtype(), op, "input dtype ", dtype_name(input.dtype()),
                 " and weight dtype ", dtype_name(weight.dtype()), " should be the same");
  BM_CHECK_DEVICE(input.device() == weight.device(), op, "input on ", input.device().str(), " and weight on ",
                  weight.device().str(), " should be on one device");
  if (bias.defined()) {
    BM_CHECK_DTYPE(bias.dtype() == input.dtype(), op, "input dtype ", dtype_name(input.dtype()),
                   " and bias dtype ", dtype_name(bias.dtype()), " should be the same");
    BM_CHECK_DEVICE(bias.device() == input.device(), op, "input on ", input.device().str(), " and bias on ",
                    bias.device().str(), " should be on one device");
  }
  for (int d = 2 - sp; d < 2; ++d) {
    BM_CHECK_VALUE(r.stride[d] > 0, op, "stride must be positive, got stride ", tuple_str(r.stride, sp));
    BM_CHECK_VALUE(r.dilation[d] > 0, op, "dilation must be positive, got dilation ", tuple_str(r.dilation, sp));
    BM_CHECK_VALUE(r.pad_lo[d] >= 0 && r.pad_hi[d] >= 0, op, "negative padding is not supported, got padding ",
                   tuple_str(r.pad_lo, sp));
  }
  BM_CHECK_VALUE(r.groups > 0, op, "groups must be positive, got groups=", r.groups);
  const int64_t out_ch = weight.size(0);
  for (int64_t d = 1; d < weight.dim(); ++d) {
    BM_CHECK_SHAPE(weight.size(d) > 0, op, "weight ", shape_str(weight.sizes()), " has an empty dim");
  }
  BM_CHECK_VALUE(out_ch % r.groups == 0, op, "groups=", r.groups, " must divide out_channels (", out_ch,
                 ") of weight ", shape_str(weight.sizes()));
  const bool batched = input.dim() == sp + 2;
  const int64_t in_ch = input.size(batched ? 1 : 0);
  BM_CHECK_SHAPE(in_ch == weight.size(1) * r.groups, op, "expected input with ", weight.size(1) * r.groups,
                 " channels (weight ", shape_str(weight.sizes()), ", groups=", r.groups, "), got input ",
                 shape_str(input.sizes()));
  if (bias.defined()) {
    BM_CHECK_SHAPE(bias.dim() == 1 && bias.size(0) == out_ch, op, "expected bias of shape [", out_ch, "], got ",
                   shape_str(bias.sizes()));
  }
  // Spatial geometry, in 2-D terms (a 1-D request has height 1, kernel height 1).
  std::array<int64_t, 2> in_hw{1, 1}, k_hw{1, 1}, out_hw{1, 1};
  for (int d = 2 - sp; d < 2; ++d) {
    in_hw[d] = input.size(input.dim() - 2 + d);
    k_hw[d] = weight.size(weight.dim() - 2 + d);
  }
  std::array<int64_t, 2> padded{}, span{};
  for (int d = 0; d < 2; ++d) {
    padded[d] = in_hw[d] + r.pad_lo[d] + r.pad_hi[d];
    span[d] = r.dilation[d] * (k_hw[d] - 1) + 1;
  }
  for (int d = 2 - sp; d < 2; ++d) {
    BM_CHECK_SHAPE(span[d] <= padded[d], op, "kernel size ", tuple_str(k_hw, sp), " with dilation ",
                   tuple_str(r.dilation, sp), " spans ", tuple_str(span, sp), ", larger than the padded input ",
                   tuple_str(padded, sp), " (input ", shape_str(input.sizes()), ", padding ",
                   tuple_str(r.pad_lo, sp), ")");
    out_hw[d] = (padded[d] - span[d]) / r.stride[d] + 1;
  }
  Conv2dParams p;
  p.stride_h = r.stride[0];
  p.stride_w = r.stride[1];
  p.pad_h = r.pad_lo[0];
  p.pad_w = r.pad_lo[1];
  p.dilation_h = r.dilation[0];
  p.dilation_w = r.dilation[1];
  p.groups = r.groups;
  // Views to [N, C, H, W] and [O, C/g, kH, kW]: their backward reshapes the gradients.
  Tensor x = batched ? input : unsqueeze(input, 0);
  Tensor w = weight;
  if (sp == 1) {
    x = unsqueeze(x, 2);
    w = unsqueeze(w, 2);
  }
  Tensor out = conv2d_raw(op, x, w, bias, p, out_hw[0], out_hw[1]);
  if (sp == 1) out = squeeze(out, 2);
  return batched ? out : squeeze(out, 0);
}

// Fills pad_lo / pad_hi for a padding mode from the weight's kernel size.
void mode_padding(ConvRequest& r, ConvPadding padding, const Tensor& weight) {
  const char* op = r.op;
  r.pad_lo = r.pad_hi = {0, 0};
  if (padding == ConvPadding::Valid) return;
  for (int d = 2 - r.spatial; d < 2; ++d) {
    BM_CHECK_VALUE(r.stride[d] == 1, op, "padding='same' is not supported for strided convolutions, got stride ",
                   tuple_str(r.stride, r.spatial));
  }
  BM_CHECK_SHAPE(weight.defined() && weight.dim() == r.spatial + 2, op, "expected a ", r.spatial + 2,
                 "-D weight, got weight ", weight.defined() ? shape_str(weight.sizes()) : "undefined");
  for (int d = 2 - r.spatial; d < 2; ++d) {
    const int64_t k = weight.size(weight.dim() - 2 + d);
    const int64_t total = std::max<int64_t>(r.dilation[d] * (k - 1), 0);
    r.pad_lo[d] = total / 2;  // the odd one goes to the bottom / right, as in PyTorch
    r.pad_hi[d] = total - total / 2;
  }
}

void check_grad_operands(const char* op, const Tensor& grad, const Tensor& other, const Shape& sizes) {
  BM_CHECK_SHAPE(grad.dim() == 4 && other.dim() == 4 && sizes.size() == 4, op,
                 "expected 4-D tensors, got grad_output ", shape_str(grad.sizes()), " and ",
                 shape_str(other.sizes()), " for sizes ", shape_str(sizes));
  BM_CHECK_DTYPE(grad.dtype() == other.dtype(), op, "grad_output dtype ", dtype_name(grad.dtype()), " and ",
                 dtype_name(other.dtype()), " should be the same");
}

}  // namespace

ConvPadding parse_conv_padding(const std::string& padding, const char* op) {
  if (padding == "valid") return ConvPadding::Valid;
  BM_CHECK_VALUE(padding == "same", op, "padding must be 'valid', 'same', an int or a tuple, got '", padding, "'");
  return ConvPadding::Same;
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, std::array<int64_t, 2> stride,
              std::array<int64_t, 2> padding, std::array<int64_t, 2> dilation, int64_t groups) {
  return conv_front({"conv2d", 2, stride, padding, padding, dilation, groups}, input, weight, bias);
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, std::array<int64_t, 2> stride,
              ConvPadding padding, std::array<int64_t, 2> dilation, int64_t groups) {
  ConvRequest r{"conv2d", 2, stride, {0, 0}, {0, 0}, dilation, groups};
  mode_padding(r, padding, weight);
  return conv_front(r, input, weight, bias);
}

Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
              int64_t dilation, int64_t groups) {
  return conv_front({"conv1d", 1, {1, stride}, {0, padding}, {0, padding}, {1, dilation}, groups}, input, weight,
                    bias);
}

Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias, int64_t stride, ConvPadding padding,
              int64_t dilation, int64_t groups) {
  ConvRequest r{"conv1d", 1, {1, stride}, {0, 0}, {0, 0}, {1, dilation}, groups};
  mode_padding(r, padding, weight);
  return conv_front(r, input, weight, bias);
}

Tensor conv2d_backward_input(const Tensor& grad_output, const Tensor& weight, const Shape& input_sizes,
                             const Conv2dParams& p) {
  const char* op = "conv2d_backward_input";
  check_grad_operands(op, grad_output, weight, input_sizes);
  Tensor grad_input = Tensor::empty(input_sizes, grad_output.dtype(), grad_output.device());
  if (grad_input.numel() > 0) {
    conv2d_backward_input_kernel.get(grad_output.device())(grad_input, contiguous(grad_output.detach()),
                                                           contiguous(weight.detach()), p);
  }
  if (needs_grad({grad_output, weight})) {
    // Linear in both operands: d/d(grad_output) is the forward conv, d/d(weight) the weight gradient.
    const bool gg = grad_output.requires_grad(), gw = weight.requires_grad();
    SavedTensor save_g = gw ? SavedTensor(grad_output) : SavedTensor();
    SavedTensor save_w = gg ? SavedTensor(weight) : SavedTensor();
    const Shape ws = weight.sizes();
    const int64_t oh = grad_output.size(2), ow = grad_output.size(3);
    record_function(op, {grad_output, weight}, {grad_input}, [=](const std::vector<Tensor>& g) {
      Tensor dg, dw;
      if (gg) dg = conv2d_raw("conv2d", g[0], save_w.unpack(op), Tensor(), p, oh, ow);
      if (gw) dw = conv2d_backward_weight(save_g.unpack(op), g[0], ws, p);
      return std::vector<Tensor>{dg, dw};
    }, SecondOrder::Full);
  }
  return grad_input;
}

Tensor conv2d_backward_weight(const Tensor& grad_output, const Tensor& input, const Shape& weight_sizes,
                              const Conv2dParams& p) {
  const char* op = "conv2d_backward_weight";
  check_grad_operands(op, grad_output, input, weight_sizes);
  Tensor grad_weight = Tensor::empty(weight_sizes, grad_output.dtype(), grad_output.device());
  if (grad_weight.numel() > 0) {
    conv2d_backward_weight_kernel.get(grad_output.device())(grad_weight, contiguous(grad_output.detach()),
                                                            contiguous(input.detach()), p);
  }
  if (needs_grad({grad_output, input})) {
    const bool gg = grad_output.requires_grad(), gx = input.requires_grad();
    SavedTensor save_g = gx ? SavedTensor(grad_output) : SavedTensor();
    SavedTensor save_x = gg ? SavedTensor(input) : SavedTensor();
    const Shape xs = input.sizes();
    const int64_t oh = grad_output.size(2), ow = grad_output.size(3);
    record_function(op, {grad_output, input}, {grad_weight}, [=](const std::vector<Tensor>& g) {
      Tensor dg, dx;
      if (gg) dg = conv2d_raw("conv2d", save_x.unpack(op), g[0], Tensor(), p, oh, ow);
      if (gx) dx = conv2d_backward_input(save_g.unpack(op), g[0], xs, p);
      return std::vector<Tensor>{dg, dx};
    }, SecondOrder::Full);
  }
  return grad_weight;
}

}  // namespace bigmodel
