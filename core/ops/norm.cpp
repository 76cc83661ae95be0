// batch_norm / layer_norm front ends: validation, running-statistics update, and backward
// nodes that call the fused backward kernels through batch_norm_backward/layer_norm_backward.
#include "core/ops/norm.h"

#include "core/autograd.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/view.h"

namespace bigmodel {

BM_DEFINE_KERNEL(batch_norm_forward_kernel);
BM_DEFINE_KERNEL(batch_norm_backward_kernel);
BM_DEFINE_KERNEL(layer_norm_forward_kernel);
BM_DEFINE_KERNEL(layer_norm_backward_kernel);

namespace {

// Statistics and affine parameters are kept in float for half types (as PyTorch does).
DType stat_dtype(DType t) { return t == DType::Float64 ? DType::Float64 : DType::Float32; }

Tensor as_stat(const Tensor& t, DType sd) { return t.defined() ? contiguous(to(t.detach(), sd)) : Tensor(); }

// A per-channel / per-feature tensor must have `shape`, a floating dtype and the input's device.
void check_param(const Tensor& t, const char* name, const Shape& shape, const Tensor& input, const char* op) {
  if (!t.defined()) return;
  BM_CHECK_SHAPE(t.sizes() == shape, op, name, " should have shape ", shape_str(shape), " for input of shape ",
                 shape_str(input.sizes()), ", got ", shape_str(t.sizes()));
  BM_CHECK_DTYPE(is_floating(t.dtype()), op, name, " must be floating point, got ", dtype_name(t.dtype()));
  BM_CHECK_DEVICE(t.device() == input.device(), op, name, " is on ", t.device().str(), " but input is on ",
                  input.device().str());
}

// The gradient for a parameter given as `like`, in its dtype (the kernels work in the stat dtype).
Tensor grad_as(const Tensor& g, const Tensor& like) {
  return g.defined() && like.defined() && g.dtype() != like.dtype() ? to(g, like.dtype()) : g;
}

// running = (1 - momentum) * running + momentum * batch, in place and outside autograd.
void update_running(const Tensor& running, const Tensor& batch, double momentum) {
  NoGradGuard no_grad;
  Tensor r = running;
  mul_(r, Scalar(1.0 - momentum));
  add_(r, to(batch, r.dtype()), Scalar(momentum));
}

}  // namespace

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  BM_CHECK_DTYPE(is_floating(input.dtype()), op, "expects a floating point input, got ", dtype_name(input.dtype()));
  BM_CHECK_SHAPE(input.dim() >= 2, op, "expects input of shape [N, C, ...] (2 or more dims), got ",
                 shape_str(input.sizes()));
  const int64_t N = input.size(0), C = input.size(1);
  int64_t S = 1;
  for (int64_t d = 2; d < input.dim(); ++d) S *= input.size(d);
  const Shape per_channel{C};
  check_param(running_mean, "running_mean", per_channel, input, op);
  check_param(running_var, "running_var", per_channel, input, op);
  check_param(weight, "weight", per_channel, input, op);
  check_param(bias, "bias", per_channel, input, op);
  BM_CHECK_VALUE(running_mean.defined() == running_var.defined(), op,
                 "running_mean and running_var must both be given or both be None");
  BM_CHECK_VALUE(training || running_mean.defined(), op,
                 "running_mean and running_var must be given when training=False");
  BM_CHECK_VALUE(eps >= 0, op, "eps must be >= 0, got ", eps);
  const int64_t count = N * S;  // values per channel
  BM_CHECK_VALUE(!training || count > 1 || input.numel() == 0, op,
                 "expected more than 1 value per channel when training, got input of shape ",
                 shape_str(input.sizes()));

  const DType sd = stat_dtype(input.dtype());
  const Device dev = input.device();
  Tensor x = contiguous(input.detach());
  Tensor w = as_stat(weight, sd), b = as_stat(bias, sd);
  Tensor out = Tensor::empty(input.sizes(), input.dtype(), dev);
  Tensor mean, invstd, var;
  if (training) {
    mean = Tensor::empty(per_channel, sd, dev);
    invstd = Tensor::empty(per_channel, sd, dev);
    var = Tensor::empty(per_channel, sd, dev);
  } else {
    NoGradGuard no_grad;
    mean = as_stat(running_mean, sd);
    invstd = contiguous(pow(add(as_stat(running_var, sd), Scalar(eps)), Scalar(-0.5)));
  }
  if (input.numel() > 0) {
    batch_norm_forward_kernel.get(dev)(out, x, w, b, mean, invstd, var, training, eps);
    if (training && running_mean.defined()) {
      update_running(running_mean, mean, momentum);
      NoGradGuard no_grad;
      update_running(running_var, mul(var, Scalar(static_cast<double>(count) / static_cast<double>(count - 1))),
                     momentum);
    }
  }

