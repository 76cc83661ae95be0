// CUDA GEMM tests (kernels/cuda/gemm*.cu, matmul.cu): every layout, odd sizes, padded and
// tight leading dims (fast and fallback paths), batches with broadcast, all dtypes, the fused
// epilogue, int8 exactly, ours against cuBLAS, and the matmul op on CUDA tensors. Outputs are
// poisoned (NaN bytes) before each run and the padding beyond N must stay poisoned. Compiled in
// every build; tests that launch kernels skip where no GPU is visible.
#include <gtest/gtest.h>

#include "core/cuda_info.h"

#ifdef BIGMODEL_WITH_CUDA
#include <array>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/ops/creation.h"
#include "core/ops/linalg.h"
#include "core/ops/view.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_testing.h"

using namespace bigmodel;
using namespace bigmodel::cuda;
namespace devmem = bigmodel::cuda::testing;
using devmem::DeviceBuffer;

namespace {

#define REQUIRE_GPU() \
  if (bigmodel::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device visible"

enum class Backend { Ours, Cublas, Dispatch };
enum class Pad { Tight, Aligned };  // leading dim == columns, or rounded up to 8 plus 8

struct Case {
  int64_t M, N, K;
  bool ta = false, tb = false;
  Pad pad = Pad::Tight;
  int64_t batch = 1;
  bool broadcast_b = false;
  float alpha = 1.0f, beta = 0.0f;
  bool bias = false;
  GemmActivation act = GemmActivation::None;
};

std::string describe(const Case& c) {
  return "M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) +
         (c.ta ? " T" : " N") + (c.tb ? "T" : "N") + (c.pad == Pad::Aligned ? " aligned" : " tight") +
         " batch=" + std::to_string(c.batch) + (c.broadcast_b ? " bcast" : "") + " alpha=" + std::to_string(c.alpha) +
         " beta=" + std::to_string(c.beta) + (c.bias ? " bias" : "") + " act=" + std::to_string(static_cast<int>(c.act));
}

int64_t leading(int64_t cols, Pad pad) { return pad == Pad::Tight ? std::max<int64_t>(cols, 1) : (cols + 7) / 8 * 8 + 8; }

double gelu_tanh(double v) { return 0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))); }

// Unit roundoff of each output dtype (the final rounding of C).
double out_eps(DType t) {
  switch (t) {
    case DType::BFloat16: return 1.0 / 256;
    case DType::Float16: return 1.0 / 2048;
    case DType::Float32: return 1.0 / (1 << 23);
    default: return 1e-16;
  }
}

template <typename T>
std::vector<T> random_values(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(u(rng));
  return v;
}

template <typename T>
double as_double(T v) {
  return static_cast<double>(static_cast<float>(v));
}
template <>
double as_double(double v) {
  return v;
}

