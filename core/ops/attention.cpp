// scaled_dot_product_attention composed from existing ops (see attention.h); a fused
// kernel can replace the body later without changing the front end's checks.
#include "core/ops/attention.h"

#include <cmath>
#include <limits>

#include "core/amp.h"
#include "core/error.h"
#include "core/ops/compare.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/shape_ops.h"
#include "core/ops/softmax.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"
#include "core/shape.h"

namespace bigmodel {
namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

// True when `from` broadcasts to exactly `to` (no growth of `to`).
bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  size_t off = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i) {
    if (from[i] != 1 && from[i] != to[off + i]) return false;
  }
  return true;
}

void check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double p, bool causal) {
  BM_CHECK_VALUE(q.dim() >= 2 && k.dim() >= 2 && v.dim() >= 2, kOp,
                 "query, key and value must have at least 2 dims, got ", shape_str(q.sizes()), ", ",
                 shape_str(k.sizes()), ", ", shape_str(v.sizes()));
  BM_CHECK_DTYPE(is_floating(q.dtype()) && q.dtype() == k.dtype() && q.dtype() == v.dtype(), kOp,
                 "query, key and value must share one floating dtype, got ", dtype_name(q.dtype()), ", ",
                 dtype_name(k.dtype()), ", ", dtype_name(v.dtype()));
  BM_CHECK_VALUE(q.size(-1) == k.size(-1), kOp, "query and key head dims differ: query ", shape_str(q.sizes()),
                 ", key ", shape_str(k.sizes()));
  BM_CHECK_VALUE(k.size(-2) == v.size(-2), kOp, "key and value sequence lengths differ: key ",
                 shape_str(k.sizes()), ", value ", shape_str(v.sizes()));
  BM_CHECK_VALUE(p >= 0.0 && p <= 1.0, kOp, "dropout_p must be in [0, 1], got ", p);
  BM_CHECK_VALUE(!(causal && mask.defined()), kOp, "attn_mask and is_causal cannot both be set");
  if (mask.defined()) {
    BM_CHECK_DTYPE(mask.dtype() == DType::Bool || mask.dtype() == q.dtype(), kOp,
                   "attn_mask must be bool or match the query dtype ", dtype_name(q.dtype()), ", got ",
                   dtype_name(mask.dtype()));
  }
}

}  // namespace

std::pair<Tensor, Tensor> scaled_dot_product_attention_with_weights(const Tensor& q_in, const Tensor& k_in,
                                                                    const Tensor& v_in, const Tensor& mask_in,
                                                                    double dropout_p, bool is_causal,
                                                                    std::optional<double> scale, Generator* gen) {
  // Autocast (core/amp.h): attention runs wholly in the autocast dtype, as a fused kernel
  // would (its softmax computes in float internally), so the inner ops must not re-cast.
  const Tensor q = amp::autocast_lower(q_in), k = amp::autocast_lower(k_in), v = amp::autocast_lower(v_in);
  const Tensor attn_mask = mask_in.defined() && mask_in.dtype() != DType::Bool ? amp::autocast_lower(mask_in) : mask_in;
  amp::AutocastOffGuard autocast_off;
  check_inputs(q, k, v, attn_mask, dropout_p, is_causal);
  const int64_t L = q.size(-2), S = k.size(-2);
  const double sc = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  Tensor scores = mul(matmul(q, transpose(k, -2, -1)), Scalar(sc));
  if (attn_mask.defined()) {
    BM_CHECK_VALUE(broadcasts_to(attn_mask.sizes(), scores.sizes()), kOp, "attn_mask of shape ",
                   shape_str(attn_mask.sizes()), " does not broadcast to the attention scores ",
                   shape_str(scores.sizes()), " (query ", shape_str(q.sizes()), ", key ", shape_str(k.sizes()), ")");
    if (attn_mask.dtype() == DType::Bool) {
      scores = masked_fill(scores, logical_not(attn_mask), Scalar(-std::numeric_limits<double>::infinity()));
    } else {
      scores = add(scores, attn_mask);
    }
  } else if (is_causal) {
    // Row i keeps columns j <= i (top-left aligned, as PyTorch does for L != S).
    Tensor keep = tril(ones(Shape{L, S}, DType::Bool, q.device()));
    scores = masked_fill(scores, logical_not(keep), Scalar(-std::numeric_limits<double>::infinity()));
  }
  Tensor attn = softmax(scores, -1);
  if (dropout_p > 0.0) attn = mul(attn, dropout_mask(attn.sizes(), dropout_p, attn.dtype(), attn.device(), gen));
  return {matmul(attn, v), attn};
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask,
                                    double dropout_p, bool is_causal, std::optional<double> scale, Generator* gen) {
  return scaled_dot_product_attention_with_weights(q, k, v, attn_mask, dropout_p, is_causal, scale, gen).first;
}

}  // namespace bigmodel
