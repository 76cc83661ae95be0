// The CPU convolution's direct stride-1 path (kernels/cpu/conv.cpp) against its im2col path:
// forward and both gradients (the direct weight gradient too) on random shapes with odd
// sizes, padding ('same' with an odd total too), groups, dilation and stride (which keep
// im2col), bias or none, non-contiguous input. Where the CPU lacks AVX2 + FMA both runs take im2col and agree trivially.
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>

#include "core/autograd.h"
#include "core/ops/conv.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/ops/view.h"
#include "core/ops/unary.h"
#include "core/random.h"
#include "kernels/cpu/conv_direct.h"

using namespace bigmodel;

namespace {

struct Case {
  int64_t N, C, H, W, O, kH, kW, pad_h, pad_w, dil, stride, groups;
  bool bias, transposed_input;
};

double max_abs_diff(const Tensor& a, const Tensor& b) {
  return amax(abs(sub(to(a, DType::Float64), to(b, DType::Float64)))).item().to<double>();
}
double max_abs(const Tensor& a) { return amax(abs(to(a, DType::Float64))).item().to<double>(); }

// (y, dx, dw, db) with the direct path on or off.
std::tuple<Tensor, Tensor, Tensor, Tensor> run(const Case& c, const Tensor& x0, const Tensor& w0, const Tensor& b0,
                                               const Tensor& gy_w, bool direct) {
  cpu::set_conv_direct_enabled(direct);
  Tensor x = x0.detach(), w = w0.detach(), b = c.bias ? b0.detach() : Tensor();
  if (c.transposed_input) x = transpose(contiguous(transpose(x, 2, 3)), 2, 3);  // same values, other strides
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  if (b.defined()) b.set_requires_grad(true);
  Tensor y = conv2d(x, w, b, {c.stride, c.stride}, {c.pad_h, c.pad_w}, {c.dil, c.dil}, c.groups);
  sum(mul(y, gy_w.defined() ? gy_w : ones_like(y))).backward();
  cpu::set_conv_direct_enabled(true);
  return {y.detach(), x.grad(), w.grad(), b.defined() ? b.grad() : Tensor()};
}

void check(const Case& c) {
  Tensor x = randn({c.N, c.C, c.H, c.W});
  Tensor w = randn({c.O, c.C / c.groups, c.kH, c.kW});
  Tensor b = randn({c.O});
  Tensor y_shape = conv2d(x, w, Tensor(), {c.stride, c.stride}, {c.pad_h, c.pad_w}, {c.dil, c.dil}, c.groups);
  Tensor gy = randn(y_shape.sizes());
  auto [y1, dx1, dw1, db1] = run(c, x, w, b, gy, true);
  auto [y0, dx0, dw0, db0] = run(c, x, w, b, gy, false);
  // float32 sums of up to C*kH*kW (or O*kH*kW) products in different orders.
  const double tol = 2e-5 * (1.0 + static_cast<double>(c.C * c.kH * c.kW + c.O * c.kH * c.kW));
  const std::string name = "N" + std::to_string(c.N) + " C" + std::to_string(c.C) + " " + std::to_string(c.H) + "x" +
                           std::to_string(c.W) + " O" + std::to_string(c.O) + " k" + std::to_string(c.kH) + "x" +
                           std::to_string(c.kW) + " pad" + std::to_string(c.pad_h) + "," + std::to_string(c.pad_w) +
                           " g" + std::to_string(c.groups);
  ASSERT_GT(max_abs(y0), 0.1) << name;
  EXPECT_LE(max_abs_diff(y1, y0), tol * (1 + max_abs(y0)) * 1e-2) << "forward " << name;
  EXPECT_LE(max_abs_diff(dx1, dx0), tol * (1 + max_abs(dx0)) * 1e-2) << "grad input " << name;
  EXPECT_LE(max_abs_diff(dw1, dw0), tol * (1 + max_abs(dw0)) * 1e-2) << "grad weight " << name;
  if (c.bias) {
    EXPECT_LE(max_abs_diff(db1, db0), tol * (1 + max_abs(db0)) * 1e-2) << "grad bias " << name;
  }
}

}  // namespace

TEST(ConvDirect, MatchesIm2colOnArticleShapes) {
  manual_seed(7);
  check({2, 32, 26, 26, 64, 3, 3, 0, 0, 1, 1, 1, true, false});  // the article CNN's conv2
  check({3, 1, 28, 28, 32, 3, 3, 0, 0, 1, 1, 1, true, false});   // conv1
}

TEST(ConvDirect, MatchesIm2colOnOddShapes) {
  manual_seed(11);
  const Case cases[] = {
      {1, 3, 7, 5, 5, 3, 3, 1, 1, 1, 1, 1, true, false},      // O not a multiple of 4, padding
      {2, 5, 9, 31, 6, 3, 2, 0, 1, 1, 1, 1, false, false},    // width 31 -> 24 + 8-lane tail; 3x2 kernel
      {1, 4, 6, 40, 9, 5, 5, 2, 2, 1, 1, 1, true, true},      // non-contiguous input, 5x5, wide rows
      {2, 6, 8, 8, 4, 3, 3, 0, 0, 1, 1, 2, true, false},      // groups
      {1, 2, 5, 4, 3, 2, 2, 1, 0, 1, 1, 1, true, false},      // even kernel, asymmetric pads
      {1, 3, 4, 3, 2, 3, 3, 3, 3, 1, 1, 1, true, false},      // padding above k - 1
      {1, 2, 1, 17, 3, 1, 3, 0, 1, 1, 1, 1, true, false},     // a single row (conv1d-like)
      {1, 3, 9, 9, 4, 3, 3, 1, 1, 2, 1, 1, true, false},      // dilation: stays im2col
      {2, 3, 9, 10, 4, 3, 3, 1, 1, 1, 2, 1, true, false},     // stride 2: stays im2col
      // weight-gradient tiles: 4 output channels x up to 3 kw taps, 8-column steps + masked tail
      {3, 3, 7, 11, 5, 3, 1, 1, 0, 1, 1, 1, true, false},     // 3x1 kernel (1-tap tiles), O = 4 + 1
      {2, 2, 6, 9, 7, 2, 4, 0, 2, 1, 1, 1, false, true},      // kW 4 -> 3 + 1 taps, transposed input
      {2, 4, 5, 6, 8, 3, 3, 1, 1, 1, 1, 1, true, false},      // rows narrower than 8: tail only
      {2, 8, 6, 19, 8, 3, 3, 1, 1, 1, 1, 2, true, true},      // groups of 4 output channels, tail 3
  };
  for (const Case& c : cases) check(c);
}
