// The kernel-call hook of core/dispatch.h (what the Python module uses to release the GIL):
// called around kernels over kKernelHookMinElements or more, not around small ones, not
// while a KernelHookPause lives, balanced when a kernel throws; and grad mode per thread.
#include <gtest/gtest.h>

#include <thread>

#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/ops/conv.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/reduce.h"

using namespace bigmodel;

namespace {

thread_local int t_enters = 0, t_exits = 0, t_depth = 0;
int g_token = 0;

void* count_enter() {
  ++t_enters;
  ++t_depth;
  return &g_token;
}
void count_exit(void* state) {
  EXPECT_EQ(state, &g_token);
  ++t_exits;
  --t_depth;
}
const KernelCallHook kCounting{&count_enter, &count_exit};

// Installs the counting hook for one test and removes it after.
class KernelHook : public ::testing::Test {
 protected:
  void SetUp() override {
    t_enters = t_exits = t_depth = 0;
    g_kernel_call_hook.store(&kCounting);
  }
  void TearDown() override { g_kernel_call_hook.store(nullptr); }
};

}  // namespace

TEST_F(KernelHook, WrapsBigKernelsOnly) {
  Tensor small_a = full({16}, 1.5), small_b = full({16}, 2.0);
  Tensor s = add(small_a, small_b);
  EXPECT_EQ(t_enters, 0);
  EXPECT_EQ(t_exits, 0);
  EXPECT_DOUBLE_EQ(sum(s).item().to_double(), 16 * 3.5);

  Tensor big_a = full({kKernelHookMinElements}, 1.5), big_b = full({kKernelHookMinElements}, 2.0);
  t_enters = t_exits = 0;
  Tensor big = add(big_a, big_b);
  EXPECT_GE(t_enters, 1);
  EXPECT_EQ(t_enters, t_exits);
  EXPECT_EQ(t_depth, 0);
  EXPECT_DOUBLE_EQ(sum(big).item().to_double(), 3.5 * kKernelHookMinElements);
}

TEST_F(KernelHook, UndefinedTensorArgumentsCountAsEmpty) {
  // conv2d without bias hands its kernel an undefined Tensor (crashed the size count once).
  Tensor x = full({1, 3, 8, 8}, 1.0), w = full({4, 3, 3, 3}, 0.5);
  Tensor y = conv2d(x, w);
  EXPECT_EQ(t_enters, 0);  // small
  EXPECT_DOUBLE_EQ(sum(y).item().to_double(), 4 * 6 * 6 * 27 * 0.5);
  Tensor big = full({1, 3, 128, 128}, 1.0);
  Tensor yb = conv2d(big, w);
  EXPECT_GE(t_enters, 1);
  EXPECT_EQ(t_enters, t_exits);
  EXPECT_DOUBLE_EQ(sum(yb).item().to_double(), 4 * 126 * 126 * 27 * 0.5);
}

TEST_F(KernelHook, PauseKeepsKernelsUnwrapped) {
  Tensor a = full({256, 256}, 0.5);  // its fill kernel goes through the hook
  t_enters = t_exits = 0;
  {
    KernelHookPause pause;
    Tensor c = matmul(a, a);
    EXPECT_EQ(t_enters, 0);
    EXPECT_DOUBLE_EQ(sum(c).item().to_double(), 256.0 * 256.0 * 256.0 * 0.25);
  }
  Tensor c = matmul(a, a);
  EXPECT_GE(t_enters, 1);
  EXPECT_EQ(t_enters, t_exits);
}

TEST_F(KernelHook, BalancedWhenTheOpThrows) {
  Tensor a = full({300, 300}, 1.0), b = full({200, 300}, 1.0);
  EXPECT_THROW(matmul(a, b), ValueError);  // refused by the front end
  EXPECT_EQ(t_enters, t_exits);
  EXPECT_EQ(t_depth, 0);
}

TEST(KernelHookThreads, GradModeIsPerThread) {
  NoGradGuard no_grad;
  bool other_enabled = false, other_records = false;
  std::thread t([&] {
    other_enabled = GradMode::is_enabled();
    Tensor w = full({3}, 1.0);
    w.set_requires_grad(true);
    other_records = mul(w, w).requires_grad();
  });
  t.join();
  EXPECT_FALSE(GradMode::is_enabled());
  EXPECT_TRUE(other_enabled);
  EXPECT_TRUE(other_records);
}
