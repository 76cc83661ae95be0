// Tensor: a shared handle to TensorImpl (storage, sizes, strides in elements, offset,
// dtype) plus the autograd metadata that makes it part of a graph. Copying a Tensor
// copies the handle, as in PyTorch; ops live in core/ops/*.h as free functions.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/scalar.h"
#include "core/shape.h"
#include "core/storage.h"

namespace bigmodel {

class Node;
class Tensor;
struct TensorImpl;

using GradHook = std::function<Tensor(const Tensor&)>;  // returns a replacement or undefined
using PostAccumulateHook = std::function<void(const Tensor&)>;  // receives the leaf

struct AutogradMeta {
  bool requires_grad = false;
  bool retains_grad = false;
  std::shared_ptr<TensorImpl> grad;       // .grad (leaves, or non-leaves that retain it)
  std::shared_ptr<Node> grad_fn;          // null for leaves
  uint32_t output_nr = 0;                 // which output of grad_fn this tensor is
  std::weak_ptr<Node> grad_accumulator;   // leaves: their AccumulateGrad node
  std::vector<GradHook> hooks;            // leaves: run before accumulation
  std::vector<PostAccumulateHook> post_accumulate_hooks;
};

struct TensorImpl {
  StoragePtr storage;
  Shape sizes;
  Shape strides;  // in elements
  int64_t offset = 0;  // in elements
  DType dtype = DType::Float32;
  std::shared_ptr<TensorImpl> base;  // set on views: the tensor whose storage they alias
  std::unique_ptr<AutogradMeta> autograd;

  AutogradMeta& meta() {
    if (!autograd) autograd = std::make_unique<AutogradMeta>();
    return *autograd;
  }
};

class Tensor {
 public:
  Tensor() = default;  // undefined tensor
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // A new contiguous tensor with uninitialised memory.
  static Tensor empty(const Shape& sizes, DType dtype = kDefaultFloat, Device device = Device());
  // A tensor viewing `storage` with the given geometry (no copy).
  static Tensor make_view(const Tensor& base, Shape sizes, Shape strides, int64_t offset);

  bool defined() const { return impl_ != nullptr; }
  const Shape& sizes() const { return impl_->sizes; }
  const Shape& shape() const { return impl_->sizes; }
  const Shape& strides() const { return impl_->strides; }
  int64_t offset() const { return impl_->offset; }
  int64_t dim() const { return static_cast<int64_t>(impl_->sizes.size()); }
  int64_t size(int64_t d) const;    // negative dims wrap
  int64_t stride(int64_t d) const;
  int64_t numel() const { return shape_numel(impl_->sizes); }
  DType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->storage->device(); }
  size_t itemsize() const { return bigmodel::itemsize(impl_->dtype); }
  size_t nbytes() const { return numel() * itemsize(); }
  bool is_contiguous() const;
  bool is_view() const { return impl_->base != nullptr; }
  const StoragePtr& storage() const { return impl_->storage; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

  // Pointer to the first element (storage + offset). Checked against T's dtype.
  void* data_ptr() const;
  template <typename T> T* data() const {
    BM_CHECK_DTYPE(DTypeOf<T>::value == dtype(), "data", "tensor is ", dtype_name(dtype()),
                   ", requested ", dtype_name(DTypeOf<T>::value));
    return static_cast<T*>(data_ptr());
  }
  Scalar item() const;  // one-element tensors only (ValueError otherwise)
  std::string repr() const;  // like PyTorch's

  // Autograd.
  bool requires_grad() const { return impl_->autograd && impl_->autograd->requires_grad; }
  Tensor& set_requires_grad(bool r);  // leaves only, floating dtypes only
  Tensor& requires_grad_(bool r = true) { return set_requires_grad(r); }
  bool is_leaf() const { return !impl_->autograd || !impl_->autograd->grad_fn; }
  std::shared_ptr<Node> grad_fn() const { return impl_->autograd ? impl_->autograd->grad_fn : nullptr; }
  uint32_t output_nr() const { return impl_->autograd ? impl_->autograd->output_nr : 0; }
  Tensor grad() const;
  void set_grad(const Tensor& g);
  // Makes this tensor alias src's memory, shape, strides and dtype while it keeps its identity
  // and autograd flags (Module::to, and Python's t.data = src); a grad that no longer matches
  // (shape, dtype or device) is dropped.
  void set_data(const Tensor& src);
  void retain_grad();
  bool retains_grad() const { return impl_->autograd && impl_->autograd->retains_grad; }
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false, bool create_graph = false) const;
  Tensor detach() const;   // shares storage, no history
  Tensor& detach_();
  void register_hook(GradHook hook);
  void register_post_accumulate_grad_hook(PostAccumulateHook hook);
  uint64_t version() const { return impl_->storage->version(); }
  void bump_version() const { impl_->storage->bump_version(); }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace bigmodel
