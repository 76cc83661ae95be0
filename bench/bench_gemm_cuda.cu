// CUDA GEMM bench: our kernels against cuBLASLt in the same run, float32 and bfloat16 at
// 1024..8192 square (NN) and GPT-2 shapes (8192 tokens, x @ W^T: NT), int8 at 4096 (NT).
// CUDA events around each call after warm-up, L2 flushed (a 256 MB write) before every rep,
// medians. Prints one table (shape, dtype, ours / cuBLAS TFLOP/s, ratio, agreement of the two
// results) and exits 0; disagreements are flagged MISMATCH (the cuda tests are the correctness
// gate). The kernel column names which of ours ran (wgmma on Hopper, mma.sync, sgemm, ...);
// bfloat16 4096 / 8192 also run once with BIGMODEL_GEMM_WGMMA=0 (the mma.sync kernel) beside it.
// Run: build/bench_gemm_cuda [--quick]
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_internal.h"

using namespace bigmodel;
using namespace bigmodel::cuda;

namespace {

#define CHECK(expr)                                                                             \
  do {                                                                                          \
    cudaError_t err_ = (expr);                                                                  \
    if (err_ != cudaSuccess) {                                                                  \
      std::fprintf(stderr, "%s failed: %s at %s:%d\n", #expr, cudaGetErrorString(err_), __FILE__, \
                   __LINE__);                                                                   \
      std::exit(2);                                                                             \
    }                                                                                           \
  } while (0)

// Uniform values in [-1, 1) from a hash of the index (fresh, non-zero data without a host copy).
__device__ float hash_uniform(uint64_t i, uint32_t seed) {
  uint32_t x = static_cast<uint32_t>(i) * 0x9E3779B1u ^ static_cast<uint32_t>(i >> 32) ^ seed * 0x85EBCA77u;
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  x ^= x >> 16;
  return static_cast<float>(x >> 8) * (2.0f / 16777216.0f) - 1.0f;
}

template <typename T>
__global__ void fill_random(T* p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const float u = hash_uniform(static_cast<uint64_t>(i), seed);
    if constexpr (std::is_same_v<T, int8_t>) p[i] = static_cast<int8_t>(static_cast<int>(u * 127.0f));
    else p[i] = static_cast<T>(u);
  }
}

template <typename T>
void fill(T* p, int64_t n, uint32_t seed, cudaStream_t s) {
  fill_random<T><<<1024, 256, 0, s>>>(p, n, seed);
  CHECK(cudaGetLastError());
}

struct Timer {
  cudaStream_t stream;
  void* flush;  // 256 MB: more than the H100/H200 L2 (50 / 60 MB) several times over
  size_t flush_bytes;
  cudaEvent_t start, stop;

