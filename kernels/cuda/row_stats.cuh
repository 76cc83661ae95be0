// Per-row statistics shared by the softmax, cross-entropy and normalisation kernels
// (kernels/cuda/softmax.cu, loss.cu, norm.cu): an online running max + sum of exponentials
// (one read pass gives softmax's max and denominator) and Welford mean/M2 accumulators,
// each with its merge and warp/block-wide combine. Device code only.
#pragma once
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

namespace bigmodel::cuda {

template <typename C>
__device__ __forceinline__ C lowest_finite() {
  if constexpr (sizeof(C) == 8)
    return -DBL_MAX;
  else
    return -FLT_MAX;
}

__device__ __forceinline__ float dev_exp(float x) { return expf(x); }
__device__ __forceinline__ double dev_exp(double x) { return exp(x); }
__device__ __forceinline__ float dev_log(float x) { return logf(x); }
__device__ __forceinline__ double dev_log(double x) { return log(x); }

// Division and 1/sqrt for per-element or per-row use. The float forms avoid the IEEE
// division's out-of-line slow path (its call spills registers); __fdividef is within
// 2 ulp for the magnitudes used here (counts and sums far below 2^126).
__device__ __forceinline__ float fast_div(float a, float b) { return __fdividef(a, b); }
__device__ __forceinline__ double fast_div(double a, double b) { return a / b; }
__device__ __forceinline__ float inv_sqrt(float x) { return rsqrtf(x); }  // within 2 ulp
__device__ __forceinline__ double inv_sqrt(double x) { return 1.0 / sqrt(x); }

// Running max m and sum s of exp(x - m). m starts at the lowest finite value rather than
// -inf, so a -inf input adds exp(-inf) = 0 instead of exp(-inf - -inf) = NaN; a row of
// only -inf ends with s = 0 and yields NaN, as on the CPU.
template <typename C>
struct MaxSum {
  C m, s;
  __device__ __forceinline__ static MaxSum identity() { return {lowest_finite<C>(), C(0)}; }
  // One exp per element: rescale the sum only when the max moves.
  __device__ __forceinline__ void add(C x) {
    if (x > m) {
      s = s * dev_exp(m - x) + C(1);
      m = x;
    } else {
      s += dev_exp(x - m);
    }
  }
  __device__ __forceinline__ void merge(MaxSum o) {
    const C nm = o.m > m ? o.m : m;
    s = s * dev_exp(m - nm) + o.s * dev_exp(o.m - nm);
    m = nm;
  }
};

template <typename C>
__device__ __forceinline__ MaxSum<C> warp_combine(MaxSum<C> v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    MaxSum<C> o{__shfl_xor_sync(0xffffffffu, v.m, offset),
                __shfl_xor_sync(0xffffffffu, v.s, offset)};
    v.merge(o);
  }
  return v;
}

// Welford accumulator: n values with mean and M2 = sum of squared deviations.
template <typename C>
struct Welford {
  C n, mean, m2;
  __device__ __forceinline__ static Welford identity() { return {C(0), C(0), C(0)}; }
  __device__ __forceinline__ void add(C x) {
    n += C(1);
    const C d = x - mean;
    mean += fast_div(d, n);
    m2 += d * (x - mean);
  }
  // Chan et al.'s parallel merge; an empty side leaves the other unchanged.
  __device__ __forceinline__ void merge(Welford o) {
    if (o.n == C(0)) return;
    if (n == C(0)) {
      *this = o;
      return;
    }
    const C total = n + o.n;
    const C d = o.mean - mean;
    const C wo = fast_div(o.n, total);
    mean += d * wo;
    m2 += o.m2 + d * d * n * wo;
    n = total;
  }
};

