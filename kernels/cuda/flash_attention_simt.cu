// Fused attention on the CUDA cores (any dtype of float32/float16/bfloat16, any head dim up
// to 128, any strides): the forward (online softmax over key tiles staged in shared memory,
// output and per-row logsumexp), and the backward in FlashAttention-2 form without atomics:
// rowsum(dO * O), then dQ by query rows and dK/dV by key rows, each recomputing the
// probabilities from the saved logsumexp. Nothing of size Nq x Nk is ever stored.
// Float32 runs here; float16/bfloat16 use it for the backward and for layouts the tensor-core
// forward (flash_attention_tc.cu) does not take.
#include <cuda_runtime.h>

#include <algorithm>

#include "core/half.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/flash_attention_common.cuh"

namespace bigmodel::cuda::flash {
namespace {

constexpr int kThreads = 128;     // 4 warps
constexpr int kRowsPerWarp = 4;   // rows (queries, or keys in dK/dV) each warp owns
constexpr int kBlockRows = 16;    // kRowsPerWarp * 4 warps
constexpr int kTile = 32;         // streamed rows per shared tile: one per lane
constexpr int kMaxChunks = 4;     // D <= 128: each lane owns dims lane + 32 c, c < 4

__device__ __forceinline__ float neg_inf() { return -__int_as_float(0x7f800000); }
__device__ __forceinline__ float nan_f() { return __int_as_float(0x7fc00000); }

__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// Padded row length of a [kTile][D] float tile: odd, so that lane j reading row j at column d
// hits bank (j * ld + d) % 32, distinct across the warp.
__host__ __device__ __forceinline__ int padded_ld(int D) { return (D % 2 == 0) ? D + 1 : D; }

template <typename T>
struct Io {
  using S = typename ElemTraits<T>::storage;
  static __device__ __forceinline__ float ld(const void* base, int64_t off) {
    return static_cast<float>(ElemTraits<T>::load(static_cast<const S*>(base)[off]));
  }
  static __device__ __forceinline__ void st(void* base, int64_t off, float v) {
    static_cast<S*>(base)[off] = ElemTraits<T>::store(v);
  }
};

// rows [row0, row0 + nrows_tile) x D of a strided [N, D] matrix -> float smem [nrows_tile][ld],
// zero past N.
template <typename T>
__device__ __forceinline__ void stage_rows(float* dst, int ld, const void* src, int64_t base, int64_t srow,
                                           int64_t scol, int row0, int nrows_tile, int N, int D) {
  for (int i = threadIdx.x; i < nrows_tile * D; i += kThreads) {
    const int r = i / D, d = i - r * D;
    const int row = row0 + r;
    dst[r * ld + d] = row < N ? Io<T>::ld(src, base + static_cast<int64_t>(row) * srow + d * scol) : 0.0f;
  }
}

// Score of (row, col), scaled and masked; -inf where the mask or causality removes it.
// Callers guarantee row < Nq and col < Nk.
template <typename T>
__device__ __forceinline__ float finish_score(const FlashParams& p, int64_t mbase, float dot, int row, int col) {
  if (p.causal && col > row) return neg_inf();
  float s = dot * p.scale;
  if (p.mask_kind != kNoMask) {
    s += mask_term(p, mbase, row, col, [&](int64_t off) { return Io<T>::ld(p.mask, off); });
  }
  return s;
}

// Element offsets of head (b, h) = (bh / H, bh % H) in q, k, v, the mask and dout.
struct HeadBases {
  int64_t q, k, v, m, o;
};
__device__ __forceinline__ HeadBases head_bases(const FlashParams& p, int bh) {
  const int b = bh / p.H, h = bh - b * p.H;
  return {b * p.sq[0] + h * p.sq[1], b * p.sk[0] + h * p.sk[1], b * p.sv[0] + h * p.sv[1],
          b * p.sm[0] + h * p.sm[1], b * p.sdo[0] + h * p.sdo[1]};
}

// Key tiles a block of query rows from q0 reads: all, or causally up to its last row's tile.
__device__ __forceinline__ int key_tiles(const FlashParams& p, int q0) {
  const int ktiles = (p.Nk + kTile - 1) / kTile;
  return p.causal ? min(ktiles, (min(q0 + kBlockRows, p.Nq) - 1) / kTile + 1) : ktiles;
}

// Key tile kt of K and V into shared memory, between barriers (the previous tile consumed
// before, the new one visible after).
template <typename T>
__device__ __forceinline__ void stage_kv_tile(float* Ks, float* Vs, int ld, int D, const FlashParams& p,
                                              const HeadBases& hb, int kt) {
  __syncthreads();
  stage_rows<T>(Ks, ld, p.k, hb.k, p.sk[2], p.sk[3], kt * kTile, kTile, p.Nk, D);
  stage_rows<T>(Vs, ld, p.v, hb.v, p.sv[2], p.sv[3], kt * kTile, kTile, p.Nk, D);
  __syncthreads();
}

// Two dot products over d < D in one pass: dot += a . b, dp += c . e.
__device__ __forceinline__ void dot_pair(const float* a, const float* b, const float* c, const float* e, int D,
                                         float& dot, float& dp) {
#pragma unroll 4
  for (int d = 0; d < D; ++d) {
    dot = fmaf(a[d], b[d], dot);
    dp = fmaf(c[d], e[d], dp);
  }
}

// acc[c] += sum_j x_j * tile[j][lane + 32 c], x_j the value x of lane j.
__device__ __forceinline__ void add_lane_weighted_rows(float (&acc)[kMaxChunks], float x,
                                                       const float* tile, int ld, int lane, int D) {
  for (int j = 0; j < kTile; ++j) {
    const float xj = __shfl_sync(0xffffffffu, x, j);
#pragma unroll
    for (int c = 0; c < kMaxChunks; ++c) {
      const int d = lane + 32 * c;
      if (d < D) acc[c] = fmaf(xj, tile[j * ld + d], acc[c]);
    }
  }
}

// dst[o + d] = acc * scale for this lane's dims d = lane + 32 c < D.
template <typename T>
__device__ __forceinline__ void store_lane_dims(void* dst, int64_t o, const float (&acc)[kMaxChunks],
                                                float scale, int lane, int D) {
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    const int d = lane + 32 * c;
    if (d < D) Io<T>::st(dst, o + d, acc[c] * scale);
  }
}

// ---- forward ----------------------------------------------------------------------------------
template <typename T>
__global__ void __launch_bounds__(kThreads) flash_forward_simt(FlashParams p) {
  extern __shared__ float smem[];
  const int D = p.D, ld = padded_ld(D);
  float* Ks = smem;                 // [kTile][ld]
  float* Vs = Ks + kTile * ld;      // [kTile][ld]
  float* Qs = Vs + kTile * ld;      // [kBlockRows][D]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int q0 = blockIdx.x * kBlockRows;
  const int BH = p.B * p.H;
  for (int bh = blockIdx.y; bh < BH; bh += gridDim.y) {
    const HeadBases hb = head_bases(p, bh);
    stage_rows<T>(Qs, D, p.q, hb.q, p.sq[2], p.sq[3], q0, kBlockRows, p.Nq, D);

    float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kMaxChunks];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      m[r] = neg_inf();
      l[r] = 0.0f;
#pragma unroll
      for (int c = 0; c < kMaxChunks; ++c) acc[r][c] = 0.0f;
    }
    const int ktiles = key_tiles(p, q0);
    for (int kt = 0; kt < ktiles; ++kt) {
      stage_kv_tile<T>(Ks, Vs, ld, D, p, hb, kt);  // its first barrier: at kt == 0, Qs written
      const int col = kt * kTile + lane;
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const int rl = warp * kRowsPerWarp + r, row = q0 + rl;
        float s = neg_inf();
        if (col < p.Nk && row < p.Nq) {
          float dot = 0.0f;
          const float* qr = Qs + rl * D;
          const float* kr = Ks + lane * ld;
#pragma unroll 4
          for (int d = 0; d < D; ++d) dot = fmaf(qr[d], kr[d], dot);
          s = finish_score<T>(p, hb.m, dot, row, col);
        }
        const float m_new = fmaxf(m[r], warp_max(s));
        const float m_use = m_new == neg_inf() ? 0.0f : m_new;  // a row with nothing kept yet
        const float pj = expf(s - m_use);
        const float alpha = expf(m[r] - m_use);
        l[r] = l[r] * alpha + warp_sum(pj);
        m[r] = m_new;
#pragma unroll
        for (int c = 0; c < kMaxChunks; ++c) acc[r][c] *= alpha;
        add_lane_weighted_rows(acc[r], pj, Vs, ld, lane, D);
      }
    }
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int row = q0 + warp * kRowsPerWarp + r;
      if (row >= p.Nq) continue;
      // A row whose keys are all masked: NaN, as softmax over all -inf gives on the CPU.
      const float inv = l[r] > 0.0f ? 1.0f / l[r] : nan_f();
      store_lane_dims<T>(p.out, (static_cast<int64_t>(bh) * p.Nq + row) * D, acc[r], inv, lane, D);
      if (lane == 0) p.lse[static_cast<int64_t>(bh) * p.Nq + row] = l[r] > 0.0f ? m[r] + logf(l[r]) : nan_f();
    }
    __syncthreads();  // Qs is rewritten for the next (b, h)
  }
}

