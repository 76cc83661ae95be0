// Conv and pool gradient ops: the adjoint identities the kernels must satisfy
// (<backward(g), u> == <g, forward(u)>), the double backward recorded on the gradient ops,
// the batch-threaded conv path against the serial one, and index validation.
#include <gtest/gtest.h>

#include <cmath>

#include "core/autograd.h"
#include "core/ops/conv.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/pool.h"
#include "core/ops/reduce.h"
#include "core/ops/view.h"

using namespace bigmodel;

namespace {

double dot_all(const Tensor& a, const Tensor& b) {
  return to(sum(mul(a, b)), DType::Float64).item().to_double();
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  Tensor d = to(contiguous(sub(a, b)), DType::Float64);
  double m = 0;
  for (int64_t i = 0; i < d.numel(); ++i) m = std::max(m, std::fabs(d.data<double>()[i]));
  return m;
}

Tensor leaf(const Shape& s) {
  Tensor t = randn(s, DType::Float64);
  t.set_requires_grad(true);
  return t;
}

Conv2dParams params(int64_t stride, int64_t pad, int64_t dil, int64_t groups) {
  Conv2dParams p;
  p.stride_h = p.stride_w = stride;
  p.pad_h = p.pad_w = pad;
  p.dilation_h = p.dilation_w = dil;
  p.groups = groups;
  return p;
}

}  // namespace

TEST(ConvPool, Conv2dGradientOpsAreAdjoints) {
  const Conv2dParams p = params(2, 1, 2, 2);
  const Tensor x = randn({2, 4, 9, 8}, DType::Float64), w = randn({6, 2, 3, 3}, DType::Float64);
  const Tensor y = conv2d(x, w, Tensor(), {2, 2}, {1, 1}, {2, 2}, 2);
  const Tensor g = randn(y.sizes(), DType::Float64);
  // <d input, u> = <g, conv(u, w)> and <d weight, v> = <g, conv(x, v)>: the kernels are
  // the transposes of the forward map.
  const Tensor u = randn(x.sizes(), DType::Float64), v = randn(w.sizes(), DType::Float64);
  const double a = dot_all(conv2d_backward_input(g, w, x.sizes(), p), u);
  const double b = dot_all(g, conv2d(u, w, Tensor(), {2, 2}, {1, 1}, {2, 2}, 2));
  EXPECT_NEAR(a, b, 1e-9 * (1 + std::fabs(b)));
  const double c = dot_all(conv2d_backward_weight(g, x, w.sizes(), p), v);
  const double d = dot_all(g, conv2d(x, v, Tensor(), {2, 2}, {1, 1}, {2, 2}, 2));
  EXPECT_NEAR(c, d, 1e-9 * (1 + std::fabs(d)));
}

TEST(ConvPool, Conv2dGradientOpsRecordTheirOwnBackward) {
  const Conv2dParams p = params(1, 1, 1, 1);
  const Shape xs{2, 3, 6, 5};
  Tensor g = leaf({2, 4, 6, 5}), w = leaf({4, 3, 3, 3});
  const Tensor u = randn(xs, DType::Float64);
  Tensor gi = conv2d_backward_input(g, w, xs, p);
  sum(mul(gi, u)).backward();
  // d<gi, u>/dg = conv2d(u, w); d<gi, u>/dw = backward_weight(g, u).
  NoGradGuard no_grad;
  EXPECT_LT(max_abs_diff(g.grad(), conv2d(u, w.detach(), Tensor(), {1, 1}, {1, 1})), 1e-10);
  EXPECT_LT(max_abs_diff(w.grad(), conv2d_backward_weight(g.detach(), u, w.sizes(), p)), 1e-10);
}

TEST(ConvPool, Conv2dWeightGradientOpRecordsItsBackward) {
  const Conv2dParams p = params(2, 0, 1, 1);
  Tensor g = leaf({3, 2, 3, 3}), x = leaf({3, 2, 7, 7});
  const Tensor v = randn({2, 2, 3, 3}, DType::Float64);
  sum(mul(conv2d_backward_weight(g, x, v.sizes(), p), v)).backward();
  NoGradGuard no_grad;
  EXPECT_LT(max_abs_diff(g.grad(), conv2d(x.detach(), v, Tensor(), {2, 2})), 1e-10);
  EXPECT_LT(max_abs_diff(x.grad(), conv2d_backward_input(g.detach(), v, x.sizes(), p)), 1e-10);
}

