// The C++ nn and optim layers (nn/module.h, nn/layers.h, optim/sgd.h): registration and
// dotted names, layer forwards against the ops, PyTorch's init bounds, state_dict round
// trips and load errors, SGD's update rule against a hand computation, and a tiny training run.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops/compare.h"
#include "core/ops/conv.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/loss.h"
#include "core/ops/reduce.h"
#include "core/ops/view.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "nn/layers.h"
#include "nn/module.h"
#include "optim/sgd.h"

using namespace bigmodel;

namespace {

std::vector<double> values(const Tensor& t) {
  Tensor c = reshape(contiguous(to(t.detach(), DType::Float64)), {-1});
  const double* p = c.data<double>();
  return std::vector<double>(p, p + c.numel());
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  auto va = values(a), vb = values(b);
  EXPECT_EQ(va.size(), vb.size());
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

std::vector<std::string> names(const nn::StateDict& sd) {
  std::vector<std::string> out;
  for (const auto& kv : sd) out.push_back(kv.first);
  return out;
}

// A small model with nesting: a Sequential of conv + batch norm, then a Linear.
struct Net : nn::Module {
  std::shared_ptr<nn::Sequential> body = register_module(
      "body", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
                  std::make_shared<nn::Conv2d>(1, 2, 3), std::make_shared<nn::BatchNorm2d>(2),
                  std::make_shared<nn::ReLU>(), std::make_shared<nn::Flatten>()}));
  std::shared_ptr<nn::Linear> fc = register_module("fc", std::make_shared<nn::Linear>(2 * 2 * 2, 3));
  Tensor forward(const Tensor& x) override { return (*fc)((*body)(x)); }
  std::string type_name() const override { return "Net"; }
};

template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const ValueError& e) {
    return e.what();
  }
  return "<no ValueError>";
}

}  // namespace

TEST(NnModule, RegistrationAndDottedNames) {
  manual_seed(1);
  Net net;
  EXPECT_EQ(names(net.named_parameters()),
            (std::vector<std::string>{"body.0.weight", "body.0.bias", "body.1.weight", "body.1.bias", "fc.weight",
                                      "fc.bias"}));
  EXPECT_EQ(net.parameters().size(), 6u);
  EXPECT_EQ(net.parameters(/*recurse=*/false).size(), 0u);
  EXPECT_EQ(names(net.state_dict()),
            (std::vector<std::string>{"body.0.weight", "body.0.bias", "body.1.weight", "body.1.bias",
                                      "body.1.running_mean", "body.1.running_var", "body.1.num_batches_tracked",
                                      "fc.weight", "fc.bias"}));
  EXPECT_EQ(names(net.named_buffers()), (std::vector<std::string>{"body.1.running_mean", "body.1.running_var",
                                                                   "body.1.num_batches_tracked"}));
  ASSERT_EQ(net.children().size(), 2u);
  EXPECT_EQ(net.named_children()[1].first, "fc");
  for (const Tensor& p : net.parameters()) EXPECT_TRUE(p.requires_grad());
  // The member handle and the registered tensor are one tensor.
  EXPECT_TRUE(net.fc->weight.is_same(net.named_parameters()[4].second));

  // Names: no dots, no empties, no duplicates across kinds.
  nn::Module m;
  m.register_parameter("w", zeros({2}));
  EXPECT_THROW(m.register_parameter("w", zeros({2})), ValueError);
  EXPECT_THROW(m.register_buffer("w", zeros({2})), ValueError);
  EXPECT_THROW(m.register_module("w", std::make_shared<nn::ReLU>()), ValueError);
  EXPECT_THROW(m.register_parameter("a.b", zeros({2})), ValueError);
  EXPECT_THROW(m.register_parameter("", zeros({2})), ValueError);
  EXPECT_THROW(m.register_parameter("i", zeros({2}, DType::Int64)), DTypeError);
  EXPECT_THROW(m.forward(zeros({2})), NotImplementedError);
  // An absent (undefined) parameter is skipped, as Python's None; non-persistent buffers
  // are not saved.
  m.register_parameter("none", Tensor());
  m.register_buffer("scratch", ones({3}), /*persistent=*/false);
  EXPECT_EQ(names(m.named_parameters()), (std::vector<std::string>{"w"}));
  EXPECT_EQ(names(m.state_dict()), (std::vector<std::string>{"w"}));
  EXPECT_EQ(m.named_buffers().size(), 1u);
}

