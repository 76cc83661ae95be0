// Row-reduction engine of the CUDA reduction family (reduce.cu, reduce_rows.cu): reduces
// each row of a [rows, cols] matrix given by two element strides, for any "reducer" R:
//   using In (storage type) and Acc (trivially copyable, size a multiple of 4 bytes);
//   Acc identity(); Acc step(Acc, In, row, col); Acc combine(Acc, Acc); void write(row, Acc).
// Layouts: short rows take one warp per row, long rows one block per row; a matrix whose
// rows are adjacent in memory (stride(0) < stride(1): a reduction over a leading dim) takes
// the column kernel, where a warp reads 32 neighbouring rows at once (no transposing copy).
// When there are too few rows to fill the GPU, rows are split into chunks reduced by
// separate blocks into a workspace, and a second pass combines the chunks in a fixed
// order (deterministic, no atomics).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>

#include "core/cuda_info.h"
#include "core/tensor.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda {

// Warp shuffle of any trivially copyable value whose size is a multiple of 4 bytes.
template <typename T>
__device__ __forceinline__ T shfl_xor_any(T v, int mask) {
  static_assert(sizeof(T) % 4 == 0, "shuffled values must be whole 32-bit words");
  constexpr int kWords = sizeof(T) / 4;
  int w[kWords];
  memcpy(w, &v, sizeof(T));
#pragma unroll
  for (int k = 0; k < kWords; ++k) w[k] = __shfl_xor_sync(0xffffffffu, w[k], mask);
  T r;
  memcpy(&r, w, sizeof(T));
  return r;
}

template <typename R, typename Acc>
__device__ __forceinline__ Acc warp_combine(const R& r, Acc a) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) a = r.combine(a, shfl_xor_any(a, offset));
  return a;
}

