// Matmul family front ends: validation, PyTorch's matmul dispatch over operand ranks,
// linear / linear_act on the fused linear_kernel, and the backward formulas (written with
// matmul itself, so they work on every device).
#include "core/ops/linalg.h"

#include <algorithm>

#include "core/amp.h"
#include "core/autograd.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"

namespace bigmodel {

BM_DEFINE_KERNEL(gemm_kernel);
BM_DEFINE_KERNEL(linear_kernel);

namespace {

void check_operands(const Tensor& a, const Tensor& b, const char* op) {
  BM_CHECK_VALUE(a.defined() && b.defined(), op, "expected two defined tensors");
  BM_CHECK_DEVICE(a.device() == b.device(), op, "expected both operands on one device, got ", a.device().str(),
                  " and ", b.device().str());
  BM_CHECK_DTYPE(a.dtype() == b.dtype(), op, "expected both operands to have the same dtype, but got ",
                 dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  BM_CHECK_DTYPE(a.dtype() != DType::Bool, op, "not implemented for bool tensors");
}

void check_inner(const Tensor& a, const Tensor& b, int64_t ka, int64_t kb, const char* op) {
  BM_CHECK_SHAPE(ka == kb, op, "shapes ", shape_str(a.sizes()), " and ", shape_str(b.sizes()),
                 " cannot be multiplied (", ka, " != ", kb, ")");
}

// Batch dims (all but the last two; a 1-D operand has none) must broadcast.
void check_batch(const Tensor& a, const Tensor& b, const char* op) {
  const int64_t na = std::max<int64_t>(a.dim() - 2, 0), nb = std::max<int64_t>(b.dim() - 2, 0);
  for (int64_t i = 1; i <= std::min(na, nb); ++i) {
    const int64_t x = a.size(na - i), y = b.size(nb - i);
    BM_CHECK_SHAPE(x == y || x == 1 || y == 1, op, "batch dims of shapes ", shape_str(a.sizes()), " and ",
                   shape_str(b.sizes()), " cannot be broadcast (", x, " vs ", y, ")");
  }
}

Shape concat(Shape s, std::initializer_list<int64_t> tail) {
  s.insert(s.end(), tail);
  return s;
}

// The product of operands with dim >= 2 whose batch dims broadcast; records autograd.
// Callers have validated dtypes and the inner dims.
Tensor matmul_nd(const Tensor& a, const Tensor& b, const char* name) {
  Shape ba(a.sizes().begin(), a.sizes().end() - 2), bb(b.sizes().begin(), b.sizes().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, name);
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  Tensor out = Tensor::empty(concat(batch, {M, N}), a.dtype(), a.device());
  gemm_kernel.get(a.device())(out, expand(a.detach(), concat(batch, {M, K})),
                              expand(b.detach(), concat(batch, {K, N})));
  if (needs_grad({a, b})) {
    const bool grad_a = a.requires_grad(), grad_b = b.requires_grad();
    SavedTensor save_a = grad_b ? SavedTensor(a) : SavedTensor();
    SavedTensor save_b = grad_a ? SavedTensor(b) : SavedTensor();
    Shape sa = a.sizes(), sb = b.sizes();
    record_function(name, {a, b}, {out}, [=](const std::vector<Tensor>& g) {
      Tensor ga, gb;
      // dA = dC @ B^T and dB = A^T @ dC, summed over batch dims that were broadcast.
      if (grad_a) ga = sum_to(matmul_nd(g[0], transpose(save_b.unpack(name), -1, -2), name), sa);
      if (grad_b) gb = sum_to(matmul_nd(transpose(save_a.unpack(name), -1, -2), g[0], name), sb);
      return std::vector<Tensor>{ga, gb};
    }, SecondOrder::Full);
  }
  return out;
}

// True when the leading dims of `t` (all but the last) merge into one without a copy, so
// [..., M, K] @ [K, N] can run as one [(...)*M, K] @ [K, N] GEMM.
bool foldable(const Tensor& t) {
  for (int64_t d = 0; d + 2 < t.dim(); ++d)
    if (t.size(d) != 1 && t.stride(d) != t.stride(d + 1) * t.size(d + 1)) return false;
  return true;
}

LinearAct parse_act(const std::string& act) {
  if (act == "none") return LinearAct::None;
  if (act == "relu") return LinearAct::ReLU;
  if (act == "gelu") return LinearAct::GELU;
  if (act == "gelu_tanh") return LinearAct::GELUTanh;
  throw ValueError(str_cat("[linear_act] act must be 'none', 'relu', 'gelu' or 'gelu_tanh', got '", act, "'"));
}

// The composed form: the fallback, and what the fused kernel must equal.
Tensor apply_act(const Tensor& y, LinearAct act) {
  switch (act) {
    case LinearAct::ReLU: return relu(y);
    case LinearAct::GELU: return gelu(y, "none");
    case LinearAct::GELUTanh: return gelu(y, "tanh");
    default: return y;
  }
}

// Validation shared by linear and linear_act (after autocast).
void check_linear(const Tensor& input, const Tensor& weight, const Tensor& bias, const char* op) {
  check_operands(input, weight, op);
  BM_CHECK_SHAPE(input.dim() >= 1 && (weight.dim() == 1 || weight.dim() == 2), op,
                 "expected input with >= 1 dims and a 1-D or 2-D weight, got shapes ", shape_str(input.sizes()),
                 " and ", shape_str(weight.sizes()));
  BM_CHECK_SHAPE(input.size(-1) == weight.size(-1), op, "input of shape ", shape_str(input.sizes()),
                 " and weight of shape ", shape_str(weight.sizes()), " cannot be multiplied (in_features ",
                 input.size(-1), " != ", weight.size(-1), ")");
  if (!bias.defined()) return;
  BM_CHECK_DTYPE(bias.dtype() == input.dtype(), op, "bias has dtype ", dtype_name(bias.dtype()), ", input has ",
                 dtype_name(input.dtype()));
  BM_CHECK_DEVICE(bias.device() == input.device(), op, "bias is on ", bias.device().str(), ", input on ",
                  input.device().str());
  // The output's shape: input's leading dims, then out_features (none for a 1-D weight).
  Shape out_shape(input.sizes().begin(), input.sizes().end() - 1);
  if (weight.dim() == 2) out_shape.push_back(weight.size(0));
  bool fits = bias.dim() <= static_cast<int64_t>(out_shape.size());
  for (int64_t i = 1; fits && i <= bias.dim(); ++i) {
    const int64_t o = out_shape[out_shape.size() - i];
    fits = bias.size(-i) == 1 || bias.size(-i) == o;
  }
  BM_CHECK_SHAPE(fits, op, "bias of shape ", shape_str(bias.sizes()), " does not broadcast to the output shape ",
                 shape_str(out_shape));
}

// True when linear_kernel can take the call: a floating dtype, a device with the kernel, a
// 2-D weight, a bias of shape [out] (or none), and leading input dims that fold into rows.
bool fusable(const Tensor& input, const Tensor& weight, const Tensor& bias) {
  if (!is_floating(input.dtype()) || weight.dim() != 2) return false;
  if (!linear_kernel.table[static_cast<int>(input.device().type)]) return false;
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != weight.size(0))) return false;
  return input.dim() <= 2 || foldable(input);
}

// The fused product on 2-D operands: act(x @ w^T + b), with its autograd record. The
// activation's backward reads the output (ReLU: y > 0 exactly where pre > 0) or, for GELU,
// the pre-activation that the kernel wrote as its aux output while it had it in registers
// (recomputing it would cost a second GEMM; the unfused path keeps the same tensor alive).
Tensor linear_2d(const Tensor& x, const Tensor& w, const Tensor& b, LinearAct act) {
  const int64_t M = x.size(0), N = w.size(0);
  const bool grad = needs_grad({x, w, b});
  const bool gelu_like = act == LinearAct::GELU || act == LinearAct::GELUTanh;
  Tensor out = Tensor::empty({M, N}, x.dtype(), x.device());
  Tensor aux = grad && gelu_like ? Tensor::empty({M, N}, x.dtype(), x.device()) : Tensor();
  if (M > 0 && N > 0)
    linear_kernel.get(x.device())(out, aux, x.detach(), w.detach(), b.defined() ? contiguous(b.detach()) : Tensor(),
                                  act);
  if (grad) {
    const bool grad_x = x.requires_grad(), grad_w = w.requires_grad(), grad_b = b.defined() && b.requires_grad();
    SavedTensor save_x = grad_w ? SavedTensor(x) : SavedTensor();
    SavedTensor save_w = grad_x ? SavedTensor(w) : SavedTensor();
    SavedTensor save_act = act == LinearAct::ReLU ? SavedTensor(out) : gelu_like ? SavedTensor(aux) : SavedTensor();
    record_function("linear", {x, w, b}, {out}, [=](const std::vector<Tensor>& g) {
      Tensor gp = g[0];  // the gradient at the pre-activation
      if (act != LinearAct::None) {
        const UnaryOp op = act == LinearAct::ReLU ? UnaryOp::Relu
                           : act == LinearAct::GELU ? UnaryOp::Gelu
                                                    : UnaryOp::GeluTanh;
        gp = Tensor::empty(g[0].sizes(), g[0].dtype(), g[0].device());
        unary_backward_kernel.get(g[0].device())(op, gp, g[0], save_act.unpack("linear"), Scalar(), Scalar());
      }
      Tensor gx, gw, gb;
      if (grad_x) gx = matmul(gp, save_w.unpack("linear"));                    // [M, N] @ [N, K]
      if (grad_w) gw = matmul(transpose(gp, 0, 1), save_x.unpack("linear"));  // [N, M] @ [M, K]
      if (grad_b) gb = sum(gp, {0});
      return std::vector<Tensor>{gx, gw, gb};
    }, act == LinearAct::None ? SecondOrder::Full : SecondOrder::None);
  }
  return out;
}

// linear_2d over any input rank: a 1-D input is one row, leading dims fold into rows.
Tensor linear_fused(const Tensor& input, const Tensor& weight, const Tensor& bias, LinearAct act) {
  const int64_t K = input.size(-1), N = weight.size(0);
  if (input.dim() == 1) return squeeze(linear_2d(unsqueeze(input, 0), weight, bias, act), 0);
  if (input.dim() == 2) return linear_2d(input, weight, bias, act);
  Shape lead(input.sizes().begin(), input.sizes().end() - 1);
  const int64_t rows = shape_numel(lead);  // explicit: a -1 can't be inferred when K == 0
  Tensor y = linear_2d(reshape(input, {rows, K}), weight, bias, act);
  lead.push_back(N);
  return reshape(y, lead);
}

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  const Tensor a = amp::autocast_lower(a_in), b = amp::autocast_lower(b_in);  // autocast (core/amp.h)
  check_operands(a, b, "matmul");
  BM_CHECK_VALUE(a.dim() >= 1 && b.dim() >= 1, "matmul", "both arguments need to be at least 1-D, got shapes ",
                 shape_str(a.sizes()), " and ", shape_str(b.sizes()));
  const int64_t kb = b.dim() == 1 ? b.size(0) : b.size(-2);
  check_inner(a, b, a.size(-1), kb, "matmul");
  check_batch(a, b, "matmul");
  const int64_t da = a.dim(), db = b.dim();
  if (da == 1 && db == 1) return dot(a, b);
  if (da == 2 && db == 1) return mv(a, b);
  if (da == 1 && db == 2) return squeeze(matmul_nd(unsqueeze(a, 0), b, "mm"), 0);
  if (da == 2 && db == 2) return matmul_nd(a, b, "mm");
  if (da >= 3 && db <= 2 && foldable(a)) {
    Shape lead(a.sizes().begin(), a.sizes().end() - 1);
    const int64_t rows = shape_numel(lead);  // explicit: a -1 can't be inferred when K == 0
    Tensor a2 = reshape(a, {rows, a.size(-1)});
    Tensor r = matmul_nd(a2, db == 1 ? unsqueeze(b, 1) : b, "mm");
    if (db == 2) lead.push_back(b.size(1));
    return reshape(r, lead);
  }
  Tensor r = matmul_nd(da == 1 ? unsqueeze(a, 0) : a, db == 1 ? unsqueeze(b, 1) : b, "bmm");
  if (da == 1) r = squeeze(r, -2);
  if (db == 1) r = squeeze(r, -1);
  return r;
}

