// Self-test of the CUDA-on-CPU emulator (tests/cuda_emu): every detector the emulated test
// tiers rely on fires on a kernel with the bug it is there to catch, and the Hopper pieces
// agree with a plain reference. Built as cuda_emu_selftest in -DBIGMODEL_CUDA=EMULATE builds
// (compiled like kernels/cuda, with cuda_emu.h force-included) and run first by
// scripts/cuda_emu_test.sh. Exit status 0 when every check holds.
#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int g_failures = 0;

void check(bool ok, const char* name, const std::string& detail = "") {
  std::printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", name, detail.empty() ? "" : ": ", detail.c_str());
  if (!ok) ++g_failures;
}

// Launches `kernel` (a generic lambda calling the kernel) and returns the launch's error
// message, or "" when it succeeded.
template <typename K, typename... A>
std::string launch(dim3 grid, dim3 block, size_t smem, K&& kernel, A&&... args) {
  cudaGetLastError();
  bm_emu::launch(bm_emu::cfg(grid, block, smem), "selftest", kernel, std::forward<A>(args)...);
  // With BIGMODEL_EMU_ASYNC=1 the grid is queued: it runs (and reports a fault) at the sync.
  const cudaError_t launched = cudaGetLastError();
  const cudaError_t ran = cudaDeviceSynchronize();
  const cudaError_t e = launched != cudaSuccess ? launched : ran;
  return e == cudaSuccess ? std::string() : std::string(cudaGetErrorString(e));
}
bool has(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }

// ---- block synchronisation and shared memory ---------------------------------------------
__global__ void rotate(int* out, bool sync) {
  int* s = static_cast<int*>(bm_emu::dynamic_smem());
  const int t = threadIdx.x, n = blockDim.x;
  s[t] = t;
  if (sync) __syncthreads();
  out[t] = s[(t + 1) % n];
}

bool rotated(const std::vector<int>& out) {
  for (int t = 0; t < static_cast<int>(out.size()); ++t)
    if (out[t] != (t + 1) % static_cast<int>(out.size())) return false;
  return true;
}

void test_missing_syncthreads() {
  for (const char* order : {"forward", "reverse"}) {
    setenv("BIGMODEL_EMU_ORDER", order, 1);
    std::vector<int> out(64);
    auto k = [](auto&... a) { rotate(a...); };
    std::string err = launch(1, 64, 64 * 4, k, out.data(), true);
    check(err.empty() && rotated(out), (std::string("with __syncthreads, ") + order).c_str(), err);
    err = launch(1, 64, 64 * 4, k, out.data(), false);
    check(err.empty() && !rotated(out), (std::string("a missing __syncthreads shows, ") + order).c_str(), err);
  }
  unsetenv("BIGMODEL_EMU_ORDER");
}

// rewrite_launches.py adds the fresh_shared call after each static __shared__ declaration of
// kernels/cuda; this file is not rewritten, so the kernel makes it itself.
__global__ void read_static_shared_first(unsigned* out) {
  __shared__ unsigned s[4];
  bm_emu::fresh_shared(&s, sizeof(s));
  if (threadIdx.x == 0) {
    out[blockIdx.x] = s[0];
    s[0] = 7;
  }
}

void test_static_shared_garbage() {
  std::vector<unsigned> out(3, 0);
  const std::string err = launch(3, 32, 0, [](auto&... a) { read_static_shared_first(a...); }, out.data());
  const bool garbage = out[0] == 0xA5A5A5A5u && out[1] == 0xA5A5A5A5u && out[2] == 0xA5A5A5A5u;
  check(err.empty() && garbage, "static __shared__ holds garbage at each block's start, not zeros or the last block's");
}

__global__ void shuffle_after_exit(int* out) {
  if (threadIdx.x >= 16) return;
  out[threadIdx.x] = __shfl_sync(0xffffffffu, static_cast<int>(threadIdx.x), 0);
}

void test_exited_lanes() {
  std::vector<int> out(32);
  const std::string err = launch(1, 32, 0, [](auto&... a) { shuffle_after_exit(a...); }, out.data());
  check(has(err, "exited"), "a shuffle naming exited lanes fails the launch", err);
}

