// cuda tier (C++): the fused scaled_dot_product_attention kernels (kernels/cuda/flash_attention*)
// against the CPU composed reference: odd lengths, Nq != Nk, head dims 32/64/80/128, causal and
// masked, float32 and float16/bfloat16, gradients. Skips with a printed reason without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/autograd.h"
#include "core/backends.h"
#include "core/cuda_info.h"
#include "core/error.h"
#include "core/ops/attention.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/ops/view.h"
#include "tests/cpp/cuda_test_skip.h"

using namespace bigmodel;

namespace {

const Device kGpu(DeviceType::CUDA, 0);

// Random values on the CPU in `dtype` (so CPU and GPU see the same rounded inputs).
Tensor random_cpu(const Shape& shape, DType dtype, uint32_t seed, double scale = 1.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> nd(0.0, scale);
  Tensor t = Tensor::empty(shape, DType::Float64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = nd(gen);
  return to(t, dtype);
}

Tensor random_mask(const Shape& shape, uint32_t seed, double keep) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Tensor t = Tensor::empty(shape, DType::Bool);
  bool* p = t.data<bool>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = u(gen) < keep;
  return t;
}

// max |a - e| / (atol + rtol |e|) over all elements (both read as float64 on the CPU); NaN
// positions must agree.
double worst_ratio(const Tensor& actual, const Tensor& expected, double atol, double rtol) {
  Tensor a = contiguous(to(to(actual, Device()), DType::Float64));
  Tensor e = contiguous(to(to(expected, Device()), DType::Float64));
  EXPECT_EQ(a.sizes(), e.sizes());
  const double* pa = a.data<double>();
  const double* pe = e.data<double>();
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    if (std::isnan(pe[i]) || std::isnan(pa[i])) {
      if (std::isnan(pe[i]) != std::isnan(pa[i])) return INFINITY;
      continue;
    }
    worst = std::max(worst, std::abs(pa[i] - pe[i]) / (atol + rtol * std::abs(pe[i])));
  }
  return worst;
}

struct Tol {
  double atol, rtol;
};
Tol tol_for(DType dt) {
  if (dt == DType::Float32) return {2e-5, 2e-4};
  if (dt == DType::Float16) return {2e-3, 5e-3};
  return {1.6e-2, 2e-2};  // bfloat16
}

// CPU reference in float32 from the same (rounded) inputs.
Tensor cpu_ref(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, bool causal,
               std::optional<double> scale = std::nullopt) {
  Tensor m = mask.defined() && mask.dtype() != DType::Bool ? to(mask, DType::Float32) : mask;
  return scaled_dot_product_attention(to(q, DType::Float32), to(k, DType::Float32), to(v, DType::Float32), m, 0.0,
                                      causal, scale);
}

void check_forward(DType dt, int64_t B, int64_t H, int64_t Nq, int64_t Nk, int64_t D, bool causal,
                   const Tensor& mask, uint32_t seed) {
  Tensor q = random_cpu({B, H, Nq, D}, dt, seed), k = random_cpu({B, H, Nk, D}, dt, seed + 1),
         v = random_cpu({B, H, Nk, D}, dt, seed + 2);
  Tensor gm = mask.defined() ? to(mask, kGpu) : Tensor();
  Tensor out = scaled_dot_product_attention(to(q, kGpu), to(k, kGpu), to(v, kGpu), gm, 0.0, causal);
  ASSERT_EQ(out.device(), kGpu);
  ASSERT_EQ(out.dtype(), dt);
  ASSERT_EQ(out.sizes(), (Shape{B, H, Nq, D}));
  const Tol t = tol_for(dt);
  EXPECT_LE(worst_ratio(out, cpu_ref(q, k, v, mask, causal), t.atol, t.rtol), 1.0)
      << dtype_name(dt) << " B=" << B << " H=" << H << " Nq=" << Nq << " Nk=" << Nk << " D=" << D
      << " causal=" << causal << " mask=" << mask.defined();
}

const DType kDtypes[] = {DType::Float32, DType::BFloat16, DType::Float16};

}  // namespace

TEST(CudaAttention, ForwardMatchesCpuAcrossSizes) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 10;
  for (DType dt : kDtypes) {
    for (int64_t D : {32, 64, 80, 128}) {
      for (auto [nq, nk] : {std::pair<int64_t, int64_t>{1, 1}, {7, 33}, {33, 7}, {128, 128}, {1000, 129}}) {
        for (bool causal : {false, true}) check_forward(dt, 2, 3, nq, nk, D, causal, Tensor(), seed += 3);
      }
    }
  }
}

TEST(CudaAttention, ForwardWithMasks) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 100;
  for (DType dt : kDtypes) {
    for (int64_t D : {32, 64, 128}) {
      // Key padding [B, 1, 1, Nk], a full bool mask [B, H, Nq, Nk] and an additive [Nq, Nk] one.
      seed += 10;
      check_forward(dt, 2, 2, 33, 70, D, false, random_mask({2, 1, 1, 70}, seed, 0.7), seed + 1);
      check_forward(dt, 2, 2, 65, 33, D, false, random_mask({2, 2, 65, 33}, seed + 4, 0.8), seed + 5);
      check_forward(dt, 2, 2, 40, 100, D, false, random_cpu({40, 100}, dt, seed + 8, 2.0), seed + 9);
    }
  }
}

