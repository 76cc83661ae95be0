// Fused attention backward on the tensor cores (float16/bfloat16, mma.sync m16n8k16, float32
// accumulation), FlashAttention-2 style: a block of 4 warps owns 64 keys (16 per warp) with
// their K and V tiles in shared memory, and streams 64-query tiles of Q and dO. Each warp
// computes S^T = K Q^T and dP^T = V dO^T for its keys, P^T = exp(S^T * scale - lse) from the
// forward's logsumexp, dS^T = P^T (dP^T - delta), and keeps dV += P^T dO and dK += dS^T Q in
// registers (P^T and dS^T re-packed from accumulators into A fragments, as in the forward).
// dQ += dS K goes through a shared dS^T tile and float32 atomics into a scratch buffer that a
// last kernel scales and converts. No N x N buffer.
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

constexpr int kThreads = kTcThreads;
constexpr int kBK = 64;  // keys per block (16 per warp)
constexpr int kBQ = 64;  // queries per streamed tile

constexpr int kDsBytes = kBK * kBQ * 2;
// K, V, Q, dO tiles, the dS^T tile, then lse and delta of the query tile.
template <int DP>
constexpr int smem_bytes() { return 4 * tile_bytes<DP>() + kDsBytes + 2 * kBQ * 4; }

// acc[16 x 64] (8 n8 tiles) of this warp = A rows (16 of tile sA from row a0, k = DP) times
// B^T where B is a [64][DP] tile (rows = the n index, K-contiguous).
template <typename T, int DP>
__device__ __forceinline__ void gemm_rows_by_tile(float (&acc)[8][4], uint32_t sA, int a0, uint32_t sB, int lane) {
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[i][e] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < DP / 16; ++kk) {
    uint32_t a[4];
    ldmatrix_x4(a, sA + tile_off<DP>(a0 + (lane & 15), kk * 2 + (lane >> 4)));
#pragma unroll
    for (int nj = 0; nj < 4; ++nj) {
      uint32_t b[4];
      ldmatrix_x4(b, sB + tile_off<DP>(nj * 16 + (lane & 7) + (lane >> 4) * 8, kk * 2 + ((lane >> 3) & 1)));
      mma_16816<T>(acc[2 * nj], a, b[0], b[1]);
      mma_16816<T>(acc[2 * nj + 1], a, b[2], b[3]);
    }
  }
}

// acc[16 x DP] += X (16 x 64, accumulator layout, packed to A fragments) times a [64][DP] tile
// whose rows are the k index (D-contiguous: ldmatrix .trans).
template <typename T, int DP>
__device__ __forceinline__ void gemm_acc_by_tile(float (&acc)[DP / 8][4], const float (&x)[8][4], uint32_t sB,
                                                 int lane) {
#pragma unroll
  for (int kk = 0; kk < kBQ / 16; ++kk) {
    uint32_t a[4];
    a[0] = pack2<T>(x[2 * kk][0], x[2 * kk][1]);
    a[1] = pack2<T>(x[2 * kk][2], x[2 * kk][3]);
    a[2] = pack2<T>(x[2 * kk + 1][0], x[2 * kk + 1][1]);
    a[3] = pack2<T>(x[2 * kk + 1][2], x[2 * kk + 1][3]);
#pragma unroll
    for (int nj = 0; nj < DP / 16; ++nj) {
      uint32_t b[4];
      ldmatrix_x4_trans(b, sB + tile_off<DP>(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, nj * 2 + (lane >> 4)));
      mma_16816<T>(acc[2 * nj], a, b[0], b[1]);
      mma_16816<T>(acc[2 * nj + 1], a, b[2], b[3]);
    }
  }
}

