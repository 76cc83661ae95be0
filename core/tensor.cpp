// Tensor handle: construction, geometry queries, element access for item(), and the
// autograd entry points (requires_grad, grad, backward, detach, hooks).
#include "core/tensor.h"

#include "core/autograd.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/view.h"

namespace bigmodel {

Tensor Tensor::empty(const Shape& sizes, DType dtype, Device device) {
  int64_t numel = 1;
  for (int64_t s : sizes) {
    BM_CHECK_VALUE(s >= 0, "empty", "negative dimension in shape ", shape_str(sizes));
    BM_CHECK_VALUE(s == 0 || numel <= (int64_t{1} << 62) / s, "empty", "shape ", shape_str(sizes),
                   " has too many elements");
    numel *= s;
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(sizes) * bigmodel::itemsize(dtype), device);
  impl->sizes = sizes;
  impl->strides = contiguous_strides(sizes);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::make_view(const Tensor& base, Shape sizes, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->sizes = std::move(sizes);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  impl->base = base.impl()->base ? base.impl()->base : base.impl_ptr();
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t d) const {
  BM_CHECK_INDEX(dim() > 0, "size", "dimension specified as ", d, " but the tensor has no dimensions");
  return impl_->sizes[wrap_dim(d, dim(), "size")];
}
int64_t Tensor::stride(int64_t d) const {
  BM_CHECK_INDEX(dim() > 0, "stride", "dimension specified as ", d, " but the tensor has no dimensions");
  return impl_->strides[wrap_dim(d, dim(), "stride")];
}

bool Tensor::is_contiguous() const {
  // A tensor without elements is contiguous whatever its strides (as in PyTorch); without this,
  // a fresh empty({2, 0, 3}) (strides from contiguous_strides, which counts 0 as 1) was not.
  for (int64_t s : impl_->sizes)
    if (s == 0) return true;
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (impl_->sizes[i] == 1) continue;
    if (impl_->strides[i] != expected) return false;
    expected *= impl_->sizes[i];
  }
  return true;
}

void* Tensor::data_ptr() const {
  return static_cast<char*>(impl_->storage->data()) + impl_->offset * itemsize();
}

Scalar Tensor::item() const {
  BM_CHECK_VALUE(numel() == 1, "item", "only one-element tensors can be converted to a number, got shape ",
                 shape_str(sizes()));
  Tensor c = device().is_cpu() ? *this : to(*this, Device());
  const void* p = c.data_ptr();
  switch (dtype()) {
    case DType::Bool: return Scalar(*static_cast<const bool*>(p));
    case DType::Int32: return Scalar(static_cast<int64_t>(*static_cast<const int32_t*>(p)));
    case DType::Int64: return Scalar(*static_cast<const int64_t*>(p));
    case DType::Float16: return Scalar(static_cast<double>(static_cast<float>(*static_cast<const Half*>(p))));
    case DType::BFloat16: return Scalar(static_cast<double>(static_cast<float>(*static_cast<const BFloat16*>(p))));
    case DType::Float32: return Scalar(static_cast<double>(*static_cast<const float*>(p)));
    case DType::Float64: return Scalar(*static_cast<const double*>(p));
  }
  return Scalar();
}

Tensor& Tensor::set_requires_grad(bool r) {
  BM_CHECK_RUNTIME(is_leaf(), "requires_grad_",
                   "you can only change requires_grad flags of leaf tensors; use detach() first");
  BM_CHECK_DTYPE(!r || is_floating(dtype()), "requires_grad_",
                 "only floating point tensors can require gradients, got ", dtype_name(dtype()));
  impl_->meta().requires_grad = r;
  return *this;
}

Tensor Tensor::grad() const {
  if (!impl_->autograd || !impl_->autograd->grad) return Tensor();
  return Tensor(impl_->autograd->grad);
}

void Tensor::set_grad(const Tensor& g) {
  if (g.defined()) {
    BM_CHECK_SHAPE(g.sizes() == sizes(), "grad", "assigned grad has shape ", shape_str(g.sizes()),
                   " but the tensor has shape ", shape_str(sizes()));
    BM_CHECK_DTYPE(g.dtype() == dtype(), "grad", "assigned grad has dtype ", dtype_name(g.dtype()),
                   " but the tensor has dtype ", dtype_name(dtype()));
  }
  impl_->meta().grad = g.defined() ? g.impl_ptr() : nullptr;
}

void Tensor::set_data(const Tensor& src) {
  BM_CHECK_VALUE(defined() && src.defined(), "set_data", "both tensors must be defined");
  Tensor g = grad();
  const bool keep_grad =
      g.defined() && g.sizes() == src.sizes() && g.dtype() == src.dtype() && g.device() == src.device();
  TensorImpl* impl = impl_.get();
  impl->storage = src.storage();
  impl->sizes = src.sizes();
  impl->strides = src.strides();
  impl->offset = src.offset();
  impl->dtype = src.dtype();
  impl->base = nullptr;
  if (!keep_grad && g.defined()) set_grad(Tensor());
}

void Tensor::retain_grad() {
  BM_CHECK_RUNTIME(requires_grad(), "retain_grad", "can't retain_grad on a tensor that has requires_grad=False");
  if (is_leaf() || impl_->autograd->retains_grad) return;
  impl_->autograd->retains_grad = true;
  std::weak_ptr<TensorImpl> weak = impl_;
  impl_->autograd->grad_fn->retain_grad_hooks.emplace_back(output_nr(), [weak](const Tensor& g) {
    if (auto self = weak.lock()) {
      NoGradGuard no_grad;
      Tensor old = Tensor(self).grad();
      self->meta().grad = (old.defined() ? add(old, g) : clone(g)).impl_ptr();
    }
    return Tensor();
  });
}

void Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
  BM_CHECK_RUNTIME(requires_grad(), "backward",
                   "element 0 of tensors does not require grad and does not have a grad_fn");
  Tensor seed = gradient;
  if (!seed.defined()) {
    BM_CHECK_RUNTIME(numel() == 1, "backward", "grad can be implicitly created only for scalar outputs, got shape ",
                     shape_str(sizes()));
    seed = ones_like(*this);
  } else {
    BM_CHECK_SHAPE(seed.sizes() == sizes(), "backward", "gradient has shape ", shape_str(seed.sizes()),
                   " but the output has shape ", shape_str(sizes()));
  }
  run_backward({*this}, {seed.detach()}, retain_graph, create_graph);
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->sizes = impl_->sizes;
  impl->strides = impl_->strides;
  impl->offset = impl_->offset;
  impl->dtype = impl_->dtype;
  impl->base = impl_->base ? impl_->base : impl_;
  return Tensor(std::move(impl));
}

Tensor& Tensor::detach_() {
  if (impl_->autograd) {
    impl_->autograd->grad_fn.reset();
    impl_->autograd->requires_grad = false;
    impl_->autograd->output_nr = 0;
  }
  return *this;
}

void Tensor::register_hook(GradHook hook) {
  BM_CHECK_RUNTIME(requires_grad(), "register_hook",
                   "cannot register a hook on a tensor that doesn't require gradient");
  if (is_leaf()) {
    impl_->autograd->hooks.push_back(std::move(hook));
  } else {
    impl_->autograd->grad_fn->pre_hooks.emplace_back(output_nr(), std::move(hook));
  }
}

void Tensor::register_post_accumulate_grad_hook(PostAccumulateHook hook) {
  BM_CHECK_RUNTIME(requires_grad() && is_leaf(), "register_post_accumulate_grad_hook",
                   "post accumulate grad hooks can only be registered on leaf tensors that require grad");
  impl_->autograd->post_accumulate_hooks.push_back(std::move(hook));
}

}  // namespace bigmodel
