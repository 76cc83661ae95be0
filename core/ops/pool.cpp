// Pooling front ends: PyTorch's argument rules and output-size formula (ceil_mode
// included), 3-D / 4-D inputs viewed as planes for the kernels, and backward formulas
// written with the backward ops (whose own backward is the forward pool or a gather).
#include "core/ops/pool.h"

#include "core/autograd.h"
#include "core/ops/index.h"
#include "core/ops/view.h"

namespace bigmodel {

BM_DEFINE_KERNEL(max_pool2d_kernel);
BM_DEFINE_KERNEL(avg_pool2d_kernel);
BM_DEFINE_KERNEL(avg_pool2d_backward_kernel);
BM_DEFINE_KERNEL(adaptive_avg_pool2d_kernel);
BM_DEFINE_KERNEL(adaptive_avg_pool2d_backward_kernel);
BM_DEFINE_KERNEL(adaptive_max_pool2d_kernel);
BM_DEFINE_KERNEL(max_pool_backward_kernel);

namespace {

std::string pair_str(int64_t a, int64_t b) { return str_cat("(", a, ", ", b, ")"); }

// 3-D [C, H, W] or 4-D [N, C, H, W] floating input with non-empty C, H, W (N may be 0).
void check_input(const char* op, const Tensor& input) {
  BM_CHECK_VALUE(input.defined(), op, "expected a defined input tensor");
  BM_CHECK_SHAPE(input.dim() == 3 || input.dim() == 4, op,
                 "expected a 3-D (unbatched) or 4-D (batched) input, got input ", shape_str(input.sizes()), " (",
                 input.dim(), "-D)");
  for (int64_t d = input.dim() - 3; d < input.dim(); ++d) {
    BM_CHECK_SHAPE(input.size(d) > 0, op, "expected non-empty channel and spatial dims, got input ",
                   shape_str(input.sizes()));
  }
  BM_CHECK_DTYPE(is_floating(input.dtype()), op, "expected a floating point input, got ",
                 dtype_name(input.dtype()));
}

// The forward output's shape: the input's leading dims with the spatial dims replaced.
Shape out_shape(const Shape& in, int64_t oh, int64_t ow) {
  Shape s = in;
  s[s.size() - 2] = oh;
  s[s.size() - 1] = ow;
  return s;
}

int64_t planes_of(const Shape& s) { return s.size() == 4 ? s[0] * s[1] : s[0]; }

// A contiguous tensor as [P, a, b] (no autograd: kernels only).
Tensor as_planes(const Tensor& t, int64_t a, int64_t b) {
  return view(contiguous(t.detach()), {planes_of(t.sizes()), a, b});
}

// PyTorch's pooling output size: floor (or ceil) of the window count, where a ceil-mode
// window must start inside the input or its left padding.
int64_t pool_out(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil_mode) {
  int64_t num = in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  int64_t q = num >= 0 ? num / stride : -((-num + stride - 1) / stride);  // floor division
  int64_t out = q + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

Pool2dParams make_params(const char* op, const Tensor& input, std::array<int64_t, 2> k,
                         std::optional<std::array<int64_t, 2>> stride, std::array<int64_t, 2> pad,
                         std::array<int64_t, 2> dil) {
  check_input(op, input);
  std::array<int64_t, 2> s = stride ? *stride : k;
  BM_CHECK_VALUE(k[0] > 0 && k[1] > 0, op, "kernel_size must be positive, got kernel_size ", pair_str(k[0], k[1]));
  BM_CHECK_VALUE(s[0] > 0 && s[1] > 0, op, "stride must be positive, got stride ", pair_str(s[0], s[1]));
  BM_CHECK_VALUE(dil[0] > 0 && dil[1] > 0, op, "dilation must be positive, got dilation ",
                 pair_str(dil[0], dil[1]));
  BM_CHECK_VALUE(pad[0] >= 0 && pad[1] >= 0, op, "negative padding is not supported, got padding ",
                 pair_str(pad[0], pad[1]));
  BM_CHECK_VALUE(pad[0] <= k[0] / 2 && pad[1] <= k[1] / 2, op,
                 "padding should be at most half of the kernel size, got padding ", pair_str(pad[0], pad[1]),
                 " with kernel_size ", pair_str(k[0], k[1]));
  Pool2dParams p;
  p.kernel_h = k[0], p.kernel_w = k[1];
  p.stride_h = s[0], p.stride_w = s[1];
  p.pad_h = pad[0], p.pad_w = pad[1];
  p.dilation_h = dil[0], p.dilation_w = dil[1];
  return p;
}

std::array<int64_t, 2> out_size(const char* op, const Tensor& input, const Pool2dParams& p, bool ceil_mode) {
  const int64_t H = input.size(-2), W = input.size(-1);
  const int64_t oh = pool_out(H, p.kernel_h, p.pad_h, p.stride_h, p.dilation_h, ceil_mode);
  const int64_t ow = pool_out(W, p.kernel_w, p.pad_w, p.stride_w, p.dilation_w, ceil_mode);
  BM_CHECK_SHAPE(oh > 0 && ow > 0, op, "output size ", pair_str(oh, ow), " is too small for input ",
                 shape_str(input.sizes()), " with kernel_size ", pair_str(p.kernel_h, p.kernel_w), ", stride ",
                 pair_str(p.stride_h, p.stride_w), ", padding ", pair_str(p.pad_h, p.pad_w), ", dilation ",
                 pair_str(p.dilation_h, p.dilation_w));
  return {oh, ow};
}

// Records max_pool_backward as the gradient of a max pool whose argmax is `indices`.
void record_max_backward(const char* op, const Tensor& input, const Tensor& out, const Tensor& indices) {
  const Shape in_sizes = input.sizes();
  record_function(op, {input}, {out}, [=](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{max_pool_backward(g[0], indices, in_sizes)};
  }, SecondOrder::Full);
}

Tensor avg_pool2d_raw(const Tensor& input, const Pool2dParams& p, int64_t oh, int64_t ow) {
  Tensor out = Tensor::empty(out_shape(input.sizes(), oh, ow), input.dtype(), input.device());
  if (out.numel() > 0) {
    avg_pool2d_kernel.get(input.device())(view(out, {planes_of(out.sizes()), oh, ow}),
                                          as_planes(input, input.size(-2), input.size(-1)), p);
  }
  if (needs_grad({input})) {
    const Shape in_sizes = input.sizes();
    record_function("avg_pool2d", {input}, {out}, [=](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{avg_pool2d_backward(g[0], in_sizes, p)};
    }, SecondOrder::Full);
  }
  return out;
}

}  // namespace

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, std::array<int64_t, 2> kernel_size,
                                                  std::optional<std::array<int64_t, 2>> stride,
                                                  std::array<int64_t, 2> padding, std::array<int64_t, 2> dilation,
                                                  bool ceil_mode) {
  const char* op = "max_pool2d";
  const Pool2dParams p = make_params(op, input, kernel_size, stride, padding, dilation);
  const auto [oh, ow] = out_size(op, input, p, ceil_mode);
  const Shape os = out_shape(input.sizes(), oh, ow);
  Tensor out = Tensor::empty(os, input.dtype(), input.device());
  Tensor indices = Tensor::empty(os, DType::Int64, input.device());
  if (out.numel() > 0) {
    const int64_t P = planes_of(os);
    max_pool2d_kernel.get(input.device())(view(out, {P, oh, ow}), view(indices, {P, oh, ow}),
                                          as_planes(input, input.size(-2), input.size(-1)), p);
  }
  if (needs_grad({input})) record_max_backward(op, input, out, indices);
  return {out, indices};
}

Tensor max_pool2d(const Tensor& input, std::array<int64_t, 2> kernel_size,
                  std::optional<std::array<int64_t, 2>> stride, std::array<int64_t, 2> padding,
                  std::array<int64_t, 2> dilation, bool ceil_mode) {
  return max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode).first;
}