// Runs one case with input type TIn and output type TOut on `backend` and checks it against a
// float64 reference computed from the very values stored on the device.
template <typename TIn, typename TOut>
void check_case(const Case& c, DType in, DType out, Backend backend, std::mt19937& rng) {
  SCOPED_TRACE(describe(c) + " in=" + dtype_name(in) + " out=" + dtype_name(out));
  const int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
  const int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
  const int64_t lda = leading(a_cols, c.pad), ldb = leading(b_cols, c.pad), ldc = leading(c.N, c.pad);
  const int64_t sa = a_rows * lda, sb = c.broadcast_b ? 0 : b_rows * ldb, sc = c.M * ldc;
  const int64_t nb = c.broadcast_b ? 1 : c.batch;
  std::vector<TIn> A = random_values<TIn>(std::max<int64_t>(sa * c.batch, 1), rng);
  std::vector<TIn> B = random_values<TIn>(std::max<int64_t>(b_rows * ldb * nb, 1), rng);
  std::vector<TOut> bias = random_values<TOut>(std::max<int64_t>(c.N, 1), rng);
  std::vector<TOut> C(std::max<int64_t>(sc * c.batch, 1));
  if (c.beta != 0.0f) C = random_values<TOut>(C.size(), rng);
  else std::memset(static_cast<void*>(C.data()), 0xff, C.size() * sizeof(TOut));  // NaN in every float type

  DeviceBuffer dA(A.size() * sizeof(TIn)), dB(B.size() * sizeof(TIn)), dC(C.size() * sizeof(TOut)),
      dbias(bias.size() * sizeof(TOut));
  devmem::copy_to_device(dA.get(), A.data(), dA.bytes());
  devmem::copy_to_device(dB.get(), B.data(), dB.bytes());
  devmem::copy_to_device(dC.get(), C.data(), dC.bytes());
  devmem::copy_to_device(dbias.get(), bias.data(), dbias.bytes());

  GemmParams p;
  p.M = c.M, p.N = c.N, p.K = c.K, p.trans_a = c.ta, p.trans_b = c.tb;
  p.A = dA.get(), p.lda = lda, p.stride_a = sa;
  p.B = dB.get(), p.ldb = ldb, p.stride_b = sb;
  p.C = dC.get(), p.ldc = ldc, p.stride_c = sc;
  p.batch = c.batch, p.alpha = c.alpha, p.beta = c.beta, p.in_dtype = in, p.out_dtype = out;
  p.bias = c.bias ? dbias.get() : nullptr;
  p.act = c.act;
  if (backend == Backend::Ours) gemm_ours(p);
  else if (backend == Backend::Cublas) gemm_cublas(p);
  else gemm(p);
  devmem::device_synchronize();
  std::vector<TOut> got(C.size());
  devmem::copy_to_host(got.data(), dC.get(), dC.bytes());

  // Accumulation in float32 over K terms: allow 2e-5 of sum |a||b| (a few sqrt(K) roundings
  // at K=1000; float64 inputs get 1e-12), plus the output rounding and 1e-6 absolute.
  const double acc_tol = in == DType::Float64 ? 1e-12 : 2e-5;
  int64_t bad = 0;
  for (int64_t b = 0; b < c.batch; ++b) {
    const TIn* a = A.data() + b * sa;
    const TIn* bm = B.data() + b * sb;
    for (int64_t m = 0; m < c.M; ++m) {
      for (int64_t n = 0; n < ldc; ++n) {
        const size_t idx = b * sc + m * ldc + n;
        if (n >= c.N) {  // padding: must still hold what was there (poison or old values)
          if (std::memcmp(&got[idx], &C[idx], sizeof(TOut)) != 0 && ++bad < 5)
            ADD_FAILURE() << "padding element (" << b << "," << m << "," << n << ") was written";
          continue;
        }
        double dot = 0, absdot = 0;
        for (int64_t k = 0; k < c.K; ++k) {
          const double x = as_double(c.ta ? a[k * lda + m] : a[m * lda + k]);
          const double y = as_double(c.tb ? bm[n * ldb + k] : bm[k * ldb + n]);
          dot += x * y;
          absdot += std::fabs(x * y);
        }
        double v = c.alpha * dot;
        if (c.beta != 0.0f) v += c.beta * as_double(C[idx]);
        if (c.bias) v += as_double(bias[n]);
        if (c.act == GemmActivation::ReLU) v = v > 0 ? v : 0;
        if (c.act == GemmActivation::GELUTanh) v = gelu_tanh(v);
        const double tol = acc_tol * (std::fabs(c.alpha) * absdot + std::fabs(c.beta) + 1.0) +
                           2 * out_eps(out) * std::fabs(v) + 1e-6;
        const double g = as_double(got[idx]);
        if (!(std::fabs(g - v) <= tol) && ++bad < 5)  // NaN fails too
          ADD_FAILURE() << "C(" << b << "," << m << "," << n << ") = " << g << ", expected " << v << " (tol " << tol
                        << ")";
      }
    }
  }
  EXPECT_EQ(bad, 0) << "wrong elements";
}

