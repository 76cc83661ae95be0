// scaled_dot_product_attention: PyTorch's F.scaled_dot_product_attention as a composed
// reference (matmul, masking, softmax, dropout, matmul), so autograd comes from the parts.
#pragma once
#include <optional>
#include <utility>

#include "core/random.h"
#include "core/tensor.h"

namespace bigmodel {

// q [..., L, E], k [..., S, E], v [..., S, Ev] -> [..., L, Ev] (batch dims broadcast).
// attn_mask (optional, undefined = none) broadcasts to [..., L, S]: bool keeps where true,
// floating is added to the scores. is_causal keeps the lower triangle (row i sees j <= i).
// scale defaults to 1/sqrt(E). dropout_p > 0 drops attention weights with `gen` (nullptr =
// the default generator).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& attn_mask = Tensor(), double dropout_p = 0.0,
                                    bool is_causal = false, std::optional<double> scale = std::nullopt,
                                    Generator* gen = nullptr);

// As above but also returns the attention weights [..., L, S] (after dropout), which
// nn.MultiheadAttention hands back when need_weights is set.
std::pair<Tensor, Tensor> scaled_dot_product_attention_with_weights(
    const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask = Tensor(), double dropout_p = 0.0,
    bool is_causal = false, std::optional<double> scale = std::nullopt, Generator* gen = nullptr);

}  // namespace bigmodel
