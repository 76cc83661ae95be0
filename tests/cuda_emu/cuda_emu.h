// CUDA-on-CPU emulation, device side: force-included (-include) into every kernels/cuda
// source when the library is configured with -DBIGMODEL_CUDA=EMULATE (a testing build, never
// shipped). The kernel files compile as plain C++ against the toolkit's real headers (types,
// half/bfloat16 conversions); this header supplies what only nvcc knows: the thread
// built-ins, __shared__ storage, barriers, warp collectives, atomics, device intrinsics and
// the launch that replaces <<<...>>> (tests/cuda_emu/rewrite_launches.py rewrites the
// chevrons). Every CUDA thread of a block runs as a fiber on one host thread; blocks run one
// after another (tests/cuda_emu/emu_runtime.cpp). Between two barriers a block's threads run
// in an order chosen by BIGMODEL_EMU_ORDER (forward, reverse or shuffled), so a missing
// __syncthreads/__syncwarp shows up as a wrong result; a collective that some lanes never
// reach, an exited lane named in a shuffle mask, or __trap() fail the launch with a message.
// Hopper's mbarriers, TMA tile loads, named barriers and wgmma are emulated too
// (emu_hopper.cpp), so the sm_90a GEMM runs when the emulated device reports compute
// capability 9.0 (BIGMODEL_EMU_CC, default 90).
// It checks kernel logic (indexing, tails, synchronisation, fragment layouts), not speed,
// and says nothing about memory-model races between blocks or out-of-bounds accesses.
#pragma once
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#ifndef BIGMODEL_CUDA_EMU
#define BIGMODEL_CUDA_EMU 1
#endif

#undef __shared__
#define __shared__ static
#define __launch_bounds__(...)
#undef __grid_constant__
#define __grid_constant__

// Device code's global min/max (floating point: fminf/fmaxf, which ignore a NaN operand).
template <typename A, typename B>
inline std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point_v<C>) return std::fmin(C(a), C(b));
  else return C(b) < C(a) ? C(b) : C(a);
}
template <typename A, typename B>
inline std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point_v<C>) return std::fmax(C(a), C(b));
  else return C(a) < C(b) ? C(b) : C(a);
}

using std::isfinite;
using std::isinf;
using std::isnan;
using std::signbit;

// ---- built-in variables (set by the scheduler before it resumes a fiber) --------------------
inline uint3 threadIdx;
inline uint3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;
constexpr int warpSize = 32;

