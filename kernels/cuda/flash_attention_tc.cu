// Fused attention forward on the tensor cores (float16/bfloat16, mma.sync m16n8k16 with float32
// accumulation): a block of 4 warps owns 64 query rows (16 per warp, its Q fragments kept in
// registers); 64-key K/V tiles stream through a 2-stage cp.async pipeline into XOR-swizzled
// shared tiles; S = Q K^T stays in registers, the online softmax rescales the O accumulators,
// and P is re-packed from the S accumulators straight into A fragments for O += P V. Head dims
// are padded to 32, 64 or 128 (zero-filled by cp.async). Writes O and the row logsumexp.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/flash_attention_common.cuh"
#include "kernels/cuda/gemm_common.cuh"
#include "kernels/cuda/flash_attention_tc.cuh"

namespace bigmodel::cuda::flash {
namespace {

using gemm_detail::cp_async_16;
using gemm_detail::cp_async_commit;
using gemm_detail::cp_async_wait;
using gemm_detail::ldmatrix_x4;
using gemm_detail::ldmatrix_x4_trans;
using gemm_detail::mma_16816;
using gemm_detail::smem_addr;

constexpr int kThreads = kTcThreads;  // 4 warps x 16 query rows
constexpr int kBM = 64;        // query rows per block
constexpr int kBN = 64;        // keys per tile

template <int DP>
constexpr int smem_bytes() { return 5 * tile_bytes<DP>(); }  // Q, then (K, V) x 2 stages

__device__ __forceinline__ float neg_inf() { return -__int_as_float(0x7f800000); }

template <typename T, int DP>
__global__ void __launch_bounds__(kThreads) flash_forward_tc(FlashParams p) {
  constexpr int kKSteps = DP / 16;   // k16 steps of Q K^T
  constexpr int kDTiles = DP / 8;    // n8 tiles of O
  constexpr int kSTiles = kBN / 8;   // n8 tiles of S
  extern __shared__ __align__(128) uint8_t smem[];
  const uint32_t sQ = smem_addr(smem);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, tig = lane & 3;
  // Causal: the blocks with the most key tiles (largest q0) start first.
  const int qblk = p.causal ? static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x) : blockIdx.x;
  const int q0 = qblk * kBM;
  const int row_lo = q0 + warp * 16 + g;  // this thread's rows: row_lo and row_lo + 8
  const int BH = p.B * p.H;

  for (int bh = blockIdx.y; bh < BH; bh += gridDim.y) {
    const int b = bh / p.H, h = bh - b * p.H;
    const T* Q = static_cast<const T*>(p.q) + b * p.sq[0] + h * p.sq[1];
    const T* K = static_cast<const T*>(p.k) + b * p.sk[0] + h * p.sk[1];
    const T* V = static_cast<const T*>(p.v) + b * p.sv[0] + h * p.sv[1];
    const int64_t mb = b * p.sm[0] + h * p.sm[1];

    int ktiles = (p.Nk + kBN - 1) / kBN;
    if (p.causal) ktiles = min(ktiles, (min(q0 + kBM, p.Nq) - 1) / kBN + 1);

    load_tile<T, DP>(sQ, Q, p.sq[2], q0, p.Nq, p.D);
    load_tile<T, DP>(sQ + tile_bytes<DP>(), K, p.sk[2], 0, p.Nk, p.D);
    load_tile<T, DP>(sQ + 2 * tile_bytes<DP>(), V, p.sv[2], 0, p.Nk, p.D);
    cp_async_commit();

    float o[kDTiles][4];
#pragma unroll
    for (int i = 0; i < kDTiles; ++i)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[i][e] = 0.0f;
    float m[2] = {neg_inf(), neg_inf()}, l[2] = {0.0f, 0.0f};
    uint32_t qf[kKSteps][4];

    for (int kt = 0; kt < ktiles; ++kt) {
      cp_async_wait<0>();  // tile kt (and Q) landed for this thread
      __syncthreads();     // ... for every thread; and everyone is done with tile kt - 1
      if (kt + 1 < ktiles) {  // refill the stage tile kt - 1 used
        const uint32_t nxt = sQ + (1 + 2 * ((kt + 1) & 1)) * tile_bytes<DP>();
        load_tile<T, DP>(nxt, K, p.sk[2], (kt + 1) * kBN, p.Nk, p.D);
        load_tile<T, DP>(nxt + tile_bytes<DP>(), V, p.sv[2], (kt + 1) * kBN, p.Nk, p.D);
      }
      cp_async_commit();
      if (kt == 0) {
#pragma unroll
        for (int kk = 0; kk < kKSteps; ++kk)
          ldmatrix_x4(qf[kk], sQ + tile_off<DP>(warp * 16 + (lane & 15), kk * 2 + (lane >> 4)));
      }
      const uint32_t sK = sQ + (1 + 2 * (kt & 1)) * tile_bytes<DP>(), sV = sK + tile_bytes<DP>();

      // S = Q K^T: K rows are the B operand's columns (K-contiguous), ldmatrix without .trans;
      // one x4 covers two n8 key tiles: {b0, b1 of tile 2nj, b0, b1 of tile 2nj + 1}.
      float s[kSTiles][4];
#pragma unroll
      for (int i = 0; i < kSTiles; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[i][e] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk) {
#pragma unroll
        for (int nj = 0; nj < kSTiles / 2; ++nj) {
          uint32_t bf[4];
          ldmatrix_x4(bf, sK + tile_off<DP>(nj * 16 + (lane & 7) + (lane >> 4) * 8, kk * 2 + ((lane >> 3) & 1)));
          mma_16816<T>(s[2 * nj], qf[kk], bf[0], bf[1]);
          mma_16816<T>(s[2 * nj + 1], qf[kk], bf[2], bf[3]);
        }
      }

      // Scale, then mask only the tiles that need it: the last (partial) key tile, the
      // diagonal tiles under causality, and every tile under an explicit mask.
      const int col0 = kt * kBN;
      const bool edge = col0 + kBN > p.Nk || (p.causal && col0 + kBN - 1 > q0) || p.mask_kind != kNoMask;
#pragma unroll
      for (int nt = 0; nt < kSTiles; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float x = s[nt][e] * p.scale;
          if (edge) {
            const int row = row_lo + (e >> 1) * 8, col = col0 + nt * 8 + 2 * tig + (e & 1);
            if (col >= p.Nk || (p.causal && col > row)) {
              x = neg_inf();
            } else if (p.mask_kind != kNoMask && row < p.Nq) {
              x += mask_term(p, mb, row, col, [&](int64_t off) { return load_f<T>(p.mask, off); });
            }
          }
          s[nt][e] = x;
        }
      }

      // Online softmax per row: the quad (4 lanes sharing g) holds a row's 64 scores.
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        float mx = neg_inf();
#pragma unroll
        for (int nt = 0; nt < kSTiles; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * hf], s[nt][2 * hf + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m[hf], mx);
        const float m_use = m_new == neg_inf() ? 0.0f : m_new;  // nothing kept yet in this row
        const float alpha = __expf(m[hf] - m_use);
        m[hf] = m_new;
        float rs = 0.0f;
#pragma unroll
        for (int nt = 0; nt < kSTiles; ++nt) {
          s[nt][2 * hf] = __expf(s[nt][2 * hf] - m_use);
          s[nt][2 * hf + 1] = __expf(s[nt][2 * hf + 1] - m_use);
          rs += s[nt][2 * hf] + s[nt][2 * hf + 1];
        }
        l[hf] = l[hf] * alpha + rs;  // this lane's part; the quad is summed at the end
#pragma unroll
        for (int dt = 0; dt < kDTiles; ++dt) {
          o[dt][2 * hf] *= alpha;
          o[dt][2 * hf + 1] *= alpha;
        }
      }

