// Loss front ends: argument and shape checks, reductions and backward. cross_entropy is
// log_softmax + nll_loss (+ the label-smoothing term) composed with ops, so autograd flows
// through the parts; nll_loss and the pointwise losses have their own kernels. On CUDA,
// 2-D logits with class-index targets take the fused cross-entropy kernels instead.
#include "core/ops/loss.h"

#include <array>

#include "core/autograd.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/ops/softmax.h"
#include "core/ops/view.h"

namespace bigmodel {

BM_DEFINE_KERNEL(nll_forward_kernel);
BM_DEFINE_KERNEL(nll_backward_kernel);
BM_DEFINE_KERNEL(pointwise_loss_kernel);
BM_DEFINE_KERNEL(pointwise_loss_backward_kernel);
BM_DEFINE_KERNEL(cross_entropy_fused_forward_kernel);
BM_DEFINE_KERNEL(cross_entropy_fused_backward_kernel);

namespace {

enum class Reduction { None, Mean, Sum };

Reduction parse_reduction(const std::string& r, const char* op) {
  if (r == "mean") return Reduction::Mean;
  if (r == "sum") return Reduction::Sum;
  if (r == "none") return Reduction::None;
  throw ValueError(str_cat("[", op, "] reduction must be 'mean', 'sum' or 'none', got '", r, "'"));
}

Tensor reduce_loss(const Tensor& loss, Reduction r) {
  switch (r) {
    case Reduction::Sum: return sum(loss);
    case Reduction::Mean: return mean(loss);
    default: return loss;
  }
}

void check_floating_input(const Tensor& input, const char* op) {
  BM_CHECK_DTYPE(is_floating(input.dtype()), op, "expects a floating point input, got ", dtype_name(input.dtype()));
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  if (b.defined())
    BM_CHECK_DEVICE(a.device() == b.device(), op, "expected all tensors on one device, got ", a.device().str(),
                    " and ", b.device().str());
}

// A class weight [C], checked (undefined stays undefined).
Tensor class_weight(const Tensor& weight, int64_t classes, const char* op) {
  if (!weight.defined()) return weight;
  BM_CHECK_SHAPE(weight.dim() == 1 && weight.size(0) == classes, op, "expected weight of shape [", classes,
                 "] (one per class), got ", shape_str(weight.sizes()));
  BM_CHECK_DTYPE(is_floating(weight.dtype()), op, "expects a floating point weight, got ", dtype_name(weight.dtype()));
  return weight;
}

struct NllResult {
  Tensor loss;           // reduced as asked, with autograd on the input
  Tensor target_weight;  // w[target] per target element (0 where ignored), no grad
  Tensor valid;          // 1 where the target is not ignored (when asked for)
};

// Class-index negative log likelihood on log-probabilities. Error messages name `op`.
NllResult nll_impl(const Tensor& input, const Tensor& target, const Tensor& weight_in, int64_t ignore_index,
                   Reduction red, const char* op, bool want_valid) {
  check_floating_input(input, op);
  BM_CHECK_SHAPE(input.dim() >= 1, op, "expects input of shape [N, C], [N, C, d1, ...] or [C], got a 0-d tensor");
  check_same_device(input, target, op);
  check_same_device(input, weight_in, op);
  const bool unbatched = input.dim() == 1;
  Shape target_shape;
  if (!unbatched) {
    target_shape.push_back(input.size(0));
    for (int64_t d = 2; d < input.dim(); ++d) target_shape.push_back(input.size(d));
  }
  BM_CHECK_DTYPE(is_integral(target.dtype()), op, "expected a target of integer class indices (int64) of shape ",
                 shape_str(target_shape), ", got ", dtype_name(target.dtype()), " of shape ", shape_str(target.sizes()),
                 "; class-probability targets must be floating with the input's shape ", shape_str(input.sizes()));
  BM_CHECK_SHAPE(target.sizes() == target_shape, op, "expected target of shape ", shape_str(target_shape),
                 " for input of shape ", shape_str(input.sizes()), ", got ", shape_str(target.sizes()));
  const int64_t n = unbatched ? 1 : input.size(0);
  const int64_t classes = unbatched ? input.size(0) : input.size(1);
  int64_t extra = 1;  // D: the product of the dims after the class dim
  for (int64_t d = 2; d < input.dim(); ++d) extra *= input.size(d);
  const DType dtype = input.dtype();
  const Device device = input.device();
  Tensor weight = class_weight(weight_in, classes, op);
  if (weight.defined()) weight = contiguous(to(weight.detach(), dtype));

  Tensor in3 = contiguous(reshape(input.detach(), {n, classes, extra}));
  Tensor t2 = contiguous(reshape(to(target.detach(), DType::Int64), {n, extra}));
  Tensor loss = Tensor::empty({n, extra}, dtype, device);
  Tensor tw = Tensor::empty({n, extra}, dtype, device);
  Tensor valid = want_valid ? Tensor::empty({n, extra}, dtype, device) : Tensor();
  if (n * extra > 0) nll_forward_kernel.get(device)(loss, tw, valid, in3, t2, weight, ignore_index, op);

  Tensor out, total_weight;
  switch (red) {
    case Reduction::None: out = reshape(loss, target_shape); break;
    case Reduction::Sum: out = sum(loss); break;
    case Reduction::Mean:  // PyTorch: divided by the summed weights of the non-ignored targets
      total_weight = sum(tw);
      out = div(sum(loss), total_weight);
      break;
  }
  if (needs_grad({input})) {
    SavedTensor saved_target(t2), saved_weight(weight), saved_total(total_weight);
    Shape in_shape = input.sizes();
    record_function("nll_loss", {input}, {out}, [=](const std::vector<Tensor>& g) {
      Tensor per_element;
      switch (red) {
        case Reduction::None: per_element = reshape(g[0], {n, extra}); break;
        case Reduction::Sum: per_element = expand(reshape(g[0], {1, 1}), {n, extra}); break;
        case Reduction::Mean:
          per_element = expand(reshape(div(g[0], saved_total.unpack("nll_loss")), {1, 1}), {n, extra});
          break;
      }
      per_element = contiguous(to(per_element, dtype));
      Tensor grad = Tensor::empty({n, classes, extra}, dtype, device);
      if (grad.numel() > 0)
        nll_backward_kernel.get(device)(grad, per_element, saved_target.unpack("nll_loss"),
                                        saved_weight.unpack("nll_loss"), ignore_index);
      return std::vector<Tensor>{reshape(grad, in_shape)};
    }, SecondOrder::ConstantGrad);
  }
  return {out, reshape(tw, target_shape), want_valid ? reshape(valid, target_shape) : Tensor()};
}

// Elementwise loss of input and target with gradients for both (broadcast undone).
Tensor pointwise_loss(PointwiseLoss kind, const Tensor& input, const Tensor& target, const Tensor& pos_weight,
                      const char* op) {
  check_floating_input(input, op);
  check_same_device(input, target, op);
  check_same_device(input, pos_weight, op);
  const DType dtype = promote_types(input.dtype(), target.dtype());
  BM_CHECK_DTYPE(is_floating(dtype), op, "expects floating point tensors, got ", dtype_name(input.dtype()), " and ",
                 dtype_name(target.dtype()));
  const Shape shape = broadcast_shapes(input.sizes(), target.sizes(), op);
  if (pos_weight.defined()) {
    BM_CHECK_SHAPE(broadcast_shapes(shape, pos_weight.sizes(), op) == shape, op, "pos_weight of shape ",
                   shape_str(pos_weight.sizes()), " does not broadcast to the input's shape ", shape_str(shape));
  }
  auto operands = [shape, dtype](const Tensor& x, const Tensor& y, const Tensor& pw) {
    Tensor pwe = pw.defined() ? expand(to(pw.detach(), dtype), shape)
                              : expand(scalar_tensor(Scalar(1.0), dtype, x.device()), shape);
    return std::array<Tensor, 3>{expand(to(x.detach(), dtype), shape), expand(to(y.detach(), dtype), shape), pwe};
  };
  auto ops = operands(input, target, pos_weight);
  Tensor out = Tensor::empty(shape, dtype, input.device());
  if (out.numel() > 0) pointwise_loss_kernel.get(input.device())(kind, out, ops[0], ops[1], ops[2]);
  if (needs_grad({input, target})) {
    SavedTensor saved_x(input), saved_y(target), saved_pw(pos_weight);
    const bool need_x = input.requires_grad(), need_y = target.requires_grad();
    const Shape sx = input.sizes(), sy = target.sizes();
    const DType dx = input.dtype(), dy = target.dtype();
    record_function(op, {input, target}, {out}, [=](const std::vector<Tensor>& g) {
      auto o = operands(saved_x.unpack(op), saved_y.unpack(op), saved_pw.unpack(op));
      Tensor grad_out = expand(to(g[0], dtype), shape);
      auto grad_for = [&](bool wrt_target, const Shape& s, DType d) {
        Tensor grad = Tensor::empty(shape, dtype, grad_out.device());
        if (grad.numel() > 0)
          pointwise_loss_backward_kernel.get(grad.device())(kind, wrt_target, grad, o[0], o[1], o[2], grad_out);
        return to(sum_to(grad, s), d);
      };
      return std::vector<Tensor>{need_x ? grad_for(false, sx, dx) : Tensor(),
                                 need_y && is_floating(dy) ? grad_for(true, sy, dy) : Tensor()};
    });
  }
  return out;
}

// Binary cross-entropy losses: same-shape target, optional weight broadcast to the input.
Tensor binary_loss(PointwiseLoss kind, const Tensor& input, const Tensor& target, const Tensor& weight,
                   const Tensor& pos_weight, const std::string& reduction, const char* op) {
  Reduction red = parse_reduction(reduction, op);
  BM_CHECK_SHAPE(target.sizes() == input.sizes(), op, "target size ", shape_str(target.sizes()),
                 " must be the same as input size ", shape_str(input.sizes()));
  Tensor loss = pointwise_loss(kind, input, target, pos_weight, op);
  if (weight.defined()) {
    check_same_device(input, weight, op);
    BM_CHECK_SHAPE(broadcast_shapes(input.sizes(), weight.sizes(), op) == input.sizes(), op, "weight of shape ",
                   shape_str(weight.sizes()), " does not broadcast to the input's shape ", shape_str(input.sizes()));
    loss = mul(loss, weight);
  }
  return reduce_loss(loss, red);
}

// The fused kernels take 2-D logits [N, C > 0] with class-index targets on a device that
// registers them (CUDA); a weight that wants its own gradient keeps the composed path.
bool use_fused_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight) {
  const int dev = static_cast<int>(input.device().type);
  return input.dim() == 2 && input.size(1) > 0 && is_integral(target.dtype()) &&
         cross_entropy_fused_forward_kernel.table[dev] != nullptr &&
         cross_entropy_fused_backward_kernel.table[dev] != nullptr && !(weight.defined() && weight.requires_grad());
}

// cross_entropy on [N, C] logits through the fused kernels: only the per-row logsumexp is
// kept for the backward, which recomputes softmax - target from the logits. The result
// equals the composed path's (log_softmax + nll_loss + smoothing term).
Tensor cross_entropy_fused(const Tensor& input, const Tensor& target, const Tensor& weight_in, int64_t ignore_index,
                           Reduction red, double eps, const char* op) {
  const int64_t n = input.size(0), classes = input.size(1);
  const Shape target_shape{n};
  BM_CHECK_SHAPE(target.sizes() == target_shape, op, "expected target of shape ", shape_str(target_shape),
                 " for input of shape ", shape_str(input.sizes()), ", got ", shape_str(target.sizes()));
  const DType dtype = input.dtype();
  const DType sd = dtype == DType::Float64 ? DType::Float64 : DType::Float32;
  const Device device = input.device();
  Tensor weight;  // rounded to the input dtype first, as the composed path multiplies in it
  if (weight_in.defined()) weight = contiguous(to(to(weight_in.detach(), dtype), sd));
  Tensor x = contiguous(input.detach());
  Tensor t = contiguous(to(target.detach(), DType::Int64));
  Tensor loss = Tensor::empty({n}, dtype, device), tw = Tensor::empty({n}, dtype, device);
  Tensor lse = Tensor::empty({n}, sd, device);
  Tensor wsum = weight.defined() && eps > 0 ? Tensor::empty({1}, sd, device) : Tensor();
  if (n > 0) cross_entropy_fused_forward_kernel.get(device)(loss, tw, lse, wsum, x, t, weight, ignore_index, eps, op);
  Tensor out, total_weight;
  switch (red) {
    case Reduction::None: out = loss; break;
    case Reduction::Sum: out = sum(loss); break;
    case Reduction::Mean:  // summed weights of the non-ignored targets, as nll_loss
      total_weight = sum(tw);
      out = div(sum(loss), total_weight);
      break;
  }
  if (needs_grad({input})) {
    SavedTensor saved_x(x), saved_t(t), saved_lse(lse), saved_total(total_weight);
    record_function(op, {input}, {out}, [=](const std::vector<Tensor>& g) {
      Tensor rows;
      switch (red) {
        case Reduction::None: rows = g[0]; break;
        case Reduction::Sum: rows = expand(reshape(to(g[0], sd), {1}), {n}); break;
        case Reduction::Mean:
          rows = expand(reshape(div(to(g[0], sd), to(saved_total.unpack(op), sd)), {1}), {n});
          break;
      }
      rows = contiguous(to(rows, sd));
      Tensor grad = Tensor::empty({n, classes}, dtype, device);
      if (n > 0)
        cross_entropy_fused_backward_kernel.get(device)(grad, rows, saved_x.unpack(op), saved_t.unpack(op), weight,
                                                        saved_lse.unpack(op), wsum, ignore_index, eps);
      return std::vector<Tensor>{grad};
    });
  }
  return out;
}

}  // namespace

Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                const std::string& reduction) {
  Reduction red = parse_reduction(reduction, "nll_loss");
  return nll_impl(input, target, weight, ignore_index, red, "nll_loss", false).loss;
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                     const std::string& reduction, double label_smoothing) {
  const char* op = "cross_entropy";
  Reduction red = parse_reduction(reduction, op);
  BM_CHECK_VALUE(label_smoothing >= 0.0 && label_smoothing <= 1.0, op,
                 "label_smoothing must be in [0, 1], got ", label_smoothing);
  check_floating_input(input, op);
  BM_CHECK_SHAPE(input.dim() >= 1, op, "expects input of shape [N, C], [N, C, d1, ...] or [C], got a 0-d tensor");
  const int64_t class_dim = input.dim() == 1 ? 0 : 1;
  const int64_t classes = input.size(class_dim);
  class_weight(weight, classes, op);
  check_same_device(input, target, op);
  check_same_device(input, weight, op);
  Tensor weight_view;  // weight shaped to broadcast along the class dim
  if (weight.defined()) {
    Shape ws(input.dim(), 1);
    ws[class_dim] = classes;
    weight_view = reshape(to(weight, input.dtype()), ws);
  }
  const double eps = label_smoothing;
  const bool probabilities = is_floating(target.dtype()) && target.sizes() == input.sizes();
  if (!probabilities && use_fused_cross_entropy(input, target, weight))
    return cross_entropy_fused(input, target, weight, ignore_index, red, eps, op);
  Tensor logp = log_softmax(input, class_dim);
  Tensor weighted = weight_view.defined() ? mul(logp, weight_view) : logp;
  if (probabilities) {
    // loss = -sum_c w_c * target_c * logp_c, averaged over the non-class elements for 'mean'.
    Tensor tgt = eps > 0 ? add(mul(target, Scalar(1.0 - eps)), Scalar(eps / static_cast<double>(classes))) : target;
    Tensor loss = mul(sum(mul(weighted, tgt), {class_dim}), Scalar(-1.0));
    switch (red) {
      case Reduction::None: return loss;
      case Reduction::Sum: return sum(loss);
      default: return div(sum(loss), Scalar(static_cast<double>(loss.numel())));
    }
  }
  NllResult nll = nll_impl(logp, target, weight, ignore_index, red, op, eps > 0);
  if (eps == 0) return nll.loss;
  // Label smoothing (PyTorch): (1 - eps) * nll + eps / C * smooth, where smooth is
  // -sum_c w_c logp_c at non-ignored targets, normalised like nll for 'mean'.
  Tensor smooth = mul(mul(sum(weighted, {class_dim}), nll.valid), Scalar(-1.0));
  Tensor term;
  switch (red) {
    case Reduction::None: term = smooth; break;
    case Reduction::Sum: term = sum(smooth); break;
    default: term = div(sum(smooth), sum(nll.target_weight)); break;
  }
  return add(mul(nll.loss, Scalar(1.0 - eps)), mul(term, Scalar(eps / static_cast<double>(classes))));
}

Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction) {
  Reduction red = parse_reduction(reduction, "mse_loss");
  check_floating_input(input, "mse_loss");
  check_same_device(input, target, "mse_loss");
  broadcast_shapes(input.sizes(), target.sizes(), "mse_loss");
  Tensor diff = sub(input, target);
  return reduce_loss(mul(diff, diff), red);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction) {
  Reduction red = parse_reduction(reduction, "l1_loss");
  return reduce_loss(pointwise_loss(PointwiseLoss::L1, input, target, Tensor(), "l1_loss"), red);
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight,
                                        const Tensor& pos_weight, const std::string& reduction) {
  return binary_loss(PointwiseLoss::BCEWithLogits, input, target, weight, pos_weight, reduction,
                     "binary_cross_entropy_with_logits");
}

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight,
                            const std::string& reduction) {
  return binary_loss(PointwiseLoss::BCE, input, target, weight, Tensor(), reduction, "binary_cross_entropy");
}

}  // namespace bigmodel
