// float16 / bfloat16 GEMM on the tensor cores (sm_80+ mma.sync m16n8k16, float32 accumulation):
// 128x128 block tiles, k-steps of 32, 8 warps each owning a 64x32 piece of C, a 4-stage
// cp.async pipeline into XOR-swizzled shared tiles read with ldmatrix (.trans for the
// operands stored M- or N-contiguous, so all four layouts run at one speed).
// Needs 16-byte aligned A/B with leading dims and batch strides multiples of 8; any M, N, K.
// Next step on Hopper: wgmma + TMA (sm_90a), which this mma.sync path cannot reach.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_common.cuh"

namespace bigmodel::cuda::gemm_detail {
namespace {

constexpr int kBM = 128, kBN = 128, kBK = 32;
constexpr int kStages = 4;
constexpr int kThreads = 256;
constexpr int kTileBytes = 128 * 64;  // one operand's tile: 128 x 32 halves
constexpr int kStageBytes = 2 * kTileBytes;
constexpr int kSmemBytes = kStages * kStageBytes;  // 64 KB: needs the opt-in above 48 KB

struct TcArgs : TiledArgs<void, void> {
  bool out_f32;  // C is float32 (else the input dtype)
  bool vec_c;    // pairs of C elements may be stored as one 4- or 8-byte word
  bool vec_aux;  // the same for the aux output (when there is one)
  Epilogue ep;
};

// Copies one operand's 128 x 32 tile (rows mn0.., k0..) into shared memory. A K-contiguous
// operand lands in a row tile (128 rows of k), an M/N-contiguous one in a column tile (32 rows
// of m or n). Out-of-range chunks are zero-filled by cp.async, so edge tiles need no branch
// in the math.
template <typename T, bool KContiguous>
__device__ __forceinline__ void load_operand(uint32_t dst, const T* __restrict__ base, int64_t ld, int mn0,
                                             int mn_lim, int k0, int k_lim, int t) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int idx = t + i * kThreads;
    int row, chunk, grow, gcol, row_lim, col_lim;
    uint32_t off;
    if (KContiguous) {
      row = idx >> 2, chunk = idx & 3;
      grow = mn0 + row, gcol = k0 + chunk * 8, row_lim = mn_lim, col_lim = k_lim;
      off = row_tile_offset(row, chunk);
    } else {
      row = idx >> 4, chunk = idx & 15;
      grow = k0 + row, gcol = mn0 + chunk * 8, row_lim = k_lim, col_lim = mn_lim;
      off = col_tile_offset(row, chunk);
    }
    int bytes = 0;
    const T* src = base;
    if (grow < row_lim && gcol < col_lim) {
      bytes = min(col_lim - gcol, 8) * 2;
      src = base + static_cast<int64_t>(grow) * ld + gcol;
    }
    cp_async_16(dst + off, src, bytes);
  }
}

// The A fragments of four m16 x k16 tiles (rows wm0 + 16*mi) at k-step kk of the tile.
template <bool KContiguous>
__device__ __forceinline__ void load_a_frags(uint32_t (&a)[4][4], uint32_t tile, int wm0, int kk, int lane) {
  const int q = lane >> 3, r = lane & 7;
#pragma unroll
  for (int mi = 0; mi < 4; ++mi) {
    if (KContiguous) {
      ldmatrix_x4(a[mi], tile + row_tile_offset(wm0 + mi * 16 + (lane & 15), kk * 2 + (lane >> 4)));
    } else {
      ldmatrix_x4_trans(a[mi], tile + col_tile_offset(kk * 16 + r + (q >> 1) * 8, (wm0 + mi * 16) / 8 + (q & 1)));
    }
  }
}

// The B fragments of four n8 x k16 tiles (columns wn0 + 8*ni), two per ldmatrix.x4:
// b[nj] = {b0, b1 of tile 2nj, b0, b1 of tile 2nj+1}.
template <bool KContiguous>
__device__ __forceinline__ void load_b_frags(uint32_t (&b)[2][4], uint32_t tile, int wn0, int kk, int lane) {
  const int q = lane >> 3, r = lane & 7;
#pragma unroll
  for (int nj = 0; nj < 2; ++nj) {
    if (KContiguous) {
      ldmatrix_x4(b[nj], tile + row_tile_offset(wn0 + nj * 16 + r + (q >> 1) * 8, kk * 2 + (q & 1)));
    } else {
      ldmatrix_x4_trans(b[nj], tile + col_tile_offset(kk * 16 + r + (q & 1) * 8, (wn0 + nj * 16) / 8 + (q >> 1)));
    }
  }
}

