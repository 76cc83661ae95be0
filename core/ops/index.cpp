// Front ends of the indexing family: TensorIndex parsing (basic indices become views),
// advanced indexing through linear offsets, the dim-wise index ops, and their backward
// formulas (written with ops: gather <-> scatter_add, index <-> index_put accumulate).
#include "core/ops/index.h"

#include <limits>

#include "core/autograd.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/view.h"

namespace bigmodel {

BM_DEFINE_KERNEL(index_gather_kernel);
BM_DEFINE_KERNEL(index_scatter_kernel);
BM_DEFINE_KERNEL(index_offset_kernel);
BM_DEFINE_KERNEL(nonzero_kernel);
BM_DEFINE_KERNEL(index_minmax_kernel);

namespace {

bool is_index_dtype(DType t) { return t == DType::Int32 || t == DType::Int64; }

// The dim-wise ops take int32/int64 index tensors only (TypeError otherwise).
void check_index_tensor(const Tensor& self, const Tensor& index, const char* op) {
  BM_CHECK_VALUE(index.defined(), op, "index tensor is undefined");
  BM_CHECK_DTYPE(is_index_dtype(index.dtype()), op, "index tensor must be int64 or int32, got ",
                 dtype_name(index.dtype()));
  BM_CHECK_DEVICE(index.device() == self.device(), op, "index is on ", index.device().str(),
                  ", input on ", self.device().str());
}

// IndexError unless every value lies in [0, size), or [-size, size) with allow_negative.
void check_index_range(const Tensor& index, int64_t size, bool allow_negative, const char* op,
                       int64_t dim) {
  if (index.numel() == 0) return;
  int64_t lo = 0, hi = 0;
  index_minmax_kernel.get(index.device())(index, &lo, &hi);
  const int64_t low = allow_negative ? -size : 0;
  BM_CHECK_INDEX(hi < size && lo >= low, op, "index ", hi >= size ? hi : lo,
                 " is out of bounds for dimension ", dim, " with size ", size);
}

// `self` seen with shape `sizes` (which matches self's dims) and stride 0 along `dim`:
// the source/destination geometry the gather and scatter kernels take.
Tensor restride_along(const Tensor& self, const Shape& sizes, int64_t dim) {
  Shape strides = self.strides();
  strides[dim] = 0;
  return Tensor::make_view(self, sizes, strides, self.offset());
}

// Gradient for a tensor of shape `full` from one of shape `part` (part <= full in every
// dim): zeros with the part's values in the leading corner.
Tensor pad_to(const Tensor& part, const Shape& full) {
  if (part.sizes() == full) return part;
  if (part.numel() == shape_numel(full)) return reshape(part, full);  // 0-d vs [1]
  Tensor out = zeros(full, part.dtype(), part.device());
  Tensor corner = out;
  for (int64_t d = 0; d < part.dim(); ++d) corner = narrow(corner, d, 0, part.size(d));
  copy_(corner, part);
  return out;
}

// Values for a write into a region of shape `target`: detached, in `dtype`, leading
// size-1 dims dropped (as NumPy and PyTorch allow), expanded to `target`.
Tensor values_for(const Tensor& values, const Shape& target, DType dtype, const char* op) {
  Tensor v = values.detach();
  while (v.dim() > static_cast<int64_t>(target.size()) && v.size(0) == 1) v = squeeze(v, 0);
  bool ok = v.dim() <= static_cast<int64_t>(target.size());
  for (int64_t i = 1; ok && i <= v.dim(); ++i) {
    const int64_t vs = v.sizes()[v.dim() - i], ts = target[target.size() - i];
    ok = vs == ts || vs == 1;
  }
  BM_CHECK_SHAPE(ok, op, "shape mismatch: value tensor of shape ", shape_str(values.sizes()),
                 " cannot be broadcast to indexing result of shape ", shape_str(target));
  BM_CHECK_DEVICE(v.device() == values.device(), op, "values on another device");
  if (v.dtype() != dtype) v = to(v, dtype);
  return expand(v, target);
}

// The gradient of a write's values from the gradient of the written region.
Tensor grad_for_values(const Tensor& g, const Shape& values_sizes, DType values_dtype) {
  Shape stripped = values_sizes;
  while (stripped.size() > static_cast<size_t>(g.dim()) && stripped[0] == 1) stripped.erase(stripped.begin());
  Tensor r = reshape(sum_to(g, stripped), values_sizes);
  return r.dtype() == values_dtype ? r : to(r, values_dtype);
}

// ---- advanced indexing ----

// Bool masks become integer index tensors (one per mask dim, via nonzero); other dtypes
// than int32/int64/bool raise IndexError, as PyTorch does for x[float_tensor].
std::vector<Tensor> expand_masks(const Tensor& self, const std::vector<Tensor>& indices, const char* op) {
  std::vector<Tensor> out;
  for (const Tensor& idx : indices) {
    if (!idx.defined()) {
      out.push_back(idx);
      continue;
    }
    BM_CHECK_DEVICE(idx.device() == self.device(), op, "indices are on ", idx.device().str(),
                    ", the indexed tensor on ", self.device().str());
    if (idx.dtype() == DType::Bool) {
      const int64_t start = static_cast<int64_t>(out.size());
      BM_CHECK_INDEX(idx.dim() > 0, op, "0-d bool masks are only supported by x[...] indexing");
      BM_CHECK_INDEX(start + idx.dim() <= self.dim(), op, "too many indices for tensor of dimension ",
                     self.dim(), " (a mask of shape ", shape_str(idx.sizes()), " at dim ", start, ")");
      for (int64_t d = 0; d < idx.dim(); ++d) {
        BM_CHECK_INDEX(idx.size(d) == self.size(start + d), op, "the shape of the mask ",
                       shape_str(idx.sizes()), " at index ", d, " does not match the shape of the indexed tensor ",
                       shape_str(self.sizes()), " at index ", start + d);
      }
      Tensor nz = nonzero(idx);
      for (int64_t d = 0; d < idx.dim(); ++d) out.push_back(select(nz, 1, d));
    } else {
      BM_CHECK_INDEX(is_index_dtype(idx.dtype()), op, "tensors used as indices must be int64, int32 or bool, got ",
                     dtype_name(idx.dtype()));
      out.push_back(idx.detach());
    }
  }
  BM_CHECK_INDEX(static_cast<int64_t>(out.size()) <= self.dim(), op, "too many indices for tensor of dimension ",
                 self.dim(), " (got ", out.size(), ")");
  return out;
}

struct AdvancedPlan {
  Shape result;     // the indexing result's shape
  Tensor src;       // self restrided to `result` (stride 0 along the broadcast index dims)
  Tensor offsets;   // int64 element offsets into self, expanded to `result`
};

// Broadcasts the index tensors, turns them into element offsets of self and works out
// where the broadcast dims go: in place when the indexed dims are adjacent, else first.
AdvancedPlan plan_advanced(const Tensor& self, const std::vector<Tensor>& idx, const char* op) {
  Shape bshape;
  bool any = false, adjacent = true;
  int64_t first = -1, last = -1;
  for (int64_t d = 0; d < static_cast<int64_t>(idx.size()); ++d) {
    if (!idx[d].defined()) continue;
    if (!any) {
      bshape = idx[d].sizes();
      first = d;
    } else {
      if (last != d - 1) adjacent = false;
      try {
        bshape = broadcast_shapes(bshape, idx[d].sizes(), op);
      } catch (const ShapeError&) {
        std::string shapes;
        for (const Tensor& t : idx)
          if (t.defined()) shapes += (shapes.empty() ? "" : ", ") + shape_str(t.sizes());
        throw IndexError(str_cat("[", op, "] shape mismatch: indexing tensors could not be broadcast together with shapes ",
                                 shapes));
      }
    }
    any = true;
    last = d;
  }
  if (!any) first = 0, last = -1;  // nothing indexed: a write/read of the whole tensor

  Tensor offsets = zeros(bshape, DType::Int64, self.device());
  for (int64_t d = first; d <= last; ++d) {
    if (!idx[d].defined()) continue;
    check_index_range(idx[d], self.size(d), true, op, d);
    index_offset_kernel.get(self.device())(offsets, expand(idx[d], bshape), self.size(d), self.stride(d));
  }

  const Shape bstrides = contiguous_strides(bshape);
  const int64_t nb = static_cast<int64_t>(bshape.size());
  AdvancedPlan plan;
  Shape src_strides, off_strides;
  auto push_b = [&] {
    for (int64_t i = 0; i < nb; ++i) {
      plan.result.push_back(bshape[i]);
      src_strides.push_back(0);
      off_strides.push_back(bstrides[i]);
    }
  };
  auto push_dim = [&](int64_t d) {
    plan.result.push_back(self.size(d));
    src_strides.push_back(self.stride(d));
    off_strides.push_back(0);
  };
  auto indexed = [&](int64_t d) { return d < static_cast<int64_t>(idx.size()) && idx[d].defined(); };
  if (adjacent) {
    for (int64_t d = 0; d < first; ++d) push_dim(d);
    push_b();
    for (int64_t d = last + 1; d < self.dim(); ++d) push_dim(d);
  } else {
    push_b();
    for (int64_t d = 0; d < self.dim(); ++d)
      if (!indexed(d)) push_dim(d);
  }
  plan.src = Tensor::make_view(self, plan.result, src_strides, self.offset());
  plan.offsets = Tensor::make_view(offsets, plan.result, off_strides, offsets.offset());
  return plan;
}

std::vector<SavedTensor> save_all(const std::vector<Tensor>& ts) {
  std::vector<SavedTensor> out;
  for (const Tensor& t : ts) out.emplace_back(t);
  return out;
}

std::vector<Tensor> unpack_all(const std::vector<SavedTensor>& ts, const char* op) {
  std::vector<Tensor> out;
  for (const SavedTensor& t : ts) out.push_back(t.unpack(op));
  return out;
}

// ---- TensorIndex lists ----

struct BasicResult {
  Tensor view;                  // self after ints, slices, None and Ellipsis (a view)
  std::vector<Tensor> tensors;  // per dim of `view`: the integer index tensor, or undefined
};

// Applies the basic indices as views and collects the tensor indices by the dim of the
// view they index (bool masks expanded through nonzero).
BasicResult apply_indices(const Tensor& self, const std::vector<TensorIndex>& indices) {
  const char* op = "index";
  using Kind = TensorIndex::Kind;
  int64_t specified = 0;
  bool ellipsis = false;
  for (const TensorIndex& ti : indices) {
    switch (ti.kind()) {
      case Kind::Integer:
      case Kind::Slice: ++specified; break;
      case Kind::Tensor:
        BM_CHECK_VALUE(ti.tensor().defined(), op, "undefined index tensor");
        specified += ti.tensor().dtype() == DType::Bool ? ti.tensor().dim() : 1;
        break;
      case Kind::Ellipsis:
        BM_CHECK_INDEX(!ellipsis, op, "an index can only have a single ellipsis ('...')");
        ellipsis = true;
        break;
      case Kind::None:
      case Kind::Boolean: break;
    }
  }
  BM_CHECK_INDEX(specified <= self.dim(), op, "too many indices for tensor of dimension ", self.dim(),
                 " (got ", specified, ")");

  BasicResult r{self, {}};
  int64_t dim = 0, src_dim = 0;  // position in the view, and in self (for messages)
  auto set_tensor = [&](int64_t d, const Tensor& t) {
    if (static_cast<int64_t>(r.tensors.size()) <= d) r.tensors.resize(d + 1);
    r.tensors[d] = t;
  };
  auto bool_axis = [&](bool value) {  // x[True] / x[False]: a new axis indexed by [0] or []
    r.view = unsqueeze(r.view, dim);
    std::vector<int64_t> one{0};
    set_tensor(dim, value ? from_vector(one, {1}, self.device()) : empty({0}, DType::Int64, self.device()));
    ++dim;
  };
  for (const TensorIndex& ti : indices) {
    switch (ti.kind()) {
      case Kind::Integer: {
        const int64_t n = r.view.size(dim), i = ti.integer();
        BM_CHECK_INDEX(i >= -n && i < n, op, "index ", i, " is out of bounds for dimension ", src_dim,
                       " with size ", n);
        r.view = select(r.view, dim, i);
        ++src_dim;
        break;
      }
      case Kind::Slice: {
        const indexing::Slice& s = ti.slice();
        BM_CHECK_VALUE(s.step > 0, op, "step must be greater than zero, got ", s.step,
                       " (negative steps are not supported)");
        r.view = slice(r.view, dim, s.start.value_or(0), s.stop.value_or(std::numeric_limits<int64_t>::max()),
                       s.step);
        ++dim, ++src_dim;
        break;
      }
      case Kind::None:
        r.view = unsqueeze(r.view, dim);
        ++dim;
        break;
      case Kind::Ellipsis:
        dim += self.dim() - specified;
        src_dim += self.dim() - specified;
        break;
      case Kind::Boolean: bool_axis(ti.boolean()); break;
      case Kind::Tensor: {
        const Tensor& t = ti.tensor();
        BM_CHECK_DEVICE(t.device() == self.device(), op, "indices are on ", t.device().str(),
                        ", the indexed tensor on ", self.device().str());
        if (t.dtype() == DType::Bool && t.dim() == 0) {
          bool_axis(t.item().to<bool>());
        } else if (t.dtype() == DType::Bool) {
          for (int64_t d = 0; d < t.dim(); ++d) {
            BM_CHECK_INDEX(t.size(d) == r.view.size(dim + d), op, "the shape of the mask ", shape_str(t.sizes()),
                           " at index ", d, " does not match the shape of the indexed tensor ",
                           shape_str(self.sizes()), " at index ", src_dim + d);
          }
          Tensor nz = nonzero(t);
          for (int64_t d = 0; d < t.dim(); ++d) set_tensor(dim + d, select(nz, 1, d));
          dim += t.dim();
          src_dim += t.dim();
        } else {
          BM_CHECK_INDEX(is_index_dtype(t.dtype()), op,
                         "tensors used as indices must be int64, int32 or bool, got ", dtype_name(t.dtype()));
          set_tensor(dim, t.detach());
          ++dim, ++src_dim;
        }
        break;
      }
    }
  }
  return r;
}

// Writes `values` (already detached) into the region `r` describes.
void write_region(const BasicResult& r, const Tensor& values) {
  Tensor view = r.view;
  if (r.tensors.empty()) {
    copy_(view, values_for(values, view.sizes(), view.dtype(), "index_put_"));
  } else {
    advanced_index_put_(view, r.tensors, values, false);
  }
}

// Scatter helpers shared by scatter, scatter_add and one_hot. Validates like PyTorch:
// same number of dims, index no larger than self (outside dim) and src (everywhere).
int64_t check_scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor* src, const char* op) {
  check_index_tensor(self, index, op);
  const int64_t d = wrap_dim(dim, self.dim(), op);
  BM_CHECK_SHAPE(index.dim() == self.dim() || (self.dim() <= 1 && index.dim() <= 1), op, "index of shape ",
                 shape_str(index.sizes()), " must have as many dims as the input of shape ",
                 shape_str(self.sizes()));
  for (int64_t k = 0; k < index.dim() && self.dim() > 0; ++k) {
    BM_CHECK_SHAPE(k == d || index.size(k) <= self.size(k), op, "index of shape ", shape_str(index.sizes()),
                   " is larger than the input of shape ", shape_str(self.sizes()), " at dim ", k);
  }
  if (src) {
    BM_CHECK_DTYPE(src->dtype() == self.dtype(), op, "src dtype ", dtype_name(src->dtype()),
                   " differs from the input's ", dtype_name(self.dtype()));
    const bool vector_like = src->dim() <= 1 && index.dim() <= 1;  // 0-d and 1-d mix freely
    BM_CHECK_SHAPE(src->dim() == index.dim() || vector_like, op, "src of shape ", shape_str(src->sizes()),
                   " must have as many dims as the index of shape ", shape_str(index.sizes()));
    bool fits = !vector_like || src->numel() >= index.numel();
    for (int64_t k = 0; fits && !vector_like && k < index.dim(); ++k) fits = index.size(k) <= src->size(k);
    BM_CHECK_SHAPE(fits, op, "index of shape ", shape_str(index.sizes()), " is larger than src of shape ",
                   shape_str(src->sizes()));
  }
  check_index_range(index, self.dim() == 0 ? 1 : self.size(d), false, op, d);
  return d;
}

// self[index[p] along d] (+)= src[p], for every position p of index's shape.
void scatter_raw(const Tensor& self, int64_t d, const Tensor& index, const Tensor& src, bool accumulate) {
  if (index.numel() == 0) return;
  Tensor s = self.dim() == 0 ? Tensor::make_view(self, {1}, {1}, self.offset()) : self;
  Tensor ix = index.dim() == 0 ? Tensor::make_view(index, {1}, {1}, index.offset()) : index;
  Tensor v = src.dim() == 0 && src.sizes() != ix.sizes() ? expand(src, ix.sizes()) : src;
  Tensor sv = Tensor::make_view(v, ix.sizes(), v.strides(), v.offset());  // src's leading corner
  index_scatter_kernel.get(self.device())(restride_along(s, ix.sizes(), d), sv, ix, s.stride(d), s.size(d),
                                          accumulate);
}

}  // namespace

