// CUDA softmax / log_softmax over the middle dim of a contiguous [outer, n, inner] tensor
// (the contract of kernels/cpu/softmax.cpp). inner == 1: a warp per row for n <= 1024, a
// block per row above; the max and the sum of exponentials come from one online pass,
// the second pass writes. inner > 1: a block of 32 columns x 8 slices of n per group.
// Half types compute in float, float64 in double.
#include "core/ops/softmax.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/row_stats.cuh"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda {
namespace {

template <typename T>
using St = typename ElemTraits<T>::storage;
template <typename T>
using Cm = typename ElemTraits<T>::wide;

constexpr int kWarpRowsPerBlock = 4;  // warp-per-row kernel: 128 threads

// k2 is 1/sum (softmax) or log(sum) (log_softmax), as the CPU computes them.
template <typename T, bool LOG>
__device__ __forceinline__ St<T> softmax_value(Cm<T> x, Cm<T> m, Cm<T> k2) {
  if constexpr (LOG)
    return ElemTraits<T>::template store<Cm<T>>((x - m) - k2);
  else
    return ElemTraits<T>::template store<Cm<T>>(dev_exp(x - m) * k2);
}

template <typename C, bool LOG>
__device__ __forceinline__ C finish(C s) {
  if constexpr (LOG)
    return dev_log(s);
  else
    return fast_div(C(1), s);
}

// Lanes (or threads) [tid, tid + step, ...) of one row of `packs` V-element packs.
template <typename T, int V>
__device__ __forceinline__ MaxSum<Cm<T>> row_stats(const St<T>* x, int64_t packs, int64_t tid,
                                                   int64_t step) {
  MaxSum<Cm<T>> acc = MaxSum<Cm<T>>::identity();
  const auto* px = reinterpret_cast<const RowPack<St<T>, V>*>(x);
  for (int64_t p = tid; p < packs; p += step) {
    const RowPack<St<T>, V> v = px[p];
#pragma unroll
    for (int j = 0; j < V; ++j) acc.add(ElemTraits<T>::load(v.v[j]));
  }
  return acc;
}

template <typename T, bool LOG, int V>
__device__ __forceinline__ void row_write(St<T>* y, const St<T>* x, int64_t packs, int64_t tid,
                                          int64_t step, Cm<T> m, Cm<T> k2) {
  const auto* px = reinterpret_cast<const RowPack<St<T>, V>*>(x);
  auto* py = reinterpret_cast<RowPack<St<T>, V>*>(y);
  for (int64_t p = tid; p < packs; p += step) {
    const RowPack<St<T>, V> v = px[p];
    RowPack<St<T>, V> o;
#pragma unroll
    for (int j = 0; j < V; ++j) o.v[j] = softmax_value<T, LOG>(ElemTraits<T>::load(v.v[j]), m, k2);
    py[p] = o;
  }
}

// inner == 1, n <= 1024: one warp per row (rows are whole V-packs when V > 1).
template <typename T, bool LOG, int V>
__global__ void __launch_bounds__(32 * kWarpRowsPerBlock, 1)
    softmax_warp_kernel(St<T>* __restrict__ out, const St<T>* __restrict__ in, int64_t rows,
                        int64_t n) {
  const int lane = threadIdx.x & 31;
  const int64_t packs = n / V;
  for (int64_t row = int64_t{blockIdx.x} * kWarpRowsPerBlock + (threadIdx.x >> 5); row < rows;
       row += int64_t{gridDim.x} * kWarpRowsPerBlock) {  // warp-uniform: shuffles keep all lanes
    const St<T>* x = in + row * n;
    MaxSum<Cm<T>> acc = warp_combine(row_stats<T, V>(x, packs, lane, 32));
    row_write<T, LOG, V>(out + row * n, x, packs, lane, 32, acc.m, finish<Cm<T>, LOG>(acc.s));
  }
}

// inner == 1, n > 1024: one block per row.
template <typename T, bool LOG, int V>
__global__ void __launch_bounds__(1024, 1)
    softmax_block_kernel(St<T>* __restrict__ out, const St<T>* __restrict__ in, int64_t rows,
                         int64_t n) {
  __shared__ MaxSum<Cm<T>> slots[32];
  const int64_t packs = n / V;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const St<T>* x = in + row * n;
    MaxSum<Cm<T>> acc = block_combine(row_stats<T, V>(x, packs, threadIdx.x, blockDim.x), slots);
    row_write<T, LOG, V>(out + row * n, x, packs, threadIdx.x, blockDim.x, acc.m,
                         finish<Cm<T>, LOG>(acc.s));
  }
}

