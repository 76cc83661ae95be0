// float32 GEMM on the CUDA cores (SGEMM): 128x128 block tiles, k-steps of 8, 256 threads each
// computing an 8x8 register block, float4 global loads, two shared-memory buffers (the next
// tile's loads are in flight while the current one is multiplied). Any M, N, K and layout:
// edge tiles and unaligned operands fall back to guarded scalar loads inside the same kernel.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_common.cuh"

namespace bigmodel::cuda::gemm_detail {
namespace {

constexpr int kBM = 128, kBN = 128, kBK = 8;
constexpr int kThreads = 256;
// Rows of the shared tiles are padded by 4 floats: the transposing scalar stores of a
// K-contiguous operand then hit 32 different banks, and float4 reads stay 16-byte aligned.
constexpr int kLds = kBM + 4;

struct F32Args : TiledArgs<float, float> {
  bool vec_a, vec_b, vec_c;  // float4 access is legal (ld, stride and base 16-byte aligned)
  bool vec_aux;              // the same for the aux output (when there is one)
  Epilogue ep;
};

// Four consecutive elements (row, col..col+3) of a row-major matrix, zeros outside
// [0, row_lim) x [0, col_lim). col is a multiple of 4, so an aligned float4 never straddles.
__device__ __forceinline__ float4 load4(const float* __restrict__ base, int64_t ld, int row, int row_lim, int col,
                                        int col_lim, bool vec) {
  float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
  if (row < row_lim) {
    const float* p = base + static_cast<int64_t>(row) * ld + col;
    if (vec && col + 3 < col_lim) {
      v = __ldg(reinterpret_cast<const float4*>(p));
    } else {
      if (col < col_lim) v.x = __ldg(p);
      if (col + 1 < col_lim) v.y = __ldg(p + 1);
      if (col + 2 < col_lim) v.z = __ldg(p + 2);
      if (col + 3 < col_lim) v.w = __ldg(p + 3);
    }
  }
  return v;
}

// Which part of a tile thread t loads: a K-contiguous operand (A stored M x K, or B stored
// N x K) is read as 128 rows x 2 float4 and transposed into smem; an M/N-contiguous one as
// 8 rows x 32 float4, stored as is. Either way one float4 per thread per tile.
// kFull: the tile is known in range and 16-byte aligned (no predicates, fewer registers).
template <bool KContiguous, bool kFull>
__device__ __forceinline__ float4 load_tile(const float* __restrict__ base, int64_t ld, int mn0, int mn_lim, int k0,
                                            int k_lim, bool vec, int t) {
  const int row = KContiguous ? mn0 + (t >> 1) : k0 + (t >> 5);
  const int col = KContiguous ? k0 + (t & 1) * 4 : mn0 + (t & 31) * 4;
  if (kFull) return __ldg(reinterpret_cast<const float4*>(base + static_cast<int64_t>(row) * ld + col));
  return KContiguous ? load4(base, ld, row, mn_lim, col, k_lim, vec) : load4(base, ld, row, k_lim, col, mn_lim, vec);
}

template <bool KContiguous>
__device__ __forceinline__ void store_tile(float (*s)[kLds], float4 v, int t) {
  if (KContiguous) {
    const int r = t >> 1, kc = (t & 1) * 4;
    s[kc + 0][r] = v.x;
    s[kc + 1][r] = v.y;
    s[kc + 2][r] = v.z;
    s[kc + 3][r] = v.w;
  } else {
    *reinterpret_cast<float4*>(&s[t >> 5][(t & 31) * 4]) = v;
  }
}

// kFull: M and N multiples of 128, K of 8, every operand float4-aligned (the common large case).
template <bool TA, bool TB, bool kFull>
__global__ void __launch_bounds__(kThreads, 2) sgemm_128x128(F32Args args) {
  // op(A) tiles as [k][m] and op(B) tiles as [k][n], two buffers each.
  __shared__ __align__(16) float As[2][kBK][kLds];
  __shared__ __align__(16) float Bs[2][kBK][kLds];

  const int t = threadIdx.x;
  const int warp = t >> 5, lane = t & 31;
  // A warp covers 16 rows x 32 columns of 4x4 sub-blocks (4 x 8 threads): its shared reads
  // are 4 and 8 distinct float4s, one wavefront each.
  const int ty = ((warp >> 1) << 2) | (lane >> 3);  // 0..15
  const int tx = ((warp & 1) << 3) | (lane & 7);    // 0..15

  int tm, tn;
  tile_coords(blockIdx.x, args.tiles_m, args.tiles_n, tm, tn);
  const int m0 = tm * kBM, n0 = tn * kBN;
  const int ktiles = (args.K + kBK - 1) / kBK;

  for (int64_t b = blockIdx.z; b < args.batch; b += gridDim.z) {
    const float* A = args.A + b * args.stride_a;
    const float* B = args.B + b * args.stride_b;
    float* C = args.C + b * args.stride_c;

    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

    float4 ra = load_tile<!TA, kFull>(A, args.lda, m0, args.M, 0, args.K, args.vec_a, t);
    float4 rb = load_tile<TB, kFull>(B, args.ldb, n0, args.N, 0, args.K, args.vec_b, t);
    store_tile<!TA>(As[0], ra, t);
    store_tile<TB>(Bs[0], rb, t);
    __syncthreads();

    for (int kt = 0; kt < ktiles; ++kt) {
      const int cur = kt & 1;
      const bool more = kt + 1 < ktiles;
      if (more) {  // issue the next tile's global loads before this tile's math
        const int k0 = (kt + 1) * kBK;
        ra = load_tile<!TA, kFull>(A, args.lda, m0, args.M, k0, args.K, args.vec_a, t);
        rb = load_tile<TB, kFull>(B, args.ldb, n0, args.N, k0, args.K, args.vec_b, t);
      }
#pragma unroll
      for (int k = 0; k < kBK; ++k) {
        const float4 a0 = *reinterpret_cast<const float4*>(&As[cur][k][ty * 4]);
        const float4 a1 = *reinterpret_cast<const float4*>(&As[cur][k][64 + ty * 4]);
        const float4 b0 = *reinterpret_cast<const float4*>(&Bs[cur][k][tx * 4]);
        const float4 b1 = *reinterpret_cast<const float4*>(&Bs[cur][k][64 + tx * 4]);
        const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
        const float bb[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], bb[j], acc[i][j]);
      }
      if (more) {
        // The other buffer was last read in iteration kt-1, which ended with a barrier.
        store_tile<!TA>(As[cur ^ 1], ra, t);
        store_tile<TB>(Bs[cur ^ 1], rb, t);
      }
      __syncthreads();
    }

    // Epilogue: rows ty*4 + i (+64), columns tx*4 + j (+64); float4 stores where legal.
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int m = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4));
      if (!kFull && m >= args.M) continue;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int n = n0 + h * 64 + tx * 4;
        float* c = C + static_cast<int64_t>(m) * args.ldc + n;
        float* aux = aux_at<float>(args.ep, b, m, n);
        if (kFull || (args.vec_c && n + 3 < args.N)) {
          float4 v = make_float4(args.ep.alpha * acc[i][h * 4 + 0], args.ep.alpha * acc[i][h * 4 + 1],
                                 args.ep.alpha * acc[i][h * 4 + 2], args.ep.alpha * acc[i][h * 4 + 3]);
          if (args.ep.beta != 0.0f) {
            const float4 old = *reinterpret_cast<const float4*>(c);
            v.x += args.ep.beta * old.x;
            v.y += args.ep.beta * old.y;
            v.z += args.ep.beta * old.z;
            v.w += args.ep.beta * old.w;
          }
          if (args.ep.bias) {
            const float* bias = static_cast<const float*>(args.ep.bias) + n;
            v.x += bias[0];
            v.y += bias[1];
            v.z += bias[2];
            v.w += bias[3];
          }
          if (aux) {
            if (args.vec_aux) {
              *reinterpret_cast<float4*>(aux) = v;
            } else {
              aux[0] = v.x;
              aux[1] = v.y;
              aux[2] = v.z;
              aux[3] = v.w;
            }
          }
          v.x = activate(v.x, args.ep.act);
          v.y = activate(v.y, args.ep.act);
          v.z = activate(v.z, args.ep.act);
          v.w = activate(v.w, args.ep.act);
          *reinterpret_cast<float4*>(c) = v;
        } else {
#pragma unroll
          for (int j = 0; j < 4; ++j)
            if (n + j < args.N)
              store_result<float, float>(c + j, aux ? aux + j : nullptr, args.ep, n + j, acc[i][h * 4 + j]);
        }
      }
    }
  }
}

