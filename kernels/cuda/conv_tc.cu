// float16 / bfloat16 implicit-GEMM convolution on the tensor cores (mma.sync m16n8k16, float32
// accumulation): 64 x 128 block tiles, k-steps of 32, 8 warps each owning a 32 x 32 piece.
// Tiles of the virtual im2col matrix are gathered element by element into registers (no
// column buffer in global memory), stored as 16-byte K-contiguous chunks into XOR-swizzled
// shared tiles (gemm_common.cuh's row_tile_offset) and read with ldmatrix. Two stages: the
// next tile's gathers are in flight while this one's MMAs run.
#include "kernels/cuda/conv_igemm.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_common.cuh"

namespace bigmodel::cuda::conv_detail {
namespace {

using gemm_detail::ldmatrix_x4;
using gemm_detail::mma_16816;
using gemm_detail::row_tile_offset;
using gemm_detail::smem_addr;
using gemm_detail::to_float;
using gemm_detail::from_float;

constexpr int kThreads = 256;
constexpr int BK = kTcTileK;
constexpr int kATileBytes = kTileM * BK * 2;  // 64 rows of 64 bytes
constexpr int kBTileBytes = kTileN * BK * 2;  // 128 rows of 64 bytes

__device__ __forceinline__ uint32_t pack2(uint16_t lo, uint16_t hi) {
  return static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
}

template <typename T, bool kDiv>
__global__ void __launch_bounds__(kThreads, 2) conv_igemm_tc(ConvGemmArgs args) {
  __shared__ __align__(128) uint8_t smem_a[2][kATileBytes];
  __shared__ __align__(128) uint8_t smem_b[2][kBTileBytes];
  __shared__ KTable<BK> tab[2];

  const ConvGemmArgs& a = args;
  const BlockCoords bc = block_coords(a);
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
  const uint16_t* __restrict__ A = static_cast<const uint16_t*>(a.a) + bc.group * a.a_group;
  const uint16_t* __restrict__ B = static_cast<const uint16_t*>(a.b);

  // Loader roles. B: column n0 + t % 128, 16-byte chunks (8 kappa) t / 128 and t / 128 + 2.
  // A: row m0 + t / 4, chunk t % 4.
  const int b_col = t % kTileN, b_chunk0 = t / kTileN;
  const Column col = make_column(a, bc.n0 + b_col, bc.group);
  const int a_row = t / 4, a_chunk = t % 4;
  const int a_m = bc.m0 + a_row;
  const uint16_t* A_row = A + static_cast<int64_t>(a_m < a.M ? a_m : 0) * a.a_row;

  uint16_t rb[2][8], ra[8];
  auto load_tile = [&](const KTable<BK>& tb) {
#pragma unroll
    for (int c = 0; c < 2; ++c) gather_b<kDiv>(rb[c], B, a, col, tb, (b_chunk0 + 2 * c) * 8);
    // A: 8 consecutive kappa of row a_m; with q_chunks their offsets step by k_aq. Loads are
    // unconditional (from A_row itself where absent), the value selected after: no branches.
    if (a.q_chunks) {
      const int64_t aoff = tb.aoff[a_chunk * 8];
      const bool ok = aoff >= 0 && a_m < a.M;
      const uint16_t* p = A_row + (ok ? aoff : 0);
      const int64_t step = ok ? a.k_aq : 0;
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const uint16_t x = __ldg(p + e * step);
        ra[e] = ok ? x : uint16_t(0);
      }
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const int64_t aoff = tb.aoff[a_chunk * 8 + e];
        const bool ok = aoff >= 0 && a_m < a.M;
        const uint16_t x = __ldg(A_row + (ok ? aoff : 0));
        ra[e] = ok ? x : uint16_t(0);
      }
    }
  };
  auto store_tile = [&](int s) {
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const uint4 v = make_uint4(pack2(rb[c][0], rb[c][1]), pack2(rb[c][2], rb[c][3]), pack2(rb[c][4], rb[c][5]),
                                 pack2(rb[c][6], rb[c][7]));
      *reinterpret_cast<uint4*>(&smem_b[s][row_tile_offset(b_col, b_chunk0 + 2 * c)]) = v;
    }
    const uint4 v = make_uint4(pack2(ra[0], ra[1]), pack2(ra[2], ra[3]), pack2(ra[4], ra[5]), pack2(ra[6], ra[7]));
    *reinterpret_cast<uint4*>(&smem_a[s][row_tile_offset(a_row, a_chunk)]) = v;
  };

  // Warp tile: rows wm..wm+31, columns wn..wn+31 (2 x 4 warps).
  const int wm = (warp >> 2) * 32, wn = (warp & 3) * 32;
  float acc[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

  const int ktiles = bc.k_end > bc.k_begin ? (bc.k_end - bc.k_begin + BK - 1) / BK : 0;
  if (ktiles > 0) {
    build_ktable(tab[0], a, bc.k_begin, bc.k_end);
    __syncthreads();
    load_tile(tab[0]);
    store_tile(0);
    if (ktiles > 1) build_ktable(tab[1], a, bc.k_begin + BK, bc.k_end);
    __syncthreads();
  }
  const int q = lane >> 3, r8 = lane & 7;
  for (int kt = 0; kt < ktiles; ++kt) {
    const int cur = kt & 1;
    if (kt + 1 < ktiles) load_tile(tab[cur ^ 1]);
    const uint32_t sa = smem_addr(smem_a[cur]), sb = smem_addr(smem_b[cur]);
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      uint32_t af[2][4], bf[2][4];
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
        ldmatrix_x4(af[mi], sa + row_tile_offset(wm + mi * 16 + (lane & 15), kk * 2 + (lane >> 4)));
      // bf[nj] = {b0, b1 of n-tile 2nj, b0, b1 of n-tile 2nj+1}
#pragma unroll
      for (int nj = 0; nj < 2; ++nj)
        ldmatrix_x4(bf[nj], sb + row_tile_offset(wn + nj * 16 + r8 + (q >> 1) * 8, kk * 2 + (q & 1)));
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
          mma_16816<T>(acc[mi][ni], af[mi], bf[ni >> 1][(ni & 1) * 2], bf[ni >> 1][(ni & 1) * 2 + 1]);
    }
    // Stage cur ^ 1 and tab[cur] were last read before the previous barrier.
    if (kt + 1 < ktiles) store_tile(cur ^ 1);
    if (kt + 2 < ktiles) build_ktable(tab[cur], a, bc.k_begin + (kt + 2) * BK, bc.k_end);
    __syncthreads();
  }

  // Accumulator (mi, ni, e): row g (+8 for e >= 2), column 2 * tig + (e & 1) of its 16 x 8 tile.
  const int g = lane >> 2, tig = lane & 3;
  const T* bias = static_cast<const T*>(a.bias);