// ---- mbarriers -------------------------------------------------------------------------------
// mode 0: one arrival of two (deadlock); 1: an arrival beyond the count while bytes are due;
// 2: a wait before init; 3: correct (count 2, two arrivals).
__global__ void barrier_cases(int mode) {
  __shared__ uint64_t bar;
  const uint32_t b = static_cast<uint32_t>(__cvta_generic_to_shared(&bar));
  if (mode == 2) {
    bm_emu::mbar_try_wait_parity(b, 0);
    return;
  }
  if (threadIdx.x == 0) bm_emu::mbar_init(b, mode == 1 ? 1 : 2);
  __syncthreads();
  if (mode == 1) {
    if (threadIdx.x == 0) bm_emu::mbar_arrive(b, 16);
    __syncthreads();
    if (threadIdx.x == 1) bm_emu::mbar_arrive(b, 0);
    return;
  }
  if (threadIdx.x == 0 || (mode == 3 && threadIdx.x == 1)) bm_emu::mbar_arrive(b, 0);
  while (!bm_emu::mbar_try_wait_parity(b, 0)) bm_emu::spin_wait();
}

void test_mbarriers() {
  auto k = [](auto&... a) { barrier_cases(a...); };
  std::string err = launch(1, 64, 0, k, 3);
  check(err.empty(), "a phase completes after its arrivals", err);
  err = launch(1, 64, 0, k, 0);
  check(has(err, "deadlock"), "a phase that never completes is a deadlock", err);
  err = launch(1, 64, 0, k, 1);
  check(has(err, "beyond"), "an arrival beyond the expected count fails", err);
  err = launch(1, 64, 0, k, 2);
  check(has(err, "before mbarrier.init"), "an mbarrier used before init fails", err);
}

__global__ void named_barrier_mismatch() { bm_emu::named_barrier(1, threadIdx.x < 32 ? 64 : 96); }

void test_named_barrier() {
  const std::string err = launch(1, 96, 0, [](auto&... a) { named_barrier_mismatch(a...); });
  check(has(err, "disagree"), "threads disagreeing on a named barrier's count fail", err);
}

// ---- TMA and wgmma -----------------------------------------------------------------------------
PFN_cuTensorMapEncodeTiled_v12000 encoder() {
  void* p = nullptr;
  cudaDriverEntryPointQueryResult q{};
  cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q);
  return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
}