// ---- advanced indexing ----

Tensor advanced_index(const Tensor& self, const std::vector<Tensor>& indices) {
  std::vector<Tensor> idx = expand_masks(self, indices, "index");
  AdvancedPlan plan = plan_advanced(self, idx, "index");
  Tensor out = Tensor::empty(plan.result, self.dtype(), self.device());
  index_gather_kernel.get(self.device())(out, plan.src, plan.offsets, 1, -1);
  if (needs_grad({self})) {
    Shape in_sizes = self.sizes();
    auto saved = save_all(idx);
    record_function("index", {self}, {out}, [in_sizes, saved](const std::vector<Tensor>& g) {
      Tensor gi = zeros(in_sizes, g[0].dtype(), g[0].device());
      advanced_index_put_(gi, unpack_all(saved, "index"), g[0], /*accumulate=*/true);
      return std::vector<Tensor>{gi};
    }, SecondOrder::Full);
  }
  return out;
}

Tensor& advanced_index_put_(Tensor& self, const std::vector<Tensor>& indices, const Tensor& values,
                            bool accumulate) {
  const char* op = "index_put_";
  BM_CHECK_VALUE(values.defined(), op, "values are undefined");
  std::vector<Tensor> idx = expand_masks(self, indices, op);
  AdvancedPlan plan = plan_advanced(self, idx, op);
  Tensor v = values_for(values, plan.result, self.dtype(), op);
  check_inplace(self, op, {values});
  index_scatter_kernel.get(self.device())(plan.src, v, plan.offsets, 1, -1, accumulate);
  if (needs_grad({self, values})) {
    auto saved = save_all(idx);
    Shape vsizes = values.sizes();
    DType vdtype = values.dtype();
    rebase_history(self, op, {self, values}, [saved, vsizes, vdtype, accumulate](const std::vector<Tensor>& g) {
      std::vector<Tensor> ix = unpack_all(saved, "index_put_");
      Tensor gs = accumulate ? g[0] : advanced_index_put(g[0], ix, scalar_tensor(0, g[0].dtype(), g[0].device()));
      Tensor gv = is_floating(vdtype) ? grad_for_values(advanced_index(g[0], ix), vsizes, vdtype) : Tensor();
      return std::vector<Tensor>{gs, gv};
    });
  }
  return self;
}

