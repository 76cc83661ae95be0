// nn::Sequential runs Linear + ReLU / GELU pairs as one linear_act (nn/layers.cpp): outputs and
// gradients (input and every parameter) must equal the unfused form, i.e. each child's forward
// called in turn; subclasses and non-adjacent pairs are not fused; errors still name the layer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/reduce.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"
#include "core/random.h"
#include "nn/layers.h"

using namespace bigmodel;

namespace {

std::vector<double> values(const Tensor& t) {
  Tensor c = reshape(contiguous(to(t.detach(), DType::Float64)), {-1});
  const double* p = c.data<double>();
  return std::vector<double>(p, p + c.numel());
}

// Elementwise |a - e| <= atol + rtol * |e| (the blueprint's tolerance form).
void expect_close(const Tensor& actual, const Tensor& expected, double atol, double rtol, const std::string& what) {
  ASSERT_TRUE(actual.defined() && expected.defined()) << what;
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const auto a = values(actual), e = values(expected);
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - e[i]) - (atol + rtol * std::abs(e[i])));
  EXPECT_LE(worst, 0.0) << what;
}

// The form before fusion: every child's own forward, in order.
Tensor unfused_forward(const nn::Sequential& seq, const Tensor& input) {
  Tensor x = input;
  for (const auto& child : seq.children()) x = (*child)(x);
  return x;
}

struct Run {
  Tensor out, grad_input;
  std::vector<Tensor> grad_params;
};

// Forward through `fn`, backward of a weighted sum (so every output element's gradient differs).
template <class Fn>
Run run(nn::Sequential& seq, const Tensor& input_data, const Tensor& weights, Fn fn) {
  seq.zero_grad();
  Tensor x = input_data.detach();  // a fresh leaf with the same strides (non-contiguous stays so)
  x.requires_grad_(true);
  Run r;
  r.out = fn(seq, x);
  sum(mul(r.out, weights)).backward();
  r.grad_input = x.grad();
  for (const Tensor& p : seq.parameters()) r.grad_params.push_back(p.grad());
  return r;
}

void expect_fused_matches_unfused(nn::Sequential& seq, const Tensor& input, double atol, double rtol) {
  Tensor probe = [&] {
    NoGradGuard no_grad;
    return seq.forward(input);
  }();
  Tensor weights = randn(probe.sizes(), probe.dtype());
  Run fused = run(seq, input, weights, [](nn::Sequential& s, const Tensor& x) { return s.forward(x); });
  Run plain = run(seq, input, weights, [](nn::Sequential& s, const Tensor& x) { return unfused_forward(s, x); });
  expect_close(fused.out, plain.out, atol, rtol, "output");
  expect_close(fused.grad_input, plain.grad_input, atol, rtol, "input grad");
  ASSERT_EQ(fused.grad_params.size(), plain.grad_params.size());
  for (size_t i = 0; i < plain.grad_params.size(); ++i)
    expect_close(fused.grad_params[i], plain.grad_params[i], atol, rtol, "parameter grad " + std::to_string(i));
}

std::shared_ptr<nn::Sequential> mlp(DType dtype, bool bias) {
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(7, 13, bias, dtype), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(13, 9, bias, dtype), std::make_shared<nn::GELU>("none"),
      std::make_shared<nn::Linear>(9, 6, bias, dtype), std::make_shared<nn::GELU>("tanh"),
      std::make_shared<nn::Linear>(6, 5, bias, dtype)});
}

// A Linear whose forward doubles its output: Sequential must call it, not fuse its weights.
class DoublingLinear : public nn::Linear {
 public:
  using nn::Linear::Linear;
  Tensor forward(const Tensor& input) override { return mul(nn::Linear::forward(input), Scalar(2.0)); }
};

class Offset : public nn::ReLU {  // a ReLU subclass with its own forward
 public:
  Tensor forward(const Tensor& input) override { return relu(add(input, Scalar(0.5))); }
};

}  // namespace

TEST(NnFusedCpp, MlpFloat32MatchesUnfused) {
  manual_seed(11);
  auto seq = mlp(DType::Float32, true);
  expect_fused_matches_unfused(*seq, randn({5, 7}, DType::Float32), 1e-5, 1e-4);
}