#ifdef BIGMODEL_CUDA_EMU
__device__ __forceinline__ void store_global_f32x2(void* p, float x, float y) {
  const float v[2] = {x, y};
  std::memcpy(p, v, sizeof v);
}
__device__ __forceinline__ void store_global_b32(void* p, uint32_t v) { std::memcpy(p, &v, sizeof v); }
#else
__device__ __forceinline__ void store_global_f32x2(void* p, float x, float y) {
  asm volatile("st.global.v2.f32 [%0], {%1, %2};\n" ::"l"(__cvta_generic_to_global(p)), "f"(x), "f"(y) : "memory");
}
__device__ __forceinline__ void store_global_b32(void* p, uint32_t v) {
  asm volatile("st.global.b32 [%0], %1;\n" ::"l"(__cvta_generic_to_global(p)), "r"(v) : "memory");
}
#endif
__device__ __forceinline__ uint16_t bits16(__half v) { return __half_as_ushort(v); }
__device__ __forceinline__ uint16_t bits16(__nv_bfloat16 v) { return __bfloat16_as_ushort(v); }

// Two adjacent elements as one 8-byte (float) or 4-byte (half) store.
template <typename TOut>
__device__ __forceinline__ void store_two(TOut* p, float x, float y) {
  // Explicit 8- and 4-byte stores: plain assignments through a cast pointer were split into
  // two scalar stores by the compiler (seen in the SASS).
  if constexpr (std::is_same_v<TOut, float>) {
    store_global_f32x2(p, x, y);
  } else {
    const TOut lo = from_float<TOut>(x), hi = from_float<TOut>(y);
    store_global_b32(p, static_cast<uint32_t>(bits16(lo)) | (static_cast<uint32_t>(bits16(hi)) << 16));
  }
}

// C[n], C[n+1] (and aux[n], aux[n+1] when aux is not null) of one row.
template <typename TOut>
__device__ __forceinline__ void store_pair(TOut* c, TOut* aux, const Epilogue& ep, int n, int N, bool vec,
                                           bool vec_aux, float v0, float v1) {
  if (vec && n + 1 < N) {
    float r[2] = {ep.alpha * v0, ep.alpha * v1};
    if (ep.beta != 0.0f) {
      r[0] += ep.beta * to_float(c[0]);
      r[1] += ep.beta * to_float(c[1]);
    }
    if (ep.bias) {
      const TOut* bias = static_cast<const TOut*>(ep.bias);
      r[0] += to_float(bias[n]);
      r[1] += to_float(bias[n + 1]);
    }
    if (aux) {
      if (vec_aux) {
        store_two<TOut>(aux, r[0], r[1]);
      } else {
        aux[0] = from_float<TOut>(r[0]);
        aux[1] = from_float<TOut>(r[1]);
      }
    }
    store_two<TOut>(c, activate(r[0], ep.act), activate(r[1], ep.act));
  } else {
    if (n < N) store_result<TOut, float>(c, aux, ep, n, v0);
    if (n + 1 < N) store_result<TOut, float>(c + 1, aux ? aux + 1 : nullptr, ep, n + 1, v1);
  }
}

template <typename TOut>
__device__ __forceinline__ void epilogue(const TcArgs& args, TOut* C, int64_t batch, const float (&acc)[4][4][4],
                                         int m_base, int n_base, int lane) {
  const int g = lane >> 2, tig = lane & 3;
#pragma unroll
  for (int mi = 0; mi < 4; ++mi) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int m = m_base + mi * 16 + g + half * 8;
      if (m >= args.M) continue;
      TOut* row = C + static_cast<int64_t>(m) * args.ldc;
#pragma unroll
      for (int ni = 0; ni < 4; ++ni) {
        const int n = n_base + ni * 8 + tig * 2;
        store_pair<TOut>(row + n, aux_at<TOut>(args.ep, batch, m, n), args.ep, n, args.N, args.vec_c, args.vec_aux,
                         acc[mi][ni][half * 2], acc[mi][ni][half * 2 + 1]);
      }
    }
  }
}

