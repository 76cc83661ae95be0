// View ops and the copy family, with their backward formulas.
#include "core/ops/view.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/cuda/transfer.h"
#include "core/cuda_info.h"
#include "core/ops/copy_kernels.h"
#include "core/ops/creation.h"

namespace bigmodel {

BM_DEFINE_KERNEL(copy_kernel);
BM_DEFINE_KERNEL(fill_kernel);
BM_DEFINE_KERNEL(transfer_kernel);

namespace {

// Records a view's backward: the gradient is scattered into zeros of the input's shape
// through the same view, which serves narrow, slice and select alike.
void record_scatter_view(const char* name, const Tensor& self, const Tensor& out,
                         std::function<Tensor(const Tensor&)> same_view) {
  Shape in_sizes = self.sizes();
  record_function(name, {self}, {out}, [name, in_sizes, same_view](const std::vector<Tensor>& g) {
    Tensor gi;
    {
      NoGradGuard no_grad;  // writing into a view of gi is not itself recorded
      gi = zeros(in_sizes, g[0].dtype(), g[0].device());
      Tensor v = same_view(gi);
      copy_(v, g[0]);
    }
    // Under create_graph gi is linear in g[0]: its own backward takes the same view.
    if (GradMode::is_enabled() && g[0].requires_grad())
      record_function(name, {g[0]}, {gi}, [same_view](const std::vector<Tensor>& gg) {
        return std::vector<Tensor>{same_view(gg[0])};
      }, SecondOrder::Full);
    return std::vector<Tensor>{gi};
  }, SecondOrder::Full);
}

// Strides for viewing `self` with `sizes` without a copy, or empty if impossible.
bool view_strides(const Tensor& self, const Shape& sizes, Shape& out) {
  out.assign(sizes.size(), 0);
  if (self.numel() == 0 || self.dim() == 0) {
    out = contiguous_strides(sizes);
    return true;
  }
  const Shape& os = self.sizes();
  const Shape& ot = self.strides();
  int64_t view_d = static_cast<int64_t>(sizes.size()) - 1;
  int64_t chunk_base_stride = ot.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = self.dim() - 1; d >= 0; --d) {
    tensor_numel *= os[d];
    if (d == 0 || (os[d - 1] != 1 && ot[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || sizes[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= sizes[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = ot[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

Shape infer_size(const Shape& sizes, int64_t numel, const char* op, const Shape& from) {
  Shape out = sizes;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      BM_CHECK_VALUE(infer < 0, op, "only one dimension can be inferred, got ", shape_str(sizes));
      infer = static_cast<int64_t>(i);
    } else {
      BM_CHECK_VALUE(out[i] >= 0, op, "invalid shape dimension ", out[i], " in ", shape_str(sizes));
      known *= out[i];
    }
  }
  if (infer >= 0) {
    BM_CHECK_SHAPE(known != 0 && numel % known == 0, op, "shape ", shape_str(sizes),
                   " is invalid for input of shape ", shape_str(from));
    out[infer] = numel / known;
  }
  BM_CHECK_SHAPE(shape_numel(out) == numel, op, "shape ", shape_str(sizes),
                 " is invalid for input of shape ", shape_str(from), " (", numel, " elements)");
  return out;
}

}  // namespace

Tensor as_strided(const Tensor& self, const Shape& sizes, const Shape& strides, int64_t offset) {
  BM_CHECK_VALUE(sizes.size() == strides.size(), "as_strided", "sizes ", shape_str(sizes),
                 " and strides ", shape_str(strides), " differ in length");
  int64_t max_off = offset;
  for (size_t i = 0; i < sizes.size(); ++i) {
    BM_CHECK_VALUE(sizes[i] >= 0 && strides[i] >= 0, "as_strided", "negative size or stride");
    if (sizes[i] > 0) max_off += (sizes[i] - 1) * strides[i];
  }
  BM_CHECK_VALUE(offset >= 0 && (shape_numel(sizes) == 0 ||
                                 (max_off + 1) * static_cast<int64_t>(self.itemsize()) <=
                                     static_cast<int64_t>(self.storage()->nbytes())),
                 "as_strided", "view of shape ", shape_str(sizes), " with strides ", shape_str(strides),
                 " and offset ", offset, " is out of bounds for the storage");
  Tensor out = Tensor::make_view(self, sizes, strides, offset);
  if (needs_grad({self})) {
    record_function("as_strided", {self}, {out}, [](const std::vector<Tensor>&) -> std::vector<Tensor> {
      throw NotImplementedError("[as_strided] backward is not supported");
    });
  }
  return out;
}

Tensor view(const Tensor& self, Shape sizes) {
  Shape shape = infer_size(sizes, self.numel(), "view", self.sizes());
  Shape strides;
  BM_CHECK_RUNTIME(view_strides(self, shape, strides), "view", "view size ", shape_str(shape),
                   " is not compatible with input of shape ", shape_str(self.sizes()), " and strides ",
                   shape_str(self.strides()), "; use reshape() instead");
  Tensor out = Tensor::make_view(self, shape, strides, self.offset());
  if (needs_grad({self})) {
    Shape in = self.sizes();
    record_function("view", {self}, {out}, [in](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{reshape(g[0], in)};
    }, SecondOrder::Full);
  }
  return out;
}

Tensor reshape(const Tensor& self, Shape sizes) {
  Shape shape = infer_size(sizes, self.numel(), "reshape", self.sizes());
  Shape strides;
  if (view_strides(self, shape, strides)) return view(self, shape);
  return view(contiguous(self), shape);
}

Tensor permute(const Tensor& self, const std::vector<int64_t>& dims) {
  BM_CHECK_VALUE(static_cast<int64_t>(dims.size()) == self.dim(), "permute", "got ", dims.size(),
                 " dims for a tensor of shape ", shape_str(self.sizes()));
  std::vector<int64_t> d(dims.size());
  std::vector<bool> used(dims.size(), false);
  Shape sizes(dims.size()), strides(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    d[i] = wrap_dim(dims[i], self.dim(), "permute");
    BM_CHECK_VALUE(!used[d[i]], "permute", "repeated dim ", dims[i], " in permutation");
    used[d[i]] = true;
    sizes[i] = self.sizes()[d[i]];
    strides[i] = self.strides()[d[i]];
  }
  Tensor out = Tensor::make_view(self, sizes, strides, self.offset());
  if (needs_grad({self})) {
    std::vector<int64_t> inv(d.size());
    for (size_t i = 0; i < d.size(); ++i) inv[d[i]] = static_cast<int64_t>(i);
    record_function("permute", {self}, {out}, [inv](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{permute(g[0], inv)};
    }, SecondOrder::Full);
  }
  return out;
}

Tensor transpose(const Tensor& self, int64_t dim0, int64_t dim1) {
  std::vector<int64_t> perm(self.dim());
  for (int64_t i = 0; i < self.dim(); ++i) perm[i] = i;
  if (self.dim() == 0) return permute(self, perm);
  int64_t a = wrap_dim(dim0, self.dim(), "transpose"), b = wrap_dim(dim1, self.dim(), "transpose");
  std::swap(perm[a], perm[b]);
  return permute(self, perm);
}

Tensor t(const Tensor& self) {
  BM_CHECK_SHAPE(self.dim() <= 2, "t", "expects a tensor with <= 2 dims, got shape ",
                 shape_str(self.sizes()));
  return self.dim() < 2 ? self : transpose(self, 0, 1);
}

Tensor slice(const Tensor& self, int64_t dim, int64_t start, int64_t stop, int64_t step) {
  BM_CHECK_SHAPE(self.dim() > 0, "slice", "cannot slice a 0-d tensor");
  int64_t d = wrap_dim(dim, self.dim(), "slice");
  BM_CHECK_VALUE(step > 0, "slice", "step must be positive, got ", step);
  int64_t n = self.size(d);
  if (start < 0) start += n;
  if (stop < 0) stop += n;
  start = std::clamp<int64_t>(start, 0, n);
  stop = std::clamp<int64_t>(stop, start, n);
  Shape sizes = self.sizes(), strides = self.strides();
  sizes[d] = (stop - start + step - 1) / step;
  strides[d] *= step;
  Tensor out = Tensor::make_view(self, sizes, strides, self.offset() + start * self.strides()[d]);
  if (needs_grad({self})) {
    record_scatter_view("slice", self, out, [d, start, stop, step](const Tensor& x) {
      return slice(x, d, start, stop, step);
    });
  }
  return out;
}

Tensor narrow(const Tensor& self, int64_t dim, int64_t start, int64_t length) {
  BM_CHECK_SHAPE(self.dim() > 0, "narrow", "cannot narrow a 0-d tensor");
  int64_t d = wrap_dim(dim, self.dim(), "narrow");
  int64_t n = self.size(d);
  if (start < 0) start += n;
  BM_CHECK_INDEX(start >= 0 && length >= 0 && start + length <= n, "narrow", "start ", start,
                 " + length ", length, " exceeds dimension size ", n, " of shape ", shape_str(self.sizes()));
  return slice(self, d, start, start + length, 1);
}

Tensor select(const Tensor& self, int64_t dim, int64_t index) {
  BM_CHECK_INDEX(self.dim() > 0, "select", "cannot index a 0-d tensor");
  int64_t d = wrap_dim(dim, self.dim(), "select");
  int64_t n = self.size(d);
  BM_CHECK_INDEX(index >= -n && index < n, "select", "index ", index, " is out of bounds for dim ", d,
                 " with size ", n);
  if (index < 0) index += n;
  Shape sizes = self.sizes(), strides = self.strides();
  int64_t off = self.offset() + index * strides[d];
  sizes.erase(sizes.begin() + d);
  strides.erase(strides.begin() + d);
  Tensor out = Tensor::make_view(self, sizes, strides, off);
  if (needs_grad({self})) {
    record_scatter_view("select", self, out, [d, index](const Tensor& x) { return select(x, d, index); });
  }
  return out;
}

Tensor expand(const Tensor& self, const Shape& sizes) {
  BM_CHECK_SHAPE(static_cast<int64_t>(sizes.size()) >= self.dim(), "expand", "cannot expand shape ",
                 shape_str(self.sizes()), " to ", shape_str(sizes), " (fewer dims)");
  const int64_t lead = static_cast<int64_t>(sizes.size()) - self.dim();
  Shape out_sizes(sizes.size()), out_strides(sizes.size());
  for (int64_t i = static_cast<int64_t>(sizes.size()) - 1; i >= 0; --i) {
    int64_t target = sizes[i];
    if (i < lead) {
      BM_CHECK_SHAPE(target >= 0, "expand", "cannot use -1 for a new leading dim in ", shape_str(sizes));
      out_sizes[i] = target;
      out_strides[i] = 0;
      continue;
    }
    int64_t cur = self.sizes()[i - lead];
    if (target == -1) target = cur;
    BM_CHECK_SHAPE(cur == target || cur == 1, "expand", "cannot expand shape ", shape_str(self.sizes()),
                   " to ", shape_str(sizes));
    out_sizes[i] = target;
    out_strides[i] = cur == target ? self.strides()[i - lead] : 0;
  }
  if (out_sizes == self.sizes()) return self;
  Tensor out = Tensor::make_view(self, out_sizes, out_strides, self.offset());
  if (needs_grad({self})) {
    Shape in = self.sizes();
    record_function("expand", {self}, {out}, [in](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{sum_to(g[0], in)};
    }, SecondOrder::Full);
  }
  return out;
}

Tensor expand_as(const Tensor& self, const Tensor& other) { return expand(self, other.sizes()); }
Tensor broadcast_to(const Tensor& self, const Shape& sizes) { return expand(self, sizes); }

Tensor squeeze(const Tensor& self) {
  Shape sizes;
  for (int64_t s : self.sizes())
    if (s != 1) sizes.push_back(s);
  return sizes.size() == self.sizes().size() ? self : reshape(self, sizes);
}

Tensor squeeze(const Tensor& self, int64_t dim) {
  if (self.dim() == 0) return self;
  int64_t d = wrap_dim(dim, self.dim(), "squeeze");
  if (self.size(d) != 1) return self;
  Shape sizes = self.sizes(), strides = self.strides();
  sizes.erase(sizes.begin() + d);
  strides.erase(strides.begin() + d);
  Tensor out = Tensor::make_view(self, sizes, strides, self.offset());
  if (needs_grad({self})) {
    Shape in = self.sizes();
    record_function("squeeze", {self}, {out}, [in](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{reshape(g[0], in)};
    }, SecondOrder::Full);
  }
  return out;
}

Tensor unsqueeze(const Tensor& self, int64_t dim) {
  int64_t d = wrap_dim(dim, self.dim() + 1, "unsqueeze");
  Shape sizes = self.sizes(), strides = self.strides();
  int64_t st = d < self.dim() ? sizes[d] * strides[d] : 1;
  sizes.insert(sizes.begin() + d, 1);
  strides.insert(strides.begin() + d, st);
  Tensor out = Tensor::make_view(self, sizes, strides, self.offset());
  if (needs_grad({self})) {
    Shape in = self.sizes();
    record_function("unsqueeze", {self}, {out}, [in](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{reshape(g[0], in)};
    }, SecondOrder::Full);
  }
  return out;
}

Tensor flatten(const Tensor& self, int64_t start_dim, int64_t end_dim) {
  if (self.dim() == 0) return reshape(self, {1});
  int64_t s = wrap_dim(start_dim, self.dim(), "flatten"), e = wrap_dim(end_dim, self.dim(), "flatten");
  BM_CHECK_VALUE(s <= e, "flatten", "start_dim ", start_dim, " comes after end_dim ", end_dim);
  Shape sizes(self.sizes().begin(), self.sizes().begin() + s);
  int64_t n = 1;
  for (int64_t i = s; i <= e; ++i) n *= self.size(i);
  sizes.push_back(n);
  sizes.insert(sizes.end(), self.sizes().begin() + e + 1, self.sizes().end());
  return reshape(self, sizes);
}

Tensor unflatten(const Tensor& self, int64_t dim, const Shape& sizes) {
  int64_t d = wrap_dim(dim, self.dim(), "unflatten");
  Shape inner = infer_size(sizes, self.size(d), "unflatten", self.sizes());
  Shape out(self.sizes().begin(), self.sizes().begin() + d);
  out.insert(out.end(), inner.begin(), inner.end());
  out.insert(out.end(), self.sizes().begin() + d + 1, self.sizes().end());
  return view(self, out);
}

Tensor movedim(const Tensor& self, int64_t source, int64_t destination) {
  int64_t s = wrap_dim(source, self.dim(), "movedim"), d = wrap_dim(destination, self.dim(), "movedim");
  std::vector<int64_t> order;
  for (int64_t i = 0; i < self.dim(); ++i)
    if (i != s) order.push_back(i);
  order.insert(order.begin() + d, s);
  return permute(self, order);
}

Tensor contiguous(const Tensor& self) { return self.is_contiguous() ? self : clone(self); }

Tensor clone(const Tensor& self) {
  Tensor out = Tensor::empty(self.sizes(), self.dtype(), self.device());
  copy_kernel.get(self.device())(out, self);
  if (needs_grad({self})) {
    record_function("clone", {self}, {out}, [](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{g[0]};
    }, SecondOrder::Full);
  }
  return out;
}

Tensor to(const Tensor& self, DType dtype) { return to(self, self.device(), dtype); }
Tensor to(const Tensor& self, Device device) { return to(self, device, self.dtype()); }

Tensor to(const Tensor& self, Device device, DType dtype) { return to(self, device, dtype, false); }

Tensor to(const Tensor& self, Device device, DType dtype, bool non_blocking) {
  if (device == self.device() && dtype == self.dtype()) return self;
  Tensor out;
  if (device == self.device()) {
    out = Tensor::empty(self.sizes(), dtype, device);
    copy_kernel.get(device)(out, self);
  } else {
    // Either side may be CUDA; the CUDA backend owns every cross-device copy. Without it
    // the stub says "built without CUDA"; with it but no GPU, the CUDA side says so.
    BM_CHECK_DEVICE(cuda::built_with_cuda(), "to", "can't copy between ", self.device().str(), " and ", device.str(),
                    ": bigmodel was built without CUDA (BIGMODEL_CUDA=OFF)");
    const Device cuda_side = device.is_cuda() ? device : self.device();
    out = transfer_kernel.get(cuda_side)(self, device, dtype, non_blocking);
  }
  if (needs_grad({self}) && is_floating(dtype)) {
    DType in_dtype = self.dtype();
    Device in_device = self.device();
    record_function("to", {self}, {out}, [in_dtype, in_device](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{to(g[0], in_device, in_dtype)};
    }, SecondOrder::Full);
  }
  return out;
}

Tensor& copy_(Tensor& self, const Tensor& src) {
  // A source on another device is moved over first (in its own dtype), then copied in.
  Tensor moved = src.device() == self.device() ? src.detach() : to(src.detach(), self.device(), src.dtype(), false);
  Tensor expanded = expand(moved, self.sizes());
  check_inplace(self, "copy_", {src});
  copy_kernel.get(self.device())(self, expanded);
  if (needs_grad({self, src})) {
    Shape src_sizes = src.sizes();
    DType src_dtype = src.dtype();
    Device src_device = src.device();
    rebase_history(self, "copy_", {self, src}, [src_sizes, src_dtype, src_device](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{zeros_like(g[0]), to(sum_to(g[0], src_sizes), src_device, src_dtype)};
    });
  }
  return self;
}

}  // namespace bigmodel
