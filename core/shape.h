// Shape utilities: sizes and strides vectors, contiguous strides, numel, broadcasting,
// dimension wrapping and printing. Used by every op front end.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace bigmodel {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& sizes);
std::string shape_str(const Shape& s);  // "[2, 3]"
// NumPy broadcasting of two shapes; throws ShapeError naming op and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Wraps a possibly negative dim into [0, ndim); throws IndexError naming op.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
// Dims for a reduction: empty means all; wrapped, sorted, unique-checked.
std::vector<int64_t> wrap_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op);

}  // namespace bigmodel