TEST(ConvPool, BatchThreadedConvMatchesImageByImage) {
  // Batch 6 is split over threads; each image alone runs serially. Results must agree.
  const Tensor x = randn({6, 8, 14, 14}, DType::Float32), w = randn({16, 8, 3, 3}, DType::Float32);
  const Tensor b = randn({16}, DType::Float32);
  const Tensor y = conv2d(x, w, b, {1, 1}, {1, 1});
  const Tensor g = randn(y.sizes(), DType::Float32);
  const Conv2dParams p = params(1, 1, 1, 1);
  const Tensor gw = conv2d_backward_weight(g, x, w.sizes(), p);
  const Tensor gx = conv2d_backward_input(g, w, x.sizes(), p);
  Tensor gw_sum = zeros(w.sizes(), DType::Float32);
  for (int64_t n = 0; n < 6; ++n) {
    const Tensor xn = narrow(x, 0, n, 1), gn = narrow(g, 0, n, 1);
    EXPECT_LT(max_abs_diff(narrow(y, 0, n, 1), conv2d(xn, w, b, {1, 1}, {1, 1})), 1e-5);
    EXPECT_LT(max_abs_diff(narrow(gx, 0, n, 1), conv2d_backward_input(gn, w, xn.sizes(), p)), 1e-5);
    gw_sum = add(gw_sum, conv2d_backward_weight(gn, xn, w.sizes(), p));
  }
  EXPECT_LT(max_abs_diff(gw, gw_sum), 1e-3);
}

TEST(ConvPool, PoolBackwardOpsAreAdjointsAndDifferentiable) {
  Pool2dParams p;
  p.kernel_h = p.kernel_w = 3;
  p.stride_h = p.stride_w = 2;
  p.pad_h = p.pad_w = 1;
  const Shape xs{2, 3, 7, 6};
  const Tensor x = randn(xs, DType::Float64), u = randn(xs, DType::Float64);
  const Tensor y = avg_pool2d(x, {3, 3}, std::array<int64_t, 2>{2, 2}, {1, 1});
  Tensor g = leaf(y.sizes());
  Tensor gi = avg_pool2d_backward(g, xs, p);
  const Tensor pooled_u = avg_pool2d(u, {3, 3}, std::array<int64_t, 2>{2, 2}, {1, 1});
  EXPECT_NEAR(dot_all(gi, u), dot_all(g.detach(), pooled_u), 1e-10);
  sum(mul(gi, u)).backward();
  EXPECT_LT(max_abs_diff(g.grad(), pooled_u), 1e-12);

  // max: the backward scatters by index; its own backward gathers by the same index.
  auto [m, idx] = max_pool2d_with_indices(x, {3, 3}, std::array<int64_t, 2>{2, 2}, {1, 1});
  Tensor gm = leaf(m.sizes());
  Tensor gmi = max_pool_backward(gm, idx, xs);
  EXPECT_NEAR(dot_all(gmi, x), dot_all(gm.detach(), m), 1e-10);  // <scatter(g), x> = <g, x[idx]>
  sum(mul(gmi, x)).backward();
  EXPECT_LT(max_abs_diff(gm.grad(), m), 1e-12);

  Tensor ga = leaf({2, 3, 4, 4});
  Tensor gai = adaptive_avg_pool2d_backward(ga, xs);
  sum(mul(gai, u)).backward();
  EXPECT_LT(max_abs_diff(ga.grad(), adaptive_avg_pool2d(u, {4, 4})), 1e-12);
}

TEST(ConvPool, MaxPoolBackwardRejectsIndicesOutsideThePlane) {
  const Tensor g = randn({1, 1, 2, 2}, DType::Float32);
  const Tensor bad = full({1, 1, 2, 2}, Scalar(int64_t{16}), DType::Int64);
  EXPECT_THROW(max_pool_backward(g, bad, {1, 1, 4, 4}), IndexError);
  const Tensor ok = full({1, 1, 2, 2}, Scalar(int64_t{15}), DType::Int64);
  const Tensor gi = max_pool_backward(g, ok, {1, 1, 4, 4});
  EXPECT_NEAR(to(sum(gi), DType::Float64).item().to_double(),
              to(sum(g), DType::Float64).item().to_double(), 1e-5);
}