Tensor advanced_index_put(const Tensor& self, const std::vector<Tensor>& indices, const Tensor& values,
                          bool accumulate) {
  Tensor out = clone(self);
  return advanced_index_put_(out, indices, values, accumulate);
}

// ---- TensorIndex API ----

Tensor index(const Tensor& self, const std::vector<TensorIndex>& indices) {
  BasicResult r = apply_indices(self, indices);
  if (!r.tensors.empty()) return advanced_index(r.view, r.tensors);
  // x[...] and x[()] still return a new view, as PyTorch does, not the same handle.
  if (!r.view.is_same(self)) return r.view;
  return self.dim() > 0 ? slice(self, 0, 0, std::numeric_limits<int64_t>::max(), 1) : view(self, {});
}

Tensor& index_put_(Tensor& self, const std::vector<TensorIndex>& indices, const Tensor& values) {
  BM_CHECK_VALUE(values.defined(), "index_put_", "values are undefined");
  BasicResult r;
  {
    NoGradGuard no_grad;  // the views below are write targets, not part of the graph
    r = apply_indices(self, indices);
  }
  const bool grad = needs_grad({self, values});
  check_inplace(self, "index_put_", {values});
  {
    NoGradGuard no_grad;
    write_region(r, values.detach());
  }
  if (grad) {
    Shape vsizes = values.sizes();
    DType vdtype = values.dtype();
    rebase_history(self, "index_put_", {self, values}, [indices, vsizes, vdtype](const std::vector<Tensor>& g) {
      Tensor gs = clone(g[0]);
      BasicResult rs = apply_indices(gs, indices);
      write_region(rs, scalar_tensor(0, gs.dtype(), gs.device()));
      Tensor gv;
      if (is_floating(vdtype)) {
        BasicResult rg = apply_indices(g[0], indices);
        Tensor region = rg.tensors.empty() ? rg.view : advanced_index(rg.view, rg.tensors);
        gv = grad_for_values(region, vsizes, vdtype);
      }
      return std::vector<Tensor>{gs, gv};
    });
  }
  return self;
}