// ---- backward ---------------------------------------------------------------------------------
// delta[row] = sum_d dout[row, d] * out[row, d]: one warp per row.
template <typename T>
__global__ void __launch_bounds__(kThreads) flash_delta(FlashParams p) {
  const int64_t rows = static_cast<int64_t>(p.B) * p.H * p.Nq;
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (kThreads / 32);
  for (int64_t w = blockIdx.x * (kThreads / 32) + (threadIdx.x >> 5); w < rows; w += warps) {
    const int64_t bh = w / p.Nq;
    const int row = static_cast<int>(w - bh * p.Nq);
    const int b = static_cast<int>(bh / p.H), h = static_cast<int>(bh - static_cast<int64_t>(b) * p.H);
    const int64_t gb = b * p.sdo[0] + h * p.sdo[1] + row * p.sdo[2];
    float acc = 0.0f;
    for (int d = lane; d < p.D; d += 32) acc += Io<T>::ld(p.dout, gb + d * p.sdo[3]) * Io<T>::ld(p.out, w * p.D + d);
    acc = warp_sum(acc);
    if (lane == 0) p.delta[w] = acc;
  }
}

// dQ: rows of queries, streaming key tiles (as the forward).
template <typename T>
__global__ void __launch_bounds__(kThreads) flash_backward_dq_simt(FlashParams p) {
  extern __shared__ float smem[];
  const int D = p.D, ld = padded_ld(D);
  float* Ks = smem;                     // [kTile][ld]
  float* Vs = Ks + kTile * ld;          // [kTile][ld]
  float* Qs = Vs + kTile * ld;          // [kBlockRows][D]
  float* dOs = Qs + kBlockRows * D;     // [kBlockRows][D]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int q0 = blockIdx.x * kBlockRows;
  const int BH = p.B * p.H;
  for (int bh = blockIdx.y; bh < BH; bh += gridDim.y) {
    const HeadBases hb = head_bases(p, bh);
    stage_rows<T>(Qs, D, p.q, hb.q, p.sq[2], p.sq[3], q0, kBlockRows, p.Nq, D);
    stage_rows<T>(dOs, D, p.dout, hb.o, p.sdo[2], p.sdo[3], q0, kBlockRows, p.Nq, D);
    float lse[kRowsPerWarp], delta[kRowsPerWarp], acc[kRowsPerWarp][kMaxChunks];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int row = q0 + warp * kRowsPerWarp + r;
      const int64_t i = static_cast<int64_t>(bh) * p.Nq + row;
      lse[r] = row < p.Nq ? p.lse[i] : 0.0f;
      delta[r] = row < p.Nq ? p.delta[i] : 0.0f;
#pragma unroll
      for (int c = 0; c < kMaxChunks; ++c) acc[r][c] = 0.0f;
    }
    const int ktiles = key_tiles(p, q0);
    for (int kt = 0; kt < ktiles; ++kt) {
      stage_kv_tile<T>(Ks, Vs, ld, D, p, hb, kt);
      const int col = kt * kTile + lane;
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const int rl = warp * kRowsPerWarp + r, row = q0 + rl;
        float ds = 0.0f;
        if (col < p.Nk && row < p.Nq) {
          float dot = 0.0f, dp = 0.0f;
          dot_pair(Qs + rl * D, Ks + lane * ld, dOs + rl * D, Vs + lane * ld, D, dot, dp);
          const float prob = expf(finish_score<T>(p, hb.m, dot, row, col) - lse[r]);
          ds = prob * (dp - delta[r]);
        }
        add_lane_weighted_rows(acc[r], ds, Ks, ld, lane, D);
      }
    }
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int row = q0 + warp * kRowsPerWarp + r;
      if (row >= p.Nq) continue;
      store_lane_dims<T>(p.dq, (static_cast<int64_t>(bh) * p.Nq + row) * D, acc[r], p.scale, lane, D);
    }
    __syncthreads();
  }
}

