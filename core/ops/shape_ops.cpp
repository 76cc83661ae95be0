// Join/split/rearrange front ends. Split-like ops return views (narrow/select), so their
// backward comes from the view ops; cat, tril/triu and flip record their own backward.
#include "core/ops/shape_ops.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/ops/copy_kernels.h"
#include "core/ops/creation.h"
#include "core/ops/view.h"

namespace bigmodel {

BM_DEFINE_KERNEL(triangle_kernel);
BM_DEFINE_KERNEL(flip_kernel);

namespace {

// PyTorch keeps accepting 1-D empty tensors in cat whatever the other shapes are.
bool skipped_in_cat(const Tensor& t) { return t.dim() == 1 && t.size(0) == 0; }

Tensor triangle(const Tensor& self, int64_t diagonal, bool upper) {
  const char* name = upper ? "triu" : "tril";
  BM_CHECK_SHAPE(self.dim() >= 2, name, "expected a tensor with at least 2 dims, got shape ",
                 shape_str(self.sizes()));
  Tensor out = Tensor::empty(self.sizes(), self.dtype(), self.device());
  copy_kernel.get(self.device())(out, self);
  triangle_kernel.get(self.device())(out, diagonal, upper);
  if (needs_grad({self})) {
    record_function(name, {self}, {out}, [diagonal, upper](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{triangle(g[0], diagonal, upper)};
    }, SecondOrder::Full);
  }
  return out;
}

}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  BM_CHECK_VALUE(!tensors.empty(), "cat", "expected a non-empty list of tensors");
  DType dtype = tensors[0].dtype();
  int64_t ref = -1;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    BM_CHECK_VALUE(t.defined(), "cat", "tensor at position ", i, " is undefined");
    BM_CHECK_DEVICE(t.device() == tensors[0].device(), "cat", "expected all tensors on one device, got ",
                    tensors[0].device().str(), " and ", t.device().str(), " (position ", i, ")");
    BM_CHECK_SHAPE(t.dim() > 0, "cat", "zero-dimensional tensor (at position ", i, ") cannot be concatenated");
    dtype = promote_types(dtype, t.dtype());
    if (ref < 0 && !skipped_in_cat(t)) ref = static_cast<int64_t>(i);
  }
  if (ref < 0) return empty({0}, dtype, tensors[0].device());  // nothing but 1-D empties
  const Tensor& r = tensors[ref];
  const int64_t d = wrap_dim(dim, r.dim(), "cat");
  Shape shape = r.sizes();
  shape[d] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (skipped_in_cat(t)) continue;
    bool match = t.dim() == r.dim();
    for (int64_t k = 0; match && k < r.dim(); ++k) match = k == d || t.size(k) == r.size(k);
    BM_CHECK_SHAPE(match, "cat", "sizes of tensors must match except in dimension ", d, ": got shapes ",
                   shape_str(r.sizes()), " (position ", ref, ") and ", shape_str(t.sizes()), " (position ", i, ")");
    shape[d] += t.size(d);
  }
  Tensor out = Tensor::empty(shape, dtype, r.device());
  std::vector<int64_t> starts(tensors.size(), 0);
  int64_t pos = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (skipped_in_cat(tensors[i])) continue;
    starts[i] = pos;
    const int64_t len = tensors[i].size(d);
    if (len > 0) copy_kernel.get(out.device())(narrow(out, d, pos, len), tensors[i].detach());
    pos += len;
  }
  if (needs_grad(tensors)) {
    std::vector<int64_t> lens;
    std::vector<DType> dtypes;
    std::vector<bool> wants;
    for (const Tensor& t : tensors) {
      lens.push_back(skipped_in_cat(t) ? -1 : t.size(d));
      dtypes.push_back(t.dtype());
      wants.push_back(t.requires_grad());
    }
    record_function("cat", tensors, {out}, [=](const std::vector<Tensor>& g) {
      std::vector<Tensor> grads(lens.size());
      for (size_t i = 0; i < lens.size(); ++i) {
        if (!wants[i]) continue;
        grads[i] = lens[i] < 0 ? zeros({0}, dtypes[i], g[0].device()) : to(narrow(g[0], d, starts[i], lens[i]), dtypes[i]);
      }
      return grads;
    }, SecondOrder::Full);
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  BM_CHECK_VALUE(!tensors.empty(), "stack", "expected a non-empty list of tensors");
  for (size_t i = 1; i < tensors.size(); ++i) {
    BM_CHECK_SHAPE(tensors[i].sizes() == tensors[0].sizes(), "stack", "expects each tensor to be equal size, but got ",
                   shape_str(tensors[0].sizes()), " at entry 0 and ", shape_str(tensors[i].sizes()), " at entry ", i);
  }
  const int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (const Tensor& t : tensors) parts.push_back(unsqueeze(t, d));
  return cat(parts, d);
}

std::vector<Tensor> split(const Tensor& self, int64_t split_size, int64_t dim) {
  BM_CHECK_SHAPE(self.dim() > 0, "split", "cannot split a 0-d tensor");
  const int64_t d = wrap_dim(dim, self.dim(), "split");
  const int64_t n = self.size(d);
  BM_CHECK_VALUE(split_size > 0 || (split_size == 0 && n == 0), "split", "split_size must be positive, got ",
                 split_size, " for dim ", d, " of shape ", shape_str(self.sizes()));
  std::vector<Tensor> out;
  if (n == 0) {
    out.push_back(narrow(self, d, 0, 0));
    return out;
  }
  for (int64_t start = 0; start < n; start += split_size)
    out.push_back(narrow(self, d, start, std::min(split_size, n - start)));
  return out;
}

