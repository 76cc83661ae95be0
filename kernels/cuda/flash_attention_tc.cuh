// Shared by the tensor-core flash-attention kernels (flash_attention_tc.cu forward,
// flash_attention_tc_bwd.cu backward): the swizzled [64][DP] half-precision shared-memory tile,
// its cp.async loader, and float <-> half-pair packing. Include after gemm_common.cuh.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/gemm_common.cuh"

namespace bigmodel::cuda::flash {

constexpr int kTcThreads = 128;  // both kernels: 4 warps

template <int DP>
constexpr int tile_bytes() { return 64 * DP * 2; }

// Byte offset of 16-byte chunk `chunk` of row `row` in a [64][DP] tile of halves. Rows are DP*2
// bytes (64, 128 or 256); chunks are XOR-swizzled so that the 8 rows one ldmatrix phase reads
// at one chunk column land in 8 different 16-byte bank groups.
template <int DP>
__device__ __forceinline__ uint32_t tile_off(int row, int chunk) {
  if constexpr (DP == 32) return static_cast<uint32_t>(row * 64 + ((chunk ^ ((row >> 1) & 3)) << 4));
  else return static_cast<uint32_t>(row * (DP * 2) + ((chunk ^ (row & 7)) << 4));
}

// 64 rows from row0 of a [N, D] matrix (row stride `srow` elements, unit column stride) into a
// swizzled tile; chunks past N or D are zero-filled (src bytes 0, nothing read).
template <typename T, int DP>
__device__ __forceinline__ void load_tile(uint32_t dst, const T* src, int64_t srow, int row0, int N, int D) {
  constexpr int kChunks = DP / 8;
#pragma unroll
  for (int it = 0; it < 64 * kChunks / kTcThreads; ++it) {
    const int i = threadIdx.x + it * kTcThreads;
    const int r = i / kChunks, c = i % kChunks;
    const int row = row0 + r, col = c * 8;
    int bytes = 0;
    const T* g = src;
    if (row < N && col < D) {
      bytes = min(D - col, 8) * 2;
      g = src + static_cast<int64_t>(row) * srow + col;
    }
    gemm_detail::cp_async_16(dst + tile_off<DP>(r, c), g, bytes);
  }
}

template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (lo) in the low half
  return *reinterpret_cast<const uint32_t*>(&v);
}
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

template <typename T>
__device__ __forceinline__ float load_f(const void* base, int64_t off) {
  return gemm_detail::to_float(static_cast<const T*>(base)[off]);
}

}  // namespace bigmodel::cuda::flash