      // O += P V. The m16n8 accumulators of key tiles 2kk and 2kk+1 are exactly the m16k16 A
      // fragment of k-step kk: {rows g: keys 2tig.., rows g+8: keys 2tig.., then keys 8+2tig..}.
      // V rows are keys (the B operand's k), D-contiguous: ldmatrix .trans.
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) {
        uint32_t a[4];
        a[0] = pack2<T>(s[2 * kk][0], s[2 * kk][1]);
        a[1] = pack2<T>(s[2 * kk][2], s[2 * kk][3]);
        a[2] = pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        a[3] = pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
        for (int nj = 0; nj < kDTiles / 2; ++nj) {
          uint32_t bf[4];
          ldmatrix_x4_trans(bf, sV + tile_off<DP>(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, nj * 2 + (lane >> 4)));
          mma_16816<T>(o[2 * nj], a, bf[0], bf[1]);
          mma_16816<T>(o[2 * nj + 1], a, bf[2], bf[3]);
        }
      }
    }
    cp_async_wait<0>();  // no copy may still target smem when the next (b, h) starts
    __syncthreads();

    T* out = static_cast<T*>(p.out);
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      float lsum = l[hf];
      lsum += __shfl_xor_sync(0xffffffffu, lsum, 1);
      lsum += __shfl_xor_sync(0xffffffffu, lsum, 2);
      const int row = row_lo + hf * 8;
      if (row >= p.Nq) continue;
      // All keys masked: NaN, as the composed path's softmax over all -inf.
      const float inv = lsum > 0.0f ? 1.0f / lsum : __int_as_float(0x7fc00000);
      T* orow = out + (static_cast<int64_t>(bh) * p.Nq + row) * p.D;
#pragma unroll
      for (int dt = 0; dt < kDTiles; ++dt) {
        const int d = dt * 8 + 2 * tig;
        if (d + 1 < p.D && (p.D & 1) == 0) {
          *reinterpret_cast<uint32_t*>(orow + d) = pack2<T>(o[dt][2 * hf] * inv, o[dt][2 * hf + 1] * inv);
        } else {
          if (d < p.D) orow[d] = gemm_detail::from_float<T>(o[dt][2 * hf] * inv);
          if (d + 1 < p.D) orow[d + 1] = gemm_detail::from_float<T>(o[dt][2 * hf + 1] * inv);
        }
      }
      if (tig == 0) {
        p.lse[static_cast<int64_t>(bh) * p.Nq + row] = lsum > 0.0f ? m[hf] + logf(lsum) : __int_as_float(0x7fc00000);
      }
    }
  }
}

template <typename T, int DP>
void launch(const FlashParams& p, cudaStream_t s) {
  static FlashSmemOptIn opt_in;
  opt_in.ensure(reinterpret_cast<const void*>(flash_forward_tc<T, DP>), smem_bytes<DP>());
  const dim3 grid(static_cast<unsigned>((p.Nq + kBM - 1) / kBM), static_cast<unsigned>(std::min(p.B * p.H, 65535)));
  flash_forward_tc<T, DP><<<grid, kThreads, smem_bytes<DP>(), s>>>(p);
  BM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void launch_typed(const FlashParams& p, cudaStream_t s) {
  if (p.D <= 32) launch<T, 32>(p, s);
  else if (p.D <= 64) launch<T, 64>(p, s);
  else launch<T, 128>(p, s);
}

}  // namespace

void launch_forward_tc(const FlashParams& p, int dtype, cudaStream_t s) {
  if (dtype == 1) launch_typed<__half>(p, s);
  else launch_typed<__nv_bfloat16>(p, s);
}

}  // namespace bigmodel::cuda::flash