// A rows x cols bfloat16 matrix (row stride ld elements) with 64 x box_rows boxes, 128B swizzle.
bool encode(CUtensorMap* m, const void* base, uint64_t cols, uint64_t rows, uint64_t ld, uint32_t box_rows) {
  const cuuint64_t dims[2] = {cols, rows};
  const cuuint64_t strides[1] = {ld * 2};
  const cuuint32_t box[2] = {64, box_rows}, es[2] = {1, 1};
  return encoder()(m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(base), dims, strides, box, es,
                   CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_NONE,
                   CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// C (64 x 256, float) = A (64 x 64, K-major) * B (64 x 256, N-major), one warpgroup: TMA brings
// A as one 64 x 64 box and B as four 64-column boxes 8 KB apart; four k16 wgmma steps.
// extra_tx > 0 announces more bytes than the copies bring (a deadlock).
__global__ void tma_wgmma(const CUtensorMap map_a, const CUtensorMap map_b, float* c, int extra_tx) {
  __shared__ uint64_t bar;
  const uint32_t b = static_cast<uint32_t>(__cvta_generic_to_shared(&bar));
  const uint32_t sa = static_cast<uint32_t>(__cvta_generic_to_shared(bm_emu::dynamic_smem())), sb = sa + 8192;
  if (threadIdx.x == 0) {
    bm_emu::mbar_init(b, 1);
    bm_emu::mbar_arrive(b, 5 * 8192 + extra_tx);
    const int ca[3] = {0, 0, 0};
    bm_emu::tma_load(sa, &map_a, ca, 2, b);
    for (int j = 0; j < 4; ++j) {
      const int cb[3] = {64 * j, 0, 0};
      bm_emu::tma_load(sb + 8192 * j, &map_b, cb, 2, b);
    }
  }
  __syncthreads();
  while (!bm_emu::mbar_try_wait_parity(b, 0)) bm_emu::spin_wait();
  auto desc = [](uint32_t addr, uint32_t lbo, uint32_t sbo) {
    return static_cast<uint64_t>(addr >> 4) | (static_cast<uint64_t>(lbo >> 4) << 16) |
           (static_cast<uint64_t>(sbo >> 4) << 32) | (uint64_t{1} << 62);
  };
  float acc[128] = {};
  for (int kk = 0; kk < 4; ++kk)
    bm_emu::wgmma_issue(acc, 256, desc(sa + 32 * kk, 16, 1024), desc(sb + 2048 * kk, 8192, 1024), 1, 0, 1, true);
  bm_emu::wgmma_commit();
  bm_emu::wgmma_wait(0);
  const int w = threadIdx.x / 32, g = threadIdx.x % 32 / 4, q = threadIdx.x % 4;
  for (int j = 0; j < 32; ++j)
    for (int h = 0; h < 2; ++h)
      for (int e = 0; e < 2; ++e) c[(16 * w + g + 8 * h) * 256 + 8 * j + 2 * q + e] = acc[4 * j + 2 * h + e];
}

void test_tma_wgmma() {
  // bf16 values exact in float: small integers over 8.
  std::vector<__nv_bfloat16> A(64 * 64), B(64 * 256);
  for (int i = 0; i < 64 * 64; ++i) A[i] = __float2bfloat16(static_cast<float>((i * 7) % 17 - 8) / 8);
  for (int i = 0; i < 64 * 256; ++i) B[i] = __float2bfloat16(static_cast<float>((i * 5) % 13 - 6) / 8);
  CUtensorMap ma, mb;  // the type is 128-byte aligned
  check(encode(&ma, A.data(), 64, 64, 64, 64) && encode(&mb, B.data(), 256, 64, 256, 64), "tensor maps encode");
  CUtensorMap bad;
  check(!encode(&bad, A.data(), 64, 64, 60, 64), "a row stride that is not a multiple of 16 bytes is rejected");
  std::vector<float> C(64 * 256, -1.0f);
  cudaFuncSetAttribute(reinterpret_cast<const void*>(&tma_wgmma), cudaFuncAttributeMaxDynamicSharedMemorySize,
                       5 * 8192);
  auto k = [](auto&... a) { tma_wgmma(a...); };
  std::string err = launch(1, 128, 5 * 8192, k, ma, mb, C.data(), 0);
  double worst = 0;
  for (int m = 0; m < 64; ++m)
    for (int n = 0; n < 256; ++n) {
      double ref = 0;
      for (int kk = 0; kk < 64; ++kk)
        ref += static_cast<double>(__bfloat162float(A[m * 64 + kk])) * __bfloat162float(B[kk * 256 + n]);
      worst = std::max(worst, std::abs(ref - C[m * 256 + n]));
    }
  check(err.empty() && worst == 0.0, "TMA (128B swizzle) + wgmma (K-major A, N-major B) give A * B exactly",
        err.empty() ? "max error " + std::to_string(worst) : err);
  err = launch(1, 128, 5 * 8192, k, ma, mb, C.data(), 16);
  check(has(err, "deadlock"), "a TMA byte count the copies never reach is a deadlock", err);
  err = launch(1, 128, 4 * 8192, k, ma, mb, C.data(), 0);
  check(has(err, "outside the launch"), "a TMA copy past the dynamic shared memory fails", err);
}

}  // namespace

int main() {
  test_missing_syncthreads();
  test_exited_lanes();
  test_static_shared_garbage();
  test_mbarriers();
  test_named_barrier();
  test_tma_wgmma();
  std::printf("%s: %d check(s) failed\n", g_failures ? "FAILED" : "passed", g_failures);
  return g_failures ? 1 : 0;
}
