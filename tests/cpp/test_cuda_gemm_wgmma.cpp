// Tests of the Hopper GEMM (kernels/cuda/gemm_wgmma.cu: TMA + wgmma, sm_90a): the wgmma kernel
// and the mma.sync kernel (gemm_tc.cu) on the same inputs against a float64 CPU reference, for
// every layout, odd sizes, long K, batches with broadcast operands, the fused epilogue (alpha,
// beta, bias, activations, aux), float16 / bfloat16 in and float32 out; outputs poisoned (NaN
// bytes) and the padding past N checked untouched; a capped grid (several work items per
// block of the persistent kernel); the dispatcher's choice and its switch
// BIGMODEL_GEMM_WGMMA=0. Kernel tests skip without a GPU, and without a compute capability 9.0
// one (the kernel exists only for sm_90a).
#include <gtest/gtest.h>

#include "tests/cpp/cuda_test_skip.h"

#ifdef BIGMODEL_WITH_CUDA
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/half.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_internal.h"
#include "kernels/cuda/gemm_testing.h"

using namespace bigmodel;
using namespace bigmodel::cuda;
namespace devmem = bigmodel::cuda::testing;
using devmem::DeviceBuffer;

namespace {

#define SKIP_WITHOUT_WGMMA()                                                                      \
  SKIP_WITHOUT_GPU();                                                                             \
  if (!gemm_detail::wgmma_gemm_available())                                                       \
  GTEST_SKIP() << "the wgmma GEMM needs a compute capability 9.0 GPU (H100/H200) and the driver's " \
                  "cuTensorMapEncodeTiled"

// Sets an environment variable for one scope and restores what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_.c_str(), old_.c_str(), 1);
    else unsetenv(name_.c_str());
  }

 private:
  std::string name_, old_;
  bool had_ = false;
};

enum class Kernel { Wgmma, MmaSync, Dispatch };

struct Case {
  int64_t M, N, K;
  bool ta = false, tb = false;
  int64_t batch = 1;
  bool broadcast_a = false, broadcast_b = false;
  float alpha = 1.0f, beta = 0.0f;
  bool bias = false, aux = false;
  GemmActivation act = GemmActivation::None;
};

std::string describe(const Case& c) {
  return "M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) +
         (c.ta ? " T" : " N") + (c.tb ? "T" : "N") + " batch=" + std::to_string(c.batch) +
         (c.broadcast_a ? " bcastA" : "") + (c.broadcast_b ? " bcastB" : "") + " alpha=" + std::to_string(c.alpha) +
         " beta=" + std::to_string(c.beta) + (c.bias ? " bias" : "") + (c.aux ? " aux" : "") +
         " act=" + std::to_string(static_cast<int>(c.act));
}

// Leading dims: a multiple of 8 (TMA's 16-byte rule) with 8 spare columns, so that reading
// past the last column would pick up values and the padding of C can be checked.
int64_t leading(int64_t cols) { return (cols + 7) / 8 * 8 + 8; }

double out_eps(DType t) { return t == DType::BFloat16 ? 1.0 / 256 : (t == DType::Float16 ? 1.0 / 2048 : 1.0 / (1 << 23)); }

