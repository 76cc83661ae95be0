// scaled_dot_product_attention: the front end (checks, autocast), the composed reference
// (matmul, mask, softmax, dropout, matmul: the CPU path and every fallback), and the route to
// the fused flash kernels on CUDA with their autograd node (see attention.h); with
// bm.backends.attention = "cudnn", the route to cuDNN's fused attention instead.
#include "core/ops/attention.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "core/amp.h"
#include "core/autograd.h"
#include "core/backends.h"
#include "core/cuda_info.h"
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

// The composed reference on already autocast-lowered, checked inputs.
std::pair<Tensor, Tensor> composed_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& attn_mask, double dropout_p, bool is_causal, double sc,
                                             Generator* gen) {
  const int64_t L = q.size(-2), S = k.size(-2);
  // The scale goes on whichever of q and the scores is smaller (q, unless the query is much
  // longer than the head dim): one elementwise pass less over the [L, S] scores, forward and
  // backward, on the CPU's composed path.
  const bool scale_q = L * q.size(-1) <= L * S;
  Tensor scores = scale_q ? matmul(mul(q, Scalar(sc)), transpose(k, -2, -1))
                          : mul(matmul(q, transpose(k, -2, -1)), Scalar(sc));
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

// Leading 1s up to 4 dims (a view).
Tensor to_4d(Tensor t) {
  while (t.dim() < 4) t = unsqueeze(t, 0);
  return t;
}

Shape batch_of(const Tensor& t) { return Shape(t.sizes().begin(), t.sizes().end() - 2); }

// The fused kernels on [B, H, N, D] views, with their autograd node: the backward recomputes
// the scores from q, k, v and the saved logsumexp (no N x N buffer either way).
Tensor flash_attention(const Tensor& q4, const Tensor& k4, const Tensor& v4, const Tensor& mask4, double sc,
                       bool causal) {
  const Device dev = q4.device();
  Tensor out = empty(Shape{q4.size(0), q4.size(1), q4.size(2), q4.size(3)}, q4.dtype(), dev);
  Tensor lse = empty(Shape{q4.size(0), q4.size(1), q4.size(2)}, DType::Float32, dev);
  flash_attention_forward_kernel.get(dev)(out, lse, q4, k4, v4, mask4, sc, causal);
  if (needs_grad({q4, k4, v4})) {
    SavedTensor sq(q4), sk(k4), sv(v4), so(out), sl(lse);
    SavedTensor sm = mask4.defined() ? SavedTensor(mask4) : SavedTensor();
    const bool has_mask = mask4.defined();
    record_function(kOp, {q4, k4, v4}, {out}, [=](const std::vector<Tensor>& g) {
      Tensor q = sq.unpack(kOp), k = sk.unpack(kOp), v = sv.unpack(kOp);
      Tensor m = has_mask ? sm.unpack(kOp) : Tensor();
      Tensor dq = empty(q.sizes(), q.dtype(), q.device());
      Tensor dk = empty(k.sizes(), k.dtype(), k.device());
      Tensor dv = empty(v.sizes(), v.dtype(), v.device());
      flash_attention_backward_kernel.get(q.device())(dq, dk, dv, g[0], q, k, v, so.unpack(kOp), sl.unpack(kOp), m,
                                                       sc, causal);
      return std::vector<Tensor>{dq, dk, dv};
    });
  }
  return out;
}

// The fused path when it takes the case (CUDA, float32/float16/bfloat16, one head dim <= 128,
// no dropout, at most 4 dims, a mask that needs no gradient); an undefined Tensor otherwise,
// and the caller runs the composed reference.
Tensor try_flash_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double dropout_p,
                           bool causal, double sc) {
  const Device dev = q.device();
  if (!dev.is_cuda() || !flash_attention_available(dev)) return Tensor();
  if (k.device() != dev || v.device() != dev || (mask.defined() && mask.device() != dev)) return Tensor();
  const DType dt = q.dtype();
  if (dt != DType::Float32 && dt != DType::Float16 && dt != DType::BFloat16) return Tensor();
  if (dropout_p > 0.0 || !std::isfinite(sc)) return Tensor();
  const int64_t L = q.size(-2), S = k.size(-2), E = q.size(-1);
  if (v.size(-1) != E || E < 1 || E > 128 || L < 1 || S < 1) return Tensor();
  if (q.dim() > 4 || k.dim() > 4 || v.dim() > 4) return Tensor();
  if (mask.defined() && (mask.requires_grad() || mask.dim() > 4)) return Tensor();
  const Shape batch = broadcast_shapes(broadcast_shapes(batch_of(q), batch_of(k), kOp), batch_of(v), kOp);
  if (shape_numel(batch) == 0) return Tensor();  // nothing to launch; the composed path returns empties
  Shape scores_shape = batch;
  scores_shape.push_back(L);
  scores_shape.push_back(S);
  if (mask.defined()) {
    BM_CHECK_VALUE(broadcasts_to(mask.sizes(), scores_shape), kOp, "attn_mask of shape ", shape_str(mask.sizes()),
                   " does not broadcast to the attention scores ", shape_str(scores_shape), " (query ",
                   shape_str(q.sizes()), ", key ", shape_str(k.sizes()), ")");
  }
  Shape b2 = batch;
  while (b2.size() < 2) b2.insert(b2.begin(), 1);
  const int64_t B = b2[0], H = b2[1];
  // Broadcast batch dims become stride-0 views; the kernels read any strides, and the expand
  // nodes sum the gradients back to the callers' shapes.
  Tensor q4 = expand(to_4d(q), Shape{B, H, L, E});
  Tensor k4 = expand(to_4d(k), Shape{B, H, S, E});
  Tensor v4 = expand(to_4d(v), Shape{B, H, S, E});
  Tensor m4 = mask.defined() ? expand(to_4d(mask), Shape{B, H, L, S}) : Tensor();
  Tensor out = flash_attention(q4, k4, v4, m4, sc, causal);
  Shape out_shape = batch;
  out_shape.push_back(L);
  out_shape.push_back(E);
  return reshape(out, out_shape);
}

