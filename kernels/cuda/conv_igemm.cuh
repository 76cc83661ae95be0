// Device side of the implicit-GEMM convolution (conv_internal.h has the index maps): the
// per-k-tile table of reduction-index offsets (built by a few threads into shared memory,
// so the gathers do no divisions), the per-thread column precompute, the gathers of B
// elements (one at a time, or a run of consecutive kappa sharing one bounds test when
// q_chunks is set), and the output index. Included by conv_simt.cu and conv_tc.cu only.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/conv_internal.h"

namespace bigmodel::cuda::conv_detail {

// Out-of-range rows / columns get these offsets, so every bounds test fails without a flag
// (the sum of two stays far from int overflow).
constexpr int kFarAway = -(1 << 28);

// The offsets of BK consecutive reduction indices (struct of arrays: each gather reads one).
template <int BK>
struct KTable {
  int64_t boff[BK];    // q * k_bq
  int64_t bdelta[BK];  // boff + h * BW + w (the whole B offset past the column's base2)
  int64_t aoff[BK];    // -1 beyond the reduction range
  int h[BK], w[BK];
};

// Threads 0..BK-1 fill tab for kappa = k0 .. k0+BK-1 (valid below k_end).
template <int BK>
__device__ __forceinline__ void build_ktable(KTable<BK>& tab, const ConvGemmArgs& a, int k0, int k_end) {
  const int t = threadIdx.x;
  if (t < BK) {
    const int k = k0 + t;
    if (k < k_end) {
      const int r = k / a.k_q, q = k - r * a.k_q;
      const int r1 = r / a.k_d2, r2 = r - r1 * a.k_d2;
      const int h = r1 * a.k_hs + a.k_h0, w = r2 * a.k_ws + a.k_w0;
      tab.boff[t] = q * a.k_bq;
      tab.bdelta[t] = q * a.k_bq + static_cast<int64_t>(h) * a.BW + w;
      tab.aoff[t] = q * a.k_aq + r;
      tab.h[t] = h;
      tab.w[t] = w;
    } else {
      tab.boff[t] = 0;
      tab.bdelta[t] = 0;
      tab.aoff[t] = -1;
      tab.h[t] = kFarAway;
      tab.w[t] = kFarAway;
    }
  }
}

// One thread's B column j (fixed for the whole block). base2 = base + h * BW + w.
struct Column {
  int64_t base, base2;
  int h, w;
};

__device__ __forceinline__ Column make_column(const ConvGemmArgs& a, int j, int group) {
  Column c;
  if (j < a.Nc) {
    const int inner = a.j_d1 * a.j_d2;
    const int q = j / inner, r = j - q * inner;
    const int s1 = r / a.j_d2, s2 = r - s1 * a.j_d2;
    c.base = q * a.j_bq + group * a.b_group;
    c.h = s1 * a.j_hs + a.j_h0;
    c.w = s2 * a.j_ws + a.j_w0;
  } else {
    c.base = 0;
    c.h = kFarAway;
    c.w = kFarAway;
  }
  c.base2 = c.base + static_cast<int64_t>(c.h) * a.BW + c.w;
  return c;
}

// The element offset of B[kappa, j] in b for table entry r, or -1 where the element is zero
// (padding, a stride the input-gradient position does not divide, or outside the problem).
template <bool kDiv, int BK>
__device__ __forceinline__ int64_t b_offset(const ConvGemmArgs& a, const Column& c, const KTable<BK>& tab, int r) {
  int y = c.h + tab.h[r], x = c.w + tab.w[r];
  if (kDiv) {
    if (y < 0 || x < 0) return -1;
    const int qy = y / a.div_h, qx = x / a.div_w;
    if (qy * a.div_h != y || qx * a.div_w != x) return -1;
    y = qy;
    x = qx;
  }
  if (static_cast<unsigned>(y) >= static_cast<unsigned>(a.BH) || static_cast<unsigned>(x) >= static_cast<unsigned>(a.BW))
    return -1;
  if (kDiv) return c.base + tab.boff[r] + static_cast<int64_t>(y) * a.BW + x;
  return c.base2 + tab.bdelta[r];
}

// Gathers B[kappa, j] for the N table entries r0 .. r0+N-1 into v (zeros where absent).
// With q_chunks the run shares its bounds test (entries differ only in q, offsets by k_bq);
// otherwise each element is tested. Loads are unconditional from a valid address, the
// value selected after, so the compiler emits no branch per element.
template <bool kDiv, int BK, int N, typename S>
__device__ __forceinline__ void gather_b(S (&v)[N], const S* __restrict__ B, const ConvGemmArgs& a, const Column& c,
                                         const KTable<BK>& tab, int r0) {
  if (a.q_chunks) {
    const int64_t off = b_offset<kDiv>(a, c, tab, r0);
    const S* p = B + (off >= 0 ? off : 0);
    const int64_t step = off >= 0 ? a.k_bq : 0;
#pragma unroll
    for (int e = 0; e < N; ++e) {
      const S x = __ldg(p + e * step);
      v[e] = off >= 0 ? x : S(0);
    }
  } else {
#pragma unroll
    for (int e = 0; e < N; ++e) {
      const int64_t off = b_offset<kDiv>(a, c, tab, r0 + e);
      const S x = __ldg(B + (off >= 0 ? off : 0));
      v[e] = off >= 0 ? x : S(0);
    }
  }
}

// Where C[m, j] of `group` (and split) goes in out.
__device__ __forceinline__ int64_t out_offset(const ConvGemmArgs& a, int group, int split, int m, int j) {
  const int n = j / a.out_P, p = j - n * a.out_P;
  return n * a.out_nstride + group * a.out_group + static_cast<int64_t>(m) * a.out_P + p + split * a.out_split;
}

// The block's coordinates: tile (tm, tn) from blockIdx.x (M tiles fastest: blocks running
// together share the B columns they gather), group and split from blockIdx.z.
struct BlockCoords {
  int m0, n0, group, split, k_begin, k_end;
};

__device__ __forceinline__ BlockCoords block_coords(const ConvGemmArgs& a) {
  BlockCoords bc;
  const int tiles_m = (a.M + kTileM - 1) / kTileM;
  bc.m0 = static_cast<int>(blockIdx.x % tiles_m) * kTileM;
  bc.n0 = static_cast<int>(blockIdx.x / tiles_m) * kTileN;
  bc.group = static_cast<int>(blockIdx.z) % a.groups;
  bc.split = static_cast<int>(blockIdx.z) / a.groups;
  bc.k_begin = bc.split * a.k_per_split;
  bc.k_end = min(a.K, bc.k_begin + a.k_per_split);
  return bc;
}

}  // namespace bigmodel::cuda::conv_detail