Tensor mm(const Tensor& a_in, const Tensor& b_in) {
  const Tensor a = amp::autocast_lower(a_in), b = amp::autocast_lower(b_in);
  check_operands(a, b, "mm");
  BM_CHECK_SHAPE(a.dim() == 2 && b.dim() == 2, "mm", "expected 2-D matrices, got shapes ", shape_str(a.sizes()),
                 " and ", shape_str(b.sizes()));
  check_inner(a, b, a.size(1), b.size(0), "mm");
  return matmul_nd(a, b, "mm");
}

Tensor bmm(const Tensor& a_in, const Tensor& b_in) {
  const Tensor a = amp::autocast_lower(a_in), b = amp::autocast_lower(b_in);
  check_operands(a, b, "bmm");
  BM_CHECK_SHAPE(a.dim() == 3 && b.dim() == 3, "bmm", "expected 3-D tensors, got shapes ", shape_str(a.sizes()),
                 " and ", shape_str(b.sizes()));
  BM_CHECK_SHAPE(a.size(0) == b.size(0), "bmm", "batch sizes differ: shapes ", shape_str(a.sizes()), " and ",
                 shape_str(b.sizes()));
  check_inner(a, b, a.size(2), b.size(1), "bmm");
  return matmul_nd(a, b, "bmm");
}