Tensor& index_put_(Tensor& self, const std::vector<TensorIndex>& indices, const Scalar& value) {
  return index_put_(self, indices, scalar_tensor(value, self.dtype(), self.device()));
}

// ---- dim-wise ops ----

Tensor index_select(const Tensor& self, int64_t dim, const Tensor& index) {
  const char* op = "index_select";
  check_index_tensor(self, index, op);
  BM_CHECK_SHAPE(index.dim() <= 1, op, "index must be 0-d or 1-d, got shape ", shape_str(index.sizes()));
  if (self.dim() == 0) return index_select(reshape(self, {1}), dim, index);
  const int64_t d = wrap_dim(dim, self.dim(), op);
  check_index_range(index, self.size(d), false, op, d);
  Shape out_sizes = self.sizes();
  out_sizes[d] = index.numel();
  Tensor out = Tensor::empty(out_sizes, self.dtype(), self.device());
  if (out.numel() > 0) {
    Shape ix_strides(self.dim(), 0);
    ix_strides[d] = index.dim() == 0 ? 0 : index.stride(0);
    Tensor ix = Tensor::make_view(index, out_sizes, ix_strides, index.offset());
    index_gather_kernel.get(self.device())(out, restride_along(self, out_sizes, d), ix, self.stride(d), self.size(d));
  }
  if (needs_grad({self})) {
    Shape in_sizes = self.sizes();
    SavedTensor saved(index);
    record_function(op, {self}, {out}, [in_sizes, d, saved](const std::vector<Tensor>& g) {
      Tensor gi = zeros(in_sizes, g[0].dtype(), g[0].device());
      index_add_(gi, d, saved.unpack("index_select"), g[0]);
      return std::vector<Tensor>{gi};
    }, SecondOrder::Full);
  }
  return out;
}