std::vector<Tensor> split(const Tensor& self, const std::vector<int64_t>& sections, int64_t dim) {
  BM_CHECK_SHAPE(self.dim() > 0, "split", "cannot split a 0-d tensor");
  const int64_t d = wrap_dim(dim, self.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sections) {
    BM_CHECK_VALUE(s >= 0, "split", "split sizes must be non-negative, got ", shape_str(sections));
    total += s;
  }
  BM_CHECK_VALUE(total == self.size(d), "split", "split sizes ", shape_str(sections), " sum to ", total,
                 " but dim ", d, " of shape ", shape_str(self.sizes()), " has size ", self.size(d));
  std::vector<Tensor> out;
  int64_t start = 0;
  for (int64_t s : sections) {
    out.push_back(narrow(self, d, start, s));
    start += s;
  }
  return out;
}

std::vector<Tensor> chunk(const Tensor& self, int64_t chunks, int64_t dim) {
  BM_CHECK_SHAPE(self.dim() > 0, "chunk", "cannot chunk a 0-d tensor");
  BM_CHECK_VALUE(chunks > 0, "chunk", "chunks must be positive, got ", chunks);
  const int64_t d = wrap_dim(dim, self.dim(), "chunk");
  const int64_t n = self.size(d);
  if (n == 0) return split(self, std::vector<int64_t>(chunks, 0), d);  // keeps the chunk count
  return split(self, (n + chunks - 1) / chunks, d);
}

std::vector<Tensor> unbind(const Tensor& self, int64_t dim) {
  BM_CHECK_SHAPE(self.dim() > 0, "unbind", "cannot unbind a 0-d tensor");
  const int64_t d = wrap_dim(dim, self.dim(), "unbind");
  std::vector<Tensor> out;
  {
    NoGradGuard no_grad;  // one node for all slices below, not one full-size scatter per slice
    for (int64_t i = 0; i < self.size(d); ++i) out.push_back(select(self, d, i));
  }
  if (needs_grad({self})) {
    record_function("unbind", {self}, out, [d](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{stack(g, d)};  // slices that got no gradient arrive as zeros
    }, SecondOrder::Full);
  }
  return out;
}

Tensor tril(const Tensor& self, int64_t diagonal) { return triangle(self, diagonal, false); }
Tensor triu(const Tensor& self, int64_t diagonal) { return triangle(self, diagonal, true); }

Tensor flip(const Tensor& self, const std::vector<int64_t>& dims) {
  std::vector<bool> mask(self.dim(), false);
  for (int64_t dim : dims) {
    const int64_t d = wrap_dim(dim, std::max<int64_t>(self.dim(), 1), "flip");
    BM_CHECK_VALUE(self.dim() == 0 || !mask[d], "flip", "dim ", dim, " appears more than once in ",
                   shape_str(dims));
    if (self.dim() > 0) mask[d] = true;
  }
  Tensor out = Tensor::empty(self.sizes(), self.dtype(), self.device());
  flip_kernel.get(self.device())(out, self, mask);
  if (needs_grad({self})) {
    record_function("flip", {self}, {out}, [dims](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{flip(g[0], dims)};
    }, SecondOrder::Full);
  }
  return out;
}

Tensor repeat(const Tensor& self, const Shape& repeats) {
  BM_CHECK_VALUE(static_cast<int64_t>(repeats.size()) >= self.dim(), "repeat", "number of repeat dims (",
                 repeats.size(), ") can not be smaller than the number of tensor dims (shape ",
                 shape_str(self.sizes()), ")");
  const size_t lead = repeats.size() - self.dim();
  Shape padded(lead, 1);
  padded.insert(padded.end(), self.sizes().begin(), self.sizes().end());
  // [s0, s1] -> [1, s0, 1, s1] -> expand to [r0, s0, r1, s1] -> [r0*s0, r1*s1]: the
  // expand's backward (sum_to) is repeat's backward.
  Shape inter, target, final_shape;
  for (size_t i = 0; i < repeats.size(); ++i) {
    BM_CHECK_VALUE(repeats[i] >= 0, "repeat", "repeats must be non-negative, got ", shape_str(repeats));
    inter.insert(inter.end(), {1, padded[i]});
    target.insert(target.end(), {repeats[i], padded[i]});
    final_shape.push_back(repeats[i] * padded[i]);
  }
  return reshape(contiguous(expand(reshape(self, inter), target)), final_shape);
}

Tensor roll(const Tensor& self, const std::vector<int64_t>& shifts, const std::vector<int64_t>& dims) {
  if (dims.empty()) {
    BM_CHECK_VALUE(shifts.size() == 1, "roll", "without dims, expected one shift, got ", shifts.size());
    return reshape(roll(reshape(self, {-1}), shifts, {0}), self.sizes());
  }
  BM_CHECK_VALUE(shifts.size() == dims.size(), "roll", "got ", shifts.size(), " shifts for ", dims.size(), " dims");
  Tensor x = self;
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], self.dim(), "roll");
    const int64_t n = self.size(d);
    if (n == 0) continue;
    const int64_t s = ((shifts[i] % n) + n) % n;
    if (s == 0) continue;
    x = cat({narrow(x, d, n - s, s), narrow(x, d, 0, n - s)}, d);
  }
  return x.is_same(self) ? clone(self) : x;
}

}  // namespace bigmodel