Tensor mv(const Tensor& a_in, const Tensor& v_in) {
  const Tensor a = amp::autocast_lower(a_in), v = amp::autocast_lower(v_in);
  check_operands(a, v, "mv");
  BM_CHECK_SHAPE(a.dim() == 2 && v.dim() == 1, "mv", "expected a 2-D matrix and a 1-D vector, got shapes ",
                 shape_str(a.sizes()), " and ", shape_str(v.sizes()));
  check_inner(a, v, a.size(1), v.size(0), "mv");
  return squeeze(matmul_nd(a, unsqueeze(v, 1), "mv"), -1);
}

Tensor dot(const Tensor& a_in, const Tensor& b_in) {
  const Tensor a = amp::autocast_lower(a_in), b = amp::autocast_lower(b_in);
  check_operands(a, b, "dot");
  BM_CHECK_SHAPE(a.dim() == 1 && b.dim() == 1, "dot", "expected 1-D tensors, got shapes ", shape_str(a.sizes()),
                 " and ", shape_str(b.sizes()));
  check_inner(a, b, a.size(0), b.size(0), "dot");
  Tensor out = Tensor::empty({}, a.dtype(), a.device());
  // A [1, K] x [K, 1] GEMM written straight into the 0-d result.
  gemm_kernel.get(a.device())(Tensor::make_view(out, {1, 1}, {1, 1}, out.offset()), unsqueeze(a.detach(), 0),
                              unsqueeze(b.detach(), 1));
  if (needs_grad({a, b})) {
    const bool grad_a = a.requires_grad(), grad_b = b.requires_grad();
    SavedTensor save_a = grad_b ? SavedTensor(a) : SavedTensor();
    SavedTensor save_b = grad_a ? SavedTensor(b) : SavedTensor();
    record_function("dot", {a, b}, {out}, [=](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{grad_a ? mul(g[0], save_b.unpack("dot")) : Tensor(),
                                 grad_b ? mul(g[0], save_a.unpack("dot")) : Tensor()};
    }, SecondOrder::Full);
  }
  return out;
}

