// bigmodel::data::FashionMNIST, the C++ twin of python/bigmodel/data/datasets.py's: the
// Fashion-MNIST IDX files (gzip or plain) as a Dataset. The Debian package
// dataset-fashion-mnist installs them in /usr/share/datasets/fashion-mnist.
#pragma once
#include <string>
#include <utility>

#include "core/data/dataset.h"

namespace bigmodel::data {

// A TensorDataset over the whole split, loaded once.
class FashionMNIST : public TensorDataset {
 public:
  static constexpr const char* kDefaultRoot = "/usr/share/datasets/fashion-mnist";

  // Loads the whole split (60000 train or 10000 test images). Error naming
  // `apt-get install dataset-fashion-mnist` when the files are missing; ValueError
  // "[FashionMNIST] ..." / "[idx] <path>: ..." when they are malformed.
  explicit FashionMNIST(const std::string& root = kDefaultRoot, bool train = true);

  // Sample i is {image float32 [1, 28, 28] in [0, 1], label int64 0-d}; get_batch gathers
  // {images [B, 1, 28, 28], labels [B]} at once (TensorDataset's get and get_batch).

  // Every image, float32 [N, 1, 28, 28] in [0, 1], and every label, int64 [N].
  const Tensor& images() const { return data(); }
  const Tensor& targets() const { return target(); }
  bool train() const { return train_; }
  // "T-shirt/top", "Trouser", ... for labels 0..9; IndexError otherwise.
  static const char* class_name(int64_t label);

 private:
  FashionMNIST(std::pair<Tensor, Tensor> images_and_labels, bool train);
  bool train_;
};

}  // namespace bigmodel::data
