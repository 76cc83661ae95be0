// Shape ops that join, split and rearrange tensors: cat/stack, split/chunk/unbind,
// tril/triu, flip, repeat, roll. All record autograd.
#pragma once
#include <vector>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

// Zeros, in place, the entries of every matrix (last two dims) of the contiguous `out`
// outside the kept triangle: upper keeps j - i >= diagonal, lower keeps j - i <= diagonal.
BM_DECLARE_KERNEL(triangle_kernel, void (*)(const Tensor& out, int64_t diagonal, bool upper));
// out (contiguous) = src with the dims where flip[d] is true reversed; same shape and dtype.
BM_DECLARE_KERNEL(flip_kernel, void (*)(const Tensor& out, const Tensor& src, const std::vector<bool>& flip));

// Joins along `dim`; dtypes promote; 1-D empty tensors are skipped (as in PyTorch).
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
// Views of `self`: pieces of split_size (the last may be smaller), or of the given sizes.
std::vector<Tensor> split(const Tensor& self, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& self, const std::vector<int64_t>& sections, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& self, int64_t chunks, int64_t dim = 0);
std::vector<Tensor> unbind(const Tensor& self, int64_t dim = 0);
Tensor tril(const Tensor& self, int64_t diagonal = 0);
Tensor triu(const Tensor& self, int64_t diagonal = 0);
Tensor flip(const Tensor& self, const std::vector<int64_t>& dims);
Tensor repeat(const Tensor& self, const Shape& repeats);
// Rolls along `dims` by `shifts`; no dims: the flattened tensor rolls, shape kept.
Tensor roll(const Tensor& self, const std::vector<int64_t>& shifts, const std::vector<int64_t>& dims = {});

}  // namespace bigmodel
