// Strided indexing for CUDA kernels: N tensors of one shape (inputs already expanded, so
// broadcast dims have stride 0) are described by merged dims and per-tensor element
// strides, passed to the kernel by value; offsets() maps a linear row-major index to each
// tensor's element offset. Dims that are contiguous in every tensor are merged on the host,
// so a contiguous-but-offset view costs one division per element.
#pragma once
#include <cstdint>

#include "core/error.h"
#include "core/tensor.h"

#ifdef __CUDACC__
#define BM_OFFSET_HD __host__ __device__ __forceinline__
#else
#define BM_OFFSET_HD inline
#endif

namespace bigmodel::cuda {

constexpr int kMaxKernelDims = 12;

template <int N>
struct OffsetCalc {
  int ndim = 0;
  int64_t sizes[kMaxKernelDims];        // inner dim last
  int64_t strides[kMaxKernelDims][N];   // elements

  BM_OFFSET_HD void offsets(int64_t linear, int64_t (&out)[N]) const {
    for (int k = 0; k < N; ++k) out[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t size = sizes[d];
      const int64_t q = linear / size;
      const int64_t idx = linear - q * size;
      linear = q;
      for (int k = 0; k < N; ++k) out[k] += idx * strides[d][k];
    }
  }
};

// Built from tensors of one shape (ts[0] gives it); `op` names the caller in errors.
template <int N>
OffsetCalc<N> make_offset_calc(const Tensor* const (&ts)[N], const char* op) {
  OffsetCalc<N> c;
  const Shape& shape = ts[0]->sizes();
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    int64_t st[N];
    for (int k = 0; k < N; ++k) st[k] = ts[k]->strides()[d];
    if (c.ndim > 0) {  // merge with the previous (outer) dim when it steps over this one
      bool merge = true;
      for (int k = 0; k < N; ++k) merge = merge && c.strides[c.ndim - 1][k] == st[k] * shape[d];
      if (merge) {
        c.sizes[c.ndim - 1] *= shape[d];
        for (int k = 0; k < N; ++k) c.strides[c.ndim - 1][k] = st[k];
        continue;
      }
    }
    BM_CHECK(c.ndim < kMaxKernelDims, NotImplementedError, op, "tensors with more than ", kMaxKernelDims,
             " non-mergeable dims are not supported on CUDA");
    c.sizes[c.ndim] = shape[d];
    for (int k = 0; k < N; ++k) c.strides[c.ndim][k] = st[k];
    ++c.ndim;
  }
  return c;  // ndim 0: one element at offset 0
}

}  // namespace bigmodel::cuda
