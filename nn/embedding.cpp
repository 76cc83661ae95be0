// nn::Embedding (see embedding.h): construction, N(0, 1) init with a zero padding row, forward.
#include "nn/embedding.h"

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops/creation.h"
#include "core/ops/index.h"
#include "core/ops/view.h"
#include "core/shape.h"

namespace bigmodel::nn {

Embedding::Embedding(int64_t num, int64_t dim, std::optional<int64_t> pad, DType dtype)
    : num_embeddings(num), embedding_dim(dim) {
  const char* op = "Embedding";
  BM_CHECK_VALUE(num >= 0 && dim >= 0, op, "sizes must be >= 0, got ", num, ", ", dim);
  BM_CHECK_DTYPE(is_floating(dtype), op, "dtype must be floating, got ", dtype_name(dtype));
  if (pad) {
    BM_CHECK_VALUE(*pad >= -num && *pad < num, op, "padding_idx must be within num_embeddings=", num, ", got ",
                   *pad);
    padding_idx = *pad < 0 ? *pad + num : *pad;
  }
  weight = register_parameter("weight", empty({num, dim}, dtype));
  reset_parameters();
}

void Embedding::reset_parameters() {
  NoGradGuard no_grad;
  normal_(weight);
  if (padding_idx) {
    Tensor row = select(weight, 0, *padding_idx);
    zero_(row);
  }
}

Tensor Embedding::forward(const Tensor& input) {
  BM_CHECK_DTYPE(input.dtype() == DType::Int64 || input.dtype() == DType::Int32, "Embedding",
                 "expected an integer (int64) index tensor, got ", dtype_name(input.dtype()), " of shape ",
                 shape_str(input.sizes()));
  return in_layer("Embedding", [&] { return embedding(weight, input, padding_idx); });
}

}  // namespace bigmodel::nn
