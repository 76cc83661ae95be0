// The per-element math shared by the CPU and CUDA fused optimizer kernels
// (kernels/fused_optim_math.h), on the host: every float32 update equals the same formula with
// each operation done in double and rounded to float (one rounding per operation, no FMA, the
// property that lets the CUDA kernels match the CPU bit for bit), state that an option does not
// use is never touched (null pointers), and the amsgrad / norm / unscale edge cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "kernels/fused_optim_math.h"

using namespace bigmodel;
using namespace bigmodel::fused;

namespace {

// Correctly rounded float operations computed in double: double has more than 2 * 24 + 2
// significand bits, so rounding the double result to float rounds the exact result once. The
// volatile store keeps the compiler from turning these back into float operations it could
// contract into FMAs (as it would contract the kernels' under -mfma -ffp-contract=fast: the
// test then fails, as it should).
float r(double x) {
  volatile float f = static_cast<float>(x);
  return f;
}
float rmul(float a, float b) { return r(static_cast<double>(a) * b); }
float radd(float a, float b) { return r(static_cast<double>(a) + b); }
float rdiv(float a, float b) { return r(static_cast<double>(a) / b); }
float rsqrt(float a) { return r(std::sqrt(static_cast<double>(a))); }

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Values whose products and sums round (random significands, mixed magnitudes).
float rnd(std::mt19937& gen) {
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  return u(gen) * std::ldexp(1.0f, static_cast<int>(gen() % 7) - 3);
}

TEST(FusedOptimMath, SGDIsOneRoundingPerOperation) {
  std::mt19937 gen(7);
  for (int flags = 0; flags < 32; ++flags) {
    FusedSGDOptions o;
    o.lr = 0.0371;
    o.weight_decay = (flags & 1) ? 0.013 : 0.0;
    o.momentum = (flags & 2) ? 0.87 : 0.0;
    o.dampening = 0.21;
    o.nesterov = (flags & 4) != 0;
    o.maximize = (flags & 8) != 0;
    const bool first = (flags & 16) != 0;
    const auto k = SGDConsts<float>::from(o);
    for (int n = 0; n < 200; ++n) {
      const float p = rnd(gen), g = rnd(gen), b0 = rnd(gen);
      float buf[1] = {b0};
      const float got = sgd_update(p, g, k.use_mom ? buf : nullptr, 0, first, k);
      float d = o.maximize ? -g : g;
      if (k.use_wd) d = radd(d, rmul(p, k.wd));
      float b = b0;
      if (k.use_mom) {
        b = first ? d : radd(rmul(b0, k.mom), rmul(d, k.damp));
        d = o.nesterov ? radd(d, rmul(b, k.mom)) : b;
      }
      const float want = radd(p, rmul(d, k.neg_lr));
      ASSERT_TRUE(same_bits(got, want)) << "flags " << flags << ": " << got << " vs " << want;
      ASSERT_TRUE(same_bits(buf[0], b)) << "flags " << flags;
    }
  }
}

TEST(FusedOptimMath, AdamIsOneRoundingPerOperation) {
  std::mt19937 gen(11);
  for (int flags = 0; flags < 16; ++flags) {
    FusedAdamOptions o;
    o.lr = 3e-3;
    o.beta1 = 0.83;
    o.beta2 = 0.991;
    o.eps = 1e-6;
    o.weight_decay = (flags & 1) ? 0.07 : 0.0;
    o.decoupled = (flags & 2) != 0;
    o.amsgrad = (flags & 4) != 0;
    o.maximize = (flags & 8) != 0;
    const auto k = AdamConsts<float>::from(o);
    const AdamStepScalars s = adam_step_scalars(o, 3);
    const float step_size = static_cast<float>(s.step_size), bc2 = static_cast<float>(s.bias_correction2_sqrt);
    for (int n = 0; n < 200; ++n) {
      const float p = rnd(gen), g = rnd(gen), m0 = rnd(gen), v0 = std::fabs(rnd(gen)), vm0 = std::fabs(rnd(gen));
      float m[1] = {m0}, v[1] = {v0}, vm[1] = {vm0};
      const float got = adam_update(p, g, m, v, o.amsgrad ? vm : nullptr, 0, step_size, bc2, k);
      float grad = o.maximize ? -g : g, param = p;
      if (k.use_wd && o.decoupled) param = rmul(param, k.decay);
      if (k.use_wd && !o.decoupled) grad = radd(grad, rmul(param, k.wd));
      const float mi = radd(rmul(m0, k.b1), rmul(grad, k.one_minus_b1));
      const float vi = radd(rmul(v0, k.b2), rmul(rmul(grad, grad), k.one_minus_b2));
      const float second = o.amsgrad ? std::max(vm0, vi) : vi;
      const float want = radd(param, rmul(rdiv(mi, radd(rdiv(rsqrt(second), bc2), k.eps)), step_size));
      ASSERT_TRUE(same_bits(got, want)) << "flags " << flags << ": " << got << " vs " << want;
      ASSERT_TRUE(same_bits(m[0], mi) && same_bits(v[0], vi));
      ASSERT_TRUE(same_bits(vm[0], o.amsgrad ? second : vm0));
    }
  }
}

TEST(FusedOptimMath, AmsgradMaxKeepsNaN) {
  FusedAdamOptions o;
  o.amsgrad = true;
  const auto k = AdamConsts<double>::from(o);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  double m[1] = {0.5}, v[1] = {0.25}, vm[1] = {nan};
  EXPECT_TRUE(std::isnan(adam_update(1.0, 0.1, m, v, vm, 0, -1e-3, 0.5, k)));
  EXPECT_TRUE(std::isnan(vm[0]));  // an old NaN max stays
  double m2[1] = {0.5}, v2[1] = {nan}, vm2[1] = {0.25};
  adam_update(1.0, 0.1, m2, v2, vm2, 0, -1e-3, 0.5, k);
  EXPECT_TRUE(std::isnan(vm2[0]));  // a new NaN second moment wins
}

TEST(FusedOptimMath, NormAndUnscaleElements) {
  const double xs[] = {3.0, -4.0, 0.5};
  double inf = 0.0, two = 0.0, one = 0.0, p3 = 0.0;
  for (double x : xs) {
    inf = norm_accumulate(inf, x, NormKind::Inf, 0.0);
    two = norm_accumulate(two, x, NormKind::Two, 2.0);
    one = norm_accumulate(one, x, NormKind::One, 1.0);
    p3 = norm_accumulate(p3, x, NormKind::P, 3.0);
  }
  EXPECT_EQ(norm_finish(inf, NormKind::Inf, 0.0), 4.0);
  EXPECT_EQ(norm_finish(two, NormKind::Two, 2.0), std::sqrt(25.25));
  EXPECT_EQ(norm_finish(one, NormKind::One, 1.0), 7.5);
  EXPECT_DOUBLE_EQ(norm_finish(p3, NormKind::P, 3.0), std::cbrt(27.0 + 64.0 + 0.125));
  EXPECT_TRUE(std::isnan(norm_accumulate(4.0, std::nan(""), NormKind::Inf, 0.0)));
  EXPECT_EQ(norm_kind(std::numeric_limits<double>::infinity()), NormKind::Inf);
  EXPECT_EQ(norm_kind(2.0), NormKind::Two);
  EXPECT_EQ(norm_kind(1.0), NormKind::One);
  EXPECT_EQ(norm_kind(1.5), NormKind::P);

  bool bad = false;
  EXPECT_EQ(unscale_value(3.0f, 0.25f, bad), 0.75f);
  EXPECT_FALSE(bad);
  EXPECT_TRUE(std::isinf(unscale_value(std::numeric_limits<float>::infinity(), 0.25f, bad)));
  EXPECT_TRUE(bad);
  bad = false;
  unscale_value(std::numeric_limits<float>::quiet_NaN(), 0.25f, bad);
  EXPECT_TRUE(bad);
  unscale_value(1.0f, 0.25f, bad);
  EXPECT_TRUE(bad);  // sticky: one bad element flags the whole pass
}

}  // namespace
