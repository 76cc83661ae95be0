// bigmodel::data::TensorDataset (see dataset.h).
#include "core/data/dataset.h"

#include "core/error.h"
#include "core/ops/creation.h"
#include "core/ops/index.h"
#include "core/ops/view.h"
#include "core/shape.h"

namespace bigmodel::data {

TensorDataset::TensorDataset(Tensor data, Tensor target) : data_(std::move(data)), target_(std::move(target)) {
  const char* op = "TensorDataset";
  BM_CHECK_VALUE(data_.defined(), op, "data tensor is undefined");
  BM_CHECK_SHAPE(data_.dim() > 0, op, "data must have a first (sample) dimension, got a 0-d tensor");
  if (target_.defined()) {
    BM_CHECK_SHAPE(target_.dim() > 0 && target_.size(0) == data_.size(0), op,
                   "size mismatch between tensors: shapes ", shape_str(data_.sizes()), ", ", shape_str(target_.sizes()));
  }
}

Example TensorDataset::get(int64_t index) const {
  const int64_t n = size();
  BM_CHECK_INDEX(index >= -n && index < n, "TensorDataset", "index ", index, " is out of range for ", n, " samples");
  if (index < 0) index += n;
  return {select(data_, 0, index), target_.defined() ? select(target_, 0, index) : Tensor()};
}

std::optional<Example> TensorDataset::get_batch(const std::vector<int64_t>& indices) const {
  const int64_t n = size();
  std::vector<int64_t> fixed(indices);
  for (int64_t& i : fixed) {
    BM_CHECK_INDEX(i >= -n && i < n, "TensorDataset", "index ", i, " is out of range for ", n, " samples");
    if (i < 0) i += n;
  }
  Tensor index = from_vector<int64_t>(fixed, {static_cast<int64_t>(fixed.size())}, data_.device());
  Example out{index_select(data_, 0, index), Tensor()};
  if (target_.defined()) out.target = index_select(target_, 0, target_.device() == data_.device() ? index : to(index, target_.device()));
  return out;
}

}  // namespace bigmodel::data
