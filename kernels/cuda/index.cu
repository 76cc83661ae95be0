// CUDA kernels of the indexing family (gather, index_select, embedding, advanced indexing,
// scatter/scatter_add/index_add/index_put, masked ops through nonzero, one_hot), with the
// contract of kernels/cpu/index.cpp: the front ends (core/ops/index.cpp) range-check every
// index first, using index_minmax_kernel (here: a device reduction read back by the host),
// so these kernels never see an out-of-range index.
// Accumulating scatters use atomicAdd: with repeated indices, float results then depend on
// the order the additions land in (not bit-reproducible run to run); integer sums are exact.
// Plain scatters with repeated indices keep one of the written values (which one is not
// defined, as in PyTorch).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <limits>
#include <vector>

#include "core/dispatch.h"
#include "core/ops/index.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/offset_calc.h"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda {
namespace {

constexpr int kThreads = 256;

// Calls f(index_t{}) for an int32 or int64 index tensor.
template <typename F>
void dispatch_index(DType dt, F&& f) {
  if (dt == DType::Int32) f(int32_t{});
  else f(int64_t{});
}

// Calls f(U{}) with an unsigned type of the element size: gathers and plain scatters move
// bits, so one instantiation serves every dtype of that size.
template <typename F>
void dispatch_bits(size_t bytes, F&& f) {
  switch (bytes) {
    case 1: f(uint8_t{}); break;
    case 2: f(uint16_t{}); break;
    case 4: f(uint32_t{}); break;
    default: f(uint64_t{}); break;
  }
}

__device__ __forceinline__ int64_t wrap_index(int64_t i, int64_t size) { return (size >= 0 && i < 0) ? i + size : i; }

// Grid-stride over the n elements of an indexed copy: f(off, k) with off the element's
// offsets in {the written tensor, the read tensor, index} and k its index value, wrapped.
template <typename I, typename F>
__device__ __forceinline__ void for_each_indexed(const I* __restrict__ index, const OffsetCalc<3>& calc, int64_t n,
                                                 int64_t size, F&& f) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[3];
    calc.offsets(i, off);
    f(off, wrap_index(static_cast<int64_t>(index[off[2]]), size));
  }
}

// ---- gather ----

template <typename U, typename I>
__global__ void gather_kernel(U* __restrict__ out, const U* __restrict__ src, const I* __restrict__ index,
                              OffsetCalc<3> calc, int64_t n, int64_t stride, int64_t size) {
  for_each_indexed(index, calc, n, size,
                   [&](const int64_t* off, int64_t k) { out[off[0]] = src[off[1] + k * stride]; });
}

// Runs of `run_len` elements contiguous in out and src that share one index (embedding
// rows, index_select of rows): one warp copies each run.
template <typename U, typename I>
__global__ void gather_runs_kernel(U* __restrict__ out, const U* __restrict__ src, const I* __restrict__ index,
                                   OffsetCalc<3> outer, int64_t runs, int64_t run_len, int64_t stride, int64_t size) {
  const int lane = static_cast<int>(threadIdx.x & 31);
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
  for (int64_t q = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); q < runs; q += warps) {
    int64_t off[3];
    outer.offsets(q, off);
    const int64_t k = wrap_index(static_cast<int64_t>(index[off[2]]), size);
    const U* from = src + off[1] + k * stride;
    U* to = out + off[0];
    for (int64_t j = lane; j < run_len; j += 32) to[j] = from[j];
  }
}

