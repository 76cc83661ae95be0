// batch_norm / layer_norm through the C++ API: values on small hand-checked inputs, the
// running-statistics update, gradients against the closed forms, and bad-input exceptions.
#include <gtest/gtest.h>

#include <cmath>

#include "core/autograd.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/norm.h"
#include "core/ops/reduce.h"
#include "core/ops/view.h"

using namespace bigmodel;

namespace {
double at(const Tensor& t, int64_t i) { return reshape(contiguous(to(t, DType::Float64)), {-1}).data<double>()[i]; }
}  // namespace

TEST(Norm, BatchNormTrainingNormalisesPerChannelAndUpdatesRunningStats) {
  // [N=2, C=2, 2]: channel 0 holds {1, 2, 3, 4}, channel 1 holds {10, 10, 20, 20}.
  Tensor x = from_vector<double>({1, 2, 10, 10, 3, 4, 20, 20}, {2, 2, 2});
  Tensor rm = zeros({2}, DType::Float64), rv = ones({2}, DType::Float64);
  Tensor w = from_vector<double>({2, 1}, {2}), b = from_vector<double>({0, 5}, {2});
  Tensor y = batch_norm(x, rm, rv, w, b, true, 0.1, 0.0);
  const double s0 = std::sqrt(1.25);  // biased std of {1, 2, 3, 4}
  EXPECT_NEAR(at(y, 0), 2 * (1 - 2.5) / s0, 1e-12);
  EXPECT_NEAR(at(y, 5), 2 * (4 - 2.5) / s0, 1e-12);
  EXPECT_NEAR(at(y, 2), 5 - 1, 1e-12);   // (10 - 15) / 5 + 5
  EXPECT_NEAR(at(y, 6), 5 + 1, 1e-12);
  EXPECT_NEAR(at(rm, 0), 0.25, 1e-12);
  EXPECT_NEAR(at(rm, 1), 1.5, 1e-12);
  EXPECT_NEAR(at(rv, 0), 0.9 + 0.1 * (5.0 / 3.0), 1e-12);  // unbiased var of {1, 2, 3, 4} is 5/3
  EXPECT_NEAR(at(rv, 1), 0.9 + 0.1 * (100.0 / 3.0), 1e-12);
}

TEST(Norm, BatchNormEvalUsesRunningStats) {
  Tensor x = from_vector<float>({1, 2, 3, 4}, {2, 2});
  Tensor rm = from_vector<float>({1, 2}, {2}), rv = from_vector<float>({4, 16}, {2});
  Tensor y = batch_norm(x, rm, rv, Tensor(), Tensor(), false, 0.1, 0.0);
  EXPECT_FLOAT_EQ(static_cast<float>(at(y, 0)), 0.0f);
  EXPECT_FLOAT_EQ(static_cast<float>(at(y, 2)), 1.0f);   // (3 - 1) / 2
  EXPECT_FLOAT_EQ(static_cast<float>(at(y, 3)), 0.5f);   // (4 - 2) / 4
  EXPECT_FLOAT_EQ(static_cast<float>(at(rm, 1)), 2.0f);  // untouched in eval
}

TEST(Norm, BatchNormGradients) {
  Tensor x = from_vector<double>({0.5, -1, 2, 3, 1, 4, -2, 0.25}, {4, 2});
  x.set_requires_grad(true);
  Tensor w = from_vector<double>({1.5, -0.5}, {2});
  w.set_requires_grad(true);
  Tensor b = from_vector<double>({0.1, 0.2}, {2});
  b.set_requires_grad(true);
  Tensor c = from_vector<double>({1, 2, 3, -4, 5, 6, -7, 8}, {4, 2});
  Tensor y = batch_norm(x, Tensor(), Tensor(), w, b, true, 0.1, 1e-5);
  sum(mul(y, c)).backward();
  EXPECT_NEAR(at(b.grad(), 0), 1 + 3 + 5 - 7, 1e-12);
  EXPECT_NEAR(at(b.grad(), 1), 2 - 4 + 6 + 8, 1e-12);
  // Training: the input gradient of each channel sums to zero (shifting x changes nothing).
  EXPECT_NEAR(at(sum(x.grad(), {0}), 0), 0.0, 1e-12);
  EXPECT_NEAR(at(sum(x.grad(), {0}), 1), 0.0, 1e-12);
  // d/dw = sum(c * xhat).
  Tensor xhat = batch_norm(x.detach(), Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
  EXPECT_NEAR(at(w.grad(), 1), at(sum(mul(xhat, c), {0}), 1), 1e-12);
}

TEST(Norm, LayerNormRowsHaveZeroMeanUnitVariance) {
  Tensor x = from_vector<float>({1, 2, 3, 4, 10, 20, 30, 40}, {2, 4});
  Tensor y = layer_norm(x, {4}, Tensor(), Tensor(), 0.0);
  EXPECT_NEAR(at(sum(y, {1}), 1), 0.0, 1e-5);
  EXPECT_NEAR(at(y, 0), -1.5 / std::sqrt(1.25), 1e-6);
  EXPECT_NEAR(at(y, 7), 1.5 / std::sqrt(1.25), 1e-6);
}

TEST(Norm, BadInputsThrow) {
  Tensor x = zeros({4, 3, 2});
  EXPECT_THROW(batch_norm(x, zeros({4}), ones({4}), Tensor(), Tensor(), false, 0.1, 1e-5), ShapeError);
  EXPECT_THROW(batch_norm(x, Tensor(), Tensor(), ones({2}), Tensor(), true, 0.1, 1e-5), ShapeError);
  EXPECT_THROW(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false, 0.1, 1e-5), ValueError);
  EXPECT_THROW(batch_norm(zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5), ValueError);
  EXPECT_THROW(batch_norm(zeros({3}), Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5), ShapeError);
  EXPECT_THROW(batch_norm(zeros({2, 3}, DType::Int64), Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5),
               DTypeError);
  EXPECT_THROW(layer_norm(x, {3}, Tensor(), Tensor(), 1e-5), ShapeError);
  EXPECT_THROW(layer_norm(x, {2}, ones({3}), Tensor(), 1e-5), ShapeError);
}