Tensor avg_pool2d(const Tensor& input, std::array<int64_t, 2> kernel_size,
                  std::optional<std::array<int64_t, 2>> stride, std::array<int64_t, 2> padding, bool ceil_mode,
                  bool count_include_pad, std::optional<int64_t> divisor_override) {
  const char* op = "avg_pool2d";
  Pool2dParams p = make_params(op, input, kernel_size, stride, padding, {1, 1});
  if (divisor_override) {
    BM_CHECK_VALUE(*divisor_override != 0, op, "divisor_override must be non-zero");
    p.divisor_override = *divisor_override;
  }
  p.count_include_pad = count_include_pad;
  const auto [oh, ow] = out_size(op, input, p, ceil_mode);
  return avg_pool2d_raw(input, p, oh, ow);
}

Tensor adaptive_avg_pool2d(const Tensor& input, std::array<int64_t, 2> output_size) {
  const char* op = "adaptive_avg_pool2d";
  check_input(op, input);
  const auto [oh, ow] = output_size;
  BM_CHECK_VALUE(oh >= 0 && ow >= 0, op, "output_size must be non-negative, got ", pair_str(oh, ow));
  Tensor out = Tensor::empty(out_shape(input.sizes(), oh, ow), input.dtype(), input.device());
  if (out.numel() > 0) {
    adaptive_avg_pool2d_kernel.get(input.device())(view(out, {planes_of(out.sizes()), oh, ow}),
                                                   as_planes(input, input.size(-2), input.size(-1)));
  }
  if (needs_grad({input})) {
    const Shape in_sizes = input.sizes();
    record_function(op, {input}, {out}, [=](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{adaptive_avg_pool2d_backward(g[0], in_sizes)};
    }, SecondOrder::Full);
  }
  return out;
}