void index_gather_cuda(const Tensor& out, const Tensor& src, const Tensor& index, int64_t stride, int64_t size) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  const Tensor* ts[3] = {&out, &src, &index};
  OffsetCalc<3> calc = make_offset_calc<3>(ts, "index");
  dispatch_bits(itemsize(out.dtype()), [&](auto ubits) {
    using U = decltype(ubits);
    dispatch_index(index.dtype(), [&](auto itag) {
      using I = decltype(itag);
      auto* o = static_cast<U*>(out.data_ptr());
      const auto* s = static_cast<const U*>(src.data_ptr());
      const auto* ix = static_cast<const I*>(index.data_ptr());
      const int last = calc.ndim - 1;
      if (last >= 0 && calc.strides[last][0] == 1 && calc.strides[last][1] == 1 && calc.strides[last][2] == 0 &&
          calc.sizes[last] >= 16) {
        OffsetCalc<3> outer = calc;
        outer.ndim = last;
        const int64_t run_len = calc.sizes[last], runs = n / run_len;
        const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((runs + 7) / 8, int64_t{1} << 20));
        gather_runs_kernel<U, I><<<blocks, kThreads, 0, stream>>>(o, s, ix, outer, runs, run_len, stride, size);
      } else {
        gather_kernel<U, I><<<grid_blocks(n, kThreads), kThreads, 0, stream>>>(o, s, ix, calc, n, stride, size);
      }
      BM_CUDA_CHECK_LAUNCH();
    });
  });
}

// ---- scatter ----

template <typename U, typename I>
__global__ void scatter_assign_kernel(U* __restrict__ dst, const U* __restrict__ src, const I* __restrict__ index,
                                      OffsetCalc<3> calc, int64_t n, int64_t stride, int64_t size) {
  for_each_indexed(index, calc, n, size,
                   [&](const int64_t* off, int64_t k) { dst[off[0] + k * stride] = src[off[1]]; });
}

// 16-bit atomic add through a compare-and-swap on the aligned 32-bit word holding it (for
// targets without native half/bfloat16 atomics).
template <typename T>
__device__ __forceinline__ void atomic_add_16_cas(uint16_t* address, float v) {
  auto* word = reinterpret_cast<unsigned int*>(reinterpret_cast<uintptr_t>(address) & ~uintptr_t{3});
  const unsigned int shift = (reinterpret_cast<uintptr_t>(address) & 2u) ? 16u : 0u;
  unsigned int old = *word, assumed;
  do {
    assumed = old;
    const uint16_t cur = static_cast<uint16_t>((assumed >> shift) & 0xffffu);
    const uint16_t sum = ElemTraits<T>::store(ElemTraits<T>::load(cur) + v);
    const unsigned int next = (assumed & ~(0xffffu << shift)) | (static_cast<unsigned int>(sum) << shift);
    old = atomicCAS(word, assumed, next);
  } while (old != assumed);
}

template <typename T>
__device__ __forceinline__ void atomic_accumulate(typename ElemTraits<T>::storage* d,
                                                  typename ElemTraits<T>::storage v) {
  if constexpr (std::is_same_v<T, bool>) {
    if (v) *d = true;  // logical or; racing writers all store true
  } else if constexpr (std::is_same_v<T, int64_t>) {
    atomicAdd(reinterpret_cast<unsigned long long*>(d), static_cast<unsigned long long>(v));  // wraps like int64
  } else if constexpr (std::is_same_v<T, Half>) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 700
    atomicAdd(reinterpret_cast<__half*>(d), __ushort_as_half(v));
#else
    atomic_add_16_cas<Half>(d, ElemTraits<Half>::load(v));
#endif
  } else if constexpr (std::is_same_v<T, BFloat16>) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    atomicAdd(reinterpret_cast<__nv_bfloat16*>(d), __ushort_as_bfloat16(v));
#else
    atomic_add_16_cas<BFloat16>(d, ElemTraits<BFloat16>::load(v));
#endif
  } else {
    atomicAdd(d, v);  // float, double, int32
  }
}

template <typename T, typename I>
__global__ void scatter_add_kernel(typename ElemTraits<T>::storage* __restrict__ dst,
                                   const typename ElemTraits<T>::storage* __restrict__ src,
                                   const I* __restrict__ index, OffsetCalc<3> calc, int64_t n, int64_t stride,
                                   int64_t size) {
  for_each_indexed(index, calc, n, size, [&](const int64_t* off, int64_t k) {
    atomic_accumulate<T>(dst + off[0] + k * stride, src[off[1]]);
  });
}

