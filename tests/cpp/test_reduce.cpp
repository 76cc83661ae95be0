// Reductions, softmax and losses through the C++ API: values on small hand-checked inputs,
// gradients, and the exception types front ends throw.
#include <gtest/gtest.h>

#include <cmath>

#include "core/autograd.h"
#include "core/ops/creation.h"
#include "core/ops/loss.h"
#include "core/ops/reduce.h"
#include "core/ops/softmax.h"
#include "core/ops/view.h"

using namespace bigmodel;

namespace {
double at(const Tensor& t, int64_t i) { return reshape(contiguous(to(t, DType::Float64)), {-1}).data<double>()[i]; }
}  // namespace

TEST(Reduce, MaxMinArgOverDims) {
  Tensor x = from_vector<float>({1, 5, 3, 7, 2, 7}, {2, 3});
  auto [v, i] = max(x, 1);
  EXPECT_EQ(v.sizes(), (Shape{2}));
  EXPECT_EQ(at(v, 0), 5);
  EXPECT_EQ(at(v, 1), 7);
  EXPECT_EQ(i.dtype(), DType::Int64);
  EXPECT_EQ(i.data<int64_t>()[1], 0);  // first of the tied 7s
  EXPECT_EQ(argmax(x).item().to_int(), 3);
  EXPECT_EQ(argmin(transpose(x, 0, 1), 0, true).sizes(), (Shape{1, 2}));
  EXPECT_EQ(at(amin(x, {0, 1}), 0), 1);
  EXPECT_EQ(at(min(x), 0), 1);
  EXPECT_THROW(max(zeros({0, 2})), Error);
  EXPECT_THROW(max(zeros({0, 2}), 0), IndexError);
  EXPECT_THROW(sum(x, {2}), IndexError);
}

TEST(Reduce, StatsAndNorms) {
  Tensor x = from_vector<double>({1, 2, 3, 4}, {2, 2});
  EXPECT_DOUBLE_EQ(at(var(x), 0), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(at(var(x, {1}, 0.0), 1), 0.25);
  EXPECT_DOUBLE_EQ(at(std_dev(x, {0}), 0), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(at(norm(x), 0), std::sqrt(30.0));
  EXPECT_DOUBLE_EQ(at(norm(x, 1.0, {1}), 1), 7.0);
  EXPECT_DOUBLE_EQ(at(norm(x, INFINITY), 0), 4.0);
  EXPECT_NEAR(at(logsumexp(x, {1}), 0), std::log(std::exp(1.0) + std::exp(2.0)), 1e-12);
  EXPECT_EQ(prod(from_vector<int32_t>({2, 3, 4}, {3})).item().to_int(), 24);
  EXPECT_EQ(prod(from_vector<int32_t>({2, 3, 4}, {3})).dtype(), DType::Int64);
  EXPECT_TRUE(all(from_vector<float>({1, 2}, {2})).item().to<bool>());
  EXPECT_FALSE(any(zeros({3})).item().to<bool>());
  EXPECT_THROW(mean(from_vector<int64_t>({1, 2}, {2})), DTypeError);
}

TEST(Reduce, ProdGradientWithZero) {
  Tensor x = from_vector<double>({2, 0, 5}, {3});
  x.set_requires_grad(true);
  prod(x).backward();
  EXPECT_DOUBLE_EQ(at(x.grad(), 0), 0);
  EXPECT_DOUBLE_EQ(at(x.grad(), 1), 10);
  EXPECT_DOUBLE_EQ(at(x.grad(), 2), 0);
}

TEST(Softmax, RowsSumToOneAndGradientIsZeroForSum) {
  Tensor x = from_vector<double>({1, 2, 3, -1, 0, 1000}, {2, 3});
  x.set_requires_grad(true);
  Tensor y = softmax(x, 1);
  EXPECT_NEAR(at(y, 0) + at(y, 1) + at(y, 2), 1.0, 1e-12);
  EXPECT_NEAR(at(y, 5), 1.0, 1e-12);
  sum(y).backward();  // each row sums to 1, so the gradient vanishes
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(at(x.grad(), i), 0.0, 1e-12);
  Tensor lp = log_softmax(x, 1);  // row 1 is dominated by 1000: log-probs -1001, -1000, 0
  EXPECT_NEAR(at(lp, 3), -1001.0, 1e-9);
  EXPECT_NEAR(at(lp, 5), 0.0, 1e-12);
  EXPECT_NEAR(at(lp, 0), 1 - std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)), 1e-12);
  EXPECT_THROW(softmax(x, 2), IndexError);
}

TEST(Loss, CrossEntropyIgnoresAndWeights) {
  Tensor logits = from_vector<double>({0, 0, 0, 1, 2, 3}, {2, 3});
  Tensor target = from_vector<int64_t>({1, -100}, {2});
  EXPECT_NEAR(at(cross_entropy(logits, target), 0), std::log(3.0), 1e-12);
  Tensor weight = from_vector<double>({1, 2, 3}, {3});
  Tensor t2 = from_vector<int64_t>({1, 2}, {2});
  const double l0 = std::log(3.0), l1 = std::log(std::exp(-2.0) + std::exp(-1.0) + 1.0);
  EXPECT_NEAR(at(cross_entropy(logits, t2, weight), 0), (2 * l0 + 3 * l1) / 5, 1e-12);
  EXPECT_THROW(cross_entropy(logits, from_vector<int64_t>({1, 3}, {2})), IndexError);
  EXPECT_THROW(cross_entropy(logits, from_vector<int64_t>({1}, {1})), ValueError);
  EXPECT_THROW(cross_entropy(logits, from_vector<float>({1, 2}, {2})), DTypeError);
  EXPECT_THROW(mse_loss(logits, zeros({4}, DType::Float64)), ValueError);
}