// ---- the cuDNN baseline (bm.backends.attention = "cudnn") ----
// It takes fewer cases than ours and never falls back silently (it is what ours is measured
// against): anything it cannot run raises an error naming the case.

// A [B, H, N, D] view as cuDNN reads it: unit stride along D, a 16-byte aligned base and the
// other strides non-zero multiples of 8 elements (size-1 dims: any stride, the kernel file
// normalises it); anything else (broadcast, odd or misaligned views) is copied once.
Tensor cudnn_layout(const Tensor& t) {
  bool ok = reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0 && t.stride(3) == 1;
  for (int i = 0; i < 3; ++i) ok = ok && (t.size(i) == 1 || (t.stride(i) > 0 && t.stride(i) % 8 == 0));
  return ok ? t : clone(t);  // clone, not contiguous: a contiguous but misaligned view must move too
}

// The user's mask as cuDNN's additive bias: [Bb, Hb, L, S] in q's dtype (Bb, Hb the mask's own
// batch and head sizes, 1 or B and H), bool masks as 0 / -inf. Rows are padded to a multiple
// of 8 elements (a view into a wider buffer) so each starts 16-byte aligned, as cuDNN reads it.
Tensor cudnn_bias(const Tensor& mask, int64_t L, int64_t S, DType dt) {
  Tensor m4 = to_4d(mask);
  const Shape full{m4.size(0), m4.size(1), L, S};
  Tensor values = mask.dtype() == DType::Bool
                      ? masked_fill(zeros(full, dt, mask.device()), logical_not(expand(m4, full)),
                                    Scalar(-std::numeric_limits<double>::infinity()))
                      : expand(m4, full);
  if (S % 8 == 0 && values.is_contiguous() && reinterpret_cast<uintptr_t>(values.data_ptr()) % 16 == 0) return values;
  if (S % 8 == 0) return clone(values);  // fresh storage: contiguous and aligned
  Tensor padded = narrow(empty(Shape{full[0], full[1], L, (S + 7) / 8 * 8}, dt, mask.device()), 3, 0, S);
  copy_(padded, values);
  return padded;
}

