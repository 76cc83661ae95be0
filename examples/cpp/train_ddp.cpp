// Data-parallel training with the C++ API alone: an MLP on Fashion-MNIST over MPI with
// bigmodel::distributed (the C++ counterpart of `train_cnn.py --ddp`):
//   mpirun -np 2 build/examples/cpp/train_ddp [--epochs 2] [--limit N] [--test-limit N]
//                                             [--batch-size 32] [--lr 0.05] [--seed 0] [--root DIR]
// At start rank 0's parameters are broadcast; each rank trains on its own contiguous share
// of the first --limit images (shuffled by seed + rank); after every backward the gradients
// are flattened into one buffer, all-reduced (average) in one collective and copied back,
// so every rank takes the same SGD step. Rank 0 prints the epochs and the test accuracy;
// every rank prints a checksum of its final parameters (equal on all ranks).
#include "core/bigmodel.h"  // <bigmodel/bigmodel.h> when built against an installed bigmodel

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

using namespace bigmodel;
namespace dist = bigmodel::distributed;

namespace {

constexpr float kPixelMean = 0.2860f, kPixelStd = 0.3530f;  // of the training images in [0, 1]

Tensor standardise(const Tensor& images) { return div(sub(images, Scalar(kPixelMean)), Scalar(kPixelStd)); }

struct MLP : nn::Module {
  std::shared_ptr<nn::Linear> fc1 = register_module("fc1", std::make_shared<nn::Linear>(28 * 28, 128));
  std::shared_ptr<nn::Linear> fc2 = register_module("fc2", std::make_shared<nn::Linear>(128, 10));

  // fc1 and its ReLU run as one linear_act: the activation in the GEMM's epilogue.
  Tensor forward(const Tensor& input) override {
    return (*fc2)(linear_act(flatten(input, 1), fc1->weight, fc1->bias, "relu"));
  }
  std::string type_name() const override { return "MLP"; }
};

// Averages the parameters' gradients over the ranks: one all_reduce on a flat buffer.
void all_reduce_gradients(dist::ProcessGroup& group, const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const Tensor& p : params) grads.push_back(reshape(p.grad().defined() ? p.grad() : zeros_like(p), {-1}));
  Tensor flat = cat(grads, 0);
  group.all_reduce(flat, dist::ReduceOp::Avg);
  int64_t offset = 0;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    const int64_t n = p.numel();
    if (g.defined()) copy_(g, reshape(narrow(flat, 0, offset, n), p.sizes()));
    offset += n;
  }
}

double accuracy(MLP& model, data::DataLoader& loader) {
  model.eval();
  NoGradGuard no_grad;
  int64_t correct = 0, n = 0;
  for (const data::Example& batch : loader) {
    correct += sum(eq(argmax(model(batch.data), 1), batch.target)).item().to_int();
    n += batch.target.size(0);
  }
  model.train();
  return n ? static_cast<double>(correct) / static_cast<double>(n) : 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t epochs = 2, limit = 6000, test_limit = 2000, batch = 32, seed = 0;
  double lr = 0.05;
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
    else if (a == "--test-limit") test_limit = std::stoll(next());
    else if (a == "--batch-size") batch = std::stoll(next());
    else if (a == "--lr") lr = std::stod(next());
    else if (a == "--seed") seed = std::stoll(next());
    else if (a == "--root") root = next();
    else {
      std::fprintf(stderr, "usage: %s [--epochs N] [--limit N] [--test-limit N] [--batch-size N] [--lr X] "
                   "[--seed N] [--root DIR]\n", argv[0]);
      return 2;
    }
  }
  if (epochs < 1 || batch < 1 || limit < 1) {
    std::fprintf(stderr, "--epochs, --batch-size and --limit must be positive\n");
    return 2;
  }
  try {
    dist::ProcessGroupPtr group = dist::init_process_group("mpi");
    const int rank = group->rank(), world = group->size();
    manual_seed(static_cast<uint64_t>(seed + rank));  // rank 0's initial weights win (broadcast below)

    std::shared_ptr<data::TensorDataset> train_data, test_data;
    int64_t share = 0;
    {
      data::FashionMNIST train_set(root, /*train=*/true), test_set(root, /*train=*/false);
      // Every rank gets the same number of images, so all take the same number of steps
      // (each step is a collective).
      share = std::min(train_set.size(), limit) / world;
      if (share < 1) throw std::runtime_error("--limit is smaller than the number of ranks");
      train_data = std::make_shared<data::TensorDataset>(
          standardise(narrow(train_set.images(), 0, rank * share, share)),
          narrow(train_set.targets(), 0, rank * share, share));
      const int64_t nt = std::min(test_set.size(), std::max<int64_t>(test_limit, 1));
      test_data = std::make_shared<data::TensorDataset>(standardise(narrow(test_set.images(), 0, 0, nt)),
                                                        narrow(test_set.targets(), 0, 0, nt));
    }
    data::DataLoader train_loader(train_data, {batch, /*shuffle=*/true, /*drop_last=*/false,
                                               static_cast<uint64_t>(seed + rank)});
    data::DataLoader test_loader(test_data, {/*batch_size=*/1000});

    MLP model;
    std::vector<Tensor> params = model.parameters();
    {
      NoGradGuard no_grad;
      for (Tensor& p : params) group->broadcast(p, 0);
    }
    optim::SGD opt(params, {/*lr=*/lr, /*momentum=*/0.9});
    if (rank == 0) {
      std::printf("MLP (C++, data-parallel over %d ranks); %lld training images per rank, batch %lld per rank, "
                  "%lld epochs, lr %g\n", world, static_cast<long long>(share), static_cast<long long>(batch),
                  static_cast<long long>(epochs), lr);
      std::fflush(stdout);
    }
    for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
      double loss_sum = 0.0;
      int64_t seen = 0;
      for (const data::Example& b : train_loader) {
        Tensor loss = cross_entropy(model(b.data), b.target);
        opt.zero_grad();
        loss.backward();
        all_reduce_gradients(*group, params);
        opt.step();
        const double value = loss.item().to_double();
        if (!std::isfinite(value)) {
          std::fprintf(stderr, "rank %d: training diverged; lower --lr\n", rank);
          return 1;
        }
        loss_sum += value * static_cast<double>(b.target.size(0));
        seen += b.target.size(0);
      }
      // The epoch's mean training loss over all ranks' images.
      Tensor stats = from_vector(std::vector<double>{loss_sum, static_cast<double>(seen)}, {2});
      group->all_reduce(stats, dist::ReduceOp::Sum);
      if (rank == 0) {
        const double acc = accuracy(model, test_loader);
        std::printf("epoch %lld: train loss %.4f  test acc %.4f\n", static_cast<long long>(epoch),
                    select(stats, 0, 0).item().to_double() / select(stats, 0, 1).item().to_double(), acc);
        std::fflush(stdout);
      }
    }
    double checksum = 0.0;
    {
      NoGradGuard no_grad;
      for (const Tensor& p : params)  // squares too, so that offsetting changes cannot hide
        checksum += sum(to(p, DType::Float64)).item().to_double() + sum(mul(p, p)).item().to_double();
    }
    group->barrier();
    std::printf("rank %d param checksum %.17g\n", rank, checksum);
    std::fflush(stdout);
    dist::destroy_process_group();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