std::pair<Tensor, Tensor> adaptive_max_pool2d(const Tensor& input, std::array<int64_t, 2> output_size) {
  const char* op = "adaptive_max_pool2d";
  check_input(op, input);
  const auto [oh, ow] = output_size;
  BM_CHECK_VALUE(oh >= 0 && ow >= 0, op, "output_size must be non-negative, got ", pair_str(oh, ow));
  const Shape os = out_shape(input.sizes(), oh, ow);
  Tensor out = Tensor::empty(os, input.dtype(), input.device());
  Tensor indices = Tensor::empty(os, DType::Int64, input.device());
  if (out.numel() > 0) {
    const int64_t P = planes_of(os);
    adaptive_max_pool2d_kernel.get(input.device())(view(out, {P, oh, ow}), view(indices, {P, oh, ow}),
                                                   as_planes(input, input.size(-2), input.size(-1)));
  }
  if (needs_grad({input})) record_max_backward(op, input, out, indices);
  return {out, indices};
}

Tensor max_pool_backward(const Tensor& grad_output, const Tensor& indices, const Shape& input_sizes) {
  const char* op = "max_pool_backward";
  BM_CHECK_SHAPE(grad_output.sizes() == indices.sizes() && (input_sizes.size() == 3 || input_sizes.size() == 4) &&
                     grad_output.dim() == static_cast<int64_t>(input_sizes.size()),
                 op, "grad_output ", shape_str(grad_output.sizes()), " and indices ", shape_str(indices.sizes()),
                 " do not fit input ", shape_str(input_sizes));
  BM_CHECK_DTYPE(indices.dtype() == DType::Int64, op, "indices must be int64, got ", dtype_name(indices.dtype()));
  BM_CHECK_DTYPE(grad_output.dtype() != DType::Bool && is_floating(grad_output.dtype()), op,
                 "expected a floating point grad_output, got ", dtype_name(grad_output.dtype()));
  const int64_t P = planes_of(input_sizes), HW = input_sizes[input_sizes.size() - 2] * input_sizes.back();
  const int64_t L = grad_output.size(-2) * grad_output.size(-1);
  const Tensor idx = contiguous(indices);
  if (idx.numel() > 0) {  // the kernel writes where the indices point: they must lie in the plane
    int64_t lo = 0, hi = 0;
    index_minmax_kernel.get(idx.device())(idx, &lo, &hi);
    BM_CHECK_INDEX(lo >= 0 && hi < HW, op, "indices must lie in [0, ", HW, ") for input ", shape_str(input_sizes),
                   ", got values in [", lo, ", ", hi, "]");
  }
  Tensor grad_input = Tensor::empty(input_sizes, grad_output.dtype(), grad_output.device());
  if (grad_input.numel() > 0) {
    max_pool_backward_kernel.get(grad_output.device())(view(grad_input, {P, HW}),
                                                       view(contiguous(grad_output.detach()), {P, L}),
                                                       view(idx, {P, L}));
  }
  if (needs_grad({grad_output})) {
    // Linear in grad_output: its adjoint picks each output's argmax element (a gather).
    const Shape gs = grad_output.sizes();
    record_function(op, {grad_output}, {grad_input}, [=](const std::vector<Tensor>& g) {
      Tensor picked = gather(reshape(g[0], {P, HW}), 1, reshape(indices, {P, L}));
      return std::vector<Tensor>{reshape(picked, gs)};
    });
  }
  return grad_input;
}

