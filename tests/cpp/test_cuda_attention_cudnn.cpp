// The cuDNN attention baseline (bm.backends.attention = "cudnn", kernels/cuda/attention_cudnn.cpp):
// its availability report, which runs everywhere, and on a GPU one causal forward + backward
// against our flash kernels (tests/python/test_cuda_attention_cudnn.py covers the cases).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "core/backends.h"
#include "core/cuda_info.h"
#include "core/ops/attention.h"
#include "core/ops/creation.h"
#include "core/ops/view.h"
#include "tests/cpp/cuda_test_skip.h"

using namespace bigmodel;

namespace {

Tensor random_bf16(const Shape& shape, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  Tensor t = Tensor::empty(shape, DType::Float64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = nd(gen);
  return to(t, DType::BFloat16);
}

// max |a - e| / (atol + rtol |e|), both read as float64 on the CPU.
double worst_ratio(const Tensor& actual, const Tensor& expected, double atol, double rtol) {
  Tensor a = contiguous(to(to(actual, Device()), DType::Float64));
  Tensor e = contiguous(to(to(expected, Device()), DType::Float64));
  EXPECT_EQ(a.sizes(), e.sizes());
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.data<double>()[i], y = e.data<double>()[i];
    worst = std::max(worst, std::isfinite(x) ? std::abs(x - y) / (atol + rtol * std::abs(y)) : INFINITY);
  }
  return worst;
}

struct BackendGuard {
  std::string before = backend("attention");
  explicit BackendGuard(const std::string& name) { set_backend("attention", name); }
  ~BackendGuard() { set_backend("attention", before); }
};

}  // namespace

TEST(AttentionCudnnBuild, UnavailableReasonSaysHowToGetIt) {
  EXPECT_NE(cudnn_attention_unavailable_reason(Device()).find("CUDA tensors only"), std::string::npos);
  const std::string why = cudnn_attention_unavailable_reason(Device(DeviceType::CUDA, 0));
  if (!cuda::built_with_cuda()) {
    EXPECT_NE(why.find("without CUDA"), std::string::npos) << why;
    return;
  }
  if (why.empty()) GTEST_SKIP() << "this build has the cuDNN frontend (nothing missing to report)";
  for (const char* part : {"cudnn_frontend.h", "scripts/fetch_cudnn_frontend.sh", "BIGMODEL_CUDNN_FRONTEND_DIR", "'ours'"})
    EXPECT_NE(why.find(part), std::string::npos) << part << " missing from: " << why;
}

TEST(CudaAttentionCudnn, CausalForwardBackwardMatchOurs) {
  SKIP_WITHOUT_GPU();
  const Device gpu(DeviceType::CUDA, 0);
  const std::string why = cudnn_attention_unavailable_reason(gpu);
  if (!why.empty()) GTEST_SKIP() << why;
  // Odd lengths, Nq != Nk: [2, 3, 45, 64] queries over 37 keys.
  Tensor q = random_bf16({2, 3, 45, 64}, 1), k = random_bf16({2, 3, 37, 64}, 2), v = random_bf16({2, 3, 37, 64}, 3);
  Tensor go = random_bf16({2, 3, 45, 64}, 4);
  Tensor out[2], grads[2][3];
  const char* names[2] = {"cudnn", "ours"};
  for (int b = 0; b < 2; ++b) {
    BackendGuard guard(names[b]);
    Tensor gq = to(q, gpu), gk = to(k, gpu), gv = to(v, gpu);
    gq.requires_grad_();
    gk.requires_grad_();
    gv.requires_grad_();
    out[b] = scaled_dot_product_attention(gq, gk, gv, Tensor(), 0.0, /*is_causal=*/true);
    out[b].backward(to(go, gpu));
    grads[b][0] = gq.grad();
    grads[b][1] = gk.grad();
    grads[b][2] = gv.grad();
  }
  ASSERT_TRUE(out[0].device().is_cuda());
  // Both sit within bfloat16 tolerance of the float32 truth, so of each other within twice it.
  EXPECT_LE(worst_ratio(out[0], out[1], 3.2e-2, 4e-2), 1.0);
  for (int i = 0; i < 3; ++i) EXPECT_LE(worst_ratio(grads[0][i], grads[1][i], 0.13, 0.16), 1.0) << "grad " << i;
}