template <typename T, int DP>
__global__ void __launch_bounds__(kThreads) flash_backward_tc(FlashParams p, float* dq_accum) {
  constexpr int kDTiles = DP / 8;
  extern __shared__ __align__(128) uint8_t smem[];
  const uint32_t sK = smem_addr(smem), sV = sK + tile_bytes<DP>(), sQ = sV + tile_bytes<DP>(),
                 sdO = sQ + tile_bytes<DP>(), sdS = sdO + tile_bytes<DP>();
  float* lse_s = reinterpret_cast<float*>(smem + 4 * tile_bytes<DP>() + kDsBytes);
  float* delta_s = lse_s + kBQ;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, tig = lane & 3;
  const int k0 = blockIdx.x * kBK;
  const int key_lo = k0 + warp * 16 + g;  // this thread's keys: key_lo and key_lo + 8
  const int BH = p.B * p.H;

  for (int bh = blockIdx.y; bh < BH; bh += gridDim.y) {
    const int b = bh / p.H, h = bh - b * p.H;
    const T* Q = static_cast<const T*>(p.q) + b * p.sq[0] + h * p.sq[1];
    const T* K = static_cast<const T*>(p.k) + b * p.sk[0] + h * p.sk[1];
    const T* V = static_cast<const T*>(p.v) + b * p.sv[0] + h * p.sv[1];
    const T* dO = static_cast<const T*>(p.dout) + b * p.sdo[0] + h * p.sdo[1];
    const int64_t mb = b * p.sm[0] + h * p.sm[1];
    float* dqa = dq_accum + static_cast<int64_t>(bh) * p.Nq * p.D;

    load_tile<T, DP>(sK, K, p.sk[2], k0, p.Nk, p.D);
    load_tile<T, DP>(sV, V, p.sv[2], k0, p.Nk, p.D);

    float dk[kDTiles][4], dv[kDTiles][4];
#pragma unroll
    for (int i = 0; i < kDTiles; ++i)
#pragma unroll
      for (int e = 0; e < 4; ++e) dk[i][e] = dv[i][e] = 0.0f;

    const int qtiles = (p.Nq + kBQ - 1) / kBQ;
    // Causal: query q sees key j only when j <= q, so tiles wholly below k0 contribute nothing.
    const int first = p.causal ? k0 / kBQ : 0;
    for (int qt = first; qt < qtiles; ++qt) {
      const int q0 = qt * kBQ;
      __syncthreads();  // the previous tile's Q, dO, dS^T, lse and delta are consumed
      load_tile<T, DP>(sQ, Q, p.sq[2], q0, p.Nq, p.D);
      load_tile<T, DP>(sdO, dO, p.sdo[2], q0, p.Nq, p.D);
      cp_async_commit();
      if (threadIdx.x < kBQ) {
        const int q = q0 + threadIdx.x;
        const int64_t i = static_cast<int64_t>(bh) * p.Nq + q;
        lse_s[threadIdx.x] = q < p.Nq ? p.lse[i] : 0.0f;
        delta_s[threadIdx.x] = q < p.Nq ? p.delta[i] : 0.0f;
      }
      cp_async_wait<0>();
      __syncthreads();

      // P^T for this warp's 16 keys x 64 queries, then dV += P^T dO before dP^T is formed, so
      // that at most two 16 x 64 score blocks are live next to the dK/dV accumulators.
      float pt[8][4];
      gemm_rows_by_tile<T, DP>(pt, sK, warp * 16, sQ, lane);
      // Bounds, causality and the mask are checked only on tiles that need them.
      const bool edge = p.mask_kind != kNoMask || k0 + kBK > p.Nk || q0 + kBQ > p.Nq || (p.causal && k0 + kBK - 1 > q0);
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = key_lo + (e >> 1) * 8, ql = nt * 8 + 2 * tig + (e & 1), q = q0 + ql;
          float prob = 0.0f;
          if (!edge) {
            prob = __expf(pt[nt][e] * p.scale - lse_s[ql]);
          } else if (key < p.Nk && q < p.Nq && !(p.causal && key > q)) {
            float s = pt[nt][e] * p.scale;
            if (p.mask_kind != kNoMask) {
              s += mask_term(p, mb, q, key, [&](int64_t off) { return load_f<T>(p.mask, off); });
            }
            prob = __expf(s - lse_s[ql]);
          }
          pt[nt][e] = prob;
        }
      }
      gemm_acc_by_tile<T, DP>(dv, pt, sdO, lane);
      float dpt[8][4];  // dP^T = V dO^T, then dS^T = P^T (dP^T - delta) in place
      gemm_rows_by_tile<T, DP>(dpt, sV, warp * 16, sdO, lane);
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) dpt[nt][e] = pt[nt][e] * (dpt[nt][e] - delta_s[nt * 8 + 2 * tig + (e & 1)]);
      }
      gemm_acc_by_tile<T, DP>(dk, dpt, sQ, lane);

      // dS^T -> shared [64 keys][64 queries] (rows of 128 bytes, swizzled), then
      // dQ[16 queries of this warp] += dS K through float32 atomics.
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          const int row = warp * 16 + g + hf * 8;
          const uint32_t addr = sdS + tile_off<64>(row, nt) + 4 * tig;
#ifdef BIGMODEL_CUDA_EMU
          const uint32_t packed = pack2<T>(dpt[nt][2 * hf], dpt[nt][2 * hf + 1]);
          std::memcpy(bm_emu::smem_ptr(addr), &packed, 4);
#else
          asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(pack2<T>(dpt[nt][2 * hf], dpt[nt][2 * hf + 1])));
#endif
        }
      }
      __syncthreads();
      uint32_t dsa[kBK / 16][4];  // A fragments of dS (this warp's 16 queries x 64 keys)