// Every thread of the block must call it; blockDim.x a multiple of 32. Thread 0 gets the
// result (others get partial values). The trailing barrier lets the caller call it again.
template <typename R, typename Acc>
__device__ __forceinline__ Acc block_combine(const R& r, Acc a) {
  __shared__ Acc slots[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  a = warp_combine(r, a);
  if (lane == 0) slots[warp] = a;
  __syncthreads();
  if (warp == 0) {
    a = lane < warps ? slots[lane] : r.identity();
    a = warp_combine(r, a);
  }
  __syncthreads();
  return a;
}

template <typename T, int V>
struct alignas(sizeof(T) * V) VecPack {
  T v[V];
};

// Rows along threads: TPR threads per row (32: a warp per row, 8 rows per 256-thread block;
// 0: the whole block per row). blockIdx.y picks the column chunk [c0, c0 + chunk).
template <typename R, int TPR>
__global__ void __launch_bounds__(512, 1) reduce_inner_kernel(R r, const typename R::In* __restrict__ in, int64_t rows,
                                                           int64_t cols, int64_t rs, int64_t cs, int64_t chunk,
                                                           typename R::Acc* __restrict__ ws, bool vec) {
  using Acc = typename R::Acc;
  using In = typename R::In;
  constexpr bool kWarp = TPR == 32;
  const int tpr = kWarp ? 32 : static_cast<int>(blockDim.x);
  const int group = kWarp ? static_cast<int>(threadIdx.x >> 5) : 0;
  const int lane = kWarp ? static_cast<int>(threadIdx.x & 31) : static_cast<int>(threadIdx.x);
  const int groups = static_cast<int>(blockDim.x) / tpr;
  const int splits = static_cast<int>(gridDim.y), s = static_cast<int>(blockIdx.y);
  const int64_t c0 = static_cast<int64_t>(s) * chunk;
  const int64_t c1 = c0 + chunk < cols ? c0 + chunk : cols;
  // row0 is uniform over the block, so every thread reaches the block-wide combine.
  for (int64_t row0 = static_cast<int64_t>(blockIdx.x) * groups; row0 < rows;
       row0 += static_cast<int64_t>(gridDim.x) * groups) {
    const int64_t row = row0 + group;
    Acc acc = r.identity();
    if (row < rows && vec) {
      // Contiguous, 16-byte aligned rows (and chunks): one 16-byte load per pack, two packs
      // in flight per thread, then the tail of the chunk element by element.
      constexpr int V = 16 / sizeof(In) > 0 ? static_cast<int>(16 / sizeof(In)) : 1;
      const In* base = in + row * rs + c0;
      const auto* packs = reinterpret_cast<const VecPack<In, V>*>(base);
      const int64_t npacks = (c1 - c0) / V;
      int64_t k = lane;
      for (; k + tpr < npacks; k += 2 * tpr) {
        const VecPack<In, V> p0 = packs[k], p1 = packs[k + tpr];
#pragma unroll
        for (int j = 0; j < V; ++j) acc = r.step(acc, p0.v[j], row, c0 + k * V + j);
#pragma unroll
        for (int j = 0; j < V; ++j) acc = r.step(acc, p1.v[j], row, c0 + (k + tpr) * V + j);
      }
      if (k < npacks) {
        const VecPack<In, V> p0 = packs[k];
#pragma unroll
        for (int j = 0; j < V; ++j) acc = r.step(acc, p0.v[j], row, c0 + k * V + j);
      }
      for (int64_t c = c0 + npacks * V + lane; c < c1; c += tpr) acc = r.step(acc, base[c - c0], row, c);
    } else if (row < rows) {
      int64_t c = c0 + lane;
      const In* q = in + row * rs + c * cs;
      const int64_t jump = tpr * cs;  // pointer step between a thread's elements
      // Four loads in flight before they are combined.
      for (; c + 3 * tpr < c1; c += 4 * tpr, q += 4 * jump) {
        const In v0 = q[0], v1 = q[jump], v2 = q[2 * jump], v3 = q[3 * jump];
        acc = r.step(acc, v0, row, c);
        acc = r.step(acc, v1, row, c + tpr);
        acc = r.step(acc, v2, row, c + 2 * tpr);
        acc = r.step(acc, v3, row, c + 3 * tpr);
      }
      for (; c < c1; c += tpr, q += jump) acc = r.step(acc, *q, row, c);
    }
    if constexpr (kWarp) acc = warp_combine(r, acc);
    else acc = block_combine(r, acc);
    if (lane == 0 && row < rows) {
      if (splits == 1) r.write(row, acc);
      else ws[row * splits + s] = acc;
    }
  }
}

// Rows adjacent in memory: blockDim (32, 16); threadIdx.x picks the row (coalesced loads
// across the warp), threadIdx.y strides over the chunk's columns; shared memory combines
// the 16 partial values of each row.
constexpr int kOuterRows = 32, kOuterLanes = 16;

template <typename R>
__global__ void __launch_bounds__(512, 1) reduce_outer_kernel(R r, const typename R::In* __restrict__ in, int64_t rows,
                                                           int64_t cols, int64_t rs, int64_t cs, int64_t chunk,
                                                           typename R::Acc* __restrict__ ws) {
  using Acc = typename R::Acc;
  __shared__ Acc part[kOuterLanes][kOuterRows];
  const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
  const int splits = static_cast<int>(gridDim.y), s = static_cast<int>(blockIdx.y);
  const int64_t c0 = static_cast<int64_t>(s) * chunk;
  const int64_t c1 = c0 + chunk < cols ? c0 + chunk : cols;
  for (int64_t row0 = static_cast<int64_t>(blockIdx.x) * kOuterRows; row0 < rows;
       row0 += static_cast<int64_t>(gridDim.x) * kOuterRows) {
    const int64_t row = row0 + tx;
    Acc acc = r.identity();
    if (row < rows) {
      constexpr int L = kOuterLanes;
      int64_t c = c0 + ty;
      const typename R::In* q = in + row * rs + c * cs;
      const int64_t jump = L * cs;
      for (; c + 3 * L < c1; c += 4 * L, q += 4 * jump) {
        const auto v0 = q[0], v1 = q[jump], v2 = q[2 * jump], v3 = q[3 * jump];
        acc = r.step(acc, v0, row, c);
        acc = r.step(acc, v1, row, c + L);
        acc = r.step(acc, v2, row, c + 2 * L);
        acc = r.step(acc, v3, row, c + 3 * L);
      }
      for (; c < c1; c += L, q += jump) acc = r.step(acc, *q, row, c);
    }
    part[ty][tx] = acc;
    __syncthreads();
    if (ty == 0) {
#pragma unroll
      for (int k = 1; k < kOuterLanes; ++k) acc = r.combine(acc, part[k][tx]);
      if (row < rows) {
        if (splits == 1) r.write(row, acc);
        else ws[row * splits + s] = acc;
      }
    }
    __syncthreads();
  }
}

// Second pass: one warp per row combines its `splits` partial values (row-major in ws).
template <typename R>
__global__ void __launch_bounds__(256) reduce_partials_kernel(R r, const typename R::Acc* __restrict__ ws,
                                                              int64_t rows, int splits) {
  using Acc = typename R::Acc;
  const int lane = static_cast<int>(threadIdx.x & 31);
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); row < rows;
       row += warps) {
    Acc acc = r.identity();
    for (int s = lane; s < splits; s += 32) acc = r.combine(acc, ws[row * splits + s]);
    acc = warp_combine(r, acc);
    if (lane == 0) r.write(row, acc);
  }
}