double activate_ref(double v, GemmActivation act) {
  switch (act) {
    case GemmActivation::ReLU: return v > 0 ? v : 0;
    case GemmActivation::GELUTanh: return 0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    case GemmActivation::GELU: return 0.5 * v * (1.0 + std::erf(v * 0.7071067811865476));
    default: return v;
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

// Runs `c` on each kernel in `kernels` (fresh poisoned C each time) and checks every result
// against one float64 reference built from the values stored on the device.
template <typename TIn, typename TOut>
void check_case(const Case& c, DType in, DType out, const std::vector<Kernel>& kernels, std::mt19937& rng) {
  SCOPED_TRACE(describe(c) + " in=" + dtype_name(in) + " out=" + dtype_name(out));
  const int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
  const int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
  const int64_t lda = leading(a_cols), ldb = leading(b_cols), ldc = leading(c.N);
  const int64_t sa = c.broadcast_a ? 0 : a_rows * lda, sb = c.broadcast_b ? 0 : b_rows * ldb, sc = c.M * ldc;
  const int64_t na = c.broadcast_a ? 1 : c.batch, nb = c.broadcast_b ? 1 : c.batch;
  const std::vector<TIn> A = random_values<TIn>(a_rows * lda * na, rng);
  const std::vector<TIn> B = random_values<TIn>(b_rows * ldb * nb, rng);
  const std::vector<TOut> bias = random_values<TOut>(c.N, rng);
  std::vector<TOut> C0(sc * c.batch);
  if (c.beta != 0.0f) C0 = random_values<TOut>(C0.size(), rng);
  else std::memset(static_cast<void*>(C0.data()), 0xff, C0.size() * sizeof(TOut));  // NaN in every float type
  std::vector<TOut> aux0(sc * c.batch);
  std::memset(static_cast<void*>(aux0.data()), 0xff, aux0.size() * sizeof(TOut));

  // The reference: pre-activation values (aux) and outputs, float64 (inputs converted once).
  std::vector<double> Ad(A.size()), Bd(B.size());
  for (size_t i = 0; i < A.size(); ++i) Ad[i] = as_double(A[i]);
  for (size_t i = 0; i < B.size(); ++i) Bd[i] = as_double(B[i]);
  std::vector<double> pre(sc * c.batch, 0.0), tol(sc * c.batch, 0.0);
  for (int64_t b = 0; b < c.batch; ++b) {
    const double* a = Ad.data() + b * sa;
    const double* bm = Bd.data() + b * sb;
    for (int64_t m = 0; m < c.M; ++m)
      for (int64_t n = 0; n < c.N; ++n) {
        double dot = 0, absdot = 0;
        for (int64_t k = 0; k < c.K; ++k) {
          const double x = c.ta ? a[k * lda + m] : a[m * lda + k];
          const double y = c.tb ? bm[n * ldb + k] : bm[k * ldb + n];
          dot += x * y;
          absdot += std::fabs(x * y);
        }
        const size_t idx = b * sc + m * ldc + n;
        double v = c.alpha * dot;
        if (c.beta != 0.0f) v += c.beta * as_double(C0[idx]);
        if (c.bias) v += as_double(bias[n]);
        pre[idx] = v;
        // float32 accumulation over K terms, then the output rounding (twice: aux and C).
        tol[idx] = 2e-5 * (std::fabs(c.alpha) * absdot + std::fabs(c.beta) + 1.0) + 2 * out_eps(out) * std::fabs(v) +
                   1e-6;
      }
  }

  DeviceBuffer dA(A.size() * sizeof(TIn)), dB(B.size() * sizeof(TIn)), dC(C0.size() * sizeof(TOut)),
      dbias(bias.size() * sizeof(TOut)), daux(aux0.size() * sizeof(TOut));
  devmem::copy_to_device(dA.get(), A.data(), dA.bytes());
  devmem::copy_to_device(dB.get(), B.data(), dB.bytes());
  devmem::copy_to_device(dbias.get(), bias.data(), dbias.bytes());
  GemmParams p;
  p.M = c.M, p.N = c.N, p.K = c.K, p.trans_a = c.ta, p.trans_b = c.tb;
  p.A = dA.get(), p.lda = lda, p.stride_a = sa;
  p.B = dB.get(), p.ldb = ldb, p.stride_b = sb;
  p.C = dC.get(), p.ldc = ldc, p.stride_c = sc;
  p.batch = c.batch, p.alpha = c.alpha, p.beta = c.beta, p.in_dtype = in, p.out_dtype = out;
  p.bias = c.bias ? dbias.get() : nullptr;
  p.act = c.act;
  if (c.aux) p.aux = daux.get(), p.ld_aux = ldc, p.stride_aux = sc;

  for (Kernel kernel : kernels) {
    SCOPED_TRACE(kernel == Kernel::Wgmma ? "wgmma" : (kernel == Kernel::MmaSync ? "mma.sync" : "gemm_ours"));
    devmem::copy_to_device(dC.get(), C0.data(), dC.bytes());
    devmem::copy_to_device(daux.get(), aux0.data(), daux.bytes());
    if (kernel == Kernel::Dispatch) {
      gemm_ours(p);
    } else {
      ASSERT_TRUE(gemm_detail::check_gemm_params(p));
      if (kernel == Kernel::Wgmma) {
        ASSERT_TRUE(gemm_detail::wgmma_gemm_supported(p));
        gemm_detail::launch_gemm_wgmma(p, nullptr);
      } else {
        ASSERT_TRUE(gemm_detail::tc_gemm_supported(p));
        gemm_detail::launch_gemm_tc(p, nullptr);
      }
    }
    devmem::device_synchronize();
    std::vector<TOut> got(C0.size()), got_aux(aux0.size());
    devmem::copy_to_host(got.data(), dC.get(), dC.bytes());
    devmem::copy_to_host(got_aux.data(), daux.get(), daux.bytes());
    int64_t bad = 0;
    for (int64_t b = 0; b < c.batch; ++b)
      for (int64_t m = 0; m < c.M; ++m)
        for (int64_t n = 0; n < ldc; ++n) {
          const size_t idx = b * sc + m * ldc + n;
          if (n >= c.N) {  // padding: still the poison (or the old values)
            if ((std::memcmp(&got[idx], &C0[idx], sizeof(TOut)) != 0 ||
                 std::memcmp(&got_aux[idx], &aux0[idx], sizeof(TOut)) != 0) &&
                ++bad < 5)
              ADD_FAILURE() << "padding element (" << b << "," << m << "," << n << ") was written";
            continue;
          }
          const double want = activate_ref(pre[idx], c.act), g = as_double(got[idx]);
          if (!(std::fabs(g - want) <= tol[idx]) && ++bad < 5)  // NaN fails too
            ADD_FAILURE() << "C(" << b << "," << m << "," << n << ") = " << g << ", expected " << want << " (tol "
                          << tol[idx] << ")";
          if (c.aux) {
            const double ga = as_double(got_aux[idx]);
            if (!(std::fabs(ga - pre[idx]) <= tol[idx]) && ++bad < 5)
              ADD_FAILURE() << "aux(" << b << "," << m << "," << n << ") = " << ga << ", expected " << pre[idx];
          } else if (std::memcmp(&got_aux[idx], &aux0[idx], sizeof(TOut)) != 0 && ++bad < 5) {
            ADD_FAILURE() << "aux written although p.aux is null";
          }
        }
    EXPECT_EQ(bad, 0) << "wrong elements";
  }
}

const std::vector<Kernel> kBoth = {Kernel::Wgmma, Kernel::MmaSync};

// Sizes around the 128 x 256 x 64 tile: single elements, tails in every dimension, exact
// tiles, more k-tiles than the 4 stages (the ring wraps), tiles wholly past N in a block.
const std::vector<std::array<int64_t, 3>> kSizes = {
    {1, 1, 1},      {7, 33, 7},     {33, 7, 1000},   {1000, 33, 33},  {1023, 1000, 64},
    {1, 1023, 127}, {1000, 1, 200}, {128, 256, 64},  {257, 513, 520}, {129, 100, 65}};

template <typename TIn, typename TOut>
void sweep(DType in, DType out, uint32_t seed) {
  std::mt19937 rng(seed);
  for (const auto& s : kSizes)
    for (int layout = 0; layout < 4; ++layout) {
      Case c{s[0], s[1], s[2]};
      c.ta = layout & 1;
      c.tb = layout & 2;
      check_case<TIn, TOut>(c, in, out, kBoth, rng);
    }
}

GemmParams aligned_params(const void* a, const void* b, void* c) {
  GemmParams p;
  p.M = 64, p.N = 64, p.K = 64, p.A = a, p.lda = 64, p.B = b, p.ldb = 64, p.C = c, p.ldc = 64;
  p.in_dtype = p.out_dtype = DType::BFloat16;
  return p;
}

}  // namespace

// Needs no GPU: the switch is read before any device query.
TEST(CudaGemmWgmma, EnvironmentSwitchTurnsItOff) {
  alignas(16) static uint16_t buf[3][64 * 64];
  GemmParams p = aligned_params(buf[0], buf[1], buf[2]);
  ScopedEnv off("BIGMODEL_GEMM_WGMMA", "0");
  EXPECT_FALSE(gemm_detail::wgmma_gemm_supported(p));
}

TEST(CudaGemmWgmma, SupportRules) {
  SKIP_WITHOUT_WGMMA();
  DeviceBuffer a(64 * 72 * 2 + 64), b(64 * 72 * 2 + 64), c(64 * 64 * 4);
  GemmParams p = aligned_params(a.get(), b.get(), c.get());
  EXPECT_TRUE(gemm_detail::wgmma_gemm_supported(p));
  GemmParams q = p;
  q.out_dtype = DType::Float32;
  EXPECT_TRUE(gemm_detail::wgmma_gemm_supported(q));
  q = p, q.in_dtype = q.out_dtype = DType::Float16;
  EXPECT_TRUE(gemm_detail::wgmma_gemm_supported(q));
  q = p, q.in_dtype = q.out_dtype = DType::Float32;
  EXPECT_FALSE(gemm_detail::wgmma_gemm_supported(q)) << "float32 runs on the SGEMM kernel";
  q = p, q.lda = 65;
  EXPECT_FALSE(gemm_detail::wgmma_gemm_supported(q)) << "lda not a multiple of 8 elements";
  q = p, q.A = static_cast<const char*>(a.get()) + 2;
  EXPECT_FALSE(gemm_detail::wgmma_gemm_supported(q)) << "A not 16-byte aligned";
  q = p, q.batch = 2, q.stride_b = 64 * 64 + 4;
  EXPECT_FALSE(gemm_detail::wgmma_gemm_supported(q)) << "batch stride not a multiple of 8 elements";
  q = p, q.batch = 2, q.stride_b = 0, q.stride_a = 64 * 64, q.stride_c = 64 * 64;
  EXPECT_TRUE(gemm_detail::wgmma_gemm_supported(q)) << "broadcast B";
  q = p, q.K = 0;
  EXPECT_FALSE(gemm_detail::wgmma_gemm_supported(q)) << "K = 0 has nothing to load";
}

TEST(CudaGemmWgmma, BFloat16AllLayoutsOddSizes) {
  SKIP_WITHOUT_WGMMA();
  sweep<BFloat16, BFloat16>(DType::BFloat16, DType::BFloat16, 1);
}

TEST(CudaGemmWgmma, Float16AllLayoutsOddSizes) {
  SKIP_WITHOUT_WGMMA();
  sweep<Half, Half>(DType::Float16, DType::Float16, 2);
}

TEST(CudaGemmWgmma, HalfInFloat32Out) {
  SKIP_WITHOUT_WGMMA();
  sweep<BFloat16, float>(DType::BFloat16, DType::Float32, 3);
  std::mt19937 rng(4);
  for (int layout = 0; layout < 4; ++layout) {
    Case c{300, 260, 129};
    c.ta = layout & 1;
    c.tb = layout & 2;
    check_case<Half, float>(c, DType::Float16, DType::Float32, kBoth, rng);
  }
}

TEST(CudaGemmWgmma, LongK) {
  SKIP_WITHOUT_WGMMA();
  std::mt19937 rng(5);
  for (int layout = 0; layout < 4; ++layout) {
    Case c{130, 300, 4096};  // 64 k-tiles: the 4-stage ring wraps 16 times
    c.ta = layout & 1;
    c.tb = layout & 2;
    check_case<BFloat16, float>(c, DType::BFloat16, DType::Float32, kBoth, rng);
  }
}

TEST(CudaGemmWgmma, BatchedWithBroadcast) {
  SKIP_WITHOUT_WGMMA();
  std::mt19937 rng(6);
  for (int bcast = 0; bcast < 3; ++bcast)
    for (int layout = 0; layout < 4; ++layout) {
      Case c{133, 270, 100};
      c.ta = layout & 1;
      c.tb = layout & 2;
      c.batch = 3;
      c.broadcast_a = bcast == 1;
      c.broadcast_b = bcast == 2;
      check_case<BFloat16, BFloat16>(c, DType::BFloat16, DType::BFloat16, kBoth, rng);
      check_case<Half, float>(c, DType::Float16, DType::Float32, {Kernel::Wgmma}, rng);
    }
}

TEST(CudaGemmWgmma, FusedEpilogues) {
  SKIP_WITHOUT_WGMMA();
  std::mt19937 rng(7);
  for (GemmActivation act :
       {GemmActivation::None, GemmActivation::ReLU, GemmActivation::GELUTanh, GemmActivation::GELU})
    for (float beta : {0.0f, -1.5f})
      for (bool aux : {false, true}) {
        Case c{67, 300, 77};
        c.tb = true;  // x @ W^T, as nn.Linear calls it
        c.alpha = 0.75f;
        c.beta = beta;
        c.bias = true;
        c.aux = aux;
        c.act = act;
        c.batch = aux ? 2 : 1;
        check_case<BFloat16, BFloat16>(c, DType::BFloat16, DType::BFloat16, kBoth, rng);
        check_case<Half, float>(c, DType::Float16, DType::Float32, kBoth, rng);
      }
}

// The persistent grid: with BIGMODEL_GEMM_WGMMA_BLOCKS=3 every block walks several (batch, tile)
// items and the stage ring runs on from one item into the next; then a problem with more
// tiles than SMs on the natural grid.
TEST(CudaGemmWgmma, SeveralWorkItemsPerBlock) {
  SKIP_WITHOUT_WGMMA();
  std::mt19937 rng(9);
  {
    ScopedEnv cap("BIGMODEL_GEMM_WGMMA_BLOCKS", "3");
    for (int layout = 0; layout < 4; ++layout) {
      Case c{300, 600, 136};  // 3 x 3 tiles x 2 batches = 18 items over 3 blocks
      c.ta = layout & 1;
      c.tb = layout & 2;
      c.batch = 2;
      c.bias = true;
      check_case<BFloat16, BFloat16>(c, DType::BFloat16, DType::BFloat16, {Kernel::Wgmma}, rng);
      Case odd{7, 1000, 33};  // 4 items, ragged in every direction
      odd.ta = layout & 1;
      odd.tb = layout & 2;
      check_case<Half, float>(odd, DType::Float16, DType::Float32, {Kernel::Wgmma}, rng);
    }
  }
  Case big{2000, 2100, 72};  // 16 x 9 = 144 tiles: more than the 132 SMs of an H100/H200
  check_case<BFloat16, float>(big, DType::BFloat16, DType::Float32, {Kernel::Wgmma}, rng);
}

// gemm_ours takes the wgmma kernel on Hopper (bit for bit the same output), and the mma.sync
// one with BIGMODEL_GEMM_WGMMA=0; both against the reference too.
TEST(CudaGemmWgmma, DispatcherChoosesIt) {
  SKIP_WITHOUT_WGMMA();
  const int64_t M = 200, N = 304, K = 136;  // leading dims multiples of 8: both kernels take it
  std::mt19937 rng(8);
  const std::vector<BFloat16> a = random_values<BFloat16>(M * K, rng), b = random_values<BFloat16>(K * N, rng);
  DeviceBuffer dA(a.size() * 2), dB(b.size() * 2), d0(M * N * 4), d1(M * N * 4);
  devmem::copy_to_device(dA.get(), a.data(), dA.bytes());
  devmem::copy_to_device(dB.get(), b.data(), dB.bytes());
  GemmParams p;
  p.M = M, p.N = N, p.K = K, p.A = dA.get(), p.lda = K, p.B = dB.get(), p.ldb = N, p.ldc = N;
  p.in_dtype = DType::BFloat16, p.out_dtype = DType::Float32;
  std::vector<float> h0(M * N), h1(M * N);
  for (bool wgmma_on : {true, false}) {
    ScopedEnv env("BIGMODEL_GEMM_WGMMA", wgmma_on ? "1" : "0");
    ASSERT_EQ(gemm_detail::wgmma_gemm_supported(p), wgmma_on);
    ASSERT_TRUE(gemm_detail::tc_gemm_supported(p));
    devmem::device_memset(d0.get(), 0xff, d0.bytes());
    devmem::device_memset(d1.get(), 0xff, d1.bytes());
    p.C = d0.get();
    gemm_ours(p);
    p.C = d1.get();
    if (wgmma_on) gemm_detail::launch_gemm_wgmma(p, nullptr);
    else gemm_detail::launch_gemm_tc(p, nullptr);
    devmem::device_synchronize();
    devmem::copy_to_host(h0.data(), d0.get(), d0.bytes());
    devmem::copy_to_host(h1.data(), d1.get(), d1.bytes());
    EXPECT_EQ(std::memcmp(h0.data(), h1.data(), h0.size() * 4), 0)
        << "gemm_ours did not run the " << (wgmma_on ? "wgmma" : "mma.sync") << " kernel";
  }
  Case c{M, N, K};
  check_case<BFloat16, float>(c, DType::BFloat16, DType::Float32, {Kernel::Dispatch}, rng);
}

#else
TEST(CudaGemmWgmma, BuiltWithoutCuda) { GTEST_SKIP() << "built without CUDA"; }
#endif  // BIGMODEL_WITH_CUDA