namespace bm_emu {

// Fiber-side calls into the scheduler (emu_runtime.cpp).
void sync_block();                                        // __syncthreads
void sync_warp(unsigned mask);                            // __syncwarp and the collectives
int lane_id();
int warp_in_block();
void* warp_slots();                                       // 32 x kSlotBytes of the current warp
constexpr int kSlotBytes = 64;
[[noreturn]] void trap(const char* why);
void* dynamic_smem();
// A static __shared__ variable reached for the first time in a block (rewrite_launches.py adds
// the call after each declaration): filled with garbage, as a GPU's shared memory is when a
// block starts, instead of keeping zeros or the previous block's values.
void fresh_shared(void* p, size_t bytes);
uintptr_t smem_base();
void lock_atomics();

// Exchange: every lane of `mask` publishes `bytes` (<= kSlotBytes), then all read the warp's
// slots through `read`, then a second barrier keeps the slots until everyone has read.
template <typename Read>
inline void warp_exchange(unsigned mask, const void* mine, size_t bytes, Read&& read) {
  auto* slots = static_cast<unsigned char*>(warp_slots());
  std::memcpy(slots + lane_id() * kSlotBytes, mine, bytes);
  sync_warp(mask);
  read(static_cast<const unsigned char*>(slots));
  sync_warp(mask);
}

template <typename T>
inline T shfl_from(unsigned mask, T v, int src_of_lane) {
  static_assert(sizeof(T) <= kSlotBytes, "shuffle of a type wider than a slot");
  T out;
  warp_exchange(mask, &v, sizeof(T), [&](const unsigned char* s) { std::memcpy(&out, s + src_of_lane * kSlotBytes, sizeof(T)); });
  return out;
}

// ---- sm_80 tensor-core primitives, by the PTX ISA's fragment layouts -------------------------
inline unsigned char* smem_ptr(uint32_t addr) {
  return reinterpret_cast<unsigned char*>(smem_base() + static_cast<intptr_t>(static_cast<int32_t>(addr)));
}
float half_bits_to_float(uint16_t bits, bool bf16);  // a bfloat16 or float16 bit pattern
void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr, bool trans);
void mma_16816_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
void mma_16816_f16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
void mma_16832_s8(int (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);

// ---- sm_90 (Hopper) primitives, emu_hopper.cpp -----------------------------------------------
// A polling loop's turn (mbarrier and wgmma waits): yields, and the thread stays runnable. A
// pass of the scheduler in which every live thread only polled, with no progress noted, is
// reported as a deadlock (on a GPU: a hang, or the trap of a bounded wait).
void spin_wait();
void note_progress();
void wake_pollers();  // a phase completed: the polling threads run next
void named_barrier(int id, int count);  // bar.sync id, count
int thread_in_block();
int threads_in_block();
bool thread_done(int t);
uint64_t block_serial();
size_t dynamic_smem_bytes();
void mbar_init(uint32_t bar, uint32_t count);
void mbar_arrive(uint32_t bar, uint32_t expect_tx_bytes);  // arrive.expect_tx (0: plain arrive)
bool mbar_try_wait_parity(uint32_t bar, uint32_t parity);
// cp.async.bulk.tensor (tile mode) of the box at `coords` into shared memory at `dst`,
// completing its bytes on the mbarrier `bar`. `map` was written by the emulated
// cuTensorMapEncodeTiled.
void tma_load(uint32_t dst, const void* map, const int* coords, int rank, uint32_t bar);
// wgmma.mma_async m64nNk16 with float32 accumulators `acc` (N / 2 registers), operands by
// shared-memory descriptors; runs when a wait_group needs its group (all 128 threads of the
// warpgroup must have committed it), so it reads shared memory as late as the GPU may.
void wgmma_issue(float* acc, int n, uint64_t desc_a, uint64_t desc_b, int scale_d, int tnsp_a, int tnsp_b, bool bf16);
void wgmma_commit();
void wgmma_wait(int pending);

// ---- launch ---------------------------------------------------------------------------------
struct LaunchCfg {
  dim3 grid, block;
  size_t smem = 0;
  cudaStream_t stream = nullptr;
};
inline LaunchCfg cfg(dim3 g, dim3 b, size_t smem = 0, cudaStream_t s = nullptr) { return {g, b, smem, s}; }

// Runs `body` once per thread of every block (emu_runtime.cpp).
void run_grid(const LaunchCfg& c, const char* name, void (*body)(void*), void* ctx);
// BIGMODEL_EMU_ASYNC=1 (emu_streams.cpp): launches are queued on their stream. enqueue_grid
// checks the configuration now and queues the grid; `destroy` releases `ctx` afterwards.
bool async_launches();
void enqueue_grid(const LaunchCfg& c, const char* name, void (*body)(void*), void* ctx, void (*destroy)(void*));

// `kernel` is a generic lambda that calls the kernel (the rewriter writes it, so template
// arguments the launch left to deduction are deduced here too). The arguments are copied
// once, as the launch copies them; each thread's call converts them to the parameters.
template <typename F, typename... A>
void launch(const LaunchCfg& c, const char* name, F&& kernel, A&&... args) {
  if (async_launches()) {
    // The queued job owns its copies of the kernel lambda and the arguments.
    using Job = std::pair<std::decay_t<F>, std::tuple<std::decay_t<A>...>>;
    auto* job = new Job(std::forward<F>(kernel), std::tuple<std::decay_t<A>...>(std::forward<A>(args)...));
    enqueue_grid(
        c, name, [](void* v) { auto* j = static_cast<Job*>(v); std::apply(j->first, j->second); }, job,
        [](void* v) { delete static_cast<Job*>(v); });
    return;
  }
  std::tuple<std::decay_t<A>...> params(std::forward<A>(args)...);
  auto call = [&] { std::apply(kernel, params); };
  run_grid(c, name, [](void* v) { (*static_cast<decltype(call)*>(v))(); }, &call);
}

}  // namespace bm_emu

// ---- barriers and warp collectives -------------------------------------------------------------
inline void __syncthreads() { bm_emu::sync_block(); }
inline int __syncthreads_or(int p) {
  // Every thread's predicate lands in a block-wide flag between two barriers.
  static int flag;
  bm_emu::sync_block();
  flag = 0;
  bm_emu::sync_block();
  if (p) flag = 1;
  bm_emu::sync_block();
  const int r = flag;
  bm_emu::sync_block();
  return r;
}
inline void __syncwarp(unsigned mask = 0xffffffffu) { bm_emu::sync_warp(mask); }