// inner > 1: column c = (o, i) of the [outer, inner] grid; threadIdx.x picks the column
// within a group of 32 (consecutive i: coalesced), threadIdx.y a slice of n.
constexpr int kInnerCols = 32, kInnerSlices = 8;

template <typename T, bool LOG>
__global__ void __launch_bounds__(kInnerCols* kInnerSlices, 1)
    softmax_inner_kernel(St<T>* __restrict__ out, const St<T>* __restrict__ in, int64_t outer,
                         int64_t n, int64_t inner) {
  using C = Cm<T>;
  __shared__ MaxSum<C> part[kInnerSlices][kInnerCols];
  const int64_t cols = outer * inner;
  const int tx = threadIdx.x, ty = threadIdx.y;
  for (int64_t base = int64_t{blockIdx.x} * kInnerCols; base < cols;
       base += int64_t{gridDim.x} * kInnerCols) {
    const int64_t c = base + tx;
    const bool live = c < cols;
    const int64_t o = live ? c / inner : 0, i = live ? c - o * inner : 0;
    const St<T>* x = in + o * n * inner + i;
    MaxSum<C> acc = MaxSum<C>::identity();
    if (live)
      for (int64_t k = ty; k < n; k += kInnerSlices) acc.add(ElemTraits<T>::load(x[k * inner]));
    part[ty][tx] = acc;
    __syncthreads();
    MaxSum<C> all = part[0][tx];
#pragma unroll
    for (int s = 1; s < kInnerSlices; ++s) all.merge(part[s][tx]);  // same order in every thread
    __syncthreads();  // part is rewritten by the next group
    if (live) {
      const C k2 = finish<C, LOG>(all.s);
      St<T>* y = out + o * n * inner + i;
      for (int64_t k = ty; k < n; k += kInnerSlices)
        y[k * inner] = softmax_value<T, LOG>(ElemTraits<T>::load(x[k * inner]), all.m, k2);
    }
  }
}

template <typename T, bool LOG, int V>
void launch_rows(St<T>* y, const St<T>* x, int64_t rows, int64_t n, cudaStream_t stream) {
  if (n <= 1024) {
    softmax_warp_kernel<T, LOG, V>
        <<<capped_blocks((rows + kWarpRowsPerBlock - 1) / kWarpRowsPerBlock),
           32 * kWarpRowsPerBlock, 0, stream>>>(y, x, rows, n);
  } else {
    softmax_block_kernel<T, LOG, V>
        <<<capped_blocks(rows), row_block_threads(n / V), 0, stream>>>(y, x, rows, n);
  }
  BM_CUDA_CHECK_LAUNCH();
}

template <typename T, bool LOG>
void softmax_launch(const Tensor& out, const Tensor& in, int64_t outer, int64_t n, int64_t inner) {
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  auto* y = static_cast<St<T>*>(out.data_ptr());
  const auto* x = static_cast<const St<T>*>(in.data_ptr());
  if (inner == 1) {
    constexpr int V = 16 / sizeof(St<T>);  // 16-byte packs when every row starts aligned
    if (n % V == 0 && aligned_to(x, 16) && aligned_to(y, 16))
      launch_rows<T, LOG, V>(y, x, outer, n, stream);
    else
      launch_rows<T, LOG, 1>(y, x, outer, n, stream);
    return;
  }
  const dim3 block(kInnerCols, kInnerSlices);
  softmax_inner_kernel<T, LOG>
      <<<capped_blocks((outer * inner + kInnerCols - 1) / kInnerCols), block, 0, stream>>>(
          y, x, outer, n, inner);
  BM_CUDA_CHECK_LAUNCH();
}

void softmax_cuda(const Tensor& out, const Tensor& in, int64_t outer, int64_t n, int64_t inner,
                  bool log) {
  BM_DISPATCH_FLOATING(in.dtype(), log ? "log_softmax" : "softmax", [&] {
    if (log)
      softmax_launch<scalar_t, true>(out, in, outer, n, inner);
    else
      softmax_launch<scalar_t, false>(out, in, outer, n, inner);
  });
}

}  // namespace

BM_REGISTER_KERNEL(softmax_kernel, CUDA, &softmax_cuda);

}  // namespace bigmodel::cuda
