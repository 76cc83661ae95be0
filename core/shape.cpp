// Shape helpers shared by all op front ends.
#include "core/shape.h"

#include <algorithm>

#include "core/error.h"

namespace bigmodel {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& sizes) {
  Shape st(sizes.size());
  int64_t acc = 1;
  for (int64_t i = static_cast<int64_t>(sizes.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    // Zero-size dims don't bound the others: [0, 2^40, 2^40] has no elements but its strides
    // would overflow int64 (found by tests/fuzz/fuzz_safetensors), so refuse such shapes.
    BM_CHECK_VALUE(!__builtin_mul_overflow(acc, std::max<int64_t>(sizes[i], 1), &acc), "shape",
                   "shape ", shape_str(sizes), " is too large: its strides overflow int64");
  }
  return st;
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    BM_CHECK_SHAPE(da == db || da == 1 || db == 1, op, "shapes ", shape_str(a), " and ",
                   shape_str(b), " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t n = std::max<int64_t>(ndim, 1);  // 0-d tensors accept dim 0 and -1
  BM_CHECK_INDEX(dim >= -n && dim < n, op, "dim ", dim, " out of range for a tensor with ", ndim,
                 " dims");
  return dim < 0 ? dim + n : dim;
}

std::vector<int64_t> wrap_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    for (int64_t d = 0; d < ndim; ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) out.push_back(wrap_dim(d, ndim, op));
  std::sort(out.begin(), out.end());
  BM_CHECK_VALUE(std::adjacent_find(out.begin(), out.end()) == out.end(), op,
                 "dim appears more than once in the list of dims");
  if (ndim == 0) out.clear();
  return out;
}

}  // namespace bigmodel
