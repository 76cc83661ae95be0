// Checking every CUDA runtime call and kernel launch (CUDA builds only; include from .cu/.cpp
// files under kernels/cuda). A failure throws bigmodel::Error naming the call, the CUDA error
// and the file and line, which Python sees as RuntimeError; cudaErrorMemoryAllocation throws
// OutOfMemoryError. BM_CUDA_CHECK_LAUNCH() after each <<<...>>> also catches bad launch
// configurations (the launch itself returns nothing); with BIGMODEL_SYNC=1 it also waits for
// the kernel and reports a fault at the launch that caused it.
#pragma once
#include <cuda_runtime.h>

#include "core/cuda_info.h"
#include "core/error.h"

namespace bigmodel::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  std::string msg = str_cat("[cuda] ", expr, " failed: ", cudaGetErrorName(err), " (", cudaGetErrorString(err),
                            ") at ", file, ":", line);
  if (err == cudaErrorMemoryAllocation) throw OutOfMemoryError(msg);
  if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver) throw DeviceError(msg);
  throw Error(msg);
}

inline void check_cuda(cudaError_t err, const char* expr, const char* file, int line) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so the process can go on
    throw_cuda_error(err, expr, file, line);
  }
}

inline void check_launch(const char* file, int line) {
  check_cuda(cudaGetLastError(), "kernel launch", file, line);
  if (sync_debug_enabled()) check_cuda(cudaDeviceSynchronize(), "kernel (BIGMODEL_SYNC=1)", file, line);
}

}  // namespace bigmodel::cuda

#define BM_CUDA_CHECK(expr) ::bigmodel::cuda::check_cuda((expr), #expr, __FILE__, __LINE__)
#define BM_CUDA_CHECK_LAUNCH() ::bigmodel::cuda::check_launch(__FILE__, __LINE__)