Tensor gather(const Tensor& self, int64_t dim, const Tensor& index) {
  const char* op = "gather";
  const int64_t d = check_scatter(self, dim, index, nullptr, op);
  Tensor out = Tensor::empty(index.sizes(), self.dtype(), self.device());
  if (out.numel() > 0) {
    Tensor s = self.dim() == 0 ? Tensor::make_view(self, {1}, {1}, self.offset()) : self;
    Tensor ix = index.dim() == 0 ? Tensor::make_view(index, {1}, {1}, index.offset()) : index;
    Tensor o = index.dim() == 0 ? Tensor::make_view(out, {1}, {1}, 0) : out;
    index_gather_kernel.get(self.device())(o, restride_along(s, ix.sizes(), d), ix, s.stride(d), s.size(d));
  }
  if (needs_grad({self})) {
    Shape in_sizes = self.sizes();
    SavedTensor saved(index);
    record_function(op, {self}, {out}, [in_sizes, d, saved](const std::vector<Tensor>& g) {
      Tensor gi = zeros(in_sizes, g[0].dtype(), g[0].device());
      scatter_add_(gi, d, saved.unpack("gather"), g[0]);
      return std::vector<Tensor>{gi};
    }, SecondOrder::Full);
  }
  return out;
}

Tensor& scatter_add_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  const char* op = "scatter_add_";
  const int64_t d = check_scatter(self, dim, index, &src, op);
  check_inplace(self, op, {src});
  scatter_raw(self, d, index, src.detach(), /*accumulate=*/true);
  if (needs_grad({self, src})) {
    SavedTensor saved(index);
    Shape src_sizes = src.sizes();
    rebase_history(self, op, {self, src}, [d, saved, src_sizes](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{g[0], pad_to(gather(g[0], d, saved.unpack("scatter_add")), src_sizes)};
    });
  }
  return self;
}