  if (needs_grad({input, weight, bias})) {
    const std::array<bool, 3> mask{input.requires_grad(), weight.defined() && weight.requires_grad(),
                                   bias.defined() && bias.requires_grad()};
    SavedTensor saved_x(x), saved_w(w);
    const Tensor weight_like = weight, bias_like = bias;  // only their dtypes are read
    record_function(op, {input, weight, bias}, {out}, [=](const std::vector<Tensor>& g) {
      auto [gi, gw, gb] = batch_norm_backward(g[0], saved_x.unpack(op), saved_w.defined() ? saved_w.unpack(op) : Tensor(),
                                              mean, invstd, training, mask);
      return std::vector<Tensor>{gi, grad_as(gw, weight_like), grad_as(gb, bias_like)};
    });
  }
  return out;
}

std::tuple<Tensor, Tensor, Tensor> batch_norm_backward(const Tensor& grad_out, const Tensor& input,
                                                       const Tensor& weight, const Tensor& mean,
                                                       const Tensor& invstd, bool training,
                                                       std::array<bool, 3> mask) {
  const char* op = "batch_norm_backward";
  BM_CHECK_SHAPE(grad_out.sizes() == input.sizes() && input.dim() >= 2, op, "grad_out has shape ",
                 shape_str(grad_out.sizes()), " but input has shape ", shape_str(input.sizes()));
  const int64_t C = input.size(1);
  const DType sd = stat_dtype(input.dtype());
  const Device dev = input.device();
  Tensor x = contiguous(input);
  Tensor g = contiguous(grad_out.dtype() == input.dtype() ? grad_out : to(grad_out, input.dtype()));
  Tensor gi = mask[0] ? Tensor::empty(input.sizes(), input.dtype(), dev) : Tensor();
  Tensor gw = mask[1] ? Tensor::empty({C}, sd, dev) : Tensor();
  Tensor gb = mask[2] ? Tensor::empty({C}, sd, dev) : Tensor();
  if (input.numel() > 0) {
    batch_norm_backward_kernel.get(dev)(gi, gw, gb, g, x, as_stat(weight, sd), as_stat(mean, sd),
                                        as_stat(invstd, sd), training);
  } else {
    if (gw.defined()) fill_(gw, Scalar(0.0));
    if (gb.defined()) fill_(gb, Scalar(0.0));
  }
  return {gi, gw, gb};
}

Tensor layer_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  const char* op = "layer_norm";
  BM_CHECK_DTYPE(is_floating(input.dtype()), op, "expects a floating point input, got ", dtype_name(input.dtype()));
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  bool matches = k >= 1 && k <= input.dim();
  for (int64_t i = 0; matches && i < k; ++i) matches = input.size(input.dim() - k + i) == normalized_shape[i];
  BM_CHECK_SHAPE(matches, op, "normalized_shape ", shape_str(normalized_shape),
                 " must be non-empty and equal the trailing dims of the input, whose shape is ",
                 shape_str(input.sizes()));
  check_param(weight, "weight", normalized_shape, input, op);
  check_param(bias, "bias", normalized_shape, input, op);
  BM_CHECK_VALUE(eps >= 0, op, "eps must be >= 0, got ", eps);
  const int64_t cols = shape_numel(normalized_shape);
  const int64_t rows = cols == 0 ? 0 : input.numel() / cols;

  const DType sd = stat_dtype(input.dtype());
  const Device dev = input.device();
  Tensor x = contiguous(input.detach());
  Tensor w = as_stat(weight, sd), b = as_stat(bias, sd);
  Tensor out = Tensor::empty(input.sizes(), input.dtype(), dev);
  Tensor mean = Tensor::empty({rows}, sd, dev), invstd = Tensor::empty({rows}, sd, dev);
  if (input.numel() > 0) layer_norm_forward_kernel.get(dev)(out, x, w, b, mean, invstd, eps);

  if (needs_grad({input, weight, bias})) {
    const std::array<bool, 3> mask{input.requires_grad(), weight.defined() && weight.requires_grad(),
                                   bias.defined() && bias.requires_grad()};
    SavedTensor saved_x(x), saved_w(w);
    const Tensor weight_like = weight, bias_like = bias;
    const Shape nshape = normalized_shape;
    record_function(op, {input, weight, bias}, {out}, [=](const std::vector<Tensor>& grads) {
      Tensor xs = saved_x.unpack(op);
      Tensor g = contiguous(grads[0].dtype() == xs.dtype() ? grads[0] : to(grads[0], xs.dtype()));
      Tensor gi = mask[0] ? Tensor::empty(xs.sizes(), xs.dtype(), xs.device()) : Tensor();
      Tensor gw = mask[1] ? Tensor::empty(nshape, sd, xs.device()) : Tensor();
      Tensor gb = mask[2] ? Tensor::empty(nshape, sd, xs.device()) : Tensor();
      if (xs.numel() > 0) {
        layer_norm_backward_kernel.get(xs.device())(gi, gw, gb, g, xs, saved_w.defined() ? saved_w.unpack(op) : Tensor(),
                                                    mean, invstd);
      } else {
        if (gw.defined()) fill_(gw, Scalar(0.0));
        if (gb.defined()) fill_(gb, Scalar(0.0));
      }
      return std::vector<Tensor>{gi, grad_as(gw, weight_like), grad_as(gb, bias_like)};
    });
  }
  return out;
}

}  // namespace bigmodel