TEST(CudaAttention, FullyMaskedRowIsNanAsOnCpu) {
  SKIP_WITHOUT_GPU();
  for (DType dt : kDtypes) {
    Tensor mask = random_mask({1, 1, 9, 70}, 7, 0.9);
    bool* p = mask.data<bool>();
    for (int j = 0; j < 70; ++j) p[4 * 70 + j] = false;  // row 4 sees nothing
    check_forward(dt, 1, 2, 9, 70, 64, false, mask, 55);
  }
}

TEST(CudaAttention, NonContiguousAndExplicitScale) {
  SKIP_WITHOUT_GPU();
  for (DType dt : kDtypes) {
    // [B, N, H, D] transposed to [B, H, N, D], as a model's projections produce.
    const int64_t B = 2, H = 3, N = 77, D = 64;
    Tensor q = random_cpu({B, N, H, D}, dt, 1), k = random_cpu({B, N, H, D}, dt, 2), v = random_cpu({B, N, H, D}, dt, 3);
    Tensor qt = transpose(q, 1, 2), kt = transpose(k, 1, 2), vt = transpose(v, 1, 2);
    Tensor out = scaled_dot_product_attention(transpose(to(q, kGpu), 1, 2), transpose(to(k, kGpu), 1, 2),
                                              transpose(to(v, kGpu), 1, 2), Tensor(), 0.0, true, 0.3);
    const Tol t = tol_for(dt);
    EXPECT_LE(worst_ratio(out, cpu_ref(qt, kt, vt, Tensor(), true, 0.3), t.atol, t.rtol), 1.0) << dtype_name(dt);
    // A head-dim stride that is not 1 takes the CUDA-core kernel.
    Tensor qs = random_cpu({B, H, D, N}, dt, 4);
    Tensor qd = transpose(qs, -1, -2);
    Tensor out2 = scaled_dot_product_attention(transpose(to(qs, kGpu), -1, -2), to(kt, kGpu), to(vt, kGpu));
    EXPECT_LE(worst_ratio(out2, cpu_ref(qd, kt, vt, Tensor(), false), t.atol, t.rtol), 1.0) << dtype_name(dt);
  }
}

TEST(CudaAttention, GradientsMatchCpu) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 300;
  for (DType dt : kDtypes) {
    for (int64_t D : {32, 64, 128}) {
      for (auto [nq, nk] : {std::pair<int64_t, int64_t>{7, 33}, {130, 65}}) {
        for (int variant = 0; variant < 3; ++variant) {  // plain, causal, key padding
          const bool causal = variant == 1;
          Tensor mask = variant == 2 ? random_mask({2, 1, 1, nk}, seed++, 0.7) : Tensor();
          if (mask.defined()) mask.data<bool>()[0] = mask.data<bool>()[nk] = true;  // every row keeps a key
          Tensor q = random_cpu({2, 2, nq, D}, dt, seed++), k = random_cpu({2, 2, nk, D}, dt, seed++),
                 v = random_cpu({2, 2, nk, D}, dt, seed++), go = random_cpu({2, 2, nq, D}, dt, seed++);
          Tensor gq = to(q, kGpu), gk = to(k, kGpu), gv = to(v, kGpu);
          gq.requires_grad_();
          gk.requires_grad_();
          gv.requires_grad_();
          Tensor out = scaled_dot_product_attention(gq, gk, gv, mask.defined() ? to(mask, kGpu) : Tensor(), 0.0, causal);
          out.backward(to(go, kGpu));
          Tensor cq = to(q, DType::Float32), ck = to(k, DType::Float32), cv = to(v, DType::Float32);
          cq.requires_grad_();
          ck.requires_grad_();
          cv.requires_grad_();
          scaled_dot_product_attention(cq, ck, cv, mask, 0.0, causal).backward(to(go, DType::Float32));
          Tol t = tol_for(dt);
          if (dt != DType::Float32) t = {t.atol * 3, t.rtol * 3};  // the gradients chain three rounded products
          const std::string what = str_cat(dtype_name(dt), " D=", D, " Nq=", nq, " Nk=", nk, " variant=", variant);
          EXPECT_LE(worst_ratio(gq.grad(), cq.grad(), t.atol, t.rtol), 1.0) << "dq " << what;
          EXPECT_LE(worst_ratio(gk.grad(), ck.grad(), t.atol, t.rtol), 1.0) << "dk " << what;
          EXPECT_LE(worst_ratio(gv.grad(), cv.grad(), t.atol, t.rtol), 1.0) << "dv " << what;
        }
      }
    }
  }
}

// cuDNN's fused SDPA takes half types only: float32 raises (never falls back to ours).
TEST(CudaAttention, CudnnBackendRefusesFloat32) {
  SKIP_WITHOUT_GPU();
  Tensor q = to(random_cpu({1, 1, 4, 32}, DType::Float32, 1), kGpu);
  const std::string before = backend("attention");
  set_backend("attention", "cudnn");
  EXPECT_THROW(scaled_dot_product_attention(q, q, q), NotImplementedError);
  set_backend("attention", before);
}
