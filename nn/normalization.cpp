// nn::LayerNorm (see normalization.h): construction, init and forward over layer_norm.
#include "nn/normalization.h"

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops/creation.h"
#include "core/ops/norm.h"
#include "core/shape.h"

namespace bigmodel::nn {

LayerNorm::LayerNorm(std::vector<int64_t> shape, double eps_, bool affine, DType dtype, bool with_bias)
    : normalized_shape(std::move(shape)), eps(eps_), elementwise_affine(affine) {
  const char* op = "LayerNorm";
  BM_CHECK_VALUE(!normalized_shape.empty(), op, "normalized_shape must name at least one dim");
  for (int64_t s : normalized_shape)
    BM_CHECK_VALUE(s > 0, op, "normalized_shape must be positive, got ", shape_str(normalized_shape));
  BM_CHECK_VALUE(eps >= 0, op, "eps must be >= 0, got ", eps);
  BM_CHECK_DTYPE(is_floating(dtype), op, "dtype must be floating, got ", dtype_name(dtype));
  weight = register_parameter("weight", affine ? empty(normalized_shape, dtype) : Tensor());
  bias = register_parameter("bias", affine && with_bias ? empty(normalized_shape, dtype) : Tensor());
  reset_parameters();
}

void LayerNorm::reset_parameters() {
  NoGradGuard no_grad;
  if (weight.defined()) fill_(weight, Scalar(1.0));
  if (bias.defined()) zero_(bias);
}

Tensor LayerNorm::forward(const Tensor& input) {
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  bool ok = input.dim() >= k;
  for (int64_t i = 0; ok && i < k; ++i) ok = input.sizes()[input.dim() - k + i] == normalized_shape[i];
  BM_CHECK_SHAPE(ok, "LayerNorm", "expected input with trailing shape ", shape_str(normalized_shape), ", got ",
                 shape_str(input.sizes()));
  return layer_norm(input, normalized_shape, weight, bias, eps);
}

}  // namespace bigmodel::nn