const std::vector<std::array<int64_t, 3>> kOddSizes = {
    {1, 1, 1}, {7, 33, 127}, {33, 7, 1000}, {127, 1000, 7}, {1000, 127, 33}, {1, 1000, 127}, {1000, 1, 33},
    {130, 257, 64}};

template <typename TIn, typename TOut>
void sweep_layouts(DType in, DType out, Backend backend, Pad pad, uint32_t seed) {
  std::mt19937 rng(seed);
  for (const auto& s : kOddSizes)
    for (int layout = 0; layout < 4; ++layout) {
      Case c{s[0], s[1], s[2]};
      c.ta = layout & 1;
      c.tb = layout & 2;
      c.pad = pad;
      check_case<TIn, TOut>(c, in, out, backend, rng);
    }
}

}  // namespace

TEST(CudaGemm, Float32AllLayoutsOddSizes) {
  REQUIRE_GPU();
  sweep_layouts<float, float>(DType::Float32, DType::Float32, Backend::Ours, Pad::Tight, 1);
  sweep_layouts<float, float>(DType::Float32, DType::Float32, Backend::Ours, Pad::Aligned, 2);
}

TEST(CudaGemm, BFloat16AllLayoutsOddSizes) {
  REQUIRE_GPU();
  // Tight leading dims of odd sizes take the simple kernel, aligned ones the tensor cores.
  sweep_layouts<BFloat16, BFloat16>(DType::BFloat16, DType::BFloat16, Backend::Ours, Pad::Tight, 3);
  sweep_layouts<BFloat16, BFloat16>(DType::BFloat16, DType::BFloat16, Backend::Ours, Pad::Aligned, 4);
  sweep_layouts<BFloat16, float>(DType::BFloat16, DType::Float32, Backend::Ours, Pad::Aligned, 5);
}

TEST(CudaGemm, Float16AllLayoutsOddSizes) {
  REQUIRE_GPU();
  sweep_layouts<Half, Half>(DType::Float16, DType::Float16, Backend::Ours, Pad::Tight, 6);
  sweep_layouts<Half, Half>(DType::Float16, DType::Float16, Backend::Ours, Pad::Aligned, 7);
  sweep_layouts<Half, float>(DType::Float16, DType::Float32, Backend::Ours, Pad::Aligned, 8);
}

TEST(CudaGemm, Float64OnSimpleKernel) {
  REQUIRE_GPU();
  sweep_layouts<double, double>(DType::Float64, DType::Float64, Backend::Ours, Pad::Tight, 9);
}

TEST(CudaGemm, SizesThatFillSeveralTilesAndStages) {
  REQUIRE_GPU();
  std::mt19937 rng(10);
  for (int layout = 0; layout < 4; ++layout) {
    Case c{300, 260, 520};  // 3 x 3 block tiles, 17 k-tiles of 32 (65 of 8): the pipelines wrap
    c.ta = layout & 1;
    c.tb = layout & 2;
    c.pad = Pad::Aligned;
    check_case<float, float>(c, DType::Float32, DType::Float32, Backend::Ours, rng);
    check_case<BFloat16, BFloat16>(c, DType::BFloat16, DType::BFloat16, Backend::Ours, rng);
    Case full{256, 384, 136};  // whole tiles, aligned: SGEMM's predicate-free variant
    full.ta = layout & 1;
    full.tb = layout & 2;
    check_case<float, float>(full, DType::Float32, DType::Float32, Backend::Ours, rng);
    check_case<BFloat16, float>(full, DType::BFloat16, DType::Float32, Backend::Ours, rng);
  }
}