// Module::to converts in place: the layer's members and an optimizer's list keep seeing the
// converted tensors; integer buffers keep their dtype; a stale grad is dropped.
TEST(NnModule, ToConvertsParametersAndBuffersInPlace) {
  manual_seed(0);
  nn::Sequential seq;
  auto fc = std::make_shared<nn::Linear>(3, 2);
  auto bn = std::make_shared<nn::BatchNorm2d>(2);
  seq.push_back(fc);
  seq.push_back(bn);
  const std::vector<Tensor> held = seq.parameters();  // as an optimizer holds them
  const Tensor w_before = contiguous(to(fc->weight.detach(), DType::Float64));
  fc->weight.set_grad(ones({2, 3}));
  seq.to(DType::Float64);
  EXPECT_EQ(fc->weight.dtype(), DType::Float64);
  EXPECT_EQ(held[0].dtype(), DType::Float64);  // same handle
  EXPECT_TRUE(held[0].requires_grad() && held[0].is_leaf());
  EXPECT_FALSE(held[0].grad().defined());  // a float32 grad no longer fits
  EXPECT_EQ(bn->running_mean.dtype(), DType::Float64);
  EXPECT_EQ(bn->num_batches_tracked.dtype(), DType::Int64);
  const Tensor w = contiguous(fc->weight.detach());
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(w.data<double>()[i], w_before.data<double>()[i]);
  // Forward and backward work on the converted module.
  Tensor y = (*fc)(ones({4, 3}, DType::Float64));
  sum(y).backward();
  ASSERT_TRUE(held[0].grad().defined());
  EXPECT_EQ(held[0].grad().dtype(), DType::Float64);
  seq.to(Device(), DType::Float32);  // the device overload (CPU to CPU)
  EXPECT_EQ(fc->weight.dtype(), DType::Float32);
  try {
    seq.to(DType::Int32);
    ADD_FAILURE() << "Module.to(Int32) did not raise";
  } catch (const DTypeError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("[Module.to]", 0), 0u) << e.what();
  }
  EXPECT_EQ(fc->weight.dtype(), DType::Float32);  // nothing converted by the failed call
}

TEST(NnModule, SharedParameterAppearsOnceAndModesPropagate) {
  auto a = std::make_shared<nn::Linear>(3, 3);
  nn::Sequential seq{a, std::make_shared<nn::Dropout>(0.5), a};
  EXPECT_EQ(names(seq.named_parameters()), (std::vector<std::string>{"0.weight", "0.bias"}));
  EXPECT_EQ(seq.state_dict().size(), 4u);  // saved under every name, as in PyTorch
  EXPECT_TRUE(seq.is_training());
  seq.eval();
  for (const auto& c : seq.children()) EXPECT_FALSE(c->is_training());
  seq.train();
  for (const auto& c : seq.children()) EXPECT_TRUE(c->is_training());
}

TEST(NnLayers, LinearAndConvMatchTheOps) {
  manual_seed(2);
  nn::Linear fc(5, 4);
  Tensor x = randn({3, 5});
  Tensor expect = add(matmul(x, transpose(fc.weight, 0, 1)), fc.bias);
  EXPECT_LT(max_abs_diff(fc(x), expect), 1e-5);
  nn::Linear nobias(5, 4, /*bias=*/false);
  EXPECT_FALSE(nobias.bias.defined());
  EXPECT_EQ(nobias.parameters().size(), 1u);
  EXPECT_LT(max_abs_diff(nobias(x), matmul(x, transpose(nobias.weight, 0, 1))), 1e-5);

  nn::Conv2d conv(2, 6, {3, 2}, /*stride=*/{2, 1}, /*padding=*/1, /*dilation=*/1, /*groups=*/2);
  EXPECT_EQ(conv.weight.sizes(), (Shape{6, 1, 3, 2}));
  Tensor img = randn({2, 2, 7, 6});
  Tensor out = conv(img);
  EXPECT_EQ(out.sizes(), (Shape{2, 6, 4, 7}));
  EXPECT_LT(max_abs_diff(out, conv2d(img, conv.weight, conv.bias, {2, 1}, {1, 1}, {1, 1}, 2)), 1e-5);
  EXPECT_THROW(nn::Conv2d(3, 4, 3, 1, 0, 1, /*groups=*/2), ValueError);

  nn::MaxPool2d pool(2);
  Tensor p = pool(from_vector<float>({1, 5, 2, 0, 3, 4, 9, 8, 0, 1, 2, 3, 7, 6, 5, 4}, {1, 1, 4, 4}));
  EXPECT_EQ(values(p), (std::vector<double>{5, 9, 7, 5}));
  nn::Flatten flat;
  EXPECT_EQ(flat(zeros({2, 3, 4})).sizes(), (Shape{2, 12}));
}