Tensor outer(const Tensor& a, const Tensor& b) {
  BM_CHECK_SHAPE(a.dim() == 1 && b.dim() == 1, "outer", "expected 1-D tensors, got shapes ", shape_str(a.sizes()),
                 " and ", shape_str(b.sizes()));
  return mul(unsqueeze(a, 1), unsqueeze(b, 0));  // broadcasting does it; backward comes free
}

Tensor linear(const Tensor& input_in, const Tensor& weight_in, const Tensor& bias_in) {
  const Tensor input = amp::autocast_lower(input_in), weight = amp::autocast_lower(weight_in),
               bias = amp::autocast_lower(bias_in);
  check_linear(input, weight, bias, "linear");
  // With a bias: one GEMM that adds it in its epilogue. Without one it is a plain product.
  if (bias.defined() && fusable(input, weight, bias)) return linear_fused(input, weight, bias, LinearAct::None);
  Tensor y = matmul(input, weight.dim() == 2 ? transpose(weight, 0, 1) : weight);
  return bias.defined() ? add(y, bias) : y;
}

Tensor linear_act(const Tensor& input_in, const Tensor& weight_in, const Tensor& bias_in, const std::string& act) {
  const LinearAct a = parse_act(act);
  const Tensor input = amp::autocast_lower(input_in), weight = amp::autocast_lower(weight_in),
               bias = amp::autocast_lower(bias_in);
  check_linear(input, weight, bias, "linear_act");
  BM_CHECK_SHAPE(weight.dim() == 2, "linear_act", "expected a 2-D weight [out_features, in_features], got shape ",
                 shape_str(weight.sizes()));
  if (fusable(input, weight, bias)) return linear_fused(input, weight, bias, a);
  return apply_act(linear(input, weight, bias), a);
}

Tensor addmm(const Tensor& input_in, const Tensor& m1, const Tensor& m2, const Scalar& beta, const Scalar& alpha) {
  const Tensor input = amp::autocast_lower(input_in);  // m1, m2 are cast by mm
  Tensor r = mm(m1, m2);
  BM_CHECK_SHAPE(broadcast_shapes(r.sizes(), input.sizes(), "addmm") == r.sizes(), "addmm", "input of shape ",
                 shape_str(input.sizes()), " does not broadcast to the product's shape ", shape_str(r.sizes()));
  if (alpha.to<double>() != 1.0) r = mul(r, alpha);
  if (beta.to<double>() == 0.0) return add(r, zeros(input.sizes(), r.dtype(), r.device()));  // input ignored
  return add(r, beta.to<double>() == 1.0 ? input : mul(input, beta));
}

}  // namespace bigmodel
