// Elementwise family from C++: unary math and activations with their backward, binary ops
// with broadcasting and promotion, comparisons, where/masked_fill and in-place rules.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/ops/compare.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"

using namespace bigmodel;

namespace {

template <typename T>
std::vector<double> values(const Tensor& t) {
  Tensor c = contiguous(t);
  std::vector<double> out;
  const T* p = c.data<T>();
  for (int64_t i = 0; i < c.numel(); ++i) out.push_back(static_cast<double>(p[i]));
  return out;
}

// d(sum(f(x)))/dx by autograd, for a float64 leaf x.
std::vector<double> grad_of(const std::vector<double>& xs, Tensor (*f)(const Tensor&)) {
  Tensor x = from_vector<double>(xs, {static_cast<int64_t>(xs.size())});
  x.set_requires_grad(true);
  sum(f(x)).backward();
  return values<double>(x.grad());
}

// A bool tensor from 0/1 values (std::vector<bool> has no data()).
Tensor mask_of(const std::vector<int64_t>& bits) {
  return ne(from_vector<int64_t>(bits, {static_cast<int64_t>(bits.size())}), Scalar(int64_t{0}));
}

}  // namespace

TEST(Unary, MatchesStdMathOnTransposedInput) {
  Tensor x = transpose(from_vector<double>({0.3, 1.2, 2.5, 0.7, 1.9, 0.45}, {2, 3}), 0, 1);
  ASSERT_FALSE(x.is_contiguous());
  std::vector<double> xs = values<double>(x);
  struct Case {
    Tensor (*op)(const Tensor&);
    double (*ref)(double);
  };
  std::vector<Case> cases = {{exp, [](double v) { return std::exp(v); }},
                             {log, [](double v) { return std::log(v); }},
                             {sqrt, [](double v) { return std::sqrt(v); }},
                             {tanh, [](double v) { return std::tanh(v); }},
                             {sigmoid, [](double v) { return 1 / (1 + std::exp(-v)); }},
                             {erf, [](double v) { return std::erf(v); }},
                             {silu, [](double v) { return v / (1 + std::exp(-v)); }}};
  for (const Case& c : cases) {
    std::vector<double> got = values<double>(c.op(x));
    for (size_t i = 0; i < xs.size(); ++i) EXPECT_NEAR(got[i], c.ref(xs[i]), 1e-12);
  }
}

TEST(Unary, HalfComputesInFloatAndIntsPromote) {
  Tensor h = to(from_vector<float>({0.5f, -1.25f, 2.0f}, {3}), DType::Float16);
  Tensor e = exp(h);
  EXPECT_EQ(e.dtype(), DType::Float16);
  std::vector<double> got = values<Half>(e);
  EXPECT_NEAR(got[1], std::exp(-1.25), 1e-3);
  Tensor i = from_vector<int64_t>({1, 4, 9}, {3});
  Tensor s = sqrt(i);
  EXPECT_EQ(s.dtype(), DType::Float32);
  EXPECT_EQ(values<float>(s), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(relu(from_vector<int32_t>({-2, 3}, {2})).dtype(), DType::Int32);
  EXPECT_THROW(gelu(i), DTypeError);
  EXPECT_THROW(neg(mask_of({1})), DTypeError);
}

TEST(Unary, BackwardFormulas) {
  std::vector<double> xs = {-1.3, -0.4, 0.6, 2.2};
  auto g = grad_of(xs, [](const Tensor& t) { return relu(t); });
  EXPECT_EQ(g, (std::vector<double>{0, 0, 1, 1}));
  g = grad_of(xs, [](const Tensor& t) { return tanh(t); });
  for (size_t k = 0; k < xs.size(); ++k) EXPECT_NEAR(g[k], 1 - std::pow(std::tanh(xs[k]), 2), 1e-12);
  g = grad_of(xs, [](const Tensor& t) { return gelu(t); });
  for (size_t k = 0; k < xs.size(); ++k) {
    double x = xs[k];
    double expect = 0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-x * x / 2) / std::sqrt(2 * M_PI);
    EXPECT_NEAR(g[k], expect, 1e-12);
  }
  g = grad_of(xs, [](const Tensor& t) { return clamp(t, Scalar(-0.5), Scalar(1.0)); });
  EXPECT_EQ(g, (std::vector<double>{0, 1, 1, 0}));
}