Tensor scatter_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor out = clone(self);
  return scatter_add_(out, dim, index, src);
}

Tensor& scatter_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  const char* op = "scatter_";
  const int64_t d = check_scatter(self, dim, index, &src, op);
  check_inplace(self, op, {src});
  scatter_raw(self, d, index, src.detach(), /*accumulate=*/false);
  if (needs_grad({self, src})) {
    SavedTensor saved(index);
    Shape src_sizes = src.sizes();
    rebase_history(self, op, {self, src}, [d, saved, src_sizes](const std::vector<Tensor>& g) {
      Tensor ix = saved.unpack("scatter");
      return std::vector<Tensor>{scatter(g[0], d, ix, Scalar(0)), pad_to(gather(g[0], d, ix), src_sizes)};
    });
  }
  return self;
}

Tensor& scatter_(Tensor& self, int64_t dim, const Tensor& index, const Scalar& value) {
  const char* op = "scatter_";
  const int64_t d = check_scatter(self, dim, index, nullptr, op);
  check_inplace(self, op);
  scatter_raw(self, d, index, scalar_tensor(value, self.dtype(), self.device()), /*accumulate=*/false);
  if (needs_grad({self})) {
    SavedTensor saved(index);
    rebase_history(self, op, {self}, [d, saved](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{scatter(g[0], d, saved.unpack("scatter"), Scalar(0))};
    });
  }
  return self;
}

Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor out = clone(self);
  return scatter_(out, dim, index, src);
}

Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, const Scalar& value) {
  Tensor out = clone(self);
  return scatter_(out, dim, index, value);
}

