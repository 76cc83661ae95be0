// int8 x int8 -> int32 GEMM. The tensor-core kernel (mma.sync m16n8k32 s8, sm_80+) takes the
// quantized-Linear layout, A stored M x K and B stored N x K (both K-contiguous, the only form
// ldmatrix can feed to the s8 mma without a byte transpose): 128x128 block tiles, k-steps of
// 64 bytes, 4-stage cp.async pipeline, the same swizzled row tiles as gemm_tc.cu. Every other
// layout or alignment runs on the simple tiled kernel, exact in int32 as well.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_generic.cuh"

namespace bigmodel::cuda::gemm_detail {
namespace {

constexpr int kBM = 128, kBN = 128, kBK = 64;  // kBK in int8 elements = bytes
constexpr int kStages = 4;
constexpr int kThreads = 256;
constexpr int kTileBytes = 128 * 64;
constexpr int kStageBytes = 2 * kTileBytes;
constexpr int kSmemBytes = kStages * kStageBytes;

struct Int8Args : TiledArgs<int8_t, int32_t> {
  bool accumulate, vec_c;
};

__device__ __forceinline__ void load_rows(uint32_t dst, const int8_t* __restrict__ base, int64_t ld, int r0,
                                          int r_lim, int k0, int k_lim, int t) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int idx = t + i * kThreads;
    const int row = idx >> 2, chunk = idx & 3;
    const int grow = r0 + row, gcol = k0 + chunk * 16;
    int bytes = 0;
    const int8_t* src = base;
    if (grow < r_lim && gcol < k_lim) {
      bytes = min(k_lim - gcol, 16);
      src = base + static_cast<int64_t>(grow) * ld + gcol;
    }
    cp_async_16(dst + row_tile_offset(row, chunk), src, bytes);
  }
}

__device__ __forceinline__ void store_pair(int32_t* c, int n, int N, bool vec, bool accumulate, int v0, int v1) {
  if (vec && n + 1 < N) {
    int2 v = make_int2(v0, v1);
    if (accumulate) {
      const int2 old = *reinterpret_cast<const int2*>(c);
      v.x += old.x;
      v.y += old.y;
    }
    *reinterpret_cast<int2*>(c) = v;
  } else {
    if (n < N) c[0] = accumulate ? c[0] + v0 : v0;
    if (n + 1 < N) c[1] = accumulate ? c[1] + v1 : v1;
  }
}

__global__ void __launch_bounds__(kThreads, 2) gemm_int8_mma_128x128(Int8Args args) {
  extern __shared__ __align__(128) uint8_t smem[];
  const uint32_t smem_base = smem_addr(smem);
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
  const int wm0 = (warp >> 2) * 64, wn0 = (warp & 3) * 32;
  const int q = lane >> 3, r = lane & 7;

  int tm, tn;
  tile_coords(blockIdx.x, args.tiles_m, args.tiles_n, tm, tn);
  const int m0 = tm * kBM, n0 = tn * kBN;
  const int ktiles = (args.K + kBK - 1) / kBK;

  for (int64_t b = blockIdx.z; b < args.batch; b += gridDim.z) {
    const int8_t* A = args.A + b * args.stride_a;
    const int8_t* B = args.B + b * args.stride_b;
    auto load_stage = [&](int stage, int kt) {
      const uint32_t s = smem_base + stage * kStageBytes;
      load_rows(s, A, args.lda, m0, args.M, kt * kBK, args.K, t);
      load_rows(s + kTileBytes, B, args.ldb, n0, args.N, kt * kBK, args.K, t);
    };
    int acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[i][j][e] = 0;

#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) {
      if (s < ktiles) load_stage(s, s);
      cp_async_commit();
    }
    for (int kt = 0; kt < ktiles; ++kt) {
      cp_async_wait<kStages - 2>();
      __syncthreads();
      const int pf = kt + kStages - 1;
      if (pf < ktiles) load_stage(pf % kStages, pf);
      cp_async_commit();
      const uint32_t sa = smem_base + (kt % kStages) * kStageBytes, sb = sa + kTileBytes;
#pragma unroll
      for (int kk = 0; kk < kBK / 32; ++kk) {
        uint32_t af[4][4], bf[2][4];
#pragma unroll
        for (int mi = 0; mi < 4; ++mi)
          ldmatrix_x4(af[mi], sa + row_tile_offset(wm0 + mi * 16 + (lane & 15), kk * 2 + (lane >> 4)));
#pragma unroll
        for (int nj = 0; nj < 2; ++nj)
          ldmatrix_x4(bf[nj], sb + row_tile_offset(wn0 + nj * 16 + r + (q >> 1) * 8, kk * 2 + (q & 1)));
#pragma unroll
        for (int mi = 0; mi < 4; ++mi)
#pragma unroll
          for (int ni = 0; ni < 4; ++ni)
            mma_16832_s8(acc[mi][ni], af[mi], bf[ni >> 1][(ni & 1) * 2], bf[ni >> 1][(ni & 1) * 2 + 1]);
      }
    }
    cp_async_wait<0>();
    __syncthreads();

    int32_t* C = args.C + b * args.stride_c;
    const int g = lane >> 2, tig = lane & 3;
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int m = m0 + wm0 + mi * 16 + g + half * 8;
        if (m >= args.M) continue;
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
          const int n = n0 + wn0 + ni * 8 + tig * 2;
          store_pair(C + static_cast<int64_t>(m) * args.ldc + n, n, args.N, args.vec_c, args.accumulate,
                     acc[mi][ni][half * 2], acc[mi][ni][half * 2 + 1]);
        }
      }
  }
}

struct Int8Store {
  bool accumulate;
  __device__ void operator()(int32_t* c, int, int32_t acc) const { *c = accumulate ? *c + acc : acc; }
};

}  // namespace

bool int8_mma_supported(const GemmInt8Params& p) {
  return !p.trans_a && p.trans_b && p.K % 16 == 0 && p.lda % 16 == 0 && p.ldb % 16 == 0 &&
         p.stride_a % 16 == 0 && p.stride_b % 16 == 0 && pointer_alignment(p.A) >= 16 &&
         pointer_alignment(p.B) >= 16;
}

void launch_gemm_int8_mma(const GemmInt8Params& p, void* stream) {
  Int8Args a;
  fill_tiled_args<kBM, kBN>(a, p);
  a.accumulate = p.accumulate;
  a.vec_c = pointer_alignment(p.C) >= 8 && p.ldc % 2 == 0 && p.stride_c % 2 == 0;
  static SmemOptIn opt_in;
  opt_in.ensure(reinterpret_cast<const void*>(gemm_int8_mma_128x128), kSmemBytes);
  const dim3 grid(static_cast<unsigned>(a.tiles_m) * static_cast<unsigned>(a.tiles_n), 1,
                  static_cast<unsigned>(std::min<int64_t>(p.batch, 65535)));
  gemm_int8_mma_128x128<<<grid, kThreads, kSmemBytes, static_cast<cudaStream_t>(stream)>>>(a);
  BM_CUDA_CHECK_LAUNCH();
}

void launch_gemm_int8_generic(const GemmInt8Params& p, void* stream) {
  const GenericShape s = generic_shape(p);
  const dim3 grid = generic_grid(p);
  gemm_generic_32x32<int8_t, int32_t, int32_t><<<grid, 256, 0, static_cast<cudaStream_t>(stream)>>>(
      s, p.A, p.B, p.C, Int8Store{p.accumulate});
  BM_CUDA_CHECK_LAUNCH();
}

}  // namespace bigmodel::cuda::gemm_detail
