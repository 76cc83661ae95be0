// Core runtime: dtypes, promotion, views, copies and the autograd engine.
#include <gtest/gtest.h>

#include <cmath>

#include "core/autograd.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/ops/unary.h"
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

// A graph that is never backpropagated must be freed with its tensors: ops that save their
// output (relu, exp) once kept their own node alive through the saved alias (LSan found it).
TEST(Autograd, ForwardOnlyGraphIsFreed) {
  std::weak_ptr<Node> fn;
  {
    Tensor x = from_vector<double>({1, -2, 3}, {3});
    x.set_requires_grad(true);
    Tensor y = exp(relu(x));
    fn = y.grad_fn();
    ASSERT_FALSE(fn.expired());
  }
  EXPECT_TRUE(fn.expired());
  // The saved output is still version-checked.
  Tensor x = from_vector<double>({1, 2}, {2});
  x.set_requires_grad(true);
  Tensor y = exp(mul(x, Scalar(1.0)));
  Tensor z = sum(y);
  add_(y, Scalar(1.0));
  EXPECT_THROW(z.backward(), Error);
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

TEST(Autograd, HooksRetainGradAndPostAccumulate) {
  Tensor x = from_vector<double>({1, 2, 3}, {3});
  x.set_requires_grad(true);
  Tensor h = mul(x, Scalar(3.0));
  h.retain_grad();
  int calls = 0;
  h.register_hook([](const Tensor& g) { return mul(g, Scalar(2.0)); });
  x.register_post_accumulate_grad_hook([&calls](const Tensor& leaf) {
    ++calls;
    EXPECT_TRUE(leaf.grad().defined());
  });
  sum(h).backward();
  EXPECT_EQ(calls, 1);
  EXPECT_DOUBLE_EQ(x.grad().data<double>()[0], 6.0);  // 1 * 2 (hook) * 3
  EXPECT_DOUBLE_EQ(h.grad().data<double>()[0], 2.0);   // retain_grad sees the hooked grad
}

TEST(Autograd, GradientsFlowThroughViews) {
  Tensor x = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  x.set_requires_grad(true);
  Tensor y = add(mul(select(x, 0, 1), Scalar(2.0)), sum(slice(x, 1, 0, 3, 2)));
  sum(transpose(reshape(y, {3, 1}), 0, 1)).backward();
  std::vector<double> g(x.grad().data<double>(), x.grad().data<double>() + 6);
  EXPECT_EQ(g, (std::vector<double>{3, 0, 3, 5, 2, 5}));
}

TEST(Autograd, AccumulatesAcrossBackwardCalls) {
  Tensor x = from_vector<float>({2}, {1});
  x.set_requires_grad(true);
  sum(mul(x, x)).backward();
  sum(mul(x, x)).backward();
  EXPECT_FLOAT_EQ(x.grad().data<float>()[0], 8.0f);
  EXPECT_THROW(x.set_grad(zeros({2})), ShapeError);
}

TEST(Tensor, BadShapesAndDtypesThrow) {
  EXPECT_THROW(empty({2, -1}), ValueError);
  EXPECT_THROW(empty({int64_t{1} << 40, int64_t{1} << 40}), ValueError);
  EXPECT_THROW(zeros({2}, DType::Int64).set_requires_grad(true), DTypeError);
  EXPECT_THROW(add(zeros({2}), zeros({3})), ShapeError);
  EXPECT_THROW(Device("gpu"), ValueError);
  EXPECT_THROW(zeros({2}).item(), ValueError);
}

TEST(Tensor, CopyConvertsDtypesAndBroadcasts) {
  Tensor src = from_vector<double>({1.5, -2.25, 3.0}, {3});
  Tensor dst = zeros({2, 3}, DType::Float16);
  copy_(dst, src);
  const Half* p = dst.data<Half>();
  EXPECT_FLOAT_EQ(static_cast<float>(p[4]), -2.25f);
  Tensor ints = to(src, DType::Int32);
  EXPECT_EQ(ints.data<int32_t>()[1], -2);
  Tensor flags = to(src, DType::Bool);
  EXPECT_TRUE(flags.data<bool>()[0]);
}