template <typename T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  const int lane = bm_emu::lane_id();
  const int base = lane & ~(width - 1);
  return bm_emu::shfl_from(mask, v, base + (src & (width - 1)));
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int lm, int width = 32) {
  const int lane = bm_emu::lane_id();
  int s = lane ^ lm;
  if ((s & ~(width - 1)) != (lane & ~(width - 1))) s = lane;
  return bm_emu::shfl_from(mask, v, s);
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32) {
  const int lane = bm_emu::lane_id();
  const int in = lane & (width - 1);
  const int s = in + static_cast<int>(d) < width ? lane + static_cast<int>(d) : lane;
  return bm_emu::shfl_from(mask, v, s);
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned d, int width = 32) {
  const int lane = bm_emu::lane_id();
  const int in = lane & (width - 1);
  const int s = in - static_cast<int>(d) >= 0 ? lane - static_cast<int>(d) : lane;
  return bm_emu::shfl_from(mask, v, s);
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  const int mine = pred != 0;
  unsigned out = 0;
  bm_emu::warp_exchange(mask, &mine, sizeof(int), [&](const unsigned char* s) {
    for (int l = 0; l < 32; ++l) {
      int v;
      std::memcpy(&v, s + l * bm_emu::kSlotBytes, sizeof(int));
      if (((mask >> l) & 1u) && v) out |= 1u << l;
    }
  });
  return out;
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == __ballot_sync(mask, 1); }
inline unsigned __activemask() { return 0xffffffffu; }
[[noreturn]] inline void __trap() { bm_emu::trap("__trap()"); }
inline void __threadfence() {}
inline void __threadfence_block() {}
inline long long clock64() { return 0; }
inline void __nanosleep(unsigned) {}

// ---- atomics: fibers of one block share one host thread, and blocks run one at a time ---------
// (The toolkit's host operators cover __half, __nv_bfloat16 and their pairs, rounding once.)
template <typename T>
inline T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <typename T>
inline T atomicMax(T* p, T v) {
  const T old = *p;
  if (v > old) *p = v;
  return old;
}
template <typename T>
inline T atomicMin(T* p, T v) {
  const T old = *p;
  if (v < old) *p = v;
  return old;
}
template <typename T>
inline T atomicCAS(T* p, T cmp, T v) {
  const T old = *p;
  if (old == cmp) *p = v;
  return old;
}
template <typename T>
inline T atomicExch(T* p, T v) {
  const T old = *p;
  *p = v;
  return old;
}

// ---- loads, address spaces, bit casts -----------------------------------------------------------
template <typename T>
inline T __ldg(const T* p) { return *p; }
template <typename T>
inline T __ldcs(const T* p) { return *p; }
template <typename T>
inline void __stcs(T* p, T v) { *p = v; }
inline size_t __cvta_generic_to_shared(const void* p) {
  return static_cast<uint32_t>(static_cast<int32_t>(reinterpret_cast<uintptr_t>(p) - bm_emu::smem_base()));
}
inline size_t __cvta_generic_to_global(const void* p) { return reinterpret_cast<size_t>(p); }

inline float __int_as_float(int x) { float f; std::memcpy(&f, &x, 4); return f; }
inline int __float_as_int(float x) { int i; std::memcpy(&i, &x, 4); return i; }
inline float __uint_as_float(unsigned x) { float f; std::memcpy(&f, &x, 4); return f; }
inline unsigned __float_as_uint(float x) { unsigned i; std::memcpy(&i, &x, 4); return i; }
inline double __longlong_as_double(long long x) { double d; std::memcpy(&d, &x, 8); return d; }
inline long long __double_as_longlong(double x) { long long i; std::memcpy(&i, &x, 8); return i; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline unsigned __umulhi(unsigned a, unsigned b) {
  return static_cast<unsigned>((static_cast<unsigned long long>(a) * b) >> 32);
}
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
inline int __mul24(int a, int b) { return a * b; }

// ---- math intrinsics: the host's correctly rounded operations stand in for the _rn forms and
// for the fast approximations (which the GPU computes within a few ulp) ------------------------
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __log2f(float x) { return std::log2(x); }
inline float __exp10f(float x) { return std::pow(10.0f, x); }
inline float __powf(float a, float b) { return std::pow(a, b); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanf(float x) { return std::tan(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float exp10f(float x) { return std::pow(10.0f, x); }
inline float normcdff(float x) { return 0.5f * std::erfc(-x * 0.70710678118654752f); }
inline double normcdf(double x) { return 0.5 * std::erfc(-x * 0.70710678118654752); }
