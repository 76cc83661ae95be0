// float32 / float64 implicit-GEMM convolution on the CUDA cores: 64 x 128 block tiles, each
// of 256 threads accumulating a 4 x 8 register block, k-steps of 16 (8 for float64), A and B
// tiles gathered straight from the tensors into double-buffered shared memory through
// registers (no im2col buffer), so the next tile's loads overlap this tile's FMAs.
#include "kernels/cuda/conv_igemm.cuh"
#include "kernels/cuda/cuda_check.h"

namespace bigmodel::cuda::conv_detail {
namespace {

constexpr int kThreads = 256;
constexpr int kPadM = 4;  // As rows are padded so the column-wise stores spread over banks

template <typename T>
struct Vec4;
template <>
struct Vec4<float> {
  static __device__ __forceinline__ void load(const float* p, float (&v)[4]) {
    const float4 x = *reinterpret_cast<const float4*>(p);
    v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w;
  }
};
template <>
struct Vec4<double> {
  static __device__ __forceinline__ void load(const double* p, double (&v)[4]) {
    const double2 x = *reinterpret_cast<const double2*>(p), y = *reinterpret_cast<const double2*>(p + 2);
    v[0] = x.x, v[1] = x.y, v[2] = y.x, v[3] = y.y;
  }
};

template <typename T, bool kDiv>
__global__ void __launch_bounds__(kThreads) conv_igemm_simt(ConvGemmArgs args) {
  constexpr int BK = sizeof(T) == 8 ? kSimtTileK64 : kSimtTileK;
  constexpr int kBLoads = BK * kTileN / kThreads;  // B elements per thread and tile
  constexpr int kALoads = BK * kTileM / kThreads;  // A elements per thread and tile
  constexpr int kARowStep = kThreads / BK;
  __shared__ __align__(16) T As[2][BK][kTileM + kPadM];
  __shared__ __align__(16) T Bs[2][BK][kTileN];
  __shared__ KTable<BK> tab[2];

  const ConvGemmArgs& a = args;
  const BlockCoords bc = block_coords(a);
  const int t = threadIdx.x;
  const T* __restrict__ A = static_cast<const T*>(a.a) + bc.group * a.a_group;
  const T* __restrict__ B = static_cast<const T*>(a.b);

  // Loader roles: B column j = n0 + t % 128 over the run of rows (t / 128) * kBLoads + i; A
  // reduction column t % BK over rows m = t / BK + kARowStep * i (consecutive threads read
  // consecutive kappa).
  const int b_col = t % kTileN, b_row0 = t / kTileN;
  const Column col = make_column(a, bc.n0 + b_col, bc.group);
  const int a_kk = t % BK, a_row0 = t / BK;

  // Compute roles: rows tm*4..+3, columns tn*4..+3 and 64+tn*4..+3.
  const int tm = t / 16, tn = t % 16;

  T acc[4][8];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[i][e] = T(0);

  T rb[kBLoads], ra[kALoads];
  auto load_tile = [&](const KTable<BK>& tb) {
    gather_b<kDiv>(rb, B, a, col, tb, b_row0 * kBLoads);
    const int64_t aoff = tb.aoff[a_kk];
#pragma unroll
    for (int i = 0; i < kALoads; ++i) {
      const int m = bc.m0 + a_row0 + kARowStep * i;
      const bool ok = aoff >= 0 && m < a.M;
      const T x = __ldg(A + (ok ? static_cast<int64_t>(m) * a.a_row + aoff : 0));  // unconditional: no branch
      ra[i] = ok ? x : T(0);
    }
  };
  auto store_tile = [&](int s) {
#pragma unroll
    for (int i = 0; i < kBLoads; ++i) Bs[s][b_row0 * kBLoads + i][b_col] = rb[i];
#pragma unroll
    for (int i = 0; i < kALoads; ++i) As[s][a_kk][a_row0 + kARowStep * i] = ra[i];
  };

  const int ktiles = bc.k_end > bc.k_begin ? (bc.k_end - bc.k_begin + BK - 1) / BK : 0;
  if (ktiles > 0) {
    build_ktable(tab[0], a, bc.k_begin, bc.k_end);
    __syncthreads();
    load_tile(tab[0]);
    store_tile(0);
    if (ktiles > 1) build_ktable(tab[1], a, bc.k_begin + BK, bc.k_end);
    __syncthreads();
  }
  for (int kt = 0; kt < ktiles; ++kt) {
    const int cur = kt & 1;
    // tab[cur ^ 1] holds tile kt+1's offsets (built before the last barrier).
    if (kt + 1 < ktiles) load_tile(tab[cur ^ 1]);
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      T av[4], bv[8];
      Vec4<T>::load(&As[cur][k][tm * 4], av);
      T b0[4], b1[4];
      Vec4<T>::load(&Bs[cur][k][tn * 4], b0);
      Vec4<T>::load(&Bs[cur][k][64 + tn * 4], b1);
#pragma unroll
      for (int e = 0; e < 4; ++e) bv[e] = b0[e], bv[4 + e] = b1[e];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[i][e] = fma(av[i], bv[e], acc[i][e]);
    }
    // The other stage was last read in iteration kt-1 and tab[cur] by this tile's loads,
    // both before the previous barrier: refill them now.
    if (kt + 1 < ktiles) store_tile(cur ^ 1);
    if (kt + 2 < ktiles) build_ktable(tab[cur], a, bc.k_begin + (kt + 2) * BK, bc.k_end);
    __syncthreads();
  }

  T* out = static_cast<T*>(a.out);
  const T* bias = static_cast<const T*>(a.bias);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int m = bc.m0 + tm * 4 + i;
    if (m >= a.M) continue;
    const T bm = bias ? bias[bc.group * a.M + m] : T(0);
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const int j = bc.n0 + (e < 4 ? tn * 4 + e : 64 + tn * 4 + (e - 4));
      if (j < a.Nc) out[out_offset(a, bc.group, bc.split, m, j)] = acc[i][e] + bm;
    }
  }
}

template <typename T>
void launch_typed(const ConvGemmArgs& a, cudaStream_t stream) {
  const int tiles_m = (a.M + kTileM - 1) / kTileM, tiles_n = (a.Nc + kTileN - 1) / kTileN;
  const dim3 grid(static_cast<unsigned>(tiles_m) * static_cast<unsigned>(tiles_n), 1,
                  static_cast<unsigned>(a.groups * a.splits));
  if (a.div_h > 1 || a.div_w > 1) conv_igemm_simt<T, true><<<grid, kThreads, 0, stream>>>(a);
  else conv_igemm_simt<T, false><<<grid, kThreads, 0, stream>>>(a);
  BM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_conv_simt(DType dtype, const ConvGemmArgs& a, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  if (dtype == DType::Float64) launch_typed<double>(a, s);
  else launch_typed<float>(a, s);
}

}  // namespace bigmodel::cuda::conv_detail
