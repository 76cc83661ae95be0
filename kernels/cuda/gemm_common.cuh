// Device helpers shared by the GEMM kernels: the epilogue (alpha/beta/bias/activation, the
// pre-activation aux output, dtype conversion), the tile order of the grid, and the sm_80
// primitives (cp.async, ldmatrix, mma.sync) as thin inline-asm wrappers. Included by
// kernels/cuda/gemm_*.cu only.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_internal.h"

namespace bigmodel::cuda::gemm_detail {

// ---- element conversion -----------------------------------------------------------------
template <typename T> __device__ __forceinline__ float to_float(T v) { return static_cast<float>(v); }
template <> __device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_float(float v) { return static_cast<T>(v); }
template <> __device__ __forceinline__ __half from_float(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float(float v) { return __float2bfloat16_rn(v); }

// ---- epilogue ---------------------------------------------------------------------------
struct Epilogue {
  float alpha, beta;
  const void* bias;  // out dtype, N elements, or null
  GemmActivation act;
  void* aux = nullptr;  // out dtype: the pre-activation values (GemmParams::aux), or null
  int64_t ld_aux = 0, stride_aux = 0;
};

inline Epilogue make_epilogue(const GemmParams& p) {
  return {p.alpha, p.beta, p.bias, p.act, p.aux, p.ld_aux, p.stride_aux};
}

__device__ __forceinline__ float activate(float v, GemmActivation act) {
  if (act == GemmActivation::ReLU) return v > 0.0f ? v : 0.0f;
  if (act == GemmActivation::GELUTanh) {
    const float inner = 0.7978845608028654f * (v + 0.044715f * v * v * v);  // sqrt(2/pi)
    return 0.5f * v * (1.0f + tanhf(inner));
  }
  if (act == GemmActivation::GELU) return 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));  // 1/sqrt(2)
  return v;
}

// Where element (m, n) of batch b goes in aux, or null when no aux is written.
template <typename TOut>
__device__ __forceinline__ TOut* aux_at(const Epilogue& ep, int64_t b, int m, int n) {
  if (!ep.aux) return nullptr;
  return static_cast<TOut*>(ep.aux) + b * ep.stride_aux + static_cast<int64_t>(m) * ep.ld_aux + n;
}

// C[m, n] = act(pre), aux[m, n] = pre with pre = alpha * acc + beta * C[m, n] + bias[n];
// beta == 0 never reads C; a null `aux` writes none.
template <typename TOut, typename Acc>
__device__ __forceinline__ void store_result(TOut* c, TOut* aux, const Epilogue& ep, int64_t n, Acc acc) {
  float v = ep.alpha * static_cast<float>(acc);
  if (ep.beta != 0.0f) v += ep.beta * to_float(*c);
  if (ep.bias) v += to_float(static_cast<const TOut*>(ep.bias)[n]);
  if (aux) *aux = from_float<TOut>(v);
  *c = from_float<TOut>(activate(v, ep.act));
}

// ---- grid order -------------------------------------------------------------------------
// Block `id` of a tiles_m x tiles_n grid, walked in column strips `group` tiles tall so that
// blocks running together share A rows and B columns in L2 (the order Triton's tutorials use).
__device__ __forceinline__ void tile_coords(int id, int tiles_m, int tiles_n, int& tm, int& tn) {
  constexpr int kGroup = 8;
  const int per_group = kGroup * tiles_n;
  const int group = id / per_group;
  const int first_m = group * kGroup;
  const int rows = min(tiles_m - first_m, kGroup);
  const int in_group = id - group * per_group;
  tm = first_m + in_group % rows;
  tn = in_group / rows;
}

// ---- the arguments every tiled kernel starts with ---------------------------------------------
// The operands, leading dims, batch strides and the grid's tile counts; each kernel's argument
// struct derives from it and adds its own flags. TIn / TOut: the element types it reads and
// writes (void where the kernel dispatches on a dtype flag).
template <typename TIn, typename TOut>
struct TiledArgs {
  int M, N, K;
  const TIn* A;
  const TIn* B;
  TOut* C;
  int64_t lda, ldb, ldc, stride_a, stride_b, stride_c;
  int64_t batch;
  int tiles_m, tiles_n;  // of BM x BN tiles of C
};

