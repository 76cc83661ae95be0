// kernels/cpu/vec_math.h: the vectorised float32 exp / sigmoid / tanh against std:: in double
// over a dense sweep, special values (+-inf, NaN, +-0, denormals, huge |x|) and odd lengths.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/vec_math.h"

using namespace bigmodel::cpu;

namespace {

// Error in units of the float spacing at the reference (denormal spacing below FLT_MIN).
double ulp_error(float got, double want) {
  if (std::isnan(want)) return std::isnan(got) ? 0.0 : 1e30;
  if (std::isinf(want)) return got == static_cast<float>(want) ? 0.0 : 1e30;
  const float wf = static_cast<float>(want);
  if (std::isinf(wf)) return got == wf ? 0.0 : 1e30;  // overflows in float
  const double spacing = std::max<double>(std::nextafter(std::fabs(wf), std::numeric_limits<float>::infinity()) -
                                              std::fabs(wf),
                                          std::numeric_limits<float>::denorm_min());
  return std::fabs(static_cast<double>(got) - want) / spacing;
}

std::vector<float> sweep() {
  std::vector<float> xs;
  for (double x = -120.0; x <= 120.0; x += 0.00731) xs.push_back(static_cast<float>(x));  // dense, 33k points
  for (double x = -1.0; x <= 1.0; x += 1e-4) xs.push_back(static_cast<float>(x));         // near 0
  for (int e = -149; e <= 127; ++e) {                                                      // every binade, both signs
    xs.push_back(std::ldexp(1.0f, e));
    xs.push_back(-std::ldexp(1.3f, e));
  }
  const float inf = std::numeric_limits<float>::infinity();
  for (float v : {0.0f, -0.0f, inf, -inf, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::max(),
                  -std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min(), -1e-40f, 88.7f, 88.73f,
                  -87.4f, -103.9f, -104.5f, 9.0f, -9.1f, 0.625f, -0.625f, 0.62499f})
    xs.push_back(v);
  return xs;
}

template <typename Vec, typename Ref>
void check(const char* name, Vec vec, Ref ref, double max_ulp, double abs_tol) {
  const std::vector<float> xs = sweep();
  std::vector<float> ys(xs.size(), -12345.0f);
  vec(xs.data(), ys.data(), static_cast<int64_t>(xs.size()));
  double worst = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double want = ref(static_cast<double>(xs[i]));
    const double err = ulp_error(ys[i], want);
    // Either within max_ulp, or (tiny results, e.g. sigmoid's far tail) within abs_tol.
    const bool ok = err <= max_ulp || (std::isfinite(want) && std::fabs(ys[i] - want) <= abs_tol);
    ASSERT_TRUE(ok) << name << "(" << xs[i] << ") = " << ys[i] << ", want " << want << " (" << err << " ulp)";
    if (std::isfinite(want) && std::fabs(want) > 1e-30) worst = std::max(worst, err);
  }
  std::printf("[ vec_math ] %s: worst %.2f ulp over %zu points (avx2+fma: %d)\n", name, worst, xs.size(),
              vec::has_avx2_fma() ? 1 : 0);
}

}  // namespace

TEST(VecMath, ExpMatchesStd) {
  check("exp", vec::exp_f32, [](double x) { return std::exp(x); }, 3.0, 0.0);
}

TEST(VecMath, SigmoidMatchesStd) {
  // 1/(1+e^-x): near x = -88 the float formula itself underflows to 0 (std:: in float too);
  // absolute error 1e-37 allows that.
  check("sigmoid", vec::sigmoid_f32, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, 4.0, 1e-37);
}

TEST(VecMath, TanhMatchesStd) {
  check("tanh", vec::tanh_f32, [](double x) { return std::tanh(x); }, 4.0, 0.0);
}

TEST(VecMath, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float in[8] = {inf, -inf, nan, 0.0f, -0.0f, 1e-40f, -1e-40f, 200.0f};
  float e[8], s[8], t[8];
  vec::exp_f32(in, e, 8);
  vec::sigmoid_f32(in, s, 8);
  vec::tanh_f32(in, t, 8);
  EXPECT_EQ(e[0], inf);
  EXPECT_EQ(e[1], 0.0f);
  EXPECT_TRUE(std::isnan(e[2]));
  EXPECT_EQ(e[3], 1.0f);
  EXPECT_EQ(e[7], inf);
  EXPECT_EQ(s[0], 1.0f);
  EXPECT_EQ(s[1], 0.0f);
  EXPECT_TRUE(std::isnan(s[2]));
  EXPECT_EQ(s[3], 0.5f);
  EXPECT_EQ(t[0], 1.0f);
  EXPECT_EQ(t[1], -1.0f);
  EXPECT_TRUE(std::isnan(t[2]));
  EXPECT_EQ(t[3], 0.0f);
  EXPECT_TRUE(std::signbit(t[4]));  // tanh(-0) = -0
  EXPECT_EQ(t[5], 1e-40f);          // denormals pass through tanh unchanged
  EXPECT_EQ(t[6], -1e-40f);
  EXPECT_EQ(t[7], 1.0f);
}

TEST(VecMath, OddLengthsAndTailsAgreeWithFullBlocks) {
  // A value gives the same result at every position, in a full block or in the padded tail.
  std::vector<float> xs(19);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = -3.0f + 0.37f * static_cast<float>(i);
  for (int64_t n : {1, 7, 8, 9, 19}) {
    std::vector<float> full(19), part(static_cast<size_t>(n) + 1, 777.0f);
    vec::tanh_f32(xs.data(), full.data(), 19);
    vec::tanh_f32(xs.data(), part.data(), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(part[i], full[i]) << "n=" << n << " i=" << i;
    EXPECT_EQ(part[n], 777.0f) << "wrote past the end for n=" << n;
  }
}