template <typename T, bool TA, bool TB>
__global__ void __launch_bounds__(kThreads, 2) gemm_tc_128x128(TcArgs args) {
  extern __shared__ __align__(128) uint8_t smem[];
  const uint32_t smem_base = smem_addr(smem);
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
  const int wm0 = (warp >> 2) * 64, wn0 = (warp & 3) * 32;  // 2 x 4 warps

  int tm, tn;
  tile_coords(blockIdx.x, args.tiles_m, args.tiles_n, tm, tn);
  const int m0 = tm * kBM, n0 = tn * kBN;
  const int ktiles = (args.K + kBK - 1) / kBK;

  for (int64_t b = blockIdx.z; b < args.batch; b += gridDim.z) {
    const T* A = static_cast<const T*>(args.A) + b * args.stride_a;
    const T* B = static_cast<const T*>(args.B) + b * args.stride_b;
    auto load_stage = [&](int stage, int kt) {
      const uint32_t s = smem_base + stage * kStageBytes;
      load_operand<T, !TA>(s, A, args.lda, m0, args.M, kt * kBK, args.K, t);
      load_operand<T, TB>(s + kTileBytes, B, args.ldb, n0, args.N, kt * kBK, args.K, t);
    };

    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

    // Prologue: stages 0..kStages-2 in flight (one commit group each, empty past the end,
    // so that wait_group counts stay uniform).
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) {
      if (s < ktiles) load_stage(s, s);
      cp_async_commit();
    }

    for (int kt = 0; kt < ktiles; ++kt) {
      cp_async_wait<kStages - 2>();  // this thread's copies of tile kt have landed
      __syncthreads();               // everyone's have; and everyone is done with tile kt-1
      const int pf = kt + kStages - 1;
      if (pf < ktiles) load_stage(pf % kStages, pf);  // refills the stage tile kt-1 used
      cp_async_commit();

      const uint32_t sa = smem_base + (kt % kStages) * kStageBytes, sb = sa + kTileBytes;
#pragma unroll
      for (int kk = 0; kk < kBK / 16; ++kk) {
        uint32_t af[4][4], bf[2][4];
        load_a_frags<!TA>(af, sa, wm0, kk, lane);
        load_b_frags<TB>(bf, sb, wn0, kk, lane);
#pragma unroll
        for (int mi = 0; mi < 4; ++mi)
#pragma unroll
          for (int ni = 0; ni < 4; ++ni)
            mma_16816<T>(acc[mi][ni], af[mi], bf[ni >> 1][(ni & 1) * 2], bf[ni >> 1][(ni & 1) * 2 + 1]);
      }
    }
    cp_async_wait<0>();  // no copy may still target smem when the next batch (or exit) comes
    __syncthreads();

    if (args.out_f32)
      epilogue<float>(args, static_cast<float*>(args.C) + b * args.stride_c, b, acc, m0 + wm0, n0 + wn0, lane);
    else
      epilogue<T>(args, static_cast<T*>(args.C) + b * args.stride_c, b, acc, m0 + wm0, n0 + wn0, lane);
  }
}

template <typename T, bool TA, bool TB>
void launch_one(const TcArgs& a, dim3 grid, cudaStream_t s) {
  static SmemOptIn opt_in;  // one per instantiation: the attribute belongs to the function
  opt_in.ensure(reinterpret_cast<const void*>(gemm_tc_128x128<T, TA, TB>), kSmemBytes);
  gemm_tc_128x128<T, TA, TB><<<grid, kThreads, kSmemBytes, s>>>(a);
  BM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void launch_typed(const GemmParams& p, const TcArgs& a, dim3 grid, cudaStream_t s) {
  if (!p.trans_a && !p.trans_b) launch_one<T, false, false>(a, grid, s);
  else if (!p.trans_a && p.trans_b) launch_one<T, false, true>(a, grid, s);
  else if (p.trans_a && !p.trans_b) launch_one<T, true, false>(a, grid, s);
  else launch_one<T, true, true>(a, grid, s);
}

}  // namespace

bool tc_gemm_supported(const GemmParams& p) {
  const bool dtypes = (p.in_dtype == DType::Float16 || p.in_dtype == DType::BFloat16) &&
                      (p.out_dtype == p.in_dtype || p.out_dtype == DType::Float32);
  return dtypes && pointer_alignment(p.A) >= 16 && pointer_alignment(p.B) >= 16 && p.lda % 8 == 0 &&
         p.ldb % 8 == 0 && p.stride_a % 8 == 0 && p.stride_b % 8 == 0;
}

void launch_gemm_tc(const GemmParams& p, void* stream) {
  TcArgs a;
  fill_tiled_args<kBM, kBN>(a, p);
  a.out_f32 = p.out_dtype == DType::Float32;
  const int pair_bytes = a.out_f32 ? 8 : 4;
  a.vec_c = pointer_alignment(p.C) >= pair_bytes && p.ldc % 2 == 0 && p.stride_c % 2 == 0;
  a.vec_aux = p.aux && pointer_alignment(p.aux) >= pair_bytes && p.ld_aux % 2 == 0 && p.stride_aux % 2 == 0;
  a.ep = make_epilogue(p);
  const dim3 grid(static_cast<unsigned>(a.tiles_m) * static_cast<unsigned>(a.tiles_n), 1,
                  static_cast<unsigned>(std::min<int64_t>(p.batch, 65535)));
  auto s = static_cast<cudaStream_t>(stream);
  if (p.in_dtype == DType::BFloat16) launch_typed<__nv_bfloat16>(p, a, grid, s);
  else launch_typed<__half>(p, a, grid, s);
}

}  // namespace bigmodel::cuda::gemm_detail