// Fills a's TiledArgs part from GemmParams or GemmInt8Params (the launcher checked the sizes).
template <int BM, int BN, typename TIn, typename TOut, typename Params>
void fill_tiled_args(TiledArgs<TIn, TOut>& a, const Params& p) {
  a.M = static_cast<int>(p.M);
  a.N = static_cast<int>(p.N);
  a.K = static_cast<int>(p.K);
  a.A = static_cast<const TIn*>(p.A);
  a.B = static_cast<const TIn*>(p.B);
  a.C = static_cast<TOut*>(p.C);
  a.lda = p.lda;
  a.ldb = p.ldb;
  a.ldc = p.ldc;
  a.stride_a = p.stride_a;
  a.stride_b = p.stride_b;
  a.stride_c = p.stride_c;
  a.batch = p.batch;
  a.tiles_m = static_cast<int>((p.M + BM - 1) / BM);
  a.tiles_n = static_cast<int>((p.N + BN - 1) / BN);
}

// ---- sm_80 primitives ---------------------------------------------------------------------
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global -> shared copy; bytes past src_bytes (0..16) are zero-filled, and with
// src_bytes == 0 nothing is read, so out-of-range chunks cost no bounds branch in the loop.
// The BIGMODEL_CUDA_EMU branches are the CUDA-on-CPU test build (tests/cuda_emu).
#ifdef BIGMODEL_CUDA_EMU
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, int src_bytes) {
  unsigned char* d = bm_emu::smem_ptr(dst);
  if (src_bytes > 0) std::memcpy(d, src, static_cast<size_t>(src_bytes));
  std::memset(d + src_bytes, 0, static_cast<size_t>(16 - src_bytes));
}
__device__ __forceinline__ void cp_async_commit() {}
template <int N>
__device__ __forceinline__ void cp_async_wait() {}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) { bm_emu::ldmatrix_x4(r, addr, false); }
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) { bm_emu::ldmatrix_x4(r, addr, true); }
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    bm_emu::mma_16816_bf16(d, a, b0, b1);
  else
    bm_emu::mma_16816_f16(d, a, b0, b1);
}
__device__ __forceinline__ void mma_16832_s8(int (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  bm_emu::mma_16832_s8(d, a, b0, b1);
}
#else
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// D += A * B for one m16n8k16 tile, float32 accumulators.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma_16816<__half>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// D += A * B for one m16n8k32 int8 tile, int32 accumulators.
__device__ __forceinline__ void mma_16832_s8(int (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#endif  // BIGMODEL_CUDA_EMU

// ---- shared-memory tile layouts for the tensor-core kernels ----------------------------------
// Both hold 128 x 64 bytes (128 x 32 halves, or 128 x 64 int8) with 16-byte chunks XOR-swizzled,
// so that the 8 row addresses of one ldmatrix phase fall in 8 different bank groups.
// "Row tile": 128 rows of 64 bytes (the K-contiguous operand: 4 chunks a row).
__device__ __forceinline__ uint32_t row_tile_offset(int row, int chunk) {
  return static_cast<uint32_t>(row * 64 + ((chunk ^ ((row >> 1) & 3)) << 4));
}
// "Column tile": 32 rows of 256 bytes (the M- or N-contiguous operand: 16 chunks a row).
__device__ __forceinline__ uint32_t col_tile_offset(int row, int chunk) {
  return static_cast<uint32_t>(row * 256 + ((chunk ^ (row & 7)) << 4));
}

// Raises a kernel's dynamic shared-memory limit past the default 48 KB, once per device (the
// setting is per function and device). Racing first calls both set it, which is harmless.
class SmemOptIn {
 public:
  void ensure(const void* kernel, int bytes) {
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev >= 64) dev = 63;  // errors surface at launch
    const uint64_t bit = uint64_t{1} << dev;
    if (done_.load(std::memory_order_acquire) & bit) return;
    const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    if (err != cudaSuccess) {
      cudaGetLastError();
      throw Error(str_cat("[gemm] cudaFuncSetAttribute(MaxDynamicSharedMemorySize, ", bytes,
                          ") failed: ", cudaGetErrorString(err)));
    }
    done_.fetch_or(bit, std::memory_order_release);
  }

 private:
  std::atomic<uint64_t> done_{0};
};

}  // namespace bigmodel::cuda::gemm_detail
