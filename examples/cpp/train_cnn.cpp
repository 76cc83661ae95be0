// Trains the article's CNN on Fashion-MNIST with the C++ API alone (bigmodel::nn, optim,
// data), the C++ twin of examples/train_cnn.py:
//   build/examples/cpp/train_cnn [--epochs 3] [--limit N] [--batch-size 64] [--lr 0.04]
//                                [--seed 0] [--root /usr/share/datasets/fashion-mnist]
//                                [--min-accuracy X]   (exit 3 when the final test accuracy is below X)
// SGD with Nesterov momentum 0.9; the learning rate (a LambdaLR) warms up linearly over the
// first steps, then decays linearly to zero. data::FashionMNIST reads the IDX files and a
// data::DataLoader shuffles (seeded by --seed) and batches them on a background thread.
// Prints each epoch's training loss and test accuracy, and the test accuracy last.
#include "core/bigmodel.h"  // <bigmodel/bigmodel.h> when built against an installed bigmodel

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

using namespace bigmodel;

namespace {

constexpr float kPixelMean = 0.2860f, kPixelStd = 0.3530f;  // of the training images in [0, 1]

// Images in [0, 1] -> standardised with the training set's pixel statistics.
Tensor standardise(const Tensor& images) { return div(sub(images, Scalar(kPixelMean)), Scalar(kPixelStd)); }

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
    x = linear_act(x, fc1->weight, fc1->bias, "relu");  // fc1 + ReLU: the ReLU in the GEMM's epilogue
    x = (*dropout2)(x);
    return (*fc2)(x);
  }
  std::string type_name() const override { return "ArticleCNN"; }
};

double accuracy(ArticleCNN& model, data::DataLoader& test_loader) {
  model.eval();
  NoGradGuard no_grad;
  int64_t correct = 0, n = 0;
  for (const data::Example& batch : test_loader) {
    correct += sum(eq(argmax(model(batch.data), 1), batch.target)).item().to_int();
    n += batch.target.size(0);
  }
  model.train();
  return static_cast<double>(correct) / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t epochs = 3, limit = 0, batch = 64, seed = 0, warmup_steps = 200;
  double peak_lr = 0.04, min_accuracy = 0.0;
  std::string root = data::FashionMNIST::kDefaultRoot;
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
    else if (a == "--min-accuracy") min_accuracy = std::stod(next());
    else {
      std::fprintf(stderr, "usage: %s [--epochs N] [--limit N] [--batch-size N] [--lr X] [--seed N] [--root DIR] [--min-accuracy X]\n",
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
    std::shared_ptr<data::TensorDataset> train_data, test_data;
    int64_t n = 0;
    {  // the raw [0, 1] images go once standardised
      data::FashionMNIST train_set(root, /*train=*/true), test_set(root, /*train=*/false);
      n = limit > 0 ? std::min(train_set.size(), limit) : train_set.size();
      train_data = std::make_shared<data::TensorDataset>(standardise(narrow(train_set.images(), 0, 0, n)),
                                                         narrow(train_set.targets(), 0, 0, n));
      test_data = std::make_shared<data::TensorDataset>(standardise(test_set.images()), test_set.targets());
    }
    data::DataLoader train_loader(train_data, {batch, /*shuffle=*/true, /*drop_last=*/false, static_cast<uint64_t>(seed)});
    data::DataLoader test_loader(test_data, {/*batch_size=*/1000});

    ArticleCNN model;
    optim::SGD opt(model.parameters(), {/*lr=*/peak_lr, /*momentum=*/0.9, /*dampening=*/0.0,
                                        /*weight_decay=*/0.0, /*nesterov=*/true});
    int64_t n_params = 0;
    for (const Tensor& p : model.parameters()) n_params += p.numel();
    const int64_t total = epochs * train_loader.size();
    const int64_t warmup = std::min(warmup_steps, total / 4);
    optim::LambdaLR schedule(opt, [=](int64_t step) {
      if (step < warmup) return static_cast<double>(step + 1) / static_cast<double>(warmup);
      return std::max(0.0, 1.0 - static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup)));
    });
    std::printf("ArticleCNN (C++), %lld parameters; %lld training images, batch %lld, %lld epochs, peak lr %g\n",
                static_cast<long long>(n_params), static_cast<long long>(n), static_cast<long long>(batch),
                static_cast<long long>(epochs), peak_lr);
    std::fflush(stdout);

    auto start = std::chrono::steady_clock::now();
    int64_t step = 0;
    double test_acc = 0.0;
    for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
      double loss_sum = 0.0;
      for (const data::Example& b : train_loader) {
        Tensor loss = cross_entropy(model(b.data), b.target);
        opt.zero_grad();
        loss.backward();
        opt.step();
        schedule.step();
        ++step;
        const double value = loss.item().to_double();
        if (!std::isfinite(value)) {
          std::fprintf(stderr, "training diverged at step %lld; lower --lr\n", static_cast<long long>(step));
          return 1;
        }
        loss_sum += value * static_cast<double>(b.target.size(0));
      }
      test_acc = accuracy(model, test_loader);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("epoch %lld: train loss %.4f  test acc %.4f  (%.0f s so far)\n", static_cast<long long>(epoch),
                  loss_sum / static_cast<double>(n), test_acc, secs);
      std::fflush(stdout);
    }
    std::printf("test accuracy: %.4f\n", test_acc);
    if (test_acc < min_accuracy) {  // lets tests and scripts fail on a model that did not learn
      std::fprintf(stderr, "test accuracy %.4f is below --min-accuracy %.4f\n", test_acc, min_accuracy);
      return 3;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