TEST(CudaGemm, BatchedWithBroadcast) {
  REQUIRE_GPU();
  std::mt19937 rng(11);
  for (bool bcast : {false, true})
    for (Pad pad : {Pad::Tight, Pad::Aligned})
      for (int layout : {0, 3}) {
        Case c{33, 70, 45};
        c.ta = layout & 1;
        c.tb = layout & 2;
        c.pad = pad;
        c.batch = 3;
        c.broadcast_b = bcast;
        check_case<float, float>(c, DType::Float32, DType::Float32, Backend::Ours, rng);
        check_case<BFloat16, BFloat16>(c, DType::BFloat16, DType::BFloat16, Backend::Ours, rng);
        check_case<Half, float>(c, DType::Float16, DType::Float32, Backend::Ours, rng);
      }
}

TEST(CudaGemm, FusedEpilogues) {
  REQUIRE_GPU();
  std::mt19937 rng(12);
  for (Backend backend : {Backend::Ours, Backend::Cublas})
    for (GemmActivation act : {GemmActivation::None, GemmActivation::ReLU, GemmActivation::GELUTanh})
      for (float beta : {0.0f, -1.5f}) {
        Case c{67, 136, 77};
        c.tb = true;  // x @ W^T, as nn.Linear calls it
        c.pad = Pad::Aligned;
        c.alpha = 0.75f;
        c.beta = beta;
        c.bias = true;
        c.act = act;
        check_case<float, float>(c, DType::Float32, DType::Float32, backend, rng);
        check_case<BFloat16, BFloat16>(c, DType::BFloat16, DType::BFloat16, backend, rng);
        check_case<Half, float>(c, DType::Float16, DType::Float32, backend, rng);
        c.pad = Pad::Tight;  // the simple kernel's epilogue too
        if (backend == Backend::Ours) check_case<BFloat16, BFloat16>(c, DType::BFloat16, DType::BFloat16, backend, rng);
      }
}

TEST(CudaGemm, EmptyInnerDimensionGivesBiasOnly) {
  REQUIRE_GPU();
  std::mt19937 rng(13);
  Case c{5, 9, 0};
  c.bias = true;
  check_case<float, float>(c, DType::Float32, DType::Float32, Backend::Ours, rng);
  c.pad = Pad::Aligned;
  check_case<BFloat16, BFloat16>(c, DType::BFloat16, DType::BFloat16, Backend::Ours, rng);
}

TEST(CudaGemm, CublasBaselineMatchesReference) {
  REQUIRE_GPU();
  std::mt19937 rng(14);
  for (int layout = 0; layout < 4; ++layout) {
    Case c{127, 200, 96};
    c.ta = layout & 1;
    c.tb = layout & 2;
    c.pad = Pad::Aligned;
    c.batch = 2;
    check_case<float, float>(c, DType::Float32, DType::Float32, Backend::Cublas, rng);
    check_case<BFloat16, BFloat16>(c, DType::BFloat16, DType::BFloat16, Backend::Cublas, rng);
  }
}

TEST(CudaGemm, BackendSwitchRoutesGemm) {
  REQUIRE_GPU();
  std::mt19937 rng(15);
  const std::string before = gemm_backend();
  Case c{64, 48, 40};
  c.pad = Pad::Aligned;
  set_gemm_backend("cublas");
  EXPECT_EQ(gemm_backend(), "cublas");
  check_case<float, float>(c, DType::Float32, DType::Float32, Backend::Dispatch, rng);
  set_gemm_backend("ours");
  EXPECT_EQ(gemm_backend(), "ours");
  check_case<float, float>(c, DType::Float32, DType::Float32, Backend::Dispatch, rng);
  set_gemm_backend(before);
}

