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

// Ranges. arange's dtype defaults to int64 when start, end and step are all integers
// (float32 otherwise); its length is ceil((end - start) / step) as in PyTorch.
Tensor arange(const Scalar& end, std::optional<DType> dtype = std::nullopt, Device device = Device());
Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step = Scalar(int64_t{1}),
              std::optional<DType> dtype = std::nullopt, Device device = Device());
Tensor linspace(double start, double end, int64_t steps, DType dtype = kDefaultFloat, Device device = Device());
// n x m identity (m < 0 means m = n).
Tensor eye(int64_t n, int64_t m = -1, DType dtype = kDefaultFloat, Device device = Device());

// Random factories and in-place samplers. They draw from `gen`, or from the default
// generator when null (core/random.h has the generator and the stream layout).
class Generator;
Tensor rand(const Shape& sizes, DType dtype = kDefaultFloat, Device device = Device(), Generator* gen = nullptr);
Tensor randn(const Shape& sizes, DType dtype = kDefaultFloat, Device device = Device(), Generator* gen = nullptr);
// Integers uniform in [low, high).
Tensor randint(int64_t low, int64_t high, const Shape& sizes, DType dtype = kDefaultInt, Device device = Device(),
               Generator* gen = nullptr);
Tensor rand_like(const Tensor& t, std::optional<DType> dtype = std::nullopt, Generator* gen = nullptr);
Tensor randn_like(const Tensor& t, std::optional<DType> dtype = std::nullopt, Generator* gen = nullptr);
Tensor randint_like(const Tensor& t, int64_t low, int64_t high, std::optional<DType> dtype = std::nullopt,
                    Generator* gen = nullptr);
// A random permutation of 0..n-1.
Tensor randperm(int64_t n, DType dtype = kDefaultInt, Device device = Device(), Generator* gen = nullptr);
Tensor& uniform_(Tensor& self, double from = 0.0, double to = 1.0, Generator* gen = nullptr);
Tensor& normal_(Tensor& self, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
// Integers uniform in [from, to); without `to`, up to the dtype's largest exactly
// representable integer (inclusive), as PyTorch's random_().
Tensor& random_(Tensor& self, int64_t from = 0, std::optional<int64_t> to = std::nullopt, Generator* gen = nullptr);
// Each element 1 with probability p, else 0.
Tensor& bernoulli_(Tensor& self, double p = 0.5, Generator* gen = nullptr);
// Elementwise: 1 with probability probs[i] (a floating tensor), same dtype and shape.
Tensor bernoulli(const Tensor& probs, Generator* gen = nullptr);
// Inverted-dropout mask: 0 with probability p, else 1 / (1 - p).
Tensor dropout_mask(const Shape& sizes, double p, DType dtype = kDefaultFloat, Device device = Device(),
                    Generator* gen = nullptr);

// Throws ValueError naming `op` when a size is negative.
void check_sizes(const char* op, const Shape& sizes);

}  // namespace bigmodel
