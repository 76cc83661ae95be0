// Trains the article's CNN on Fashion-MNIST with the C++ API alone (bigmodel::nn, optim),
// the C++ twin of examples/train_cnn.py:
//   build/examples/cpp/train_cnn [--epochs 3] [--limit N] [--batch-size 64] [--lr 0.04]
//                                [--seed 0] [--root /usr/share/datasets/fashion-mnist]
// SGD with Nesterov momentum 0.9; the learning rate warms up linearly over the first steps,
// then decays linearly to zero. Prints each epoch's training loss and test accuracy, and the
// test accuracy last. The gzip IDX files are read with zlib.
#include "core/bigmodel.h"  // <bigmodel/bigmodel.h> when built against an installed bigmodel
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace bigmodel;

namespace {

constexpr float kPixelMean = 0.2860f, kPixelStd = 0.3530f;  // of the training images in [0, 1]

// The whole decompressed content of a .gz file.
std::vector<uint8_t> read_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(1 << 20);
  int n;
  while ((n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0) out.insert(out.end(), chunk.begin(), chunk.begin() + n);
  gzclose(f);
  if (n < 0) throw std::runtime_error("corrupt gzip data in " + path);
  return out;
}

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) | b[at + 3];
}

// IDX images (magic 0x803) -> float32 [N, 1, H, W], standardised; labels (0x801) -> int64 [N].
Tensor load_images(const std::string& path, int64_t limit) {
  auto b = read_gzip(path);
  if (b.size() < 16 || be32(b, 0) != 0x803) throw std::runtime_error(path + " is not an IDX image file");
  int64_t n = be32(b, 4), h = be32(b, 8), w = be32(b, 12);
  if (b.size() < 16 + static_cast<size_t>(n * h * w)) throw std::runtime_error(path + " is truncated");
  if (limit > 0) n = std::min(n, limit);
  std::vector<float> px(static_cast<size_t>(n * h * w));
  for (size_t i = 0; i < px.size(); ++i) px[i] = (b[16 + i] / 255.0f - kPixelMean) / kPixelStd;
  return from_vector<float>(px, {n, 1, h, w});
}

Tensor load_labels(const std::string& path, int64_t limit) {
  auto b = read_gzip(path);
  if (b.size() < 8 || be32(b, 0) != 0x801) throw std::runtime_error(path + " is not an IDX label file");
  int64_t n = be32(b, 4);
  if (b.size() < 8 + static_cast<size_t>(n)) throw std::runtime_error(path + " is truncated");
  if (limit > 0) n = std::min(n, limit);
  std::vector<int64_t> v(b.begin() + 8, b.begin() + 8 + n);
  return from_vector<int64_t>(v, {n});
}

// The same layers and names as bigmodel.models.ArticleCNN, so the state dicts interchange.
struct ArticleCNN : nn::Module {
  std::shared_ptr<nn::Conv2d> conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(1, 32, 3, 1));
  std::shared_ptr<nn::Conv2d> conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(32, 64, 3, 1));
  std::shared_ptr<nn::Dropout> dropout1 = register_module("dropout1", std::make_shared<nn::Dropout>(0.25));
  std::shared_ptr<nn::Dropout> dropout2 = register_module("dropout2", std::make_shared<nn::Dropout>(0.5));
  std::shared_ptr<nn::Linear> fc1 = register_module("fc1", std::make_shared<nn::Linear>(64 * 12 * 12, 128));
  std::shared_ptr<nn::Linear> fc2 = register_module("fc2", std::make_shared<nn::Linear>(128, 10));

  Tensor forward(const Tensor& input) override {
    Tensor x = relu((*conv1)(input));
    x = relu((*conv2)(x));
    x = max_pool2d(x, {2, 2});
    x = (*dropout1)(x);
    x = flatten(x, 1);
    x = relu((*fc1)(x));
    x = (*dropout2)(x);
    return (*fc2)(x);
  }
  std::string type_name() const override { return "ArticleCNN"; }
};