TEST(NnLayers, InitBoundsAreTorchDefaults) {
  manual_seed(3);
  nn::Linear fc(50, 40);
  nn::Conv2d conv(3, 16, 3);
  auto check = [](const Tensor& t, double bound) {
    auto v = values(t);
    double lo = 1e9, hi = -1e9;
    for (double e : v) lo = std::min(lo, e), hi = std::max(hi, e);
    EXPECT_LE(hi, bound);
    EXPECT_GE(lo, -bound);
    // Spread over the whole range, not a constant.
    EXPECT_GT(hi, 0.7 * bound);
    EXPECT_LT(lo, -0.7 * bound);
  };
  check(fc.weight, 1 / std::sqrt(50.0));
  check(fc.bias, 1 / std::sqrt(50.0));
  check(conv.weight, 1 / std::sqrt(27.0));
  check(conv.bias, 1 / std::sqrt(27.0));
  nn::BatchNorm2d bn(4);
  EXPECT_EQ(values(bn.weight), std::vector<double>(4, 1.0));
  EXPECT_EQ(values(bn.running_var), std::vector<double>(4, 1.0));
  EXPECT_EQ(values(bn.bias), std::vector<double>(4, 0.0));
  // Initialisation draws from the default generator: the same seed, the same weights.
  manual_seed(3);
  nn::Linear again(50, 40);
  EXPECT_EQ(max_abs_diff(again.weight, fc.weight), 0.0);
}

TEST(NnLayers, DropoutAndBatchNormModes) {
  manual_seed(4);
  nn::Dropout drop(0.25);
  Tensor x = ones({4000});
  auto v = values(drop(x));
  int zeros_seen = 0;
  for (double e : v) {
    if (e == 0.0) ++zeros_seen;
    else EXPECT_NEAR(e, 1 / 0.75, 1e-6);
  }
  EXPECT_NEAR(zeros_seen / 4000.0, 0.25, 0.03);
  drop.eval();
  EXPECT_TRUE(drop(x).is_same(x));
  EXPECT_THROW(nn::Dropout(1.5), ValueError);

  nn::BatchNorm2d bn(2);
  Tensor in = add(mul(randn({8, 2, 3, 3}), Scalar(2.0)), Scalar(1.0));
  Tensor out = bn(in);
  EXPECT_LT(std::abs(values(mean(out))[0]), 1e-5);   // normalised with the batch statistics
  EXPECT_EQ(bn.num_batches_tracked.item().to_int(), 1);
  EXPECT_GT(std::abs(values(bn.running_mean)[0]), 0.01);  // moved towards the batch mean (~1)
  bn.eval();
  Tensor before = clone(bn.running_mean);
  Tensor y = bn(in);
  EXPECT_EQ(max_abs_diff(before, bn.running_mean), 0.0);
  EXPECT_EQ(bn.num_batches_tracked.item().to_int(), 1);
  EXPECT_GT(max_abs_diff(y, out), 0.1);  // running statistics differ from the batch's
  EXPECT_THROW(bn(zeros({2, 2})), ShapeError);
}

TEST(NnModule, StateDictRoundTripAndLoadErrors) {
  manual_seed(5);
  Net a;
  a(randn({4, 1, 4, 4}));  // moves a's running statistics
  manual_seed(6);
  Net b;
  Tensor b_fc_weight = b.fc->weight;
  EXPECT_GT(max_abs_diff(a.fc->weight, b.fc->weight), 0.0);
  // Through safetensors bytes, as a file would carry it.
  auto contents = safetensors::deserialize(safetensors::serialize(a.state_dict()));
  auto result = b.load_state_dict(contents.tensors);
  EXPECT_TRUE(result.missing_keys.empty() && result.unexpected_keys.empty());
  auto sa = a.state_dict(), sb = b.state_dict();
  ASSERT_EQ(names(sa), names(sb));
  for (size_t i = 0; i < sa.size(); ++i) EXPECT_EQ(max_abs_diff(sa[i].second, sb[i].second), 0.0) << sa[i].first;
  EXPECT_TRUE(b.fc->weight.is_same(b_fc_weight));  // copied in place: optimizers keep their handles
  Tensor x = randn({2, 1, 4, 4});
  a.eval();
  b.eval();
  EXPECT_EQ(max_abs_diff(a(x), b(x)), 0.0);

  manual_seed(7);
  Net c;
  Tensor c_before = clone(c.fc->weight);
  nn::StateDict missing(sa.begin(), sa.end() - 1);  // no fc.bias
  std::string msg = error_of([&] { c.load_state_dict(missing); });
  EXPECT_NE(msg.find("[load_state_dict]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Missing key(s) in state_dict: \"fc.bias\""), std::string::npos) << msg;
  EXPECT_EQ(max_abs_diff(c.fc->weight, c_before), 0.0);  // nothing copied by a failed load

  nn::StateDict extra = sa;
  extra.emplace_back("fc.scale", ones({3}));
  msg = error_of([&] { c.load_state_dict(extra); });
  EXPECT_NE(msg.find("Unexpected key(s) in state_dict: \"fc.scale\""), std::string::npos) << msg;

  nn::StateDict bad = sa;
  bad[7].second = zeros({3, 7});  // fc.weight is [3, 8]
  msg = error_of([&] { c.load_state_dict(bad); });
  EXPECT_NE(msg.find("size mismatch for fc.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[3, 7]"), std::string::npos) << msg;
  EXPECT_EQ(max_abs_diff(c.fc->weight, c_before), 0.0);

  // Non-strict: reports what it skipped and loads the rest.
  auto r = c.load_state_dict(nn::StateDict(extra.begin() + 7, extra.end()), /*strict=*/false);
  EXPECT_EQ(r.unexpected_keys, (std::vector<std::string>{"fc.scale"}));
  EXPECT_EQ(r.missing_keys.size(), 7u);
  EXPECT_EQ(max_abs_diff(c.fc->weight, a.fc->weight), 0.0);
}

