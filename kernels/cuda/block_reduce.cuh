// Warp- and block-level reductions for CUDA kernels (reductions, softmax, norms, losses,
// optimizer norms): values combine through warp shuffles, then one shared-memory slot per
// warp. Every thread of the block must call block_reduce (it synchronises).
#pragma once
#include <cuda_runtime.h>

#include <cfloat>

namespace bigmodel::cuda {

struct SumOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a > b ? a : b; }
};
struct MinOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a < b ? a : b; }
};

// Combines `v` across the 32 lanes of a warp; every lane gets the result.
template <typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) { return warp_reduce(v, SumOp{}); }
template <typename T>
__device__ __forceinline__ T warp_max(T v) { return warp_reduce(v, MaxOp{}); }

// Combines `v` across the block (blockDim.x a multiple of 32, at most 1024); every thread
// gets the result. `identity` fills the lanes of missing warps. Safe to call repeatedly:
// the trailing barrier keeps the next call from overwriting slots still being read.
template <typename T, typename Op>
__device__ __forceinline__ T block_reduce(T v, Op op, T identity) {
  __shared__ T slots[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  v = warp_reduce(v, op);
  if (lane == 0) slots[warp] = v;
  __syncthreads();
  T r = lane < warps ? slots[lane] : identity;
  r = warp_reduce(r, op);
  __syncthreads();
  return r;
}

template <typename T>
__device__ __forceinline__ T block_sum(T v) { return block_reduce(v, SumOp{}, T(0)); }
__device__ __forceinline__ float block_max(float v) { return block_reduce(v, MaxOp{}, -FLT_MAX); }

}  // namespace bigmodel::cuda