void index_scatter_cuda(const Tensor& dst, const Tensor& src, const Tensor& index, int64_t stride, int64_t size,
                        bool accumulate) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  DeviceGuard guard(dst.device().index);
  cudaStream_t stream = current_cuda_stream(dst.device().index);
  const Tensor* ts[3] = {&dst, &src, &index};
  OffsetCalc<3> calc = make_offset_calc<3>(ts, accumulate ? "index_put" : "scatter");
  const unsigned blocks = grid_blocks(n, kThreads);
  dispatch_index(index.dtype(), [&](auto itag) {
    using I = decltype(itag);
    const auto* ix = static_cast<const I*>(index.data_ptr());
    if (accumulate) {
      BM_DISPATCH_ALL(dst.dtype(), "index_put", [&] {
        using S = typename ElemTraits<scalar_t>::storage;
        scatter_add_kernel<scalar_t, I><<<blocks, kThreads, 0, stream>>>(
            static_cast<S*>(dst.data_ptr()), static_cast<const S*>(src.data_ptr()), ix, calc, n, stride, size);
      });
    } else {
      dispatch_bits(itemsize(dst.dtype()), [&](auto ubits) {
        using U = decltype(ubits);
        scatter_assign_kernel<U, I><<<blocks, kThreads, 0, stream>>>(
            static_cast<U*>(dst.data_ptr()), static_cast<const U*>(src.data_ptr()), ix, calc, n, stride, size);
      });
    }
    BM_CUDA_CHECK_LAUNCH();
  });
}

// ---- linear offsets for multi-tensor indexing ----

template <typename I>
__global__ void index_offset_kernel_impl(int64_t* __restrict__ offsets, const I* __restrict__ index,
                                         OffsetCalc<2> calc, int64_t n, int64_t size, int64_t stride) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[2];
    calc.offsets(i, off);
    offsets[off[0]] += wrap_index(static_cast<int64_t>(index[off[1]]), size) * stride;
  }
}

void index_offset_cuda(const Tensor& offsets, const Tensor& index, int64_t size, int64_t stride) {
  const int64_t n = offsets.numel();
  if (n == 0) return;
  DeviceGuard guard(offsets.device().index);
  cudaStream_t stream = current_cuda_stream(offsets.device().index);
  const Tensor* ts[2] = {&offsets, &index};
  OffsetCalc<2> calc = make_offset_calc<2>(ts, "index");
  dispatch_index(index.dtype(), [&](auto itag) {
    using I = decltype(itag);
    index_offset_kernel_impl<I><<<grid_blocks(n, kThreads), kThreads, 0, stream>>>(
        static_cast<int64_t*>(offsets.data_ptr()), static_cast<const I*>(index.data_ptr()), calc, n, size, stride);
    BM_CUDA_CHECK_LAUNCH();
  });
}

// ---- min/max of an index tensor (read back by the host for the range checks) ----

__device__ __forceinline__ long long warp_min_ll(long long v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const long long w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w < v ? w : v;
  }
  return v;
}
__device__ __forceinline__ long long warp_max_ll(long long v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const long long w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}

// result[0] = min, result[1] = max (pre-set to the identities); one atomic per warp.
template <typename I>
__global__ void index_minmax_kernel_impl(const I* __restrict__ self, OffsetCalc<1> calc, bool contiguous, int64_t n,
                                         long long* __restrict__ result) {
  long long lo = std::numeric_limits<long long>::max(), hi = std::numeric_limits<long long>::min();
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[1] = {i};
    if (!contiguous) calc.offsets(i, off);
    const long long v = static_cast<long long>(self[off[0]]);
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  lo = warp_min_ll(lo);
  hi = warp_max_ll(hi);
  if ((threadIdx.x & 31) == 0) {
    atomicMin(result, lo);
    atomicMax(result + 1, hi);
  }
}