// Ours and cuBLAS on the same inputs (float32 output): the two sums differ only in order.
TEST(CudaGemm, OursAgreesWithCublas) {
  REQUIRE_GPU();
  std::mt19937 rng(16);
  for (DType dt : {DType::Float32, DType::BFloat16}) {
    const int64_t M = 384, N = 256, K = 512;
    const size_t item = dt == DType::Float32 ? 4 : 2;
    std::vector<float> a = random_values<float>(M * K, rng), b = random_values<float>(K * N, rng);
    std::vector<uint16_t> ah(M * K), bh(K * N);
    for (size_t i = 0; i < ah.size(); ++i) ah[i] = BFloat16(a[i]).bits;
    for (size_t i = 0; i < bh.size(); ++i) bh[i] = BFloat16(b[i]).bits;
    DeviceBuffer dA(M * K * item), dB(K * N * item), d0(M * N * 4), d1(M * N * 4);
    devmem::copy_to_device(dA.get(), dt == DType::Float32 ? static_cast<void*>(a.data()) : ah.data(), dA.bytes());
    devmem::copy_to_device(dB.get(), dt == DType::Float32 ? static_cast<void*>(b.data()) : bh.data(), dB.bytes());
    devmem::device_memset(d0.get(), 0xff, d0.bytes());
    devmem::device_memset(d1.get(), 0xff, d1.bytes());
    GemmParams p;
    p.M = M, p.N = N, p.K = K, p.A = dA.get(), p.lda = K, p.B = dB.get(), p.ldb = N, p.ldc = N;
    p.in_dtype = dt, p.out_dtype = DType::Float32;  // compare before any output rounding
    p.C = d0.get();
    gemm_ours(p);
    p.C = d1.get();
    gemm_cublas(p);
    devmem::device_synchronize();
    std::vector<float> r0(M * N), r1(M * N);
    devmem::copy_to_host(r0.data(), d0.get(), d0.bytes());
    devmem::copy_to_host(r1.data(), d1.get(), d1.bytes());
    double num = 0, den = 0;
    for (size_t i = 0; i < r0.size(); ++i) {
      ASSERT_TRUE(std::isfinite(r0[i]) && std::isfinite(r1[i])) << "element " << i;
      num += (double(r0[i]) - r1[i]) * (double(r0[i]) - r1[i]);
      den += double(r1[i]) * r1[i];
    }
    // Summation-order noise is ~u * sqrt(K) relative (about 2e-6 here); a wrong index is O(1).
    EXPECT_LT(std::sqrt(num / den), 1e-5) << dtype_name(dt);
  }
}

// cuBLASLt chooses an algorithm for the pointer alignments it is told (the wrapper passes each
// pointer's own) and the wrapper caches it per problem: the same shape with less aligned
// pointers must get a plan of its own, not the 256-byte one.
TEST(CudaGemm, CublasPlanFollowsPointerAlignment) {
  REQUIRE_GPU();
  std::mt19937 rng(17);
  const int64_t M = 40, N = 24, K = 16;
  std::vector<float> a = random_values<float>(M * K + 1, rng), b = random_values<float>(K * N + 1, rng);
  DeviceBuffer dA(a.size() * 4), dB(b.size() * 4), dC((M * N + 1) * 4);
  devmem::copy_to_device(dA.get(), a.data(), dA.bytes());
  devmem::copy_to_device(dB.get(), b.data(), dB.bytes());
  for (int64_t off : {0, 1}) {  // 256-byte aligned, then 4-byte aligned
    SCOPED_TRACE("offset " + std::to_string(off));
    devmem::device_memset(dC.get(), 0xff, dC.bytes());
    GemmParams p;
    p.M = M, p.N = N, p.K = K, p.lda = K, p.ldb = N, p.ldc = N;
    p.A = static_cast<float*>(dA.get()) + off, p.B = static_cast<float*>(dB.get()) + off;
    p.C = static_cast<float*>(dC.get()) + off;
    gemm_cublas(p);
    devmem::device_synchronize();
    std::vector<float> got(M * N + 1);
    devmem::copy_to_host(got.data(), dC.get(), dC.bytes());
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double ref = 0;
        for (int64_t k = 0; k < K; ++k) ref += double(a[off + m * K + k]) * b[off + k * N + n];
        ASSERT_NEAR(got[off + m * N + n], ref, 1e-5) << "(" << m << "," << n << ")";
      }
  }
}

// ---- int8 ------------------------------------------------------------------------------------

