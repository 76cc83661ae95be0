// Checking every CUDA runtime call and kernel launch (CUDA builds only; include from .cu/.cpp
// files under kernels/cuda). A failure throws bigmodel::Error naming the call, the CUDA error
// and the file and line, which Python sees as RuntimeError; cudaErrorMemoryAllocation throws
// OutOfMemoryError. BM_CUDA_CHECK_LAUNCH() after each <<<...>>> also catches bad launch
// configurations (the launch itself returns nothing).
#pragma once
#include <cuda_runtime.h>

#include "core/error.h"

namespace bigmodel::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  std::string msg = str_cat("[cuda] ", expr, " failed: ", cudaGetErrorName(err), " (", cudaGetErrorString(err),
                            ") at ", file, ":", line);
  if (err == cudaErrorMemoryAllocation) throw OutOfMemoryError(msg);
  throw Error(msg);
}

inline void check_cuda(cudaError_t err, const char* expr, const char* file, int line) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so the process can go on
    throw_cuda_error(err, expr, file, line);
  }
}

}  // namespace bigmodel::cuda

#define BM_CUDA_CHECK(expr) ::bigmodel::cuda::check_cuda((expr), #expr, __FILE__, __LINE__)
#define BM_CUDA_CHECK_LAUNCH() ::bigmodel::cuda::check_cuda(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
