// nn::LayerNorm (mirrors python/bigmodel/nn/normalization.py): per-row normalisation over the
// trailing normalized_shape dims, with PyTorch's parameter names (weight, bias) and init
// (ones, zeros) so state dicts interchange with Python.
#pragma once
#include <initializer_list>
#include <vector>

#include "core/dtype.h"
#include "nn/module.h"

namespace bigmodel::nn {

class LayerNorm : public Module {
 public:
  // elementwise_affine: learnable weight and bias of shape normalized_shape (bias only when
  // `bias` is set, as PyTorch's bias= argument); otherwise neither is registered.
  explicit LayerNorm(std::vector<int64_t> normalized_shape, double eps = 1e-5, bool elementwise_affine = true,
                     DType dtype = kDefaultFloat, bool bias = true);
  // LayerNorm({3, 4}): a braced shape (without this, {3, 4} is ambiguous with a copy).
  LayerNorm(std::initializer_list<int64_t> normalized_shape, double eps = 1e-5, bool elementwise_affine = true,
            DType dtype = kDefaultFloat, bool bias = true)
      : LayerNorm(std::vector<int64_t>(normalized_shape), eps, elementwise_affine, dtype, bias) {}
  // The common 1-d case: LayerNorm(hidden).
  explicit LayerNorm(int64_t normalized_shape, double eps = 1e-5, bool elementwise_affine = true,
                     DType dtype = kDefaultFloat, bool bias = true)
      : LayerNorm(std::vector<int64_t>{normalized_shape}, eps, elementwise_affine, dtype, bias) {}
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "LayerNorm"; }
  void reset_parameters();
  std::vector<int64_t> normalized_shape;
  double eps;
  bool elementwise_affine;
  Tensor weight, bias;  // undefined when not affine (bias also when built with bias = false)
};

}  // namespace bigmodel::nn