Tensor& index_add_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& source, const Scalar& alpha) {
  const char* op = "index_add_";
  check_index_tensor(self, index, op);
  BM_CHECK_SHAPE(index.dim() <= 1, op, "index must be 0-d or 1-d, got shape ", shape_str(index.sizes()));
  BM_CHECK_DTYPE(source.dtype() == self.dtype(), op, "source dtype ", dtype_name(source.dtype()),
                 " differs from the input's ", dtype_name(self.dtype()));
  Tensor s = self.dim() == 0 ? Tensor::make_view(self, {1}, {1}, self.offset()) : self;
  Tensor src = source.dim() == 0 ? reshape(source.detach(), {1}) : source.detach();
  const int64_t d = wrap_dim(dim, s.dim(), op);
  bool ok = src.dim() == s.dim() && src.size(d) == index.numel();
  for (int64_t k = 0; ok && k < s.dim(); ++k) ok = k == d || src.size(k) == s.size(k);
  BM_CHECK_SHAPE(ok, op, "source of shape ", shape_str(source.sizes()), " does not match the input of shape ",
                 shape_str(self.sizes()), " with ", index.numel(), " indices along dim ", d);
  check_index_range(index, s.size(d), false, op, d);
  check_inplace(self, op, {source});
  if (src.numel() > 0) {
    if (!(alpha.to_double() == 1.0)) src = mul(src, alpha);
    Shape ix_strides(s.dim(), 0);
    ix_strides[d] = index.dim() == 0 ? 0 : index.stride(0);
    Tensor ix = Tensor::make_view(index, src.sizes(), ix_strides, index.offset());
    index_scatter_kernel.get(self.device())(restride_along(s, src.sizes(), d), src, ix, s.stride(d), s.size(d),
                                            /*accumulate=*/true);
  }
  if (needs_grad({self, source})) {
    SavedTensor saved(index);
    Shape src_sizes = source.sizes();
    rebase_history(self, op, {self, source}, [d, saved, src_sizes, alpha](const std::vector<Tensor>& g) {
      Tensor gs = reshape(index_select(g[0], d, saved.unpack("index_add")), src_sizes);
      return std::vector<Tensor>{g[0], alpha.to_double() == 1.0 ? gs : mul(gs, alpha)};
    });
  }
  return self;
}

Tensor index_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source, const Scalar& alpha) {
  Tensor out = clone(self);
  return index_add_(out, dim, index, source, alpha);
}

