// nn::MultiheadAttention (see attention.h): construction, init, mask merging and forward.
#include "nn/attention.h"

#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops/attention.h"
#include "core/ops/compare.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/reduce.h"
#include "core/ops/shape_ops.h"
#include "core/ops/view.h"
#include "core/shape.h"

namespace bigmodel::nn {
namespace {

constexpr const char* kOp = "MultiheadAttention";

// A float mask to add to the scores: bool (true = NOT allowed, nn's convention) -> -inf there.
Tensor to_additive(const Tensor& mask, DType dtype, const char* what) {
  if (!mask.defined()) return mask;
  if (mask.dtype() == DType::Bool)
    return masked_fill(zeros(mask.sizes(), dtype, mask.device()), mask,
                       Scalar(-std::numeric_limits<double>::infinity()));
  BM_CHECK_DTYPE(is_floating(mask.dtype()), kOp, what, " must be bool or floating, got ", dtype_name(mask.dtype()));
  return to(mask, dtype);
}

}  // namespace

MultiheadAttention::MultiheadAttention(int64_t e, int64_t h, double p, bool with_bias, bool bf, DType dtype)
    : embed_dim(e), num_heads(h), head_dim(h > 0 ? e / h : 0), dropout(p), batch_first(bf) {
  BM_CHECK_VALUE(e > 0 && h > 0 && e % h == 0, kOp, "embed_dim (", e, ") must be a positive multiple of num_heads (",
                 h, ")");
  BM_CHECK_VALUE(p >= 0.0 && p <= 1.0, kOp, "dropout must be in [0, 1], got ", p);
  BM_CHECK_DTYPE(is_floating(dtype), kOp, "dtype must be floating, got ", dtype_name(dtype));
  // Registration (and so random-draw) order as Python: in_proj_*, then out_proj's Linear init.
  in_proj_weight = register_parameter("in_proj_weight", empty({3 * e, e}, dtype));
  in_proj_bias = register_parameter("in_proj_bias", with_bias ? empty({3 * e}, dtype) : Tensor());
  out_proj = register_module("out_proj", std::make_shared<Linear>(e, e, with_bias, dtype));
  reset_parameters();
}

void MultiheadAttention::reset_parameters() {
  NoGradGuard no_grad;
  // xavier_uniform_: fan_in = E, fan_out = 3E.
  const double bound = std::sqrt(6.0 / static_cast<double>(embed_dim + 3 * embed_dim));
  uniform_(in_proj_weight, -bound, bound);
  if (in_proj_bias.defined()) {
    zero_(in_proj_bias);
    zero_(out_proj->bias);
  }
}

std::pair<Tensor, Tensor> MultiheadAttention::forward(const Tensor& query_in, const Tensor& key_in,
                                                      const Tensor& value_in, const Tensor& key_padding_mask,
                                                      const Tensor& attn_mask, bool need_weights,
                                                      bool average_attn_weights, bool is_causal) {
  BM_CHECK_VALUE(query_in.defined() && key_in.defined() && value_in.defined(), kOp,
                 "query, key and value must be defined");
  const int64_t qd = query_in.dim();
  BM_CHECK_SHAPE((qd == 2 || qd == 3) && key_in.dim() == qd && value_in.dim() == qd, kOp,
                 "query, key and value must all be 2-D or 3-D, got ", shape_str(query_in.sizes()), ", ",
                 shape_str(key_in.sizes()), ", ", shape_str(value_in.sizes()));
  const bool unbatched = qd == 2;
  Tensor query = query_in, key = key_in, value = value_in, kpm = key_padding_mask;
  if (unbatched) {  // a batch of one in batch-first layout
    query = unsqueeze(query, 0);
    key = unsqueeze(key, 0);
    value = unsqueeze(value, 0);
    if (kpm.defined()) kpm = unsqueeze(kpm, 0);
  } else if (!batch_first) {
    query = transpose(query, 0, 1);
    key = transpose(key, 0, 1);
    value = transpose(value, 0, 1);
  }
  const int64_t n = query.size(0), L = query.size(1), E = query.size(2), S = key.size(1);
  BM_CHECK_SHAPE(E == embed_dim && key.size(2) == E && value.size(2) == E, kOp, "expected embed_dim ", embed_dim,
                 ", got query ", shape_str(query_in.sizes()), ", key ", shape_str(key_in.sizes()), ", value ",
                 shape_str(value_in.sizes()));
  BM_CHECK_SHAPE(key.size(0) == value.size(0) && key.size(1) == value.size(1) && key.size(0) == n, kOp, "key ",
                 shape_str(key_in.sizes()), " and value ", shape_str(value_in.sizes()),
                 " must match each other and the query batch size ", n);
  BM_CHECK_DTYPE(query.dtype() == in_proj_weight.dtype() && key.dtype() == query.dtype() &&
                     value.dtype() == query.dtype(),
                 kOp, "expected query, key and value of dtype ", dtype_name(in_proj_weight.dtype()), ", got ",
                 dtype_name(query.dtype()), ", ", dtype_name(key.dtype()), ", ", dtype_name(value.dtype()));

  // One additive mask broadcastable to [N, H, L, S] (undefined = none).
  const int64_t H = num_heads, d = head_dim;
  Tensor am = attn_mask;
  if (!am.defined() && is_causal) am = triu(ones({L, S}, DType::Bool, query.device()), 1);
  Tensor mask = to_additive(am, query.dtype(), "attn_mask");
  if (mask.defined()) {
    if (mask.sizes() == Shape{n * H, L, S}) {
      mask = reshape(mask, {n, H, L, S});
    } else {
      BM_CHECK_SHAPE(mask.sizes() == (Shape{L, S}), kOp, "attn_mask must be [", L, ", ", S, "] or [", n * H, ", ", L,
                     ", ", S, "], got ", shape_str(mask.sizes()));
    }
  }
  Tensor kpm_add = to_additive(kpm, query.dtype(), "key_padding_mask");
  if (kpm_add.defined()) {
    BM_CHECK_SHAPE(kpm_add.sizes() == (Shape{n, S}), kOp, "key_padding_mask must be [", n, ", ", S, "], got ",
                   shape_str(key_padding_mask.sizes()));
    kpm_add = reshape(kpm_add, {n, 1, 1, S});
    mask = mask.defined() ? add(mask, kpm_add) : kpm_add;
  }

  return in_layer(type_name(), [&] {
    std::vector<Tensor> w = chunk(in_proj_weight, 3, 0);
    std::vector<Tensor> b(3);
    if (in_proj_bias.defined()) b = chunk(in_proj_bias, 3, 0);
    Tensor q = transpose(reshape(linear(query, w[0], b[0]), {n, L, H, d}), 1, 2);
    Tensor k = transpose(reshape(linear(key, w[1], b[1]), {n, S, H, d}), 1, 2);
    Tensor v = transpose(reshape(linear(value, w[2], b[2]), {n, S, H, d}), 1, 2);
    const double p = is_training() ? dropout : 0.0;
    Tensor out, weights;
    if (need_weights) {
      std::tie(out, weights) = scaled_dot_product_attention_with_weights(q, k, v, mask, p);
      if (average_attn_weights) weights = mean(weights, {1});
      if (unbatched) weights = squeeze(weights, 0);
    } else {
      out = scaled_dot_product_attention(q, k, v, mask, p);
    }
    out = (*out_proj)(reshape(transpose(out, 1, 2), {n, L, E}));
    if (unbatched)
      out = squeeze(out, 0);
    else if (!batch_first)
      out = transpose(out, 0, 1);
    return std::make_pair(out, weights);
  });
}

}  // namespace bigmodel::nn
