// nn::Embedding (mirrors python/bigmodel/nn/sparse.py): a lookup table weight
// [num_embeddings, embedding_dim] initialised N(0, 1), PyTorch's name and init, so state dicts
// interchange with Python. The padding_idx row starts at zero and receives no gradient.
#pragma once
#include <optional>

#include "core/dtype.h"
#include "nn/module.h"

namespace bigmodel::nn {

class Embedding : public Module {
 public:
  // padding_idx may be negative (counted from the end, then stored normalised).
  Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx = std::nullopt,
            DType dtype = kDefaultFloat);
  // input: an integer (int64) index tensor of any shape -> input.shape + [embedding_dim].
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Embedding"; }
  void reset_parameters();
  int64_t num_embeddings, embedding_dim;
  std::optional<int64_t> padding_idx;
  Tensor weight;
};

}  // namespace bigmodel::nn