Tensor embedding(const Tensor& weight, const Tensor& indices, std::optional<int64_t> padding_idx) {
  const char* op = "embedding";
  BM_CHECK_SHAPE(weight.dim() == 2, op, "weight must be 2-D [num_embeddings, embedding_dim], got shape ",
                 shape_str(weight.sizes()));
  check_index_tensor(weight, indices, op);
  const int64_t num = weight.size(0), width = weight.size(1);
  std::optional<int64_t> pad = padding_idx;
  if (pad) {
    BM_CHECK_VALUE(*pad >= -num && *pad < num, op, "padding_idx ", *pad, " must be within num_embeddings ", num);
    if (*pad < 0) *pad += num;
  }
  check_index_range(indices, num, false, op, 0);
  Shape out_sizes = indices.sizes();
  out_sizes.push_back(width);
  Tensor out = Tensor::empty(out_sizes, weight.dtype(), weight.device());
  if (out.numel() > 0) {
    Shape src_strides(indices.dim(), 0), ix_strides = indices.strides();
    src_strides.push_back(weight.stride(1));
    ix_strides.push_back(0);
    Tensor src = Tensor::make_view(weight, out_sizes, src_strides, weight.offset());
    Tensor ix = Tensor::make_view(indices, out_sizes, ix_strides, indices.offset());
    index_gather_kernel.get(weight.device())(out, src, ix, weight.stride(0), num);
  }
  if (needs_grad({weight})) {
    SavedTensor saved(indices);
    Shape wsizes = weight.sizes();
    record_function(op, {weight}, {out}, [saved, wsizes, pad](const std::vector<Tensor>& g) {
      Tensor gw = zeros(wsizes, g[0].dtype(), g[0].device());
      Tensor flat = reshape(saved.unpack("embedding"), {-1});
      index_add_(gw, 0, flat, reshape(g[0], {-1, wsizes[1]}));
      if (pad) {
        Tensor row = select(gw, 0, *pad);
        fill_(row, 0);
      }
      return std::vector<Tensor>{gw};
    }, SecondOrder::Full);
  }
  return out;
}

Tensor one_hot(const Tensor& self, int64_t num_classes) {
  const char* op = "one_hot";
  BM_CHECK_DTYPE(is_index_dtype(self.dtype()), op, "expects an int64 or int32 class tensor, got ",
                 dtype_name(self.dtype()));
  int64_t lo = 0, hi = -1;
  if (self.numel() > 0) index_minmax_kernel.get(self.device())(self, &lo, &hi);
  if (num_classes < 0) {
    BM_CHECK_VALUE(self.numel() > 0, op, "can not infer the number of classes from an empty tensor");
    num_classes = hi + 1;
  }
  BM_CHECK_VALUE(lo >= 0, op, "class values must be non-negative, got ", lo);
  BM_CHECK_VALUE(hi < num_classes, op, "class values must be smaller than num_classes ", num_classes, ", got ", hi);
  Shape out_sizes = self.sizes();
  out_sizes.push_back(num_classes);
  Tensor out = zeros(out_sizes, DType::Int64, self.device());
  if (self.numel() > 0) {
    Tensor ix = unsqueeze(self.detach(), -1);
    scatter_raw(out, out.dim() - 1, ix, scalar_tensor(1, DType::Int64, self.device()), false);
  }
  return out;
}

Tensor masked_select(const Tensor& self, const Tensor& mask) {
  const char* op = "masked_select";
  BM_CHECK_DTYPE(mask.dtype() == DType::Bool, op, "mask must be a bool tensor, got ", dtype_name(mask.dtype()));
  Shape shape = broadcast_shapes(self.sizes(), mask.sizes(), op);
  if (shape.empty()) shape = {1};
  return advanced_index(expand(reshape(self, self.dim() == 0 ? Shape{1} : self.sizes()), shape),
                        {expand(reshape(mask, mask.dim() == 0 ? Shape{1} : mask.sizes()), shape)});
}

Tensor nonzero(const Tensor& self) { return nonzero_kernel.get(self.device())(self); }

std::vector<Tensor> nonzero_tuple(const Tensor& self) {
  Tensor nz = nonzero(self);
  std::vector<Tensor> out;
  for (int64_t d = 0; d < nz.size(1); ++d) out.push_back(contiguous(select(nz, 1, d)));
  return out;
}

Tensor take(const Tensor& self, const Tensor& index) {
  check_index_tensor(self, index, "take");
  check_index_range(index, self.numel(), true, "take", 0);
  return advanced_index(reshape(self, {-1}), {index});
}

}  // namespace bigmodel