template <bool kFull>
void launch_layout(const GemmParams& p, const F32Args& a, dim3 grid, cudaStream_t s) {
  if (!p.trans_a && !p.trans_b) sgemm_128x128<false, false, kFull><<<grid, kThreads, 0, s>>>(a);
  else if (!p.trans_a && p.trans_b) sgemm_128x128<false, true, kFull><<<grid, kThreads, 0, s>>>(a);
  else if (p.trans_a && !p.trans_b) sgemm_128x128<true, false, kFull><<<grid, kThreads, 0, s>>>(a);
  else sgemm_128x128<true, true, kFull><<<grid, kThreads, 0, s>>>(a);
  BM_CUDA_CHECK_LAUNCH();
}

bool vec4_ok(const void* p, int64_t ld, int64_t stride) {
  return pointer_alignment(p) >= 16 && ld % 4 == 0 && stride % 4 == 0;
}

}  // namespace

void launch_gemm_f32(const GemmParams& p, void* stream) {
  F32Args a;
  fill_tiled_args<kBM, kBN>(a, p);
  a.vec_a = vec4_ok(p.A, p.lda, p.stride_a);
  a.vec_b = vec4_ok(p.B, p.ldb, p.stride_b);
  a.vec_c = vec4_ok(p.C, p.ldc, p.stride_c);
  a.vec_aux = p.aux && vec4_ok(p.aux, p.ld_aux, p.stride_aux);
  a.ep = make_epilogue(p);
  const dim3 grid(static_cast<unsigned>(a.tiles_m) * static_cast<unsigned>(a.tiles_n), 1,
                  static_cast<unsigned>(std::min<int64_t>(p.batch, 65535)));
  auto s = static_cast<cudaStream_t>(stream);
  // K > 0 too: the full kernel loads the first tile unconditionally.
  const bool full =
      p.M % kBM == 0 && p.N % kBN == 0 && p.K > 0 && p.K % kBK == 0 && a.vec_a && a.vec_b && a.vec_c;
  if (full) launch_layout<true>(p, a, grid, s);
  else launch_layout<false>(p, a, grid, s);
}

}  // namespace bigmodel::cuda::gemm_detail
