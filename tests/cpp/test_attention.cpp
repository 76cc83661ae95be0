// scaled_dot_product_attention through the C++ API: hand-checked values (uniform keys,
// causal rows, a bool mask), the weights it returns, and bad-input exceptions.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "core/ops/attention.h"
#include "core/ops/compare.h"
#include "core/ops/creation.h"
#include "core/ops/view.h"

using namespace bigmodel;

namespace {
double at(const Tensor& t, int64_t i) { return reshape(contiguous(to(t, DType::Float64)), {-1}).data<double>()[i]; }
}  // namespace

TEST(Attention, EqualScoresAverageTheValues) {
  // Identical keys give equal scores, so each output row is the mean of the value rows.
  Tensor q = from_vector<double>({1, 2, -1, 0.5}, {2, 2});
  Tensor k = from_vector<double>({1, 1, 1, 1, 1, 1}, {3, 2});
  Tensor v = from_vector<double>({1, 10, 2, 20, 6, 60}, {3, 2});
  Tensor out = scaled_dot_product_attention(q, k, v);
  ASSERT_EQ(out.sizes(), (Shape{2, 2}));
  EXPECT_NEAR(at(out, 0), 3.0, 1e-12);
  EXPECT_NEAR(at(out, 1), 30.0, 1e-12);
  EXPECT_NEAR(at(out, 2), 3.0, 1e-12);
}

TEST(Attention, CausalAndBoolMaskWeights) {
  Tensor q = from_vector<double>({0.3, -0.2, 0.5, 0.1, -0.4, 0.7}, {3, 2});
  Tensor v = from_vector<double>({1, 2, 3}, {3, 1});
  auto [out, w] = scaled_dot_product_attention_with_weights(q, q, v, Tensor(), 0.0, true);
  // Row 0 sees only key 0; weights above the diagonal are zero and rows sum to 1.
  EXPECT_NEAR(at(out, 0), 1.0, 1e-12);
  EXPECT_NEAR(at(w, 1), 0.0, 0.0);
  EXPECT_NEAR(at(w, 5), 0.0, 0.0);
  EXPECT_NEAR(at(w, 3) + at(w, 4), 1.0, 1e-12);
  // A bool mask keeping only key 2 makes every row pick value 3.
  Tensor keep = gt(from_vector<double>({0, 0, 1}, {1, 3}), Scalar(0.5));
  Tensor masked = scaled_dot_product_attention(q, q, v, keep);
  for (int64_t i = 0; i < 3; ++i) EXPECT_NEAR(at(masked, i), 3.0, 1e-12);
}

TEST(Attention, BadInputsThrow) {
  Tensor q = zeros({2, 3, 4}, DType::Float64), k = zeros({2, 5, 4}, DType::Float64);
  Tensor v = zeros({2, 5, 3}, DType::Float64);
  EXPECT_THROW(scaled_dot_product_attention(q, zeros({2, 5, 6}, DType::Float64), v), ValueError);
  EXPECT_THROW(scaled_dot_product_attention(q, k, zeros({2, 4, 3}, DType::Float64)), ValueError);
  EXPECT_THROW(scaled_dot_product_attention(q, k, v, ones({4, 5}, DType::Bool)), ValueError);
  EXPECT_THROW(scaled_dot_product_attention(q, k, v, Tensor(), 2.0), ValueError);
  EXPECT_THROW(scaled_dot_product_attention(q, zeros({2, 5, 4}, DType::Float32), v), DTypeError);
}