namespace {

void check_int8(const Case& c, Backend backend, bool accumulate, std::mt19937& rng) {
  SCOPED_TRACE(describe(c) + " int8" + (accumulate ? " accumulate" : ""));
  const int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
  const int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
  const int64_t lda = leading(a_cols, c.pad) * (c.pad == Pad::Aligned ? 2 : 1);  // multiples of 16
  const int64_t ldb = leading(b_cols, c.pad) * (c.pad == Pad::Aligned ? 2 : 1);
  const int64_t ldc = leading(c.N, c.pad);
  const int64_t sa = a_rows * lda, sb = b_rows * ldb, sc = c.M * ldc;
  std::uniform_int_distribution<int> u(-128, 127);
  std::vector<int8_t> A(std::max<int64_t>(sa * c.batch, 1)), B(std::max<int64_t>(sb * c.batch, 1));
  for (auto& x : A) x = static_cast<int8_t>(u(rng));
  for (auto& x : B) x = static_cast<int8_t>(u(rng));
  std::vector<int32_t> C(std::max<int64_t>(sc * c.batch, 1));
  for (auto& x : C) x = accumulate ? u(rng) * 1000 : 0x7f7f7f7f;  // poison: 2139062143
  DeviceBuffer dA(A.size()), dB(B.size()), dC(C.size() * 4);
  devmem::copy_to_device(dA.get(), A.data(), A.size());
  devmem::copy_to_device(dB.get(), B.data(), B.size());
  devmem::copy_to_device(dC.get(), C.data(), C.size() * 4);
  GemmInt8Params p;
  p.M = c.M, p.N = c.N, p.K = c.K, p.trans_a = c.ta, p.trans_b = c.tb;
  p.A = static_cast<const int8_t*>(dA.get()), p.lda = lda, p.stride_a = sa;
  p.B = static_cast<const int8_t*>(dB.get()), p.ldb = ldb, p.stride_b = sb;
  p.C = static_cast<int32_t*>(dC.get()), p.ldc = ldc, p.stride_c = sc;
  p.batch = c.batch, p.accumulate = accumulate;
  if (backend == Backend::Ours) gemm_int8_ours(p);
  else gemm_int8_cublas(p);
  devmem::device_synchronize();
  std::vector<int32_t> got(C.size());
  devmem::copy_to_host(got.data(), dC.get(), dC.bytes());
  int64_t bad = 0;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t m = 0; m < c.M; ++m)
      for (int64_t n = 0; n < ldc; ++n) {
        const size_t idx = b * sc + m * ldc + n;
        int64_t want = C[idx];  // padding keeps its value
        if (n < c.N) {
          int64_t dot = 0;
          for (int64_t k = 0; k < c.K; ++k) {
            const int64_t x = c.ta ? A[b * sa + k * lda + m] : A[b * sa + m * lda + k];
            const int64_t y = c.tb ? B[b * sb + n * ldb + k] : B[b * sb + k * ldb + n];
            dot += x * y;
          }
          want = accumulate ? dot + C[idx] : dot;
        }
        if (got[idx] != want && ++bad < 5)
          ADD_FAILURE() << "C(" << b << "," << m << "," << n << ") = " << got[idx] << ", expected " << want;
      }
  EXPECT_EQ(bad, 0) << "wrong elements";
}

}  // namespace

TEST(CudaGemm, Int8AllLayoutsOddSizesExact) {
  REQUIRE_GPU();
  std::mt19937 rng(20);
  for (const auto& s : kOddSizes)
    for (int layout = 0; layout < 4; ++layout) {
      Case c{s[0], s[1], s[2]};
      c.ta = layout & 1;
      c.tb = layout & 2;
      check_int8(c, Backend::Ours, false, rng);
    }
}