  // Median milliseconds of fn over `reps` runs, each after an L2 flush.
  double median_ms(const std::function<void()>& fn, int warmup, int reps) {
    for (int i = 0; i < warmup; ++i) fn();
    std::vector<float> t(reps);
    for (int i = 0; i < reps; ++i) {
      CHECK(cudaMemsetAsync(flush, i & 0xff, flush_bytes, stream));
      CHECK(cudaEventRecord(start, stream));
      fn();
      CHECK(cudaEventRecord(stop, stream));
      CHECK(cudaEventSynchronize(stop));
      CHECK(cudaEventElapsedTime(&t[i], start, stop));
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }
};

struct Row {
  std::string shape, dtype, kernel;
  double ours_tflops, cublas_tflops, rel_diff;
};

// ||x - y|| / ||y|| over two device buffers of n floats-after-conversion (skipped when huge).
template <typename T>
double rel_diff(const void* x, const void* y, int64_t n) {
  if (n > (int64_t{1} << 25)) return -1.0;
  std::vector<T> hx(n), hy(n);
  CHECK(cudaMemcpy(hx.data(), x, n * sizeof(T), cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(hy.data(), y, n * sizeof(T), cudaMemcpyDeviceToHost));
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double a = static_cast<double>(static_cast<float>(hx[i])), b = static_cast<double>(static_cast<float>(hy[i]));
    if (!std::isfinite(a)) return INFINITY;
    num += (a - b) * (a - b);
    den += b * b;
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// Which of our kernels gemm_ours picks for p (the order of gemm.cu's dispatcher).
std::string our_kernel(const GemmParams& p) {
  if (p.in_dtype == DType::Float32) return "sgemm";
  if (gemm_detail::wgmma_gemm_supported(p)) return "wgmma";
  if (gemm_detail::tc_gemm_supported(p)) return "mma.sync";
  return "generic";
}

Row bench_float(Timer& timer, const std::string& label, DType dt, int64_t M, int64_t N, int64_t K, bool trans_b,
                int reps) {
  const size_t item = dt == DType::Float32 ? 4 : 2;
  void *A, *B, *C0, *C1;
  CHECK(cudaMalloc(&A, M * K * item));
  CHECK(cudaMalloc(&B, K * N * item));
  CHECK(cudaMalloc(&C0, M * N * item));
  CHECK(cudaMalloc(&C1, M * N * item));
  if (dt == DType::Float32) {
    fill(static_cast<float*>(A), M * K, 1, timer.stream);
    fill(static_cast<float*>(B), K * N, 2, timer.stream);
  } else {
    fill(static_cast<__nv_bfloat16*>(A), M * K, 1, timer.stream);
    fill(static_cast<__nv_bfloat16*>(B), K * N, 2, timer.stream);
  }
  GemmParams p;
  p.M = M;
  p.N = N;
  p.K = K;
  p.trans_b = trans_b;
  p.A = A;
  p.lda = K;
  p.B = B;
  p.ldb = trans_b ? K : N;
  p.ldc = N;
  p.in_dtype = p.out_dtype = dt;
  GemmParams q = p;
  p.C = C0;
  q.C = C1;
  const double flops = 2.0 * M * N * K;
  const double ours = timer.median_ms([&] { gemm_ours(p, timer.stream); }, 3, reps);
  const double blas = timer.median_ms([&] { gemm_cublas(q, timer.stream); }, 3, reps);
  CHECK(cudaStreamSynchronize(timer.stream));
  const double diff = dt == DType::Float32 ? rel_diff<float>(C0, C1, M * N) : rel_diff<__nv_bfloat16>(C0, C1, M * N);
  for (void* ptr : {A, B, C0, C1}) CHECK(cudaFree(ptr));
  return {label, dt == DType::Float32 ? "float32" : "bfloat16", our_kernel(p), flops / (ours * 1e9),
          flops / (blas * 1e9), diff};
}

Row bench_int8(Timer& timer, int64_t M, int64_t N, int64_t K, int reps) {
  int8_t *A, *B;
  int32_t *C0, *C1;
  CHECK(cudaMalloc(&A, M * K));
  CHECK(cudaMalloc(&B, N * K));
  CHECK(cudaMalloc(&C0, M * N * 4));
  CHECK(cudaMalloc(&C1, M * N * 4));
  fill(A, M * K, 3, timer.stream);
  fill(B, N * K, 4, timer.stream);
  GemmInt8Params p;
  p.M = M;
  p.N = N;
  p.K = K;
  p.A = A;
  p.lda = K;
  p.B = B;
  p.ldb = K;
  p.ldc = N;
  GemmInt8Params q = p;
  p.C = C0;
  q.C = C1;
  const double ops = 2.0 * M * N * K;
  const double ours = timer.median_ms([&] { gemm_int8_ours(p, timer.stream); }, 3, reps);
  const double blas = timer.median_ms([&] { gemm_int8_cublas(q, timer.stream); }, 3, reps);
  CHECK(cudaStreamSynchronize(timer.stream));
  // Exact: any differing element is a failure.
  std::vector<int32_t> h0(M * N), h1(M * N);
  CHECK(cudaMemcpy(h0.data(), C0, M * N * 4, cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(h1.data(), C1, M * N * 4, cudaMemcpyDeviceToHost));
  const double diff = std::memcmp(h0.data(), h1.data(), M * N * 4) == 0 ? 0.0 : 1.0;
  for (void* ptr : {static_cast<void*>(A), static_cast<void*>(B), static_cast<void*>(C0), static_cast<void*>(C1)})
    CHECK(cudaFree(ptr));
  return {std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) + " NT", "int8",
          gemm_detail::int8_mma_supported(p) ? "mma.sync" : "generic", ops / (ours * 1e9),
          ops / (blas * 1e9), diff};
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("bench_gemm_cuda: no CUDA device visible, nothing to time\n");
    return 0;
  }
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s (sm_%d%d, %d SMs, L2 %d MB)\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount, prop.l2CacheSize >> 20);

  Timer timer{};
  CHECK(cudaStreamCreateWithFlags(&timer.stream, cudaStreamNonBlocking));
  timer.flush_bytes = size_t{256} << 20;
  CHECK(cudaMalloc(&timer.flush, timer.flush_bytes));
  CHECK(cudaEventCreate(&timer.start));
  CHECK(cudaEventCreate(&timer.stop));

  // Each row prints as soon as it is measured, so a run cut short by a time limit still
  // leaves the rows it finished.
  bool agree = true;
  std::printf("\n%-34s %-9s %-9s %12s %14s %7s %10s\n", "shape (MxNxK layout)", "dtype", "kernel", "ours TFLOP/s",
              "cuBLAS TFLOP/s", "ratio", "rel diff");
  struct Rows {
    bool* agree;
    void push_back(const Row& r) {
      // Agreement bound: the two backends sum in different orders; bf16 outputs round to 8 bits.
      const double bound = r.dtype == "float32" ? 5e-5 : (r.dtype == "bfloat16" ? 1e-2 : 0.0);
      const bool ok = r.rel_diff <= bound;  // -1 (not compared) passes
      *agree = *agree && ok;
      std::printf("%-34s %-9s %-9s %12.1f %14.1f %7.2f %10.2e%s\n", r.shape.c_str(), r.dtype.c_str(),
                  r.kernel.c_str(), r.ours_tflops, r.cublas_tflops, r.ours_tflops / r.cublas_tflops, r.rel_diff,
                  ok ? "" : "  MISMATCH");
      std::fflush(stdout);
    }
  } rows{&agree};
  const std::vector<int64_t> squares = quick ? std::vector<int64_t>{1024, 4096} : std::vector<int64_t>{1024, 2048, 4096, 8192};
  struct Gpt { const char* name; int64_t n, k; };
  const Gpt gpt[] = {{"qkv", 2304, 768}, {"fc", 3072, 768}, {"proj", 768, 3072}, {"attn.out", 768, 768}};
  const int64_t tokens = 8192;
  for (DType dt : {DType::Float32, DType::BFloat16}) {
    for (int64_t n : squares) {
      const int reps = n >= 8192 ? 7 : 15;
      rows.push_back(bench_float(timer, std::to_string(n) + "^3 NN", dt, n, n, n, false, reps));
      if (dt == DType::BFloat16 && n >= 4096) {  // the Hopper kernel's targets: also NT, and mma.sync
        rows.push_back(bench_float(timer, std::to_string(n) + "^3 NT", dt, n, n, n, true, reps));
        const char* old = std::getenv("BIGMODEL_GEMM_WGMMA");
        const std::string saved = old ? old : "";
        setenv("BIGMODEL_GEMM_WGMMA", "0", 1);
        rows.push_back(bench_float(timer, std::to_string(n) + "^3 NN", dt, n, n, n, false, reps));
        if (old) setenv("BIGMODEL_GEMM_WGMMA", saved.c_str(), 1);
        else unsetenv("BIGMODEL_GEMM_WGMMA");
      }
    }
    for (const Gpt& g : gpt) {
      rows.push_back(bench_float(timer,
                                 std::string("gpt2 ") + g.name + " " + std::to_string(tokens) + "x" +
                                     std::to_string(g.n) + "x" + std::to_string(g.k) + " NT",
                                 dt, tokens, g.n, g.k, true, 15));
    }
  }
  rows.push_back(bench_int8(timer, 4096, 4096, 4096, 15));

  std::printf("(int8 in TOP/s; rel diff -1 = not compared; targets: float32 4096 and bfloat16 4096/8192 >= 0.90)\n");
  std::printf("ours vs cuBLAS agreement: %s\n", agree ? "ok" : "MISMATCH (see rows above)");
  return 0;
}