Tensor cudnn_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double dropout_p,
                       bool causal, double sc) {
  const Device dev = q.device();
  const std::string why = cudnn_attention_unavailable_reason(dev);
  // NotImplementedError (a RuntimeError in Python) for everything this backend does not take:
  // a build without it, dtypes, shapes and options cuDNN's fused attention has no kernel for.
  if (!why.empty()) throw NotImplementedError(str_cat("[", kOp, "] ", why));
  const char* sel = " with bm.backends.attention = 'cudnn'";
  BM_CHECK_DEVICE(k.device() == dev && v.device() == dev && (!mask.defined() || mask.device() == dev), kOp,
                  "query, key, value and attn_mask must be on one device", sel);
  const DType dt = q.dtype();
  if (dt != DType::Float16 && dt != DType::BFloat16) {
    throw NotImplementedError(str_cat("[", kOp, "] cuDNN's fused attention takes float16 or bfloat16, got ",
                                      dtype_name(dt), " (query ", shape_str(q.sizes()),
                                      "); use bm.backends.attention = 'ours' for ", dtype_name(dt)));
  }
  const int64_t L = q.size(-2), S = k.size(-2), E = q.size(-1);
  auto unsupported = [&](const std::string& what) {
    throw NotImplementedError(str_cat("[", kOp, "] ", what, " is not supported", sel, " (query ",
                                      shape_str(q.sizes()), ", key ", shape_str(k.sizes()), ", value ",
                                      shape_str(v.sizes()), "); use bm.backends.attention = 'ours'"));
  };
  if (dropout_p > 0.0) unsupported(str_cat("dropout_p = ", dropout_p));
  if (!std::isfinite(sc)) unsupported(str_cat("a non-finite scale ", sc));
  if (v.size(-1) != E) unsupported("a value head dim different from the query's");
  if (E % 8 != 0 || E > 128) unsupported(str_cat("head dim ", E, " (cuDNN takes multiples of 8 up to 128)"));
  if (q.dim() > 4 || k.dim() > 4 || v.dim() > 4 || (mask.defined() && mask.dim() > 4))
    unsupported("more than 4 dims");
  if (mask.defined() && mask.requires_grad()) unsupported("an attn_mask that requires grad");
  const Shape batch = broadcast_shapes(broadcast_shapes(batch_of(q), batch_of(k), kOp), batch_of(v), kOp);
  Shape out_shape = batch;
  out_shape.push_back(L);
  out_shape.push_back(E);
  Shape scores_shape = batch;
  scores_shape.push_back(L);
  scores_shape.push_back(S);
  if (mask.defined()) {
    BM_CHECK_VALUE(broadcasts_to(mask.sizes(), scores_shape), kOp, "attn_mask of shape ", shape_str(mask.sizes()),
                   " does not broadcast to the attention scores ", shape_str(scores_shape), " (query ",
                   shape_str(q.sizes()), ", key ", shape_str(k.sizes()), ")");
  }
  if (shape_numel(batch) == 0) return composed_attention(q, k, v, mask, 0.0, causal, sc, nullptr).first;  // empty
  Shape b2 = batch;
  while (b2.size() < 2) b2.insert(b2.begin(), 1);
  const int64_t B = b2[0], H = b2[1];
  Tensor q4 = cudnn_layout(expand(to_4d(q), Shape{B, H, L, E}));
  Tensor k4 = cudnn_layout(expand(to_4d(k), Shape{B, H, S, E}));
  Tensor v4 = cudnn_layout(expand(to_4d(v), Shape{B, H, S, E}));
  // cuDNN's backward rejects Nq = Nk = 1 (its graph validation says so); say it before the forward.
  if (L == 1 && S == 1 && needs_grad({q4, k4, v4})) unsupported("a gradient with one query and one key");
  Tensor bias = mask.defined() ? cudnn_bias(mask, L, S, dt) : Tensor();
  Tensor out = empty(Shape{B, H, L, E}, dt, dev);
  Tensor lse = empty(Shape{B, H, L}, DType::Float32, dev);
  cudnn_attention_forward_kernel.get(dev)(out, lse, q4, k4, v4, bias, sc, causal);
  if (needs_grad({q4, k4, v4})) {
    SavedTensor sq(q4), sk(k4), sv(v4), so(out), sl(lse);
    SavedTensor sb = bias.defined() ? SavedTensor(bias) : SavedTensor();
    const bool has_bias = bias.defined();
    record_function(kOp, {q4, k4, v4}, {out}, [=](const std::vector<Tensor>& g) {
      Tensor qq = sq.unpack(kOp), kk = sk.unpack(kOp), vv = sv.unpack(kOp);
      Tensor dq = empty(qq.sizes(), qq.dtype(), qq.device());
      Tensor dk = empty(kk.sizes(), kk.dtype(), kk.device());
      Tensor dv = empty(vv.sizes(), vv.dtype(), vv.device());
      cudnn_attention_backward_kernel.get(qq.device())(dq, dk, dv, cudnn_layout(g[0]), qq, kk, vv, so.unpack(kOp),
                                                        sl.unpack(kOp), has_bias ? sb.unpack(kOp) : Tensor(), sc,
                                                        causal);
      return std::vector<Tensor>{dq, dk, dv};
    });
  }
  return reshape(out, out_shape);
}

}  // namespace