inline int sm_count(int device) {
  static std::atomic<int> cache[64] = {};
  if (device < 0) BM_CUDA_CHECK(cudaGetDevice(&device));
  std::atomic<int>* slot = device < 64 ? &cache[device] : nullptr;
  int n = slot ? slot->load(std::memory_order_relaxed) : 0;
  if (n == 0) {
    BM_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
    if (slot) slot->store(n, std::memory_order_relaxed);
  }
  return n;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Splits per row: enough blocks to fill `want` block slots, but at least `min_per_thread`
// elements per thread, and at most 1024 chunks.
inline int pick_splits(int64_t row_blocks, int64_t want, int64_t cols, int64_t threads_per_row) {
  if (row_blocks >= want) return 1;
  const int64_t by_fill = ceil_div(want, row_blocks);
  const int64_t by_work = std::max<int64_t>(1, cols / (threads_per_row * 16));
  return static_cast<int>(std::min<int64_t>({by_fill, by_work, 1024}));
}

// Reduces every row of the [rows, cols] matrix at `in` (element strides rs, cs) with R on
// the current stream of `device`; R::write receives each row's result.
template <typename R>
void launch_row_reduce(const R& r, const typename R::In* in, int64_t rows, int64_t cols, int64_t rs, int64_t cs,
                       Device device) {
  using Acc = typename R::Acc;
  if (rows <= 0) return;
  DeviceGuard guard(device.index);
  cudaStream_t stream = current_cuda_stream(device.index);
  const int64_t sms = sm_count(device.index);
  const int64_t max_grid = int64_t{1} << 20;  // grid-stride loops cover the rest
  const bool outer = rows > 1 && (cols == 1 || std::llabs(rs) < std::llabs(cs));
  int splits = 1;
  int64_t chunk = cols;
  dim3 grid, block;
  if (outer) {
    const int64_t row_blocks = ceil_div(rows, kOuterRows);
    splits = pick_splits(row_blocks, sms * 4, cols, kOuterLanes);
    block = dim3(kOuterRows, kOuterLanes);
    grid = dim3(static_cast<unsigned>(std::min(row_blocks, max_grid)), 1);
  } else if (cols <= 512) {
    const int64_t row_blocks = ceil_div(rows, 8);
    splits = 1;  // short rows: a warp finishes its row in at most 16 loads per lane
    block = dim3(256);
    grid = dim3(static_cast<unsigned>(std::min(row_blocks, max_grid)), 1);
  } else {
    const int threads = cols <= 16384 ? 256 : 512;
    splits = pick_splits(rows, sms * (2048 / threads), cols, threads);
    block = dim3(threads);
    grid = dim3(static_cast<unsigned>(std::min(rows, max_grid)), 1);
  }
  constexpr int64_t V = 16 / sizeof(typename R::In) > 0 ? 16 / sizeof(typename R::In) : 1;
  if (splits > 1) {
    chunk = ceil_div(ceil_div(cols, splits), V) * V;   // chunks start on a pack boundary
    splits = static_cast<int>(ceil_div(cols, chunk));  // no empty chunk
  }
  // The vector path needs every row start (and so every chunk start) on a 16-byte boundary.
  const bool vec = !outer && cs == 1 && cols >= 2 * V && (rows == 1 || rs % V == 0) &&
                   reinterpret_cast<uintptr_t>(in) % 16 == 0;
  grid.y = static_cast<unsigned>(splits);
  Tensor workspace;
  Acc* ws = nullptr;
  if (splits > 1) {  // from the caching allocator: stream-ordered, freed after the launches
    workspace = Tensor::empty({rows * splits * static_cast<int64_t>(sizeof(Acc))}, DType::Bool, device);
    ws = static_cast<Acc*>(workspace.data_ptr());
  }
  if (outer) reduce_outer_kernel<R><<<grid, block, 0, stream>>>(r, in, rows, cols, rs, cs, chunk, ws);
  else if (cols <= 512)
    reduce_inner_kernel<R, 32><<<grid, block, 0, stream>>>(r, in, rows, cols, rs, cs, chunk, ws, vec);
  else reduce_inner_kernel<R, 0><<<grid, block, 0, stream>>>(r, in, rows, cols, rs, cs, chunk, ws, vec);
  BM_CUDA_CHECK_LAUNCH();
  if (splits > 1) {
    const unsigned blocks = static_cast<unsigned>(std::min(ceil_div(rows, 8), max_grid));
    reduce_partials_kernel<R><<<blocks, 256, 0, stream>>>(r, ws, rows, splits);
    BM_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace bigmodel::cuda
