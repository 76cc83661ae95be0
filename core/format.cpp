// Tensor::repr: prints like PyTorch ("tensor([[1., 2.]], requires_grad=True)"), with
// "..." summaries past 1000 elements.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops/view.h"
#include "core/tensor.h"

namespace bigmodel {
namespace {

constexpr int64_t kSummarizeThreshold = 1000;
constexpr int64_t kEdgeItems = 3;
constexpr int64_t kLineWidth = 80;

struct Formatter {
  DType dtype;
  bool int_mode = true;   // all finite floats are whole numbers
  bool sci_mode = false;  // very large or very small magnitudes
  int width = 1;

  std::string fmt(double v) const {
    char buf[64];
    if (dtype == DType::Bool) return v != 0 ? "True" : "False";
    if (!is_floating(dtype)) {
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    } else if (std::isnan(v)) {
      return "nan";
    } else if (std::isinf(v)) {
      return v > 0 ? "inf" : "-inf";
    } else if (sci_mode) {
      std::snprintf(buf, sizeof buf, "%.4e", v);
    } else if (int_mode) {
      std::snprintf(buf, sizeof buf, "%.0f.", v);
    } else {
      std::snprintf(buf, sizeof buf, "%.4f", v);
    }
    return buf;
  }
};

double element(const Tensor& t, const std::vector<int64_t>& idx) {
  int64_t off = 0;
  for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * t.strides()[d];
  const char* p = static_cast<const char*>(t.data_ptr()) + off * static_cast<int64_t>(t.itemsize());
  switch (t.dtype()) {
    case DType::Bool: return *reinterpret_cast<const bool*>(p);
    case DType::Int32: return *reinterpret_cast<const int32_t*>(p);
    case DType::Int64: return static_cast<double>(*reinterpret_cast<const int64_t*>(p));
    case DType::Float16: return static_cast<float>(*reinterpret_cast<const Half*>(p));
    case DType::BFloat16: return static_cast<float>(*reinterpret_cast<const BFloat16*>(p));
    case DType::Float32: return *reinterpret_cast<const float*>(p);
    case DType::Float64: return *reinterpret_cast<const double*>(p);
  }
  return 0;
}

// Visits the printed elements (skipping the middle of long dims when summarising).
template <typename F>
void visit(const Tensor& t, std::vector<int64_t>& idx, size_t d, bool summarize, F&& f) {
  if (d == idx.size()) {
    f(element(t, idx));
    return;
  }
  int64_t n = t.sizes()[d];
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 2 * kEdgeItems && i == kEdgeItems) i = n - kEdgeItems;
    idx[d] = i;
    visit(t, idx, d + 1, summarize, f);
  }
}

void print_rec(const Tensor& t, std::vector<int64_t>& idx, size_t d, bool summarize,
               const Formatter& fm, int indent, std::string& out) {
  if (d == idx.size()) {
    std::string s = fm.fmt(element(t, idx));
    out += std::string(fm.width > static_cast<int>(s.size()) ? fm.width - s.size() : 0, ' ') + s;
    return;
  }
  out += "[";
  int64_t n = t.sizes()[d];
  const bool last = d + 1 == idx.size();
  if (last) {  // one row: elements (and " ..." when summarised) wrapped at kLineWidth, as PyTorch
    std::vector<std::string> elems;
    for (int64_t i = 0; i < n; ++i) {
      if (summarize && n > 2 * kEdgeItems && i == kEdgeItems) {
        elems.push_back(" ...");
        i = n - kEdgeItems;
      }
      idx[d] = i;
      std::string s = fm.fmt(element(t, idx));
      elems.push_back(std::string(fm.width > static_cast<int>(s.size()) ? fm.width - s.size() : 0, ' ') + s);
    }
    const int64_t row_indent = indent + static_cast<int64_t>(d);
    const int64_t per_line = std::max<int64_t>(1, (kLineWidth - row_indent) / (fm.width + 2));
    for (size_t i = 0; i < elems.size(); ++i) {
      if (i > 0) {
        out += ",";
        out += (static_cast<int64_t>(i) % per_line == 0) ? "\n" + std::string(row_indent + 1, ' ') : " ";
      }
      out += elems[i];
    }
    out += "]";
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    if (i > 0) {
      out += ",";
      if (last) out += " ";
      else out += std::string(idx.size() - d - 1, '\n') + std::string(indent + d + 1, ' ');
    }
    if (summarize && n > 2 * kEdgeItems && i == kEdgeItems) {
      out += "...,";  // a row of its own, followed by as many newlines as between slices
      out += std::string(idx.size() - d - 1, '\n') + std::string(indent + d + 1, ' ');
      i = n - kEdgeItems;
    }
    idx[d] = i;
    print_rec(t, idx, d + 1, summarize, fm, indent, out);
  }
  out += "]";
}

}  // namespace

std::string Tensor::repr() const {
  Tensor c = device().is_cpu() ? *this : to(detach(), Device());
  Formatter fm{dtype()};
  const bool summarize = numel() > kSummarizeThreshold;
  std::vector<int64_t> idx(dim(), 0);
  if (is_floating(dtype()) && numel() > 0) {
    double max_abs = 0, min_abs = INFINITY;
    visit(c, idx, 0, summarize, [&](double v) {
      if (!std::isfinite(v)) return;
      if (v != std::floor(v)) fm.int_mode = false;
      max_abs = std::max(max_abs, std::fabs(v));
      if (v != 0) min_abs = std::min(min_abs, std::fabs(v));
    });
    // PyTorch's rule, over the non-zero finite magnitudes: a spread above 1000x or a value
    // above 1e8 (or, with fractions, one below 1e-4) switches to scientific notation.
    fm.sci_mode = max_abs > 1e8 || (!fm.int_mode && min_abs < 1e-4) ||
                  (max_abs > 0 && min_abs < INFINITY && max_abs / min_abs > 1e3);
  }
  if (numel() > 0) {
    // -0.0 does not widen the columns (PyTorch sizes them by the non-zero values).
    visit(c, idx, 0, summarize, [&](double v) {
      if (v == 0 && std::signbit(v)) return;
      fm.width = std::max<int>(fm.width, fm.fmt(v).size());
    });
  }
  std::string out = "tensor(";
  if (numel() == 0 && dim() > 0) {
    out += "[]";
  } else if (dim() == 0) {
    out += fm.fmt(element(c, {}));
  } else {
    print_rec(c, idx, 0, summarize, fm, 7, out);
  }
  std::string extras;
  if (!device().is_cpu()) extras += ", device='" + device().str() + "'";
  const bool default_dtype = dtype() == DType::Float32 || dtype() == DType::Int64 || dtype() == DType::Bool;
  if (numel() == 0 && dim() > 1) {  // a tuple, as PyTorch prints torch.Size
    std::string size = "(";
    for (int64_t i = 0; i < dim(); ++i) size += (i ? ", " : "") + std::to_string(sizes()[i]);
    extras += ", size=" + size + ")";
  }
  if (!default_dtype || (numel() == 0 && dtype() != DType::Float32)) extras += std::string(", dtype=bigmodel.") + dtype_name(dtype());
  if (grad_fn()) extras += ", grad_fn=<" + node_display_name(*grad_fn()) + ">";
  else if (requires_grad()) extras += ", requires_grad=True";
  return out + extras + ")";
}

}  // namespace bigmodel
