// CUDA-side helpers for kernel files (kernels/cuda only; includes cuda_runtime.h): the
// current cudaStream_t of a device, device checks with clear messages, launch sizes.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda_info.h"
#include "core/device.h"

namespace bigmodel::cuda {

// Throws DeviceError unless `index` names a visible device ("no CUDA device is visible"
// on a machine without GPU or driver). `what` starts the message, e.g. "to".
void check_device_index(int index, const char* what);

// The current stream of `device` (-1: the current device) as a cudaStream_t.
inline cudaStream_t current_cuda_stream(int device = -1) {
  return static_cast<cudaStream_t>(current_stream(device).handle);
}

// Blocks for a grid-stride loop over n elements: enough to fill the GPU, capped so the
// per-block work stays above a few elements.
inline unsigned grid_blocks(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  const int64_t cap = int64_t{1} << 16;  // 65536 blocks x 256 threads covers 16M per sweep
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > cap ? cap : blocks));
}

}  // namespace bigmodel::cuda
