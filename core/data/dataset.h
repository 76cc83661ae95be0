// bigmodel::data::Dataset and TensorDataset, the C++ twins of python/bigmodel/data/dataset.py:
// a map-style dataset yields Example{data, target} by index; get_batch may gather a whole
// batch at once (the DataLoader's fast path), as Python's get_batch does.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "core/tensor.h"

namespace bigmodel::data {

// One sample, or a batch of them stacked along a new dim 0. `target` may be undefined
// (unlabelled data).
struct Example {
  Tensor data;
  Tensor target;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  // Sample `index` (0 <= index < size()). The DataLoader calls it from its prefetch thread,
  // so it must not depend on the caller's thread (grad mode there is off).
  virtual Example get(int64_t index) const = 0;
  // The samples at `indices` already batched, or nullopt (the default) to let the loader
  // call get() for each and stack the results.
  virtual std::optional<Example> get_batch(const std::vector<int64_t>& /*indices*/) const { return std::nullopt; }
};

// Wraps a data tensor and an optional target tensor of equal first dimension; sample i is
// {data[i], target[i]}, a batch is an index_select of both.
class TensorDataset : public Dataset {
 public:
  explicit TensorDataset(Tensor data, Tensor target = Tensor());
  int64_t size() const override { return data_.size(0); }
  // Negative indices count from the end; IndexError "[TensorDataset] ..." when out of range.
  Example get(int64_t index) const override;
  std::optional<Example> get_batch(const std::vector<int64_t>& indices) const override;
  const Tensor& data() const { return data_; }
  const Tensor& target() const { return target_; }

 private:
  Tensor data_;
  Tensor target_;
};

}  // namespace bigmodel::data
