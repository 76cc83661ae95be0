// View ops (no copy: the result shares storage) and the copy family (contiguous, clone,
// to, copy_). All record autograd so gradients flow through views.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace bigmodel {

Tensor as_strided(const Tensor& self, const Shape& sizes, const Shape& strides, int64_t offset);
Tensor view(const Tensor& self, Shape sizes);      // one -1 allowed; needs compatible strides
Tensor reshape(const Tensor& self, Shape sizes);   // view when possible, copy otherwise
Tensor permute(const Tensor& self, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& self, int64_t dim0, int64_t dim1);
Tensor t(const Tensor& self);                      // 2-D transpose (<= 2 dims)
Tensor narrow(const Tensor& self, int64_t dim, int64_t start, int64_t length);
// Python-style slice start:stop:step on one dim (clamped like Python; step > 0).
Tensor slice(const Tensor& self, int64_t dim, int64_t start, int64_t stop, int64_t step = 1);
Tensor select(const Tensor& self, int64_t dim, int64_t index);
Tensor expand(const Tensor& self, const Shape& sizes);  // -1 keeps a size
Tensor expand_as(const Tensor& self, const Tensor& other);
Tensor squeeze(const Tensor& self);
Tensor squeeze(const Tensor& self, int64_t dim);
Tensor unsqueeze(const Tensor& self, int64_t dim);
Tensor flatten(const Tensor& self, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor unflatten(const Tensor& self, int64_t dim, const Shape& sizes);
Tensor movedim(const Tensor& self, int64_t source, int64_t destination);
Tensor broadcast_to(const Tensor& self, const Shape& sizes);

Tensor contiguous(const Tensor& self);
Tensor clone(const Tensor& self);
Tensor to(const Tensor& self, DType dtype);
Tensor to(const Tensor& self, Device device);
Tensor to(const Tensor& self, Device device, DType dtype);
// Across devices, non_blocking=true stages host memory through pinned buffers and does not
// wait: a CPU result is valid only after bm.cuda.synchronize() (as in PyTorch).
Tensor to(const Tensor& self, Device device, DType dtype, bool non_blocking);
// Copies src into self (src broadcast to self's shape, converted to self's dtype).
Tensor& copy_(Tensor& self, const Tensor& src);

}  // namespace bigmodel