#pragma unroll
      for (int kk = 0; kk < kBK / 16; ++kk) {
        ldmatrix_x4_trans(dsa[kk], sdS + tile_off<64>(kk * 16 + (lane & 7) + (lane >> 4) * 8, warp * 2 + ((lane >> 3) & 1)));
      }
      // Unrolled except at DP = 64, where unrolling let the compiler hoist every K fragment of
      // the phase at once and spill (the reverse at 32 and 128; ptxas -v, see docs/PERF.md).
      // No register array is indexed by nj, so the rolled loop stays in registers.
#pragma unroll(DP == 64 ? 1 : DP / 16)
      for (int nj = 0; nj < DP / 16; ++nj) {
        float acc[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
#pragma unroll
        for (int kk = 0; kk < kBK / 16; ++kk) {
          uint32_t bfr[4];
          ldmatrix_x4_trans(bfr, sK + tile_off<DP>(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, nj * 2 + (lane >> 4)));
          mma_16816<T>(acc[0], dsa[kk], bfr[0], bfr[1]);
          mma_16816<T>(acc[1], dsa[kk], bfr[2], bfr[3]);
        }
#pragma unroll
        for (int t = 0; t < 2; ++t) {
          const int d = nj * 16 + t * 8 + 2 * tig;
#pragma unroll
          for (int hf = 0; hf < 2; ++hf) {
            const int q = q0 + warp * 16 + g + hf * 8;
            if (q >= p.Nq) continue;
            float* dst = dqa + static_cast<int64_t>(q) * p.D + d;
            if (d < p.D) atomicAdd(dst, acc[t][2 * hf]);
            if (d + 1 < p.D) atomicAdd(dst + 1, acc[t][2 * hf + 1]);
          }
        }
      }
    }
    cp_async_commit();  // K and V were never committed when no query tile ran (causal, k0 >= Nq)
    cp_async_wait<0>();

    // dK (times scale) and dV for this warp's keys.
    T* dkp = static_cast<T*>(p.dk) + static_cast<int64_t>(bh) * p.Nk * p.D;
    T* dvp = static_cast<T*>(p.dv) + static_cast<int64_t>(bh) * p.Nk * p.D;
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      const int key = key_lo + hf * 8;
      if (key >= p.Nk) continue;
#pragma unroll
      for (int dt = 0; dt < kDTiles; ++dt) {
        const int d = dt * 8 + 2 * tig;
        const int64_t o = static_cast<int64_t>(key) * p.D + d;
        if (d < p.D) {
          dkp[o] = gemm_detail::from_float<T>(dk[dt][2 * hf] * p.scale);
          dvp[o] = gemm_detail::from_float<T>(dv[dt][2 * hf]);
        }
        if (d + 1 < p.D) {
          dkp[o + 1] = gemm_detail::from_float<T>(dk[dt][2 * hf + 1] * p.scale);
          dvp[o + 1] = gemm_detail::from_float<T>(dv[dt][2 * hf + 1]);
        }
      }
    }
    __syncthreads();  // K and V tiles are reloaded for the next (b, h)
  }
}

// dq = scale * dq_accum, converted to T.
template <typename T>
__global__ void finish_dq(const float* __restrict__ acc, T* __restrict__ dq, int64_t n, float scale) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    dq[i] = gemm_detail::from_float<T>(acc[i] * scale);
  }
}

template <typename T, int DP>
void launch(const FlashParams& p, float* dq_accum, cudaStream_t s) {
  static FlashSmemOptIn opt_in;
  opt_in.ensure(reinterpret_cast<const void*>(flash_backward_tc<T, DP>), smem_bytes<DP>());
  const dim3 grid(static_cast<unsigned>((p.Nk + kBK - 1) / kBK), static_cast<unsigned>(std::min(p.B * p.H, 65535)));
  flash_backward_tc<T, DP><<<grid, kThreads, smem_bytes<DP>(), s>>>(p, dq_accum);
  BM_CUDA_CHECK_LAUNCH();
  const int64_t n = static_cast<int64_t>(p.B) * p.H * p.Nq * p.D;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((n + 255) / 256, 65535));
  finish_dq<T><<<blocks, 256, 0, s>>>(dq_accum, static_cast<T*>(p.dq), n, p.scale);
  BM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void launch_typed(const FlashParams& p, float* dq_accum, cudaStream_t s) {
  if (p.D <= 32) launch<T, 32>(p, dq_accum, s);
  else if (p.D <= 64) launch<T, 64>(p, dq_accum, s);
  else launch<T, 128>(p, dq_accum, s);
}

}  // namespace

void launch_backward_tc(const FlashParams& p, int dtype, float* dq_accum, cudaStream_t s) {
  if (dtype == 1) launch_typed<__half>(p, dq_accum, s);
  else launch_typed<__nv_bfloat16>(p, dq_accum, s);
}

}  // namespace bigmodel::cuda::flash
