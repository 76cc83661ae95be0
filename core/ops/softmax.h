// softmax and log_softmax along one dim (max-shifted, float math for half types), their
// kernel family and backward.
#pragma once
#include <optional>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

// out and in are contiguous with the same shape, viewed as [outer, n, inner] where n is
// the softmax dim: out[o, :, i] = softmax (or log_softmax) of in[o, :, i].
BM_DECLARE_KERNEL(softmax_kernel, void (*)(const Tensor& out, const Tensor& in, int64_t outer, int64_t n,
                                           int64_t inner, bool log));

// dtype, when given, converts the input first (as PyTorch's dtype= argument does).
Tensor softmax(const Tensor& self, int64_t dim, std::optional<DType> dtype = std::nullopt);
Tensor log_softmax(const Tensor& self, int64_t dim, std::optional<DType> dtype = std::nullopt);

}  // namespace bigmodel