BM_DEFINE_KERNEL(flash_attention_forward_kernel);
BM_DEFINE_KERNEL(flash_attention_backward_kernel);
BM_DEFINE_KERNEL(cudnn_attention_forward_kernel);
BM_DEFINE_KERNEL(cudnn_attention_backward_kernel);

std::string cudnn_attention_unavailable_reason(Device device) {
  const int t = static_cast<int>(device.type);
  if (cudnn_attention_forward_kernel.table[t] && cudnn_attention_backward_kernel.table[t]) return "";
  if (!device.is_cuda()) return "the cuDNN attention backend runs on CUDA tensors only";
  if (!cuda::built_with_cuda()) return "bigmodel was built without CUDA, so without the cuDNN attention baseline";
  return "bigmodel was built without the cuDNN attention baseline: it needs cuDNN and NVIDIA's header-only cuDNN "
         "frontend (cudnn_frontend.h) at configure time. Fetch it with scripts/fetch_cudnn_frontend.sh (into "
         "debs/cudnn_frontend) or `pip install nvidia-cudnn-frontend`, or point BIGMODEL_CUDNN_FRONTEND_DIR at it, "
         "then re-run the cmake configure step; or set bm.backends.attention = 'ours'";
}

bool flash_attention_available(Device device) {
  return flash_attention_forward_kernel.table[static_cast<int>(device.type)] != nullptr &&
         flash_attention_backward_kernel.table[static_cast<int>(device.type)] != nullptr;
}

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
  const double sc = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  return composed_attention(q, k, v, attn_mask, dropout_p, is_causal, sc, gen);
}

Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const Tensor& mask_in,
                                    double dropout_p, bool is_causal, std::optional<double> scale, Generator* gen) {
  const Tensor q = amp::autocast_lower(q_in), k = amp::autocast_lower(k_in), v = amp::autocast_lower(v_in);
  const Tensor attn_mask = mask_in.defined() && mask_in.dtype() != DType::Bool ? amp::autocast_lower(mask_in) : mask_in;
  amp::AutocastOffGuard autocast_off;
  check_inputs(q, k, v, attn_mask, dropout_p, is_causal);
  const double sc = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  if (q.device().is_cuda()) {
    if (uses_vendor_backend("attention")) return cudnn_attention(q, k, v, attn_mask, dropout_p, is_causal, sc);
    Tensor out = try_flash_attention(q, k, v, attn_mask, dropout_p, is_causal, sc);
    if (out.defined()) return out;
  }
  return composed_attention(q, k, v, attn_mask, dropout_p, is_causal, sc, gen).first;
}

}  // namespace bigmodel