void index_minmax_cuda(const Tensor& self, int64_t* min_out, int64_t* max_out) {
  const int64_t n = self.numel();
  long long host[2] = {std::numeric_limits<long long>::max(), std::numeric_limits<long long>::min()};
  if (n > 0) {
    DeviceGuard guard(self.device().index);
    cudaStream_t stream = current_cuda_stream(self.device().index);
    Tensor buf = Tensor::empty({2}, DType::Int64, self.device());
    auto* dev = static_cast<long long*>(buf.data_ptr());
    BM_CUDA_CHECK(cudaMemcpyAsync(dev, host, sizeof(host), cudaMemcpyHostToDevice, stream));
    const Tensor* ts[1] = {&self};
    OffsetCalc<1> calc = make_offset_calc<1>(ts, "index");
    const bool contiguous = self.is_contiguous();
    const unsigned blocks = std::min<unsigned>(grid_blocks(n, kThreads), 1024);  // few atomics
    dispatch_index(self.dtype(), [&](auto itag) {
      using I = decltype(itag);
      index_minmax_kernel_impl<I><<<blocks, kThreads, 0, stream>>>(static_cast<const I*>(self.data_ptr()), calc,
                                                                    contiguous, n, dev);
      BM_CUDA_CHECK_LAUNCH();
    });
    BM_CUDA_CHECK(cudaMemcpyAsync(host, dev, sizeof(host), cudaMemcpyDeviceToHost, stream));
    BM_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  *min_out = host[0];
  *max_out = host[1];
}

// ---- nonzero ----

constexpr int kNzRounds = 16;                       // rounds of kThreads elements per block
constexpr int64_t kNzChunk = kThreads * kNzRounds;  // elements per block

struct Coords {  // the input's sizes, for turning a row-major position into coordinates
  int ndim;
  int64_t sizes[kMaxKernelDims];
};

template <typename T>
__device__ __forceinline__ bool is_nonzero(typename ElemTraits<T>::storage v) {
  const auto w = ElemTraits<T>::load(v);
  return w != decltype(w)(0);
}

template <typename T>
__global__ void nonzero_count_kernel(const typename ElemTraits<T>::storage* __restrict__ self, OffsetCalc<1> calc,
                                     int64_t n, int* __restrict__ counts) {
  __shared__ int warp_counts[kThreads / 32];
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kNzChunk;
  int count = 0;
  for (int k = 0; k < kNzRounds; ++k) {
    const int64_t i = begin + k * kThreads + threadIdx.x;
    if (i < n) {
      int64_t off[1];
      calc.offsets(i, off);
      count += is_nonzero<T>(self[off[0]]) ? 1 : 0;
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) count += __shfl_xor_sync(0xffffffffu, count, o);
  if ((threadIdx.x & 31) == 0) warp_counts[threadIdx.x >> 5] = count;
  __syncthreads();
  if (threadIdx.x == 0) {
    int total = 0;
    for (int w = 0; w < kThreads / 32; ++w) total += warp_counts[w];
    counts[blockIdx.x] = total;
  }
}

// Writes the coordinates of the block's nonzero elements in row-major order from
// out row `starts[block]` on: each round ranks its hits by ballot and a warp prefix.
template <typename T>
__global__ void nonzero_write_kernel(const typename ElemTraits<T>::storage* __restrict__ self, OffsetCalc<1> calc,
                                     Coords coords, int64_t n, const int64_t* __restrict__ starts,
                                     int64_t* __restrict__ out) {
  __shared__ int warp_counts[kThreads / 32];
  const int lane = static_cast<int>(threadIdx.x & 31), warp = static_cast<int>(threadIdx.x >> 5);
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kNzChunk;
  int64_t base = starts[blockIdx.x];
  for (int k = 0; k < kNzRounds; ++k) {
    const int64_t i = begin + k * kThreads + threadIdx.x;
    bool hit = false;
    if (i < n) {
      int64_t off[1];
      calc.offsets(i, off);
      hit = is_nonzero<T>(self[off[0]]);
    }
    const unsigned ballot = __ballot_sync(0xffffffffu, hit);
    if (lane == 0) warp_counts[warp] = __popc(ballot);
    __syncthreads();
    int before = 0, total = 0;
    for (int w = 0; w < kThreads / 32; ++w) {
      before += w < warp ? warp_counts[w] : 0;
      total += warp_counts[w];
    }
    if (hit) {
      const int64_t row = base + before + __popc(ballot & ((1u << lane) - 1u));
      int64_t rest = i;
#pragma unroll
      for (int d = kMaxKernelDims - 1; d >= 0; --d) {  // constant indices: sizes stay out of local memory
        if (d < coords.ndim) {
          const int64_t q = rest / coords.sizes[d];
          out[row * coords.ndim + d] = rest - q * coords.sizes[d];
          rest = q;
        }
      }
    }
    base += total;
    __syncthreads();  // warp_counts is rewritten by the next round
  }
}

Tensor nonzero_cuda(const Tensor& self) {
  const int64_t nd = self.dim(), n = self.numel();
  BM_CHECK(nd <= kMaxKernelDims, NotImplementedError, "nonzero", "tensors with more than ", kMaxKernelDims,
           " dims are not supported on CUDA");
  if (n == 0) return Tensor::empty({0, nd}, DType::Int64, self.device());
  DeviceGuard guard(self.device().index);
  cudaStream_t stream = current_cuda_stream(self.device().index);
  const Tensor* ts[1] = {&self};
  OffsetCalc<1> calc = make_offset_calc<1>(ts, "nonzero");
  Coords coords{static_cast<int>(nd), {}};
  for (int64_t d = 0; d < nd; ++d) coords.sizes[d] = self.size(d);
  const int64_t blocks = (n + kNzChunk - 1) / kNzChunk;
  BM_CHECK(blocks < (int64_t{1} << 31), NotImplementedError, "nonzero", "tensor too large: ", n, " elements");
  Tensor counts = Tensor::empty({blocks}, DType::Int32, self.device());
  Tensor starts = Tensor::empty({blocks}, DType::Int64, self.device());
  std::vector<int> host_counts(blocks);
  std::vector<int64_t> host_starts(blocks);
  int64_t total = 0;
  BM_DISPATCH_ALL(self.dtype(), "nonzero", [&] {
    using S = typename ElemTraits<scalar_t>::storage;
    const auto* p = static_cast<const S*>(self.data_ptr());
    nonzero_count_kernel<scalar_t><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
        p, calc, n, static_cast<int*>(counts.data_ptr()));
    BM_CUDA_CHECK_LAUNCH();
    // The output size depends on the data: the host reads the counts (a synchronisation,
    // as in every framework) and lays out where each block writes.
    BM_CUDA_CHECK(cudaMemcpyAsync(host_counts.data(), counts.data_ptr(), blocks * sizeof(int),
                                  cudaMemcpyDeviceToHost, stream));
    BM_CUDA_CHECK(cudaStreamSynchronize(stream));
    for (int64_t b = 0; b < blocks; ++b) {
      host_starts[b] = total;
      total += host_counts[b];
    }
    if (total == 0 || nd == 0) return;
    BM_CUDA_CHECK(cudaMemcpyAsync(starts.data_ptr(), host_starts.data(), blocks * sizeof(int64_t),
                                  cudaMemcpyHostToDevice, stream));
  });
  Tensor out = Tensor::empty({total, nd}, DType::Int64, self.device());
  if (total > 0 && nd > 0) {
    BM_DISPATCH_ALL(self.dtype(), "nonzero", [&] {
      using S = typename ElemTraits<scalar_t>::storage;
      nonzero_write_kernel<scalar_t><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
          static_cast<const S*>(self.data_ptr()), calc, coords, n, static_cast<const int64_t*>(starts.data_ptr()),
          static_cast<int64_t*>(out.data_ptr()));
      BM_CUDA_CHECK_LAUNCH();
    });
    // host_starts is pageable: the copy above was staged before returning, so it may go.
  }
  return out;
}

}  // namespace

BM_REGISTER_KERNEL(index_gather_kernel, CUDA, &index_gather_cuda);
BM_REGISTER_KERNEL(index_scatter_kernel, CUDA, &index_scatter_cuda);
BM_REGISTER_KERNEL(index_offset_kernel, CUDA, &index_offset_cuda);
BM_REGISTER_KERNEL(nonzero_kernel, CUDA, &nonzero_cuda);
BM_REGISTER_KERNEL(index_minmax_kernel, CUDA, &index_minmax_cuda);

}  // namespace bigmodel::cuda