double accuracy(ArticleCNN& model, const Tensor& images, const Tensor& labels) {
  model.eval();
  NoGradGuard no_grad;
  int64_t correct = 0, n = images.size(0);
  for (int64_t at = 0; at < n; at += 1000) {
    int64_t len = std::min<int64_t>(1000, n - at);
    Tensor pred = argmax(model(narrow(images, 0, at, len)), 1);
    correct += sum(eq(pred, narrow(labels, 0, at, len))).item().to_int();
  }
  model.train();
  return static_cast<double>(correct) / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t epochs = 3, limit = 0, batch = 64, seed = 0, warmup_steps = 200;
  double peak_lr = 0.04;
  std::string root = "/usr/share/datasets/fashion-mnist";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--epochs") epochs = std::stoll(next());
    else if (a == "--limit") limit = std::stoll(next());
    else if (a == "--batch-size") batch = std::stoll(next());
    else if (a == "--lr") peak_lr = std::stod(next());
    else if (a == "--seed") seed = std::stoll(next());
    else if (a == "--root") root = next();
    else {
      std::fprintf(stderr, "usage: %s [--epochs N] [--limit N] [--batch-size N] [--lr X] [--seed N] [--root DIR]\n",
                   argv[0]);
      return 2;
    }
  }
  if (epochs < 1 || batch < 1) {
    std::fprintf(stderr, "--epochs and --batch-size must be positive\n");
    return 2;
  }
  try {
    manual_seed(static_cast<uint64_t>(seed));
    Tensor train_x = load_images(root + "/train-images-idx3-ubyte.gz", limit);
    Tensor train_y = load_labels(root + "/train-labels-idx1-ubyte.gz", limit);
    Tensor test_x = load_images(root + "/t10k-images-idx3-ubyte.gz", 0);
    Tensor test_y = load_labels(root + "/t10k-labels-idx1-ubyte.gz", 0);
    const int64_t n = train_x.size(0);

    ArticleCNN model;
    optim::SGD opt(model.parameters(), {/*lr=*/peak_lr, /*momentum=*/0.9, /*dampening=*/0.0,
                                        /*weight_decay=*/0.0, /*nesterov=*/true});
    int64_t n_params = 0;
    for (const Tensor& p : model.parameters()) n_params += p.numel();
    const int64_t steps_per_epoch = (n + batch - 1) / batch, total = epochs * steps_per_epoch;
    const int64_t warmup = std::min(warmup_steps, total / 4);
    std::printf("ArticleCNN (C++), %lld parameters; %lld training images, batch %lld, %lld epochs, peak lr %g\n",
                static_cast<long long>(n_params), static_cast<long long>(n), static_cast<long long>(batch),
                static_cast<long long>(epochs), peak_lr);
    std::fflush(stdout);

    auto start = std::chrono::steady_clock::now();
    int64_t step = 0;
    double test_acc = 0.0;
    for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
      Tensor order = randperm(n);
      double loss_sum = 0.0;
      for (int64_t at = 0; at < n; at += batch) {
        const int64_t len = std::min(batch, n - at);
        double lr = step < warmup ? peak_lr * static_cast<double>(step + 1) / static_cast<double>(warmup)
                                  : peak_lr * std::max(0.0, 1.0 - static_cast<double>(step - warmup) /
                                                                      static_cast<double>(std::max<int64_t>(1, total - warmup)));
        opt.set_lr(lr);
        ++step;
        Tensor idx = narrow(order, 0, at, len);
        Tensor loss = cross_entropy(model(index_select(train_x, 0, idx)), index_select(train_y, 0, idx));
        opt.zero_grad();
        loss.backward();
        opt.step();
        const double value = loss.item().to_double();
        if (!std::isfinite(value)) {
          std::fprintf(stderr, "training diverged at step %lld; lower --lr\n", static_cast<long long>(step));
          return 1;
        }
        loss_sum += value * static_cast<double>(len);
      }
      test_acc = accuracy(model, test_x, test_y);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("epoch %lld: train loss %.4f  test acc %.4f  (%.0f s so far)\n", static_cast<long long>(epoch),
                  loss_sum / static_cast<double>(n), test_acc, secs);
      std::fflush(stdout);
    }
    std::printf("test accuracy: %.4f\n", test_acc);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
