// bigmodel::data::FashionMNIST (see fashion_mnist.h).
#include "core/data/fashion_mnist.h"

#include <sys/stat.h>

#include "core/data/idx_file.h"
#include "core/error.h"
#include "core/ops/elementwise.h"
#include "core/ops/view.h"

namespace bigmodel::data {
namespace {

constexpr const char* kOp = "FashionMNIST";

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string find_file(const std::string& root, const std::string& name) {
  for (const std::string& candidate : {name + ".gz", name}) {
    const std::string path = root + "/" + candidate;
    if (exists(path)) return path;
  }
  throw Error(str_cat("[", kOp, "] ", name, ".gz not found in ", root,
                      "; install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
                      "or pass a root folder holding the IDX files"));
}

std::pair<Tensor, Tensor> load_split(const std::string& root, bool train) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string img_path = find_file(root, prefix + "-images-idx3-ubyte");
  const std::string lbl_path = find_file(root, prefix + "-labels-idx1-ubyte");
  const IdxArray images = read_idx_file(img_path);
  const IdxArray labels = read_idx_file(lbl_path);
  BM_CHECK_VALUE(images.type == IdxType::UInt8 && images.dims.size() == 3, kOp, img_path, " holds ",
                 images.dims.size(), "-d ", idx_type_name(images.type), " data; expected 3-d uint8 images");
  BM_CHECK_VALUE(labels.type == IdxType::UInt8 && labels.dims.size() == 1, kOp, lbl_path, " holds ",
                 labels.dims.size(), "-d ", idx_type_name(labels.type), " data; expected 1-d uint8 labels");
  BM_CHECK_VALUE(images.dims[1] == 28 && images.dims[2] == 28, kOp, img_path, " holds images of shape [",
                 images.dims[1], ", ", images.dims[2], "], expected [28, 28]");
  BM_CHECK_VALUE(images.dims[0] == labels.dims[0], kOp, img_path, " has ", images.dims[0], " images but ", lbl_path,
                 " has ", labels.dims[0], " labels");
  for (uint8_t l : labels.data) BM_CHECK_VALUE(l <= 9, kOp, lbl_path, " holds label ", int{l}, "; labels must be 0..9");
  Tensor pixels = idx_to_tensor(images, DType::Float32);
  mul_(pixels, Scalar(1.0 / 255.0));
  return {view(pixels, {images.dims[0], 1, 28, 28}), idx_to_tensor(labels, DType::Int64)};
}

}  // namespace

FashionMNIST::FashionMNIST(const std::string& root, bool train) : FashionMNIST(load_split(root, train), train) {}

FashionMNIST::FashionMNIST(std::pair<Tensor, Tensor> loaded, bool train)
    : TensorDataset(std::move(loaded.first), std::move(loaded.second)), train_(train) {}

const char* FashionMNIST::class_name(int64_t label) {
  static const char* const kNames[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                       "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  BM_CHECK_INDEX(label >= 0 && label < 10, kOp, "label ", label, " is out of range 0..9");
  return kNames[label];
}

}  // namespace bigmodel::data