TEST(Optim, SgdMatchesHandComputedNesterovWithWeightDecay) {
  const double lr = 0.1, mom = 0.9, wd = 0.01;
  Tensor p = from_vector<double>({1.0, -2.0, 0.5}, {3});
  p.set_requires_grad(true);
  optim::SGD opt({p}, {lr, mom, 0.0, wd, /*nesterov=*/true});
  const std::vector<std::vector<double>> grads{{0.5, -1.0, 2.0}, {0.1, 0.3, -0.7}, {-0.4, 0.2, 0.9}};
  std::vector<double> ref{1.0, -2.0, 0.5}, buf(3, 0.0);
  for (int step = 0; step < 3; ++step) {
    p.set_grad(from_vector<double>(grads[step], {3}));
    opt.step();
    for (int i = 0; i < 3; ++i) {
      double g = grads[step][i] + wd * ref[i];
      buf[i] = step == 0 ? g : mom * buf[i] + g;
      ref[i] -= lr * (g + mom * buf[i]);
    }
    auto got = values(p);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(got[i], ref[i], 1e-12) << "step " << step << " element " << i;
    auto b = values(opt.momentum_buffer(0));
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(b[i], buf[i], 1e-12);
  }
  EXPECT_TRUE(p.is_leaf());
  // Plain momentum with dampening, and maximize.
  Tensor q = from_vector<double>({1.0}, {1});
  q.set_requires_grad(true);
  optim::SGD plain({q}, {0.5, 0.9, 0.5, 0.0, false, /*maximize=*/true});
  q.set_grad(from_vector<double>({2.0}, {1}));
  plain.step();  // buf = -2, q = 1 + 1 = 2
  plain.step();  // buf = 0.9 * -2 + 0.5 * -2 = -2.8, q = 2 + 1.4 = 3.4
  EXPECT_NEAR(values(q)[0], 3.4, 1e-12);
  plain.zero_grad();
  EXPECT_FALSE(q.grad().defined());
  plain.step();  // no gradient: no change
  EXPECT_NEAR(values(q)[0], 3.4, 1e-12);

  EXPECT_THROW(optim::SGD({q}, {0.1, 0.0, 0.0, 0.0, /*nesterov=*/true}), ValueError);
  EXPECT_THROW(optim::SGD({q}, {-0.1}), ValueError);
  EXPECT_THROW(optim::SGD({from_vector<double>({1.0}, {1})}, {0.1}), ValueError);  // no requires_grad
}

TEST(Optim, TinyCnnTrainingLossFalls) {
  manual_seed(8);
  // Class = whether the image's left half is brighter than its right half.
  Tensor x = randn({32, 1, 6, 6});
  Tensor left = sum(narrow(x, 3, 0, 3), {1, 2, 3});
  Tensor right = sum(narrow(x, 3, 3, 3), {1, 2, 3});
  Tensor y = to(gt(left, right), DType::Int64);
  nn::Sequential model{std::make_shared<nn::Conv2d>(1, 4, 3, 1, 1), std::make_shared<nn::BatchNorm2d>(4),
                       std::make_shared<nn::ReLU>(),        std::make_shared<nn::MaxPool2d>(2),
                       std::make_shared<nn::Dropout>(0.1), std::make_shared<nn::Flatten>(),
                       std::make_shared<nn::Linear>(36, 2)};
  optim::SGD opt(model.parameters(), {0.05, 0.9});
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    Tensor loss = cross_entropy(model(x), y);
    if (step == 0) first = loss.item().to_double();
    last = loss.item().to_double();
    model.zero_grad();
    loss.backward();
    opt.step();
  }
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
  model.eval();
  NoGradGuard no_grad;
  double acc = values(mean(to(eq(argmax(model(x), 1), y), DType::Float64)))[0];
  EXPECT_GT(acc, 0.85);
}