// dK and dV: rows of keys, streaming query tiles; lane i of a warp takes query i of the tile.
template <typename T>
__global__ void __launch_bounds__(kThreads) flash_backward_dkdv_simt(FlashParams p) {
  extern __shared__ float smem[];
  const int D = p.D, ld = padded_ld(D);
  float* Qs = smem;                      // [kTile][ld]
  float* dOs = Qs + kTile * ld;          // [kTile][ld]
  float* Kr = dOs + kTile * ld;          // [kBlockRows][D]
  float* Vr = Kr + kBlockRows * D;       // [kBlockRows][D]
  float* lse_s = Vr + kBlockRows * D;    // [kTile]
  float* delta_s = lse_s + kTile;        // [kTile]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int k0 = blockIdx.x * kBlockRows;
  const int BH = p.B * p.H;
  for (int bh = blockIdx.y; bh < BH; bh += gridDim.y) {
    const HeadBases hb = head_bases(p, bh);
    stage_rows<T>(Kr, D, p.k, hb.k, p.sk[2], p.sk[3], k0, kBlockRows, p.Nk, D);
    stage_rows<T>(Vr, D, p.v, hb.v, p.sv[2], p.sv[3], k0, kBlockRows, p.Nk, D);
    float dk[kRowsPerWarp][kMaxChunks], dv[kRowsPerWarp][kMaxChunks];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
      for (int c = 0; c < kMaxChunks; ++c) dk[r][c] = dv[r][c] = 0.0f;
    const int qtiles = (p.Nq + kTile - 1) / kTile;
    // Causal: query i sees key j only when j <= i, so tiles wholly above k0 contribute nothing.
    const int first = p.causal ? k0 / kTile : 0;
    for (int qt = first; qt < qtiles; ++qt) {
      __syncthreads();
      stage_rows<T>(Qs, ld, p.q, hb.q, p.sq[2], p.sq[3], qt * kTile, kTile, p.Nq, D);
      stage_rows<T>(dOs, ld, p.dout, hb.o, p.sdo[2], p.sdo[3], qt * kTile, kTile, p.Nq, D);
      if (threadIdx.x < kTile) {
        const int row = qt * kTile + threadIdx.x;
        const int64_t i = static_cast<int64_t>(bh) * p.Nq + row;
        lse_s[threadIdx.x] = row < p.Nq ? p.lse[i] : 0.0f;
        delta_s[threadIdx.x] = row < p.Nq ? p.delta[i] : 0.0f;
      }
      __syncthreads();
      const int row = qt * kTile + lane;
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const int rl = warp * kRowsPerWarp + r, col = k0 + rl;
        float prob = 0.0f, ds = 0.0f;
        if (col < p.Nk && row < p.Nq) {
          float dot = 0.0f, dp = 0.0f;
          dot_pair(Qs + lane * ld, Kr + rl * D, dOs + lane * ld, Vr + rl * D, D, dot, dp);
          prob = expf(finish_score<T>(p, hb.m, dot, row, col) - lse_s[lane]);
          ds = prob * (dp - delta_s[lane]);
        }
        for (int i = 0; i < kTile; ++i) {
          const float pi = __shfl_sync(0xffffffffu, prob, i);
          const float dsi = __shfl_sync(0xffffffffu, ds, i);
#pragma unroll
          for (int c = 0; c < kMaxChunks; ++c) {
            const int d = lane + 32 * c;
            if (d < D) {
              dv[r][c] = fmaf(pi, dOs[i * ld + d], dv[r][c]);
              dk[r][c] = fmaf(dsi, Qs[i * ld + d], dk[r][c]);
            }
          }
        }
      }
    }
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int col = k0 + warp * kRowsPerWarp + r;
      if (col >= p.Nk) continue;
      const int64_t o = (static_cast<int64_t>(bh) * p.Nk + col) * D;
#pragma unroll
      for (int c = 0; c < kMaxChunks; ++c) {
        const int d = lane + 32 * c;
        if (d < D) {
          Io<T>::st(p.dk, o + d, dk[r][c] * p.scale);
          Io<T>::st(p.dv, o + d, dv[r][c]);
        }
      }
    }
    __syncthreads();
  }
}

