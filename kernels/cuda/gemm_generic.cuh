// The simple tiled GEMM every dtype and layout falls back to: 32x32 tiles of C, k-steps of 32,
// element loads through run-time strides (so any leading dim, transpose or alignment works).
// It is the fallback for unaligned operands and the reference the fast kernels are tested
// beside; speed is not its job. Included by gemm_generic.cu and gemm_int8.cu.
#pragma once
#include <type_traits>

#include "kernels/cuda/gemm_common.cuh"

namespace bigmodel::cuda::gemm_detail {

struct GenericShape {
  int M, N, K;
  // Element strides of op(A) (M x K) and op(B) (K x N) as stored, and of C.
  int64_t a_rs, a_cs, b_rs, b_cs, ldc;
  int64_t stride_a, stride_b, stride_c, batch;
};

constexpr int kGenTile = 32;

// The shape and strides from GemmParams or GemmInt8Params, and the grid of 32x32 C tiles.
template <typename Params>
GenericShape generic_shape(const Params& p) {
  GenericShape s;
  s.M = static_cast<int>(p.M);
  s.N = static_cast<int>(p.N);
  s.K = static_cast<int>(p.K);
  s.a_rs = p.trans_a ? 1 : p.lda;
  s.a_cs = p.trans_a ? p.lda : 1;
  s.b_rs = p.trans_b ? 1 : p.ldb;
  s.b_cs = p.trans_b ? p.ldb : 1;
  s.ldc = p.ldc;
  s.stride_a = p.stride_a;
  s.stride_b = p.stride_b;
  s.stride_c = p.stride_c;
  s.batch = p.batch;
  return s;
}
template <typename Params>
dim3 generic_grid(const Params& p) {
  return dim3(static_cast<unsigned>((p.N + kGenTile - 1) / kGenTile), static_cast<unsigned>((p.M + kGenTile - 1) / kGenTile),
              static_cast<unsigned>(p.batch < 65535 ? p.batch : 65535));
}

// An input element in the accumulator type (halves through float).
template <typename Acc, typename T>
__device__ __forceinline__ Acc widen(T v) {
  if constexpr (std::is_same_v<Acc, float>) return to_float(v);
  else return static_cast<Acc>(v);
}

// Store(c_ptr, n, acc) writes one finished element; a Store that also takes the batch and row,
// Store(c_ptr, batch, m, n, acc), gets them (for a second output such as the GEMM's aux).
template <typename TIn, typename TOut, typename Acc, typename Store>
__global__ void __launch_bounds__(256) gemm_generic_32x32(GenericShape s, const TIn* __restrict__ A,
                                                          const TIn* __restrict__ B, TOut* C, Store store) {
  __shared__ Acc As[kGenTile][kGenTile + 1];  // [m][k]; +1 keeps column reads conflict-free
  __shared__ Acc Bs[kGenTile][kGenTile + 1];  // [k][n]
  const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;  // 32 x 8 threads, 4 rows each
  const int m0 = blockIdx.y * kGenTile, n0 = blockIdx.x * kGenTile;
  for (int64_t b = blockIdx.z; b < s.batch; b += gridDim.z) {
    const TIn* a = A + b * s.stride_a;
    const TIn* bm = B + b * s.stride_b;
    Acc acc[4] = {Acc(0), Acc(0), Acc(0), Acc(0)};
    for (int k0 = 0; k0 < s.K; k0 += kGenTile) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int r = ty + 8 * i;
        const int m = m0 + r, ka = k0 + tx;  // A tile element (r, tx)
        As[r][tx] = (m < s.M && ka < s.K) ? widen<Acc>(a[m * s.a_rs + ka * s.a_cs]) : Acc(0);
        const int kb = k0 + r, n = n0 + tx;  // B tile element (r, tx)
        Bs[r][tx] = (kb < s.K && n < s.N) ? widen<Acc>(bm[kb * s.b_rs + n * s.b_cs]) : Acc(0);
      }
      __syncthreads();
#pragma unroll 8
      for (int k = 0; k < kGenTile; ++k)
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[i] += As[ty + 8 * i][k] * Bs[k][tx];
      __syncthreads();
    }
    const int n = n0 + tx;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int m = m0 + ty + 8 * i;
      if (m < s.M && n < s.N) {
        TOut* c = C + b * s.stride_c + m * s.ldc + n;
        if constexpr (std::is_invocable_v<const Store&, TOut*, int64_t, int, int, Acc>) store(c, b, m, n, acc[i]);
        else store(c, n, acc[i]);
      }
    }
  }
}

}  // namespace bigmodel::cuda::gemm_detail
