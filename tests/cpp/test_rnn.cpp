// The fused LSTM / GRU cell steps through the C++ API: values against the scalar formulas,
// gradients against finite differences of the forward, rnn_time_steps' backward, bad inputs.
#include <gtest/gtest.h>

#include <cmath>

#include "core/autograd.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/ops/rnn.h"
#include "core/ops/view.h"

using namespace bigmodel;

namespace {
double at(const Tensor& t, int64_t i) { return reshape(contiguous(to(t, DType::Float64)), {-1}).data<double>()[i]; }
double sig(double x) { return 1.0 / (1.0 + std::exp(-x)); }
}  // namespace

TEST(Rnn, LstmPointwiseMatchesFormula) {
  // B = 1, H = 2: gates (i0 i1 f0 f1 g0 g1 o0 o1).
  Tensor gates = from_vector<double>({0.5, -1, 2, 0.1, -0.3, 0.7, 1.2, -2}, {1, 8});
  Tensor c_prev = from_vector<double>({0.4, -1.5}, {1, 2});
  auto [h, c] = lstm_cell_pointwise(gates, c_prev);
  for (int j = 0; j < 2; ++j) {
    const double cj = sig(at(gates, 2 + j)) * at(c_prev, j) + sig(at(gates, j)) * std::tanh(at(gates, 4 + j));
    EXPECT_NEAR(at(c, j), cj, 1e-14);
    EXPECT_NEAR(at(h, j), sig(at(gates, 6 + j)) * std::tanh(cj), 1e-14);
  }
}

TEST(Rnn, GruPointwiseMatchesFormula) {
  Tensor gi = from_vector<double>({0.5, -1, 2, 0.1, -0.3, 0.7}, {1, 6});
  Tensor gh = from_vector<double>({0.2, 0.3, -0.4, 1.1, 0.9, -1.3}, {1, 6});
  Tensor hp = from_vector<double>({0.25, -0.6}, {1, 2});
  Tensor h = gru_cell_pointwise(gi, gh, hp);
  for (int j = 0; j < 2; ++j) {
    const double r = sig(at(gi, j) + at(gh, j)), z = sig(at(gi, 2 + j) + at(gh, 2 + j));
    const double n = std::tanh(at(gi, 4 + j) + r * at(gh, 4 + j));
    EXPECT_NEAR(at(h, j), (1 - z) * n + z * at(hp, j), 1e-14);
  }
}

TEST(Rnn, LstmPointwiseGradientMatchesFiniteDifference) {
  std::vector<double> gv = {0.5, -1, 2, 0.1, -0.3, 0.7, 1.2, -2};
  Tensor gates = from_vector<double>(gv, {1, 8});
  gates.set_requires_grad(true);
  Tensor c_prev = from_vector<double>({0.4, -1.5}, {1, 2});
  Tensor wh = from_vector<double>({1.0, -2.0}, {1, 2}), wc = from_vector<double>({0.5, 3.0}, {1, 2});
  auto loss = [&](const Tensor& g) {
    auto [h, c] = lstm_cell_pointwise(g, c_prev);
    return add(sum(mul(h, wh)), sum(mul(c, wc)));
  };
  loss(gates).backward();
  for (int k = 0; k < 8; ++k) {
    std::vector<double> p = gv, m = gv;
    p[k] += 1e-6;
    m[k] -= 1e-6;
    const double fd = (at(loss(from_vector<double>(p, {1, 8})), 0) - at(loss(from_vector<double>(m, {1, 8})), 0)) / 2e-6;
    EXPECT_NEAR(at(gates.grad(), k), fd, 1e-7) << "gate " << k;
  }
}

TEST(Rnn, TimeStepsBackwardStacksGradients) {
  Tensor x = from_vector<double>({1, 2, 3, 4, 5, 6}, {3, 2});
  x.set_requires_grad(true);
  std::vector<Tensor> steps = rnn_time_steps(x);
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(at(steps[2], 1), 6.0);
  add(sum(mul(steps[0], 2.0)), sum(mul(steps[2], 5.0))).backward();  // step 1 gets no gradient
  const double expected[] = {2, 2, 0, 0, 5, 5};
  for (int k = 0; k < 6; ++k) EXPECT_EQ(at(x.grad(), k), expected[k]);
}

TEST(Rnn, BadInputsThrow) {
  EXPECT_THROW(lstm_cell_pointwise(zeros({2, 7}), zeros({2, 2})), ShapeError);
  EXPECT_THROW(lstm_cell_pointwise(zeros({3, 8}), zeros({2, 2})), ShapeError);
  EXPECT_THROW(lstm_cell_pointwise(zeros({2, 8}), zeros({2, 2}, DType::Float64)), DTypeError);
  EXPECT_THROW(gru_cell_pointwise(zeros({2, 6}), zeros({2, 3}), zeros({2, 2})), ShapeError);
  EXPECT_THROW(gru_cell_pointwise(zeros({2, 6}, DType::Int64), zeros({2, 6}, DType::Int64), zeros({2, 2}, DType::Int64)),
               DTypeError);
}
