// Anomaly mode from C++ (core/autograd.h DetectAnomalyGuard): a recorded op whose forward
// yields NaN/Inf, or a node whose backward does, throws an Error naming the node; C++ callers
// get no traceback. Off (the default), nothing is checked.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "core/autograd.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/ops/unary.h"

using namespace bigmodel;

namespace {

Tensor leaf(std::vector<double> v) {
  Tensor t = from_vector(v, {static_cast<int64_t>(v.size())});
  t.set_requires_grad(true);
  return t;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Anomaly, OffByDefaultAndGuardRestores) {
  EXPECT_FALSE(AnomalyMode::is_enabled());
  Tensor a = leaf({1.0, 0.0}), b = leaf({2.0, 0.0});
  EXPECT_NO_THROW(div(a, b));  // 0/0 = nan, unchecked
  {
    DetectAnomalyGuard on;
    EXPECT_TRUE(AnomalyMode::is_enabled());
    {
      DetectAnomalyGuard off(false);
      EXPECT_FALSE(AnomalyMode::is_enabled());
      EXPECT_NO_THROW(div(a, b));
    }
    EXPECT_TRUE(AnomalyMode::is_enabled());
    std::string msg = error_of([&] { div(a, b); });
    EXPECT_NE(msg.find("DivBackward0"), std::string::npos) << msg;
    EXPECT_NE(msg.find("produced nan"), std::string::npos) << msg;
  }
  EXPECT_FALSE(AnomalyMode::is_enabled());
}

TEST(Anomaly, BackwardNonFiniteNamesTheNode) {
  Tensor x = leaf({0.0, 4.0});
  DetectAnomalyGuard on;
  Tensor loss = sum(mul(sqrt(x), Scalar(2.0)));  // finite forward; d sqrt/dx at 0 = inf
  std::string msg = error_of([&] { run_backward({loss}, {ones_like(loss)}, false); });
  EXPECT_NE(msg.find("SqrtBackward0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("returned inf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no creation traceback"), std::string::npos) << msg;  // C++: no Python stack
}

TEST(Anomaly, CheckForwardOffAndThreadLocal) {
  Tensor a = leaf({1.0}), b = leaf({0.0});
  DetectAnomalyGuard on(true, /*check_forward=*/false);
  Tensor q;
  EXPECT_NO_THROW(q = div(a, b));
  bool other_enabled = true;
  std::thread([&] { other_enabled = AnomalyMode::is_enabled(); }).join();
  EXPECT_FALSE(other_enabled);
  std::string msg = error_of([&] { run_backward({q}, {ones_like(q)}, false); });
  EXPECT_NE(msg.find("DivBackward0"), std::string::npos) << msg;
}