TEST(Unary, InPlaceChecksAndHistory) {
  Tensor i = from_vector<int64_t>({1, 2}, {2});
  EXPECT_THROW(exp_(i), DTypeError);
  Tensor x = from_vector<double>({0.5, 1.5}, {2});
  x.set_requires_grad(true);
  EXPECT_THROW(exp_(x), Error);  // leaf requiring grad
  Tensor a = mul(x, Scalar(2.0));
  sigmoid_(a);
  sum(a).backward();
  std::vector<double> g = values<double>(x.grad());
  for (int k = 0; k < 2; ++k) {
    double s = 1 / (1 + std::exp(-2 * (0.5 + k)));
    EXPECT_NEAR(g[k], 2 * s * (1 - s), 1e-12);
  }
}

TEST(Binary, PowMaximumBroadcastAndPromotion) {
  Tensor a = from_vector<double>({1, 2, 3}, {3, 1});
  Tensor b = from_vector<int64_t>({2, 3}, {2});
  Tensor p = pow(a, b);
  EXPECT_EQ(p.sizes(), (Shape{3, 2}));
  EXPECT_EQ(values<double>(p), (std::vector<double>{1, 1, 4, 8, 9, 27}));
  Tensor m = maximum(from_vector<int32_t>({1, 5}, {2}), from_vector<float>({2.5f, 2.5f}, {2}));
  EXPECT_EQ(m.dtype(), DType::Float32);
  EXPECT_EQ(values<float>(m), (std::vector<double>{2.5, 5}));
  EXPECT_THROW(maximum(zeros({2, 3}), zeros({4, 3})), ShapeError);
  EXPECT_THROW(pow(from_vector<int64_t>({2}, {1}), Scalar(int64_t{-1})), Error);
  EXPECT_EQ(values<int64_t>(remainder(from_vector<int64_t>({-7, 7}, {2}), Scalar(int64_t{3}))),
            (std::vector<double>{2, 1}));
}

TEST(Binary, PowGradientWrtBaseAndExponent) {
  Tensor a = from_vector<double>({1.5, 2.0}, {2});
  Tensor b = from_vector<double>({2.0, 0.5}, {2});
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  sum(pow(a, b)).backward();
  std::vector<double> ga = values<double>(a.grad()), gb = values<double>(b.grad());
  EXPECT_NEAR(ga[0], 2 * 1.5, 1e-12);
  EXPECT_NEAR(ga[1], 0.5 / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(gb[0], 1.5 * 1.5 * std::log(1.5), 1e-12);
  EXPECT_NEAR(gb[1], std::sqrt(2.0) * std::log(2.0), 1e-12);
}

TEST(Compare, BoolResultsAndLogical) {
  Tensor a = from_vector<float>({1, 2, 3}, {3});
  Tensor lt2 = lt(a, Scalar(2.5));
  EXPECT_EQ(lt2.dtype(), DType::Bool);
  EXPECT_EQ(values<bool>(lt2), (std::vector<double>{1, 1, 0}));
  Tensor e = eq(from_vector<int64_t>({1, 2}, {2}), from_vector<double>({1.0, 2.5}, {2}));
  EXPECT_EQ(values<bool>(e), (std::vector<double>{1, 0}));
  EXPECT_EQ(values<bool>(logical_xor(lt2, ge(a, Scalar(2)))), (std::vector<double>{1, 0, 1}));
  EXPECT_THROW(bitwise_and(a, a), DTypeError);
}

TEST(Compare, WhereAndMaskedFillRouteGradients) {
  Tensor cond = mask_of({1, 0, 1});
  Tensor a = from_vector<double>({1, 2, 3}, {3});
  Tensor b = from_vector<double>({-1}, {1});
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  Tensor w = where(cond, a, b);
  EXPECT_EQ(values<double>(w), (std::vector<double>{1, -1, 3}));
  sum(w).backward();
  EXPECT_EQ(values<double>(a.grad()), (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(values<double>(b.grad()), (std::vector<double>{1}));

  Tensor x = from_vector<double>({4, 5, 6}, {3});
  x.set_requires_grad(true);
  Tensor m = masked_fill(x, cond, Scalar(0.5));
  EXPECT_EQ(values<double>(m), (std::vector<double>{0.5, 5, 0.5}));
  sum(mul(m, Scalar(2.0))).backward();
  EXPECT_EQ(values<double>(x.grad()), (std::vector<double>{0, 2, 0}));
  EXPECT_THROW(where(from_vector<float>({1}, {1}), a, b), DTypeError);
}

TEST(Compare, MaskedFillInPlaceBumpsVersion) {
  Tensor x = from_vector<float>({1, 2, 3, 4}, {2, 2});
  uint64_t v = x.version();
  masked_fill_(x, mask_of({0, 1}), Scalar(9));
  EXPECT_GT(x.version(), v);
  EXPECT_EQ(values<float>(x), (std::vector<double>{1, 9, 3, 9}));
  EXPECT_THROW(masked_fill_(x, zeros({3, 2, 2}, DType::Bool), Scalar(0)), ShapeError);
}