#pragma unroll
  for (int mi = 0; mi < 2; ++mi) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int m = bc.m0 + wm + mi * 16 + g + half * 8;
      if (m >= a.M) continue;
      const float bm = bias ? to_float(bias[bc.group * a.M + m]) : 0.0f;
#pragma unroll
      for (int ni = 0; ni < 4; ++ni) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int j = bc.n0 + wn + ni * 8 + tig * 2 + e;
          if (j >= a.Nc) continue;
          const float v = acc[mi][ni][half * 2 + e] + bm;
          const int64_t o = out_offset(a, bc.group, bc.split, m, j);
          if (a.out_f32) static_cast<float*>(a.out)[o] = v;
          else static_cast<T*>(a.out)[o] = from_float<T>(v);
        }
      }
    }
  }
}

template <typename T>
void launch_typed(const ConvGemmArgs& a, cudaStream_t stream) {
  const int tiles_m = (a.M + kTileM - 1) / kTileM, tiles_n = (a.Nc + kTileN - 1) / kTileN;
  const dim3 grid(static_cast<unsigned>(tiles_m) * static_cast<unsigned>(tiles_n), 1,
                  static_cast<unsigned>(a.groups * a.splits));
  if (a.div_h > 1 || a.div_w > 1) conv_igemm_tc<T, true><<<grid, kThreads, 0, stream>>>(a);
  else conv_igemm_tc<T, false><<<grid, kThreads, 0, stream>>>(a);
  BM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_conv_tc(DType dtype, const ConvGemmArgs& a, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  if (dtype == DType::BFloat16) launch_typed<__nv_bfloat16>(a, s);
  else launch_typed<__half>(a, s);
}

}  // namespace bigmodel::cuda::conv_detail