template <typename C>
__device__ __forceinline__ Welford<C> warp_combine(Welford<C> v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    Welford<C> o{__shfl_xor_sync(0xffffffffu, v.n, offset),
                 __shfl_xor_sync(0xffffffffu, v.mean, offset),
                 __shfl_xor_sync(0xffffffffu, v.m2, offset)};
    v.merge(o);
  }
  // The merge is not symmetric in its operands, so lanes may differ in the last bit:
  // every lane takes lane 0's result, so one row is normalised with one mean.
  return {__shfl_sync(0xffffffffu, v.n, 0), __shfl_sync(0xffffffffu, v.mean, 0),
          __shfl_sync(0xffffffffu, v.m2, 0)};
}

// Plain pair of sums (layer/batch norm backward, cross-entropy's smoothing term).
template <typename C>
struct Sum2 {
  C a, b;
  __device__ __forceinline__ static Sum2 identity() { return {C(0), C(0)}; }
  __device__ __forceinline__ void merge(Sum2 o) {
    a += o.a;
    b += o.b;
  }
};

template <typename C>
__device__ __forceinline__ Sum2<C> warp_combine(Sum2<C> v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    v.a += __shfl_xor_sync(0xffffffffu, v.a, offset);
    v.b += __shfl_xor_sync(0xffffffffu, v.b, offset);
  }
  return v;
}

// Block-wide combine of any of the accumulators above (blockDim.x a multiple of 32, at
// most 1024); every thread gets the result. `slots` is shared memory for 32 values; the
// trailing barrier lets the caller reuse it at once.
template <typename Acc>
__device__ __forceinline__ Acc block_combine(Acc v, Acc* slots) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  v = warp_combine(v);
  if (lane == 0) slots[warp] = v;
  __syncthreads();
  Acc r = lane < warps ? slots[lane] : Acc::identity();
  r = warp_combine(r);
  __syncthreads();
  return r;
}

// Row iteration of the row kernels (layer norm, cross-entropy): BLOCK = one block per row, else one
// warp per row (kRowsPerBlock rows per block). Rows are walked warp/block-uniformly.
constexpr int kRowsPerBlock = 4;  // warp-per-row kernels: 128 threads

template <bool BLOCK>
struct RowWalk {
  __device__ __forceinline__ int tid() const { return BLOCK ? threadIdx.x : (threadIdx.x & 31); }
  __device__ __forceinline__ int step() const { return BLOCK ? blockDim.x : 32; }
  __device__ __forceinline__ int64_t first() const {
    return BLOCK ? int64_t{blockIdx.x} : int64_t{blockIdx.x} * kRowsPerBlock + (threadIdx.x >> 5);
  }
  __device__ __forceinline__ int64_t stride() const {
    return BLOCK ? int64_t{gridDim.x} : int64_t{gridDim.x} * kRowsPerBlock;
  }
  template <typename Acc>
  __device__ __forceinline__ Acc combine(Acc v, Acc* slots) const {
    if constexpr (BLOCK)
      return block_combine(v, slots);
    else
      return warp_combine(v);
  }
};

// Host side: multiprocessors of `device`, read once per device (sizes grids of the
// cross-row reductions so each fills the chip about twice).
inline int sm_count(int device) {
  static int cached[64] = {};
  if (device < 0 || device >= 64) return 132;
  if (cached[device] == 0) {
    int v = 0;
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
        v <= 0) {
      cudaGetLastError();
      v = 132;
    }
    cached[device] = v;
  }
  return cached[device];
}

// Grid for `work` blocks, capped (the kernels loop grid-stride above the cap).
inline unsigned capped_blocks(int64_t work) {
  constexpr int64_t cap = int64_t{1} << 20;
  return static_cast<unsigned>(work < cap ? (work < 1 ? 1 : work) : cap);
}

// Threads of a block-per-row kernel: about four packs per thread, 128..1024.
inline int row_block_threads(int64_t packs) {
  int64_t t = (packs + 3) / 4;
  t = (t + 31) / 32 * 32;
  return static_cast<int>(t < 128 ? 128 : (t > 1024 ? 1024 : t));
}

inline bool aligned_to(const void* p, size_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

// V consecutive storage elements loaded or stored as one 16-byte (or narrower) access.
template <typename S, int V>
struct alignas(sizeof(S) * V) RowPack {
  S v[V];
};

}  // namespace bigmodel::cuda
