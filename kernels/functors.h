// Elementwise math shared by CPU and CUDA kernels: one definition of each function,
// callable from host and device code. Values arrive in the compute type (float for
// half types), so half and bfloat16 tensors use the float formulas.
#pragma once
#include <cmath>
#include <cstdint>
#include <type_traits>

#ifdef __CUDACC__
#define BM_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define BM_HOST_DEVICE inline
#endif

namespace bigmodel::fn {

template <typename T> BM_HOST_DEVICE T add(T a, T b) { return a + b; }
template <typename T> BM_HOST_DEVICE T sub(T a, T b) { return a - b; }
template <typename T> BM_HOST_DEVICE T mul(T a, T b) { return a * b; }
template <typename T> BM_HOST_DEVICE T div(T a, T b) { return a / b; }
BM_HOST_DEVICE bool add(bool a, bool b) { return a || b; }
BM_HOST_DEVICE bool mul(bool a, bool b) { return a && b; }

}  // namespace bigmodel::fn