TEST(CudaGemm, Int8TensorCorePathExact) {
  REQUIRE_GPU();
  std::mt19937 rng(21);
  // A stored M x K, B stored N x K, K and leading dims multiples of 16: the mma.sync s8 kernel.
  const std::vector<std::array<int64_t, 3>> sizes = {{1, 1, 16}, {7, 33, 48}, {127, 1000, 64}, {1000, 127, 1008},
                                                     {300, 260, 512}};
  for (const auto& s : sizes) {
    Case c{s[0], s[1], s[2]};
    c.tb = true;
    c.pad = Pad::Aligned;
    check_int8(c, Backend::Ours, false, rng);
    if (c.M % 4 == 0 && c.N % 4 == 0) check_int8(c, Backend::Cublas, false, rng);  // its IMMA constraints
  }
  Case c{200, 136, 96};
  c.tb = true;
  c.pad = Pad::Aligned;
  c.batch = 3;
  check_int8(c, Backend::Ours, true, rng);
  check_int8(c, Backend::Cublas, true, rng);
}

// ---- validation (no GPU needed: checked before any launch) ----------------------------------------

TEST(CudaGemmArgs, BadArgumentsRaise) {
  GemmParams p;
  p.M = 4, p.N = 4, p.K = 8, p.lda = 4, p.ldb = 4, p.ldc = 4;  // lda < K
  p.A = p.B = reinterpret_cast<void*>(0x1000);
  p.C = reinterpret_cast<void*>(0x2000);
  EXPECT_THROW(gemm_ours(p), ValueError);
  EXPECT_THROW(gemm_cublas(p), ValueError);
  p.lda = 8;
  p.in_dtype = DType::BFloat16;
  p.out_dtype = DType::Float16;
  EXPECT_THROW(gemm_ours(p), DTypeError);
  p.in_dtype = DType::Int32;
  p.out_dtype = DType::Int32;
  EXPECT_THROW(gemm_ours(p), DTypeError);
  GemmInt8Params q;
  q.M = q.N = q.K = 8, q.trans_b = false, q.lda = 8, q.ldb = 8, q.ldc = 8;
  q.A = q.B = reinterpret_cast<const int8_t*>(0x1000);
  q.C = reinterpret_cast<int32_t*>(0x2000);
  EXPECT_THROW(gemm_int8_cublas(q), ValueError);  // cuBLAS int8 wants B stored N x K
  EXPECT_THROW(set_gemm_backend("fastest"), ValueError);
  GemmParams empty;  // M = N = 0: nothing to do, no pointer is touched
  empty.ldc = empty.lda = empty.ldb = 1;
  EXPECT_NO_THROW(gemm_ours(empty));
}

// ---- the matmul op on CUDA tensors (kernels/cuda/matmul.cu) ---------------------------------------

TEST(CudaGemm, MatmulOpMatchesCpu) {
  REQUIRE_GPU();
  const Device gpu(DeviceType::CUDA, 0);
  auto check = [&](const Tensor& a, const Tensor& b) {
    Tensor want = matmul(a, b);
    Tensor got = to(matmul(to(a, gpu), to(b, gpu)), Device());
    ASSERT_EQ(got.sizes(), want.sizes());
    Tensor w = contiguous(want), g = contiguous(got);
    const float* pw = w.data<float>();
    const float* pg = g.data<float>();
    for (int64_t i = 0; i < w.numel(); ++i)
      ASSERT_NEAR(pg[i], pw[i], 1e-4 + 1e-4 * std::fabs(pw[i])) << "element " << i;
  };
  check(randn({37, 29}), randn({29, 43}));
  check(randn({5, 37, 29}), randn({29, 43}));                      // folded into one GEMM
  check(transpose(randn({29, 37}), 0, 1), transpose(randn({43, 29}), 0, 1));  // TT views, no copy
  check(randn({3, 1, 7, 9}), randn({2, 9, 5}));                    // broadcast batch dims
  check(slice(randn({6, 30, 20}), 2, 0, 20, 2), randn({6, 10, 11}));  // strided columns: copied
}

#else  // built without CUDA

TEST(CudaGemm, SkippedWithoutCudaBuild) { GTEST_SKIP() << "bigmodel was built without CUDA"; }

#endif