namespace {
void check_grad(const char* op, const Tensor& grad_output, const Shape& input_sizes) {
  BM_CHECK_SHAPE((input_sizes.size() == 3 || input_sizes.size() == 4) &&
                     grad_output.dim() == static_cast<int64_t>(input_sizes.size()),
                 op, "grad_output ", shape_str(grad_output.sizes()), " does not fit input ", shape_str(input_sizes));
  for (size_t d = 0; d + 2 < input_sizes.size(); ++d) {
    BM_CHECK_SHAPE(grad_output.size(static_cast<int64_t>(d)) == input_sizes[d], op, "grad_output ",
                   shape_str(grad_output.sizes()), " does not fit input ", shape_str(input_sizes));
  }
}
}  // namespace

Tensor avg_pool2d_backward(const Tensor& grad_output, const Shape& input_sizes, const Pool2dParams& p) {
  const char* op = "avg_pool2d_backward";
  check_grad(op, grad_output, input_sizes);
  const int64_t H = input_sizes[input_sizes.size() - 2], W = input_sizes.back();
  const int64_t oh = grad_output.size(-2), ow = grad_output.size(-1);
  Tensor grad_input = Tensor::empty(input_sizes, grad_output.dtype(), grad_output.device());
  if (grad_input.numel() > 0) {
    avg_pool2d_backward_kernel.get(grad_output.device())(view(grad_input, {planes_of(input_sizes), H, W}),
                                                         as_planes(grad_output, oh, ow), p);
  }
  if (needs_grad({grad_output})) {
    record_function(op, {grad_output}, {grad_input}, [=](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{avg_pool2d_raw(g[0], p, oh, ow)};
    });
  }
  return grad_input;
}

Tensor adaptive_avg_pool2d_backward(const Tensor& grad_output, const Shape& input_sizes) {
  const char* op = "adaptive_avg_pool2d_backward";
  check_grad(op, grad_output, input_sizes);
  const int64_t H = input_sizes[input_sizes.size() - 2], W = input_sizes.back();
  const int64_t oh = grad_output.size(-2), ow = grad_output.size(-1);
  Tensor grad_input = Tensor::empty(input_sizes, grad_output.dtype(), grad_output.device());
  if (grad_input.numel() > 0) {
    adaptive_avg_pool2d_backward_kernel.get(grad_output.device())(view(grad_input, {planes_of(input_sizes), H, W}),
                                                                  as_planes(grad_output, oh, ow));
  }
  if (needs_grad({grad_output})) {
    record_function(op, {grad_output}, {grad_input}, [=](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{adaptive_avg_pool2d(g[0], {oh, ow})};
    });
  }
  return grad_input;
}

}  // namespace bigmodel