TEST(NnFusedCpp, MlpFloat64NoBiasMatchesUnfused) {
  manual_seed(12);
  auto seq = mlp(DType::Float64, false);
  expect_fused_matches_unfused(*seq, randn({4, 7}, DType::Float64), 1e-12, 1e-10);
}

TEST(NnFusedCpp, BatchedAndNonContiguousInputs) {
  manual_seed(13);
  auto seq = mlp(DType::Float32, true);
  expect_fused_matches_unfused(*seq, randn({2, 3, 7}, DType::Float32), 1e-5, 1e-4);  // leading dims fold
  expect_fused_matches_unfused(*seq, transpose(randn({7, 6}, DType::Float32), 0, 1), 1e-5, 1e-4);
  expect_fused_matches_unfused(*seq, slice(randn({9, 14}, DType::Float32), 1, 0, 14, 2), 1e-5, 1e-4);
  expect_fused_matches_unfused(*seq, randn({7}, DType::Float32), 1e-5, 1e-4);  // one row
}

TEST(NnFusedCpp, PairIsOneLinearNode) {
  // The fused pair's output comes straight from linear_act's record ("linear"), not from an
  // activation applied afterwards: proof the fused path ran.
  manual_seed(14);
  for (auto act : std::vector<std::shared_ptr<nn::Module>>{std::make_shared<nn::ReLU>(), std::make_shared<nn::GELU>(),
                                                            std::make_shared<nn::GELU>("tanh")}) {
    nn::Sequential seq{std::make_shared<nn::Linear>(4, 3), act};
    Tensor y = seq(randn({2, 4}));
    ASSERT_NE(y.grad_fn(), nullptr);
    EXPECT_EQ(y.grad_fn()->name(), "linear") << act->type_name();
    Tensor y_plain = unfused_forward(seq, randn({2, 4}));
    EXPECT_NE(y_plain.grad_fn()->name(), "linear");
  }
}

TEST(NnFusedCpp, SubclassesAndSeparatedPairsAreNotFused) {
  manual_seed(15);
  auto lin = std::make_shared<DoublingLinear>(5, 4);
  nn::Sequential doubled{lin, std::make_shared<nn::ReLU>()};
  Tensor x = randn({3, 5});
  expect_close(doubled(x), relu(mul(linear(x, lin->weight, lin->bias), Scalar(2.0))), 1e-6, 1e-5, "doubling linear");

  auto lin2 = std::make_shared<nn::Linear>(5, 4);
  nn::Sequential offset{lin2, std::make_shared<Offset>()};
  expect_close(offset(x), relu(add(linear(x, lin2->weight, lin2->bias), Scalar(0.5))), 1e-6, 1e-5, "relu subclass");

  // Linear, Dropout (eval: identity), ReLU: still equal, with the activation as its own node.
  nn::Sequential apart{lin2, std::make_shared<nn::Dropout>(0.3), std::make_shared<nn::ReLU>()};
  apart.eval();
  Tensor y = apart(x);
  expect_close(y, relu(linear(x, lin2->weight, lin2->bias)), 1e-6, 1e-5, "separated pair");
  EXPECT_NE(y.grad_fn()->name(), "linear");
  // Linear last (no activation after it) runs alone.
  expect_fused_matches_unfused(*std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
                                   std::make_shared<nn::ReLU>(), lin2}),
                               x, 1e-6, 1e-5);
}

TEST(NnFusedCpp, BadInputNamesTheLinearLayer) {
  auto seq = mlp(DType::Float32, true);
  try {
    (*seq)(randn({2, 8}));
    FAIL() << "expected a ShapeError";
  } catch (const ShapeError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("[Linear]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2, 8]"), std::string::npos) << msg;
  }
  try {
    (*seq)(randn({2, 7}, DType::Float64));  // float32 weights
    FAIL() << "expected a DTypeError";
  } catch (const DTypeError& e) {
    EXPECT_NE(std::string(e.what()).find("[Linear]"), std::string::npos) << e.what();
  }
}
