// Autocast state (core/amp.h): per device type and thread, consulted by the matmul, linear,
// conv and attention front ends; float64 and integer tensors and other ops are untouched.
#include <gtest/gtest.h>

#include <thread>

#include "core/amp.h"
#include "core/autograd.h"
#include "core/ops/attention.h"
#include "core/ops/conv.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/reduce.h"
#include "core/ops/view.h"

using namespace bigmodel;

namespace {

// Turns CPU autocast on with `dtype` for one scope and restores the previous state.
struct CpuAutocast {
  bool was;
  DType dtype_was;
  explicit CpuAutocast(DType dtype)
      : was(amp::is_autocast_enabled(DeviceType::CPU)), dtype_was(amp::get_autocast_dtype(DeviceType::CPU)) {
    amp::set_autocast_dtype(DeviceType::CPU, dtype);
    amp::set_autocast_enabled(DeviceType::CPU, true);
  }
  ~CpuAutocast() {
    amp::set_autocast_enabled(DeviceType::CPU, was);
    amp::set_autocast_dtype(DeviceType::CPU, dtype_was);
  }
};

}  // namespace

TEST(Amp, StateDefaultsAndValidation) {
  EXPECT_FALSE(amp::is_autocast_enabled(DeviceType::CPU));
  EXPECT_FALSE(amp::is_autocast_enabled(DeviceType::CUDA));
  EXPECT_EQ(amp::get_autocast_dtype(DeviceType::CPU), DType::BFloat16);
  EXPECT_EQ(amp::get_autocast_dtype(DeviceType::CUDA), DType::Float16);
  EXPECT_THROW(amp::set_autocast_dtype(DeviceType::CPU, DType::Float32), DTypeError);
}

TEST(Amp, LowerPrecisionOpsCastAndOthersDoNot) {
  Tensor a = randn({3, 4}), b = randn({4, 5}), w = randn({5, 4}), bias = randn({5});
  {
    CpuAutocast on(DType::BFloat16);
    EXPECT_EQ(matmul(a, b).dtype(), DType::BFloat16);
    EXPECT_EQ(mm(a, b).dtype(), DType::BFloat16);
    EXPECT_EQ(linear(a, w, bias).dtype(), DType::BFloat16);
    EXPECT_EQ(conv2d(randn({1, 2, 5, 5}), randn({3, 2, 3, 3})).dtype(), DType::BFloat16);
    Tensor q = randn({2, 4, 8});
    EXPECT_EQ(scaled_dot_product_attention(q, q, q).dtype(), DType::BFloat16);
    EXPECT_EQ(add(a, a).dtype(), DType::Float32);  // not in the list
    Tensor d = randn({3, 4}, DType::Float64);
    EXPECT_EQ(matmul(d, transpose(d, 0, 1)).dtype(), DType::Float64);  // float64 is never cast
    EXPECT_EQ(amp::autocast_upcast(matmul(a, b)).dtype(), DType::Float32);
    {
      amp::AutocastOffGuard off;
      EXPECT_EQ(matmul(a, b).dtype(), DType::Float32);
    }
    EXPECT_EQ(matmul(a, b).dtype(), DType::BFloat16);
  }
  EXPECT_EQ(matmul(a, b).dtype(), DType::Float32);
  {
    CpuAutocast on(DType::Float16);
    EXPECT_EQ(matmul(a, b).dtype(), DType::Float16);
  }
}

TEST(Amp, GradientsReachFloat32Leaves) {
  Tensor a = randn({3, 4}).requires_grad_(true), w = randn({5, 4}).requires_grad_(true);
  Tensor loss;
  {
    CpuAutocast on(DType::BFloat16);
    loss = sum(to(linear(a, w), DType::Float32));
  }
  loss.backward();
  ASSERT_TRUE(a.grad().defined());
  EXPECT_EQ(a.grad().dtype(), DType::Float32);
  EXPECT_EQ(w.grad().dtype(), DType::Float32);
}

TEST(Amp, StateIsPerThread) {
  CpuAutocast on(DType::BFloat16);
  bool other = true;
  std::thread t([&] { other = amp::is_autocast_enabled(DeviceType::CPU); });
  t.join();
  EXPECT_FALSE(other);
  EXPECT_TRUE(amp::is_autocast_enabled(DeviceType::CPU));
}
