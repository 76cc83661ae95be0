// Tensor factories: empty/zeros/ones/full and their *_like forms, ranges, eye, and the
// random factories driven by the seeded Philox generator (core/random.h).
#pragma once
#include <optional>

#include "core/tensor.h"

namespace bigmodel {

Tensor empty(const Shape& sizes, DType dtype = kDefaultFloat, Device device = Device());
Tensor zeros(const Shape& sizes, DType dtype = kDefaultFloat, Device device = Device());
Tensor ones(const Shape& sizes, DType dtype = kDefaultFloat, Device device = Device());
Tensor full(const Shape& sizes, const Scalar& value, DType dtype = kDefaultFloat, Device device = Device());
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, const Scalar& value);
// A 0-d tensor holding `value`.
Tensor scalar_tensor(const Scalar& value, DType dtype, Device device = Device());
// A tensor copied from host memory of the given dtype (contiguous, row-major).
Tensor from_host(const void* data, const Shape& sizes, DType dtype, Device device = Device());
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& sizes, Device device = Device()) {
  BM_CHECK_SHAPE(static_cast<int64_t>(values.size()) == shape_numel(sizes), "from_vector", values.size(),
                 " values do not fill shape ", shape_str(sizes));
  return from_host(values.data(), sizes, DTypeOf<T>::value, device);
}
// Fills in place (records no history; bumps the version).
Tensor& fill_(Tensor& self, const Scalar& value);
Tensor& zero_(Tensor& self);

// Ranges. arange's dtype defaults to int64 when start, end and step are all integers.
Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step = Scalar(int64_t{1}),
              std::optional<DType> dtype = std::nullopt, Device device = Device());
Tensor linspace(double start, double end, int64_t steps, DType dtype = kDefaultFloat, Device device = Device());
Tensor eye(int64_t n, int64_t m = -1, DType dtype = kDefaultFloat, Device device = Device());

// Random factories (see core/random.h for the generator and seeding).
Tensor rand(const Shape& sizes, DType dtype = kDefaultFloat, Device device = Device());
Tensor randn(const Shape& sizes, DType dtype = kDefaultFloat, Device device = Device());
Tensor randint(int64_t low, int64_t high, const Shape& sizes, DType dtype = kDefaultInt, Device device = Device());
Tensor& uniform_(Tensor& self, double from = 0.0, double to = 1.0);
Tensor& normal_(Tensor& self, double mean = 0.0, double std = 1.0);

}  // namespace bigmodel