dim3 rows_grid(int rows, int BH) {
  return dim3(static_cast<unsigned>((rows + kBlockRows - 1) / kBlockRows), static_cast<unsigned>(std::min(BH, 65535)));
}

// Dynamic shared bytes of a tiled kernel: two [kTile][ld] tiles, `blocks` [kBlockRows][D]
// row blocks and `extra` floats.
int smem_bytes(int D, int blocks, int extra) {
  return static_cast<int>(sizeof(float)) * (2 * kTile * padded_ld(D) + blocks * kBlockRows * D + extra);
}

// Launches a tiled kernel over `rows` rows per (b, h), opted in (once per device) to its
// shared memory at the largest head dim, 128.
void launch_tiled(FlashSmemOptIn& opt_in, void (*kernel)(FlashParams), int rows, int blocks, int extra,
                  const FlashParams& p, cudaStream_t s) {
  opt_in.ensure(reinterpret_cast<const void*>(kernel), smem_bytes(128, blocks, extra));
  kernel<<<rows_grid(rows, p.B * p.H), kThreads, smem_bytes(p.D, blocks, extra), s>>>(p);
  BM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void forward_typed(const FlashParams& p, cudaStream_t s) {
  static FlashSmemOptIn opt_in;
  launch_tiled(opt_in, flash_forward_simt<T>, p.Nq, 1, 0, p, s);
}

template <typename T>
void delta_typed(const FlashParams& p, cudaStream_t s) {
  const int64_t rows = static_cast<int64_t>(p.B) * p.H * p.Nq;
  const unsigned delta_blocks = static_cast<unsigned>(std::min<int64_t>((rows + 3) / 4, 65535));
  flash_delta<T><<<delta_blocks, kThreads, 0, s>>>(p);
  BM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void backward_typed(const FlashParams& p, cudaStream_t s) {
  static FlashSmemOptIn opt_dq, opt_dkdv;
  delta_typed<T>(p, s);
  launch_tiled(opt_dq, flash_backward_dq_simt<T>, p.Nq, 2, 0, p, s);  // + dO rows
  launch_tiled(opt_dkdv, flash_backward_dkdv_simt<T>, p.Nk, 2, 2 * kTile, p, s);  // + lse, delta
}

template <typename T>
struct TypeTag {
  using type = T;
};

// f(TypeTag<float | Half | BFloat16>) for the launchers' dtype code 0, 1, else.
template <typename F>
void with_dtype(int dtype, F&& f) {
  if (dtype == 0) f(TypeTag<float>{});
  else if (dtype == 1) f(TypeTag<Half>{});
  else f(TypeTag<BFloat16>{});
}

}  // namespace

void launch_forward_simt(const FlashParams& p, int dtype, cudaStream_t s) {
  with_dtype(dtype, [&](auto t) { forward_typed<typename decltype(t)::type>(p, s); });
}

void launch_delta(const FlashParams& p, int dtype, cudaStream_t s) {
  with_dtype(dtype, [&](auto t) { delta_typed<typename decltype(t)::type>(p, s); });
}

void launch_backward_simt(const FlashParams& p, int dtype, cudaStream_t s) {
  with_dtype(dtype, [&](auto t) { backward_typed<typename decltype(t)::type>(p, s); });
}

}  // namespace bigmodel::cuda::flash
