// Indexing: Python-style x[...] reads and writes (TensorIndex lists: ints, slices, None,
// Ellipsis, bool masks, integer index tensors) and the index op family (index_select,
// gather, scatter, scatter_add, index_add, index_put, embedding, one_hot, masked_select,
// nonzero, take). Basic indices give views; tensor indices give copies.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

// ---- kernels (index tensors are int32 or int64; front ends validate everything else) ----

// out[p] = *(src[p] + wrap(index[p], size) * stride) for every position p of out's shape.
// `src` is the source restrided to out's shape (stride 0 along the indexed dims) and
// `index` is expanded to out's shape and already range-checked: negative values wrap by
// `size` (size < 0: the values are final offsets, used as they are).
BM_DECLARE_KERNEL(index_gather_kernel, void (*)(const Tensor& out, const Tensor& src, const Tensor& index,
                                                int64_t stride, int64_t size));
// The reverse: *(dst[p] + wrap(index[p]) * stride) = src[p] (or += when accumulate; repeated
// indices then add up). dst is restrided like src above; src has dst's shape and dtype.
BM_DECLARE_KERNEL(index_scatter_kernel, void (*)(const Tensor& dst, const Tensor& src, const Tensor& index,
                                                 int64_t stride, int64_t size, bool accumulate));
// offsets[p] += wrap(index[p], size) * stride; offsets is int64, index expanded to its shape.
BM_DECLARE_KERNEL(index_offset_kernel, void (*)(const Tensor& offsets, const Tensor& index, int64_t size,
                                                int64_t stride));
// The coordinates of the nonzero elements of self, as an int64 [n, self.dim()] tensor.
BM_DECLARE_KERNEL(nonzero_kernel, Tensor (*)(const Tensor& self));
// Smallest and largest value of an int32/int64 tensor with at least one element (front
// ends check index ranges with it before launching the kernels above).
BM_DECLARE_KERNEL(index_minmax_kernel, void (*)(const Tensor& self, int64_t* min, int64_t* max));

// ---- the TensorIndex type (Python's x[...] items, also the C++ API) ----

namespace indexing {
struct NoneIndex {};
struct EllipsisIndex {};
inline constexpr NoneIndex None{};          // a new axis of size 1
inline constexpr EllipsisIndex Ellipsis{};  // as many full slices as needed
// start:stop:step; absent start/stop mean the ends, like Python. step must be positive.
struct Slice {
  std::optional<int64_t> start, stop;
  int64_t step = 1;
  Slice(std::optional<int64_t> start_ = std::nullopt, std::optional<int64_t> stop_ = std::nullopt,
        int64_t step_ = 1)
      : start(start_), stop(stop_), step(step_) {}
};
}  // namespace indexing

class TensorIndex {
 public:
  enum class Kind { Integer, Boolean, Slice, None, Ellipsis, Tensor };
  TensorIndex(int64_t i) : kind_(Kind::Integer), integer_(i) {}  // NOLINT: implicit like PyTorch
  TensorIndex(int i) : TensorIndex(static_cast<int64_t>(i)) {}   // NOLINT
  TensorIndex(indexing::Slice s) : kind_(Kind::Slice), slice_(s) {}  // NOLINT
  TensorIndex(indexing::NoneIndex) : kind_(Kind::None) {}            // NOLINT
  TensorIndex(indexing::EllipsisIndex) : kind_(Kind::Ellipsis) {}    // NOLINT
  TensorIndex(Tensor t) : kind_(Kind::Tensor), tensor_(std::move(t)) {}  // NOLINT
  // x[True] / x[False]: a new axis of size 1 or 0 (a 0-d mask).
  static TensorIndex boolean(bool b) {
    TensorIndex r(int64_t{0});
    r.kind_ = Kind::Boolean;
    r.boolean_ = b;
    return r;
  }

  Kind kind() const { return kind_; }
  int64_t integer() const { return integer_; }
  bool boolean() const { return boolean_; }
  const indexing::Slice& slice() const { return slice_; }
  const Tensor& tensor() const { return tensor_; }

 private:
  Kind kind_;
  int64_t integer_ = 0;
  bool boolean_ = false;
  indexing::Slice slice_;
  Tensor tensor_;
};

// self[indices]: a view when every index is basic (int, slice, None, Ellipsis), a copy
// with gradient otherwise. Errors are IndexError starting "[index] ".
Tensor index(const Tensor& self, const std::vector<TensorIndex>& indices);
// self[indices] = values (values broadcast to the indexed shape and cast to self's dtype).
Tensor& index_put_(Tensor& self, const std::vector<TensorIndex>& indices, const Tensor& values);
Tensor& index_put_(Tensor& self, const std::vector<TensorIndex>& indices, const Scalar& value);

// Advanced indexing proper, as aten::index: indices[d] indexes dim d of self (undefined =
// the whole dim; missing trailing entries too). Integer tensors broadcast together; bool
// tensors are masks over as many dims as they have. Adjacent indexed dims are replaced in
// place by the broadcast shape; separated ones put it first (NumPy rules).
Tensor advanced_index(const Tensor& self, const std::vector<Tensor>& indices);
// self[indices] = values (or += with accumulate, where repeated indices add up).
Tensor& advanced_index_put_(Tensor& self, const std::vector<Tensor>& indices, const Tensor& values,
                            bool accumulate = false);
Tensor advanced_index_put(const Tensor& self, const std::vector<Tensor>& indices, const Tensor& values,
                          bool accumulate = false);

// The index op family (PyTorch names and semantics).
Tensor index_select(const Tensor& self, int64_t dim, const Tensor& index);  // index: 0-d or 1-d
Tensor gather(const Tensor& self, int64_t dim, const Tensor& index);
Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src);
Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, const Scalar& value);
Tensor& scatter_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& src);
Tensor& scatter_(Tensor& self, int64_t dim, const Tensor& index, const Scalar& value);
Tensor scatter_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src);
Tensor& scatter_add_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& src);
// self[..., index[i], ...] += alpha * source[..., i, ...] along dim.
Tensor index_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source,
                 const Scalar& alpha = Scalar(int64_t{1}));
Tensor& index_add_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& source,
                   const Scalar& alpha = Scalar(int64_t{1}));
// Rows of weight [num, dim] picked by indices (any shape): result indices.shape + [dim].
// Gradients of repeated indices add up; the padding_idx row gets none.
Tensor embedding(const Tensor& weight, const Tensor& indices, std::optional<int64_t> padding_idx = std::nullopt);
// int64 tensor of shape self.shape + [num_classes]; num_classes < 0 means max(self) + 1.
Tensor one_hot(const Tensor& self, int64_t num_classes = -1);
Tensor masked_select(const Tensor& self, const Tensor& mask);  // 1-d copy; mask broadcasts
Tensor nonzero(const Tensor& self);                             // int64 [n, dim]
std::vector<Tensor> nonzero_tuple(const Tensor& self);          // as_tuple=True: dim tensors of [n]
Tensor take(const Tensor& self, const Tensor& index);           // self.flatten()[index]

}  // namespace bigmodel
