// nn::MultiheadAttention (mirrors python/bigmodel/nn/transformer.py): PyTorch's parameter names
// (in_proj_weight [3E, E], in_proj_bias [3E], out_proj.weight, out_proj.bias) and init (xavier
// uniform in_proj_weight, zero biases), masks with nn's conventions, attention through
// scaled_dot_product_attention (core/ops/attention.h).
#pragma once
#include <memory>
#include <utility>

#include "core/dtype.h"
#include "nn/layers.h"
#include "nn/module.h"

namespace bigmodel::nn {

class MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout = 0.0, bool bias = true,
                     bool batch_first = false, DType dtype = kDefaultFloat);

  // query [L, N, E], key/value [S, N, E] ([N, L, E] / [N, S, E] with batch_first; [L, E] /
  // [S, E] unbatched). key_padding_mask [N, S] and attn_mask [L, S] or [N*num_heads, L, S]
  // are bool (true = masked out) or floating (added to the scores); undefined = none.
  // is_causal without attn_mask masks j > i. Returns (output shaped like query, weights):
  // weights [N, L, S] averaged over heads ([N, num_heads, L, S] when not averaged; without N
  // when unbatched), undefined when need_weights is false.
  std::pair<Tensor, Tensor> forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const Tensor& key_padding_mask = Tensor(), const Tensor& attn_mask = Tensor(),
                                    bool need_weights = true, bool average_attn_weights = true,
                                    bool is_causal = false);
  // Self-attention, output only (Module's one-tensor interface).
  Tensor forward(const Tensor& x) override { return forward(x, x, x, Tensor(), Tensor(), false).first; }
  std::string type_name() const override { return "MultiheadAttention"; }
  void reset_parameters();

  int64_t embed_dim, num_heads, head_dim;
  double dropout;
  bool batch_first;
  Tensor in_proj_weight, in_proj_bias;  // in_proj_bias undefined without bias
  std::shared_ptr<Linear> out_proj;
};

}  // namespace bigmodel::nn
