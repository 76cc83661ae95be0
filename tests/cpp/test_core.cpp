// Core runtime: dtypes, promotion, views, copies and the autograd engine.
#include <gtest/gtest.h>

#include <cmath>

#include "core/autograd.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/ops/view.h"

using namespace bigmodel;

TEST(DType, Promotion) {
  EXPECT_EQ(promote_types(DType::Int32, DType::Float16), DType::Float16);
  EXPECT_EQ(promote_types(DType::Float16, DType::BFloat16), DType::Float32);
  EXPECT_EQ(promote_types(DType::Int32, DType::Int64), DType::Int64);
  EXPECT_EQ(promote_types(DType::Bool, DType::Int32), DType::Int32);
  EXPECT_EQ(promote_types(DType::Float32, DType::Float64), DType::Float64);
  Tensor i = zeros({2}, DType::Int32);
  EXPECT_EQ(result_type(i, Scalar(2.5)), DType::Float32);
  EXPECT_EQ(result_type(zeros({2}, DType::Float16), Scalar(2.5)), DType::Float16);
  EXPECT_EQ(result_type(i, scalar_tensor(Scalar(int64_t{1}), DType::Int64)), DType::Int32);
  EXPECT_EQ(result_type(i, scalar_tensor(Scalar(1.0), DType::Float64)), DType::Float64);
}

TEST(Half, RoundTrip) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 1e-7f, 3.14159f}) {
    EXPECT_NEAR(static_cast<float>(Half(f)), f, std::fabs(f) * 1e-3f + 1e-7f) << f;
    EXPECT_NEAR(static_cast<float>(BFloat16(f)), f, std::fabs(f) * 8e-3f) << f;
  }
  EXPECT_TRUE(std::isinf(static_cast<float>(Half(1e6f))));
}

TEST(View, TransposeSharesStorageAndCopies) {
  Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = transpose(a, 0, 1);
  EXPECT_EQ(b.sizes(), (Shape{3, 2}));
  EXPECT_FALSE(b.is_contiguous());
  EXPECT_EQ(b.storage(), a.storage());
  Tensor c = contiguous(b);
  const float* p = c.data<float>();
  std::vector<float> got(p, p + 6);
  EXPECT_EQ(got, (std::vector<float>{1, 4, 2, 5, 3, 6}));
  EXPECT_THROW(view(b, {6}), Error);
  EXPECT_EQ(reshape(b, {6}).sizes(), (Shape{6}));
}

TEST(Autograd, MulAddSumGradients) {
  Tensor x = from_vector<double>({1, 2, 3}, {3});
  Tensor y = from_vector<double>({4, 5, 6}, {3});
  x.set_requires_grad(true);
  y.set_requires_grad(true);
  Tensor z = sum(add(mul(x, y), x));
  z.backward();
  const double* gx = x.grad().data<double>();
  const double* gy = y.grad().data<double>();
  EXPECT_DOUBLE_EQ(gx[0], 5);
  EXPECT_DOUBLE_EQ(gx[2], 7);
  EXPECT_DOUBLE_EQ(gy[1], 2);
  // A second backward without retain_graph fails clearly.
  EXPECT_THROW(z.backward(), Error);
}

TEST(Autograd, InplaceOnSavedTensorIsDetected) {
  Tensor x = from_vector<double>({1, 2}, {2});
  x.set_requires_grad(true);
  Tensor h = mul(x, Scalar(2.0));
  Tensor y = mul(h, h);
  add_(h, Scalar(1.0));
  EXPECT_THROW(sum(y).backward(), Error);
}

TEST(Autograd, BroadcastGradientIsSummed) {
  Tensor a = ones({2, 3}, DType::Float64);
  Tensor b = ones({3}, DType::Float64);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  sum(mul(a, b)).backward();
  EXPECT_EQ(b.grad().sizes(), (Shape{3}));
  EXPECT_DOUBLE_EQ(b.grad().data<double>()[0], 2.0);
}
